package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// errReusedConnClosed: a pooled connection broke (EOF or reset) after
// request bytes went out and before any response byte came back. The
// upstream most likely closed the idle connection while the request was
// on its way, so it probably did not process it; an idempotent request
// may be sent again. Errors wrapping it never wrap errNotSent.
var errReusedConnClosed = errors.New("proxy: reused upstream connection closed before answering")

// errRequestBody: reading the client's request body failed (the client
// broke its framing, went away or was too slow), or the body did not
// match its declared length. The upstream is not at fault: the front end
// answers the client (400, 408, 413) from its own body error, which
// errors.Is/As still find in the chain.
var errRequestBody = errors.New("proxy: the request body failed")

// h1DialFunc opens a connection to an upstream that speaks HTTP/1.1.
type h1DialFunc func(ctx context.Context) (net.Conn, error)

// h1Client is anx's own HTTP/1.1 client to one upstream address: http://,
// unix:, or https:// when the connection negotiated http/1.1. It
// implements transport. It keeps up to keepAlive idle connections, most
// recently used first, each closed once idle for keepAliveTimeout (or the
// upstream's own shorter Keep-Alive timeout, less a second); a sweeper
// timer closes them, no goroutine per connection. A pooled connection is
// checked without blocking before it is reused.
//
// A request whose content does not fit the write that carries its head
// is sent on by a goroutine of its own while the caller's reads the
// response heads (h1client_send.go), so that an upstream's early answer
// (a 413 to a large upload) comes back at once; that goroutine has ended
// when roundTrip returns.
//
// The request writer (h1client_write.go) and the response head parser
// (h1client_parse.go) do no I/O, so that an event-loop client can reuse
// them.
type h1Client struct {
	dial h1DialFunc
	opts h1ClientOptions

	mu      sync.Mutex
	idle    []*h1Conn   // guarded by mu: pooled connections, the most recently used last
	sweeper *time.Timer // guarded by mu: closes expired idle connections; nil until first needed
	sweepAt time.Time   // guarded by mu: when sweeper fires; zero when it is not armed

	bodies sync.Pool // *h1Body, each holding an inResponse, recycled by recycle

	// pooled counts the idle connections in the pools, this one's and the
	// loops', for metrics.
	pooled atomic.Int64

	// idleClose learns the upstream's idle timeout from the pooled
	// connections it closes, here and on the loops; no connection is
	// reused past it.
	idleClose idleCloseLearner

	// onLoop is where the event loops' connections to the upstream go
	// (loop_pool.go); its network is "" when the upstream cannot be
	// dialed from a loop (https://, or a host name to resolve).
	onLoop loopTarget
}

// h1ClientOptions bounds an h1Client's connections.
type h1ClientOptions struct {
	// responseHeaderTimeout bounds the wait for a response head once the
	// request is written; zero: none.
	responseHeaderTimeout time.Duration
	// readTimeout bounds each wait for response body bytes and each
	// write of request bytes; zero: none.
	readTimeout time.Duration
	// keepAlive is how many idle connections are kept; zero or negative:
	// none.
	keepAlive int
	// keepAliveTimeout closes a connection left idle this long; zero: a
	// minute.
	keepAliveTimeout time.Duration
}

// h1Limits bound a response head.
const (
	h1MaxHeadBytes = 64 << 10 // status line, field lines and the empty line
	h1MaxFields    = 256      // field lines of a head, and of a trailer section
	h1ReadBufSize  = 8 << 10  // the read buffer a busy connection borrows
	h1WriteBufSize = 16 << 10 // the write buffer a request borrows
	h1MaxInterim   = 32       // informational responses before the final one
	// h1ExpectTimeout is how long a request with "Expect: 100-continue"
	// waits for the upstream's 100 before it sends its body anyway
	// (RFC 9110 section 10.1.1), as net/http's ExpectContinueTimeout.
	h1ExpectTimeout = time.Second
	// h1UpstreamIdleMargin is taken off an upstream's "Keep-Alive:
	// timeout=N": a connection is not reused once idle N-1 seconds, so
	// that the request does not cross the upstream's close.
	h1UpstreamIdleMargin = time.Second
)

// newH1Client returns a client whose connections dial opens.
func newH1Client(dial h1DialFunc, o h1ClientOptions) *h1Client {
	if o.keepAliveTimeout <= 0 {
		o.keepAliveTimeout = defaultKeepAliveTimeout
	}
	return &h1Client{dial: dial, opts: o}
}

// newH1ClientFor returns the client to an http:// or unix: upstream, or
// to an https:// one with tlsConf (whose NextProtos should then offer
// only http/1.1, or the caller composes its own dial with newH1Client).
func newH1ClientFor(t Target, o *transportOptions, tlsConf *tls.Config) *h1Client {
	var dial h1DialFunc
	switch t.Scheme {
	case "unix":
		dial = h1DialUnix(t.Addr, o.connectTimeout)
	case "https":
		dial = h1DialTLS(t.Addr, o.connectTimeout, tlsConf)
	default:
		dial = h1DialTCP(t.Addr, o.connectTimeout)
	}
	c := newH1Client(dial, h1ClientOptions{
		responseHeaderTimeout: o.responseHeaderTimeout,
		readTimeout:           o.readTimeout,
		keepAlive:             o.keepAlive,
		keepAliveTimeout:      o.keepAliveTimeout,
	})
	c.onLoop = newLoopTarget(t, o.connectTimeout)
	return c
}

// h1DialTCP dials addr over TCP within timeout, with TCP_NODELAY.
func h1DialTCP(addr string, timeout time.Duration) h1DialFunc {
	d := &net.Dialer{Timeout: timeout}
	return func(ctx context.Context) (net.Conn, error) {
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		return nc, nil
	}
}

// h1DialUnix dials the Unix socket at path within timeout.
func h1DialUnix(path string, timeout time.Duration) h1DialFunc {
	d := &net.Dialer{Timeout: timeout}
	return func(ctx context.Context) (net.Conn, error) {
		return d.DialContext(ctx, "unix", path)
	}
}

// h1DialTLS dials addr over TCP and runs the TLS handshake with conf,
// both within timeout. A peer that picks a protocol other than http/1.1
// by ALPN is refused: the caller that offers h2 must dial itself and
// hand only http/1.1 connections to an h1Client.
func h1DialTLS(addr string, timeout time.Duration, conf *tls.Config) h1DialFunc {
	tcp := h1DialTCP(addr, timeout)
	return func(ctx context.Context) (net.Conn, error) {
		nc, err := tcp(ctx)
		if err != nil {
			return nil, err
		}
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		tc := tls.Client(nc, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
			tc.Close()
			return nil, fmt.Errorf("proxy: upstream %s chose %q by ALPN, not http/1.1", addr, p)
		}
		return tc, nil
	}
}

// roundTrip sends req on a pooled or new connection and reads the
// response head (see transport). A pooled connection found dead before
// any byte was written is dropped and the next one tried, then a new
// one; once a byte went out, the error goes to the caller.
func (t *h1Client) roundTrip(ctx context.Context, req *outRequest) (*inResponse, error) {
	if err := checkOutRequest(req); err != nil {
		return nil, err
	}
	for {
		c := t.getIdle()
		if c == nil {
			var err error
			if c, err = t.dialConn(ctx); err != nil {
				return nil, err
			}
		}
		b := t.getBody()
		err := c.exchange(ctx, req, b)
		if err == nil {
			return &b.resp, nil
		}
		t.putBody(b)
		if c.reused && c.written == 0 && !c.bodyRead && errors.Is(err, errNotSent) && ctx.Err() == nil {
			continue // the pooled connection had died: nothing was sent
		}
		if errors.Is(err, errReusedConnClosed) {
			t.idleClose.observe(c.idleFor)
		}
		return nil, err
	}
}

// dialConn opens a new connection. Its errors wrap errNotSent.
func (t *h1Client) dialConn(ctx context.Context) (*h1Conn, error) {
	nc, err := t.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: connecting: %w", errNotSent, err)
	}
	return newH1Conn(t, nc), nil
}

// closeIdle closes the pooled connections (see transport).
func (t *h1Client) closeIdle() {
	t.onLoop.closeIdle()
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	t.pooled.Add(-int64(len(idle)))
	for _, c := range idle {
		c.closeNet()
	}
}

// recycle gives back a response that roundTrip returned, once the caller
// is done with it, its header and trailer fields included: the next
// request reuses its memory. Its body is closed first if it was not. A
// 101's response is not recycled.
func (t *h1Client) recycle(resp *inResponse) {
	b, ok := resp.Body.(*h1Body)
	if !ok || &b.resp != resp {
		return
	}
	b.Close()
	t.putBody(b)
}

func (t *h1Client) getBody() *h1Body {
	if b, ok := t.bodies.Get().(*h1Body); ok {
		return b
	}
	return new(h1Body)
}

func (t *h1Client) putBody(b *h1Body) {
	b.reset()
	t.bodies.Put(b)
}

// getIdle takes the most recently used pooled connection that has not
// expired, has not idled past the upstream's learned idle timeout and is
// still open, closing the others it meets; nil if none. One found closed
// teaches the learner.
func (t *h1Client) getIdle() *h1Conn {
	now := time.Now()
	limit := t.idleClose.reuseLimit()
	for {
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			return nil
		}
		c := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		t.pooled.Add(-1)
		idle := now.Sub(c.idleSince)
		if now.Before(c.expires) && idle < limit {
			if c.alive() {
				c.reused, c.idleFor = true, idle
				return c
			}
			t.idleClose.observe(idle)
		}
		c.closeNet()
	}
}

// put pools c, idle, or closes it when the pool has no room for it. When
// the pool is full, its least recently used connection makes room.
func (t *h1Client) put(c *h1Conn) {
	limit := min(t.opts.keepAliveTimeout, c.upstreamIdle, t.idleClose.reuseLimit())
	if t.opts.keepAlive <= 0 || limit <= 0 {
		c.closeNet()
		return
	}
	c.idleSince = time.Now()
	c.expires = c.idleSince.Add(limit)
	var evicted *h1Conn
	t.mu.Lock()
	if len(t.idle) >= t.opts.keepAlive {
		evicted = t.idle[0]
		copy(t.idle, t.idle[1:])
		t.idle[len(t.idle)-1] = nil
		t.idle = t.idle[:len(t.idle)-1]
	}
	t.idle = append(t.idle, c)
	t.armSweeper(c.expires)
	t.mu.Unlock()
	t.pooled.Add(1)
	if evicted != nil {
		t.pooled.Add(-1)
		evicted.closeNet()
	}
}

// armSweeper makes sure the sweeper fires by at. t.mu must be held.
func (t *h1Client) armSweeper(at time.Time) {
	if !t.sweepAt.IsZero() && !at.Before(t.sweepAt) {
		return
	}
	t.sweepAt = at
	d := max(time.Until(at), 0)
	if t.sweeper == nil {
		t.sweeper = time.AfterFunc(d, t.sweep)
		return
	}
	t.sweeper.Reset(d)
}

// sweep closes the idle connections that have expired and arms the timer
// for the next expiry. It runs on the timer's goroutine, which exits with
// it.
func (t *h1Client) sweep() {
	now := time.Now()
	var expired []*h1Conn
	t.mu.Lock()
	kept := t.idle[:0]
	var next time.Time
	for _, c := range t.idle {
		if !now.Before(c.expires) {
			expired = append(expired, c)
			continue
		}
		kept = append(kept, c)
		if next.IsZero() || c.expires.Before(next) {
			next = c.expires
		}
	}
	clear(t.idle[len(kept):])
	t.idle = kept
	t.sweepAt = time.Time{}
	if !next.IsZero() {
		t.armSweeper(next)
	}
	t.mu.Unlock()
	t.pooled.Add(-int64(len(expired)))
	for _, c := range expired {
		c.closeNet()
	}
}

// idleConns returns how many idle connections to the upstream are
// pooled, on the loops and off them.
func (t *h1Client) idleConns() int64 { return t.pooled.Load() }

// idleCount returns how many connections are pooled.
func (t *h1Client) idleCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.idle)
}
