package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/pool"
)

// h1Conn is one connection to an upstream. It carries one exchange at a
// time: the goroutine of the request that took it from the pool (or
// dialed it) owns every field but aborted, until its response body is
// closed and the connection goes back to the pool, where the pool's mutex
// guards it; while sender is set, sendRest's goroutine owns the fields of
// the write side (see startSender). An idle connection holds no buffer.
type h1Conn struct {
	t  *h1Client
	nc net.Conn
	// raw reaches the socket under nc (under TLS too) for the liveness
	// check; nil when there is none. peek is c.peekSocket, bound once.
	raw  syscall.RawConn
	peek func(fd uintptr) bool
	tls  *tls.Conn // nc, when it is a TLS connection
	// peekN and peekErr are what peekSocket saw; peekBuf its one byte.
	peekN   int
	peekErr error
	peekBuf [1]byte

	rbuf *[]byte // read buffer, borrowed for an exchange
	r, w int     // unread bytes are (*rbuf)[r:w]
	wbuf *[]byte // write buffer, borrowed while the request is written
	// probe holds the first bytes of a body read before the head (see
	// probeContent): probeData is what is left of them, probeEOF whether
	// the body ended with them.
	probe     *[]byte
	probeData []byte
	probeEOF  bool

	// State of the current exchange.
	reused    bool  // the connection came from the pool
	written   int64 // request bytes the socket took
	bodyRead  bool  // the request body was read from (it cannot be replayed here)
	complete  bool  // the whole request was written
	reusable  bool  // the response allows another exchange after it
	expects   bool  // the request waits for 100 Continue before its body
	readFirst bool  // a response byte arrived
	remain    int64 // content bytes of a Content-Length request not yet sent
	// sender is set while sendRest sends the content that did not fit
	// the first write, from startSender until joinSender.
	sender *h1Sender
	// upstreamIdle is how long the upstream keeps the connection idle,
	// less the margin (from its Keep-Alive field), or the maximum.
	upstreamIdle time.Duration
	idleSince    time.Time     // while pooled: when it went idle
	expires      time.Time     // while pooled: when it stops being reusable
	idleFor      time.Duration // reused: how long it had been idle

	aborted atomic.Bool // set by abort, from the context's goroutine
	abortFn func()      // c.abort, bound once
}

// aLongTimeAgo is a deadline in the past: setting it wakes any blocked
// I/O on the connection.
var aLongTimeAgo = time.Unix(1, 0)

func newH1Conn(t *h1Client, nc net.Conn) *h1Conn {
	c := &h1Conn{t: t, nc: nc}
	c.abortFn = c.abort
	c.peek = c.peekSocket
	under := nc
	if tc, ok := nc.(*tls.Conn); ok {
		c.tls = tc
		under = tc.NetConn()
	}
	if sc, ok := under.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	return c
}

// abort wakes whatever I/O the connection is blocked in, for a context
// that was cancelled.
func (c *h1Conn) abort() {
	c.aborted.Store(true)
	_ = c.nc.SetDeadline(aLongTimeAgo)
}

// setReadDeadline sets the read deadline unless the exchange was
// aborted, whose past deadline must stay.
func (c *h1Conn) setReadDeadline(t time.Time) {
	_ = c.nc.SetReadDeadline(t)
	if c.aborted.Load() {
		_ = c.nc.SetDeadline(aLongTimeAgo)
	}
}

// setWriteDeadline is setReadDeadline for writes.
func (c *h1Conn) setWriteDeadline(t time.Time) {
	_ = c.nc.SetWriteDeadline(t)
	if c.aborted.Load() {
		_ = c.nc.SetDeadline(aLongTimeAgo)
	}
}

// closeNet closes the connection and gives back its buffers.
func (c *h1Conn) closeNet() {
	c.releaseBuffers()
	_ = c.nc.Close()
}

// releaseBuffers gives back the buffers of an exchange.
func (c *h1Conn) releaseBuffers() {
	if c.rbuf != nil {
		pool.Put(c.rbuf)
		c.rbuf = nil
	}
	if c.wbuf != nil {
		pool.Put(c.wbuf)
		c.wbuf = nil
	}
	c.releaseProbe()
	c.r, c.w = 0, 0
}

// finish ends an exchange whose body was read to its end: the connection
// goes back to the pool if both sides allow it, else it is closed.
func (c *h1Conn) finish() {
	if !c.reusable || !c.complete || c.r != c.w {
		c.closeNet()
		return
	}
	c.releaseBuffers()
	c.t.put(c)
}

// exchange writes req and reads the response head into b. On error the
// connection is closed.
func (c *h1Conn) exchange(ctx context.Context, req *outRequest, b *h1Body) error {
	c.written, c.bodyRead, c.complete, c.readFirst = 0, false, false, false
	c.reusable, c.upstreamIdle = false, maxDuration
	c.aborted.Store(false)
	if c.rbuf == nil {
		c.rbuf = pool.Get(h1ReadBufSize)
	}
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, c.abortFn)
	}
	err := c.sendAndReceive(ctx, req, b)
	if stop != nil && !stop() && err == nil {
		err = fmt.Errorf("proxy: waiting for the upstream's response: %w", ctx.Err())
	}
	if err != nil {
		c.closeNet()
		return err
	}
	return c.startBody(req, b)
}

// maxDuration is the longest time.Duration.
const maxDuration = time.Duration(1<<63 - 1)

// sendAndReceive writes the request, its body after the upstream's 100
// Continue when it asked for one, and reads heads until the final one.
// Content that does not fit the first write is sent on while the heads
// are read (see h1client_send.go); sendRest has always ended when
// sendAndReceive returns.
func (c *h1Conn) sendAndReceive(ctx context.Context, req *outRequest, b *h1Body) error {
	if err := c.writeRequest(ctx, req); err != nil {
		return err
	}
	deadline := c.headDeadline(ctx)
	if c.expects {
		status, err := c.awaitContinue(ctx, req, b, deadline)
		if err != nil || status != 0 {
			return err // a final response came instead: the body stays unsent
		}
		if err := c.writeBody(ctx, req); err != nil {
			return err
		}
		deadline = c.headDeadline(ctx)
	}
	if c.sender != nil {
		return c.receiveWhileSending(ctx, req, b)
	}
	return c.readFinalHead(ctx, req, b, deadline)
}

// headDeadline returns when the wait for a response head ends.
func (c *h1Conn) headDeadline(ctx context.Context) time.Time {
	var d time.Time
	if rt := c.t.opts.responseHeaderTimeout; rt > 0 {
		d = time.Now().Add(rt)
	}
	if cd, ok := ctx.Deadline(); ok && (d.IsZero() || cd.Before(d)) {
		d = cd
	}
	return d
}

// awaitContinue waits, a second at most, for the upstream's answer to
// "Expect: 100-continue": it returns 0 when the body should be sent (a
// 100 came, or nothing did), or the status of a final response that came
// instead, which b then holds.
func (c *h1Conn) awaitContinue(ctx context.Context, req *outRequest, b *h1Body, deadline time.Time) (int, error) {
	wait := time.Now().Add(h1ExpectTimeout)
	if !deadline.IsZero() && deadline.Before(wait) {
		wait = deadline
	}
	for {
		status, err := c.readHead(ctx, req, b, wait)
		switch {
		case err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !wait.Equal(deadline) && !c.aborted.Load():
			return 0, nil // no answer yet: send the body
		case err != nil:
			return 0, err
		case status == 100:
			c.interim(req, b, status)
			return 0, nil
		case status > 100 && status < 200:
			c.interim(req, b, status)
			continue
		}
		// A final answer instead: the body stays unsent, so c.complete
		// stays false and the connection is not reused.
		return status, c.finalHead(req, b, status)
	}
}

// readFinalHead reads response heads, passing informational ones to
// req.Interim, until the final one (or a 101).
func (c *h1Conn) readFinalHead(ctx context.Context, req *outRequest, b *h1Body, deadline time.Time) error {
	for range h1MaxInterim + 1 {
		status, err := c.readHead(ctx, req, b, deadline)
		if err != nil {
			return err
		}
		if status >= 100 && status < 200 && status != 101 {
			c.interim(req, b, status)
			continue
		}
		return c.finalHead(req, b, status)
	}
	return fmt.Errorf("%w: more than %d informational responses", errMalformed, h1MaxInterim)
}

// interim hands an informational response to req.Interim and clears it.
func (c *h1Conn) interim(req *outRequest, b *h1Body, status int) {
	if req.Interim != nil {
		req.Interim(status, &b.resp.Header)
	}
	b.resp.Header.Reset()
}

// finalHead checks a final head (or a 101) against the request.
func (c *h1Conn) finalHead(req *outRequest, b *h1Body, status int) error {
	if status == 101 && req.Upgrade == "" {
		return fmt.Errorf("%w: 101 Switching Protocols to a request without Upgrade", errMalformed)
	}
	return nil
}

// readHead reads one response head into b.resp and b.info, with the read
// deadline at deadline, and returns its status. The head's bytes are
// copied into b, whose strings they back.
func (c *h1Conn) readHead(ctx context.Context, req *outRequest, b *h1Body, deadline time.Time) (int, error) {
	c.setReadDeadline(deadline)
	return c.readHeadArmed(ctx, req, b)
}

// readHeadArmed is readHead with the read deadline already set.
func (c *h1Conn) readHeadArmed(ctx context.Context, req *outRequest, b *h1Body) (int, error) {
	from := 0
	for {
		buf := (*c.rbuf)[c.r:c.w]
		if n := scanResponseHead(buf, from); n > 0 {
			head := b.keepHead(buf[:n])
			c.r += n
			if err := parseResponseHead(head, &b.resp, &b.info); err != nil {
				return 0, err
			}
			return b.resp.Status, nil
		}
		if len(buf) >= h1MaxHeadBytes {
			return 0, fmt.Errorf("%w: response head larger than %d bytes", errMalformed, h1MaxHeadBytes)
		}
		from = max(len(buf)-3, 0)
		if err := c.fill(); err != nil {
			return 0, c.headError(ctx, err)
		}
	}
}

// fill reads more bytes into the read buffer, making room first by
// moving the unread bytes to its start, or by growing it up to a head's
// bound.
func (c *h1Conn) fill() error {
	buf := *c.rbuf
	if c.w == len(buf) {
		if c.r > 0 {
			c.w = copy(buf, buf[c.r:c.w])
			c.r = 0
		} else {
			bigger := pool.Get(min(2*len(buf), h1MaxHeadBytes+h1ReadBufSize))
			c.w = copy(*bigger, buf[c.r:c.w])
			c.r = 0
			pool.Put(c.rbuf)
			c.rbuf = bigger
			buf = *bigger
		}
	}
	n, err := c.nc.Read(buf[c.w:])
	c.w += n
	if n > 0 {
		c.readFirst = true
	}
	if n > 0 && err != nil {
		err = nil // the error comes again with the next read
	}
	return err
}

// headError classifies a failure to read a response head: the context's
// own error if it ended the wait; errReusedConnClosed when a pooled
// connection broke before any response byte; errMalformed context for an
// upstream that closed mid-head.
func (c *h1Conn) headError(ctx context.Context, err error) error {
	if c.aborted.Load() && ctx.Err() != nil {
		return fmt.Errorf("proxy: waiting for the upstream's response: %w", ctx.Err())
	}
	broken := errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
	switch {
	case broken && !c.readFirst && c.reused:
		return fmt.Errorf("%w: %w", errReusedConnClosed, err)
	case errors.Is(err, io.EOF):
		if c.readFirst {
			return fmt.Errorf("%w: upstream closed the connection inside the response head: %w", errMalformed, io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("proxy: upstream closed the connection without answering: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("proxy: reading the upstream's response head: %w", err)
}

// startBody sets b up to read the final response's content, or hands the
// connection over after a 101.
func (c *h1Conn) startBody(req *outRequest, b *h1Body) error {
	resp := &b.resp
	if resp.Status == 101 {
		resp.Conn = c.handOver()
		resp.ContentLength = -1
		return nil
	}
	kind, length, err := responseFraming(req.Method, resp.Status, &b.info)
	if err != nil {
		c.closeNet()
		return err
	}
	buffered := int64(c.w - c.r)
	if kind == h1BodyNone && buffered > 0 || kind == h1BodyLength && buffered > length {
		c.closeNet()
		return fmt.Errorf("%w: %d bytes after the response's end", errMalformed, buffered-max(length, 0))
	}
	c.reusable = c.complete && b.info.minor == 1 && !b.info.close && kind != h1BodyClose
	if b.info.idle > 0 {
		c.upstreamIdle = b.info.idle - h1UpstreamIdleMargin
	}
	b.start(c, kind, length)
	return nil
}

// handOver gives the connection to the caller after a 101: the bytes
// already read after the head come first.
func (c *h1Conn) handOver() net.Conn {
	rest := (*c.rbuf)[c.r:c.w]
	var nc net.Conn = c.nc
	if len(rest) > 0 {
		nc = &upgradedConn{Conn: c.nc, pre: append([]byte(nil), rest...)}
	}
	_ = c.nc.SetDeadline(time.Time{})
	c.releaseBuffers()
	return nc
}

// upgradedConn is an upstream connection after a 101 whose first bytes
// of the new protocol were already read with the head.
type upgradedConn struct {
	net.Conn
	pre []byte // read before the connection's own bytes
}

// Read returns the bytes read with the head first.
func (u *upgradedConn) Read(p []byte) (int, error) {
	if len(u.pre) > 0 {
		n := copy(p, u.pre)
		u.pre = u.pre[n:]
		return n, nil
	}
	return u.Conn.Read(p)
}

// WriteTo writes the bytes read with the head, then copies the
// connection's own to w, so that a tunnel still splices (io.Copy to a
// *net.TCPConn uses splice(2) from a TCP source).
func (u *upgradedConn) WriteTo(w io.Writer) (int64, error) {
	var n int64
	if len(u.pre) > 0 {
		k, err := w.Write(u.pre)
		n, u.pre = int64(k), u.pre[k:]
		if err != nil {
			return n, err
		}
	}
	m, err := io.Copy(w, u.Conn)
	return n + m, err
}

// CloseWrite shuts the connection's write half, when it has one, so
// that a tunnel can pass on one side's end of stream.
func (u *upgradedConn) CloseWrite() error {
	if cw, ok := u.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return u.Conn.Close()
}

// NetConn returns the connection itself, for a tunnel that splices once
// Buffered is drained.
func (u *upgradedConn) NetConn() net.Conn { return u.Conn }

// Buffered returns how many bytes Read returns before the connection's
// own.
func (u *upgradedConn) Buffered() int { return len(u.pre) }

// alive reports whether a pooled connection is still open and silent:
// the upstream has not closed it nor sent anything unasked. It never
// blocks.
func (c *h1Conn) alive() bool {
	pending := false
	if c.raw != nil {
		c.peekN, c.peekErr = 0, nil
		if err := c.raw.Read(c.peek); err != nil {
			return false
		}
		switch {
		case c.peekErr == syscall.EAGAIN || c.peekErr == syscall.EWOULDBLOCK:
		case c.peekErr != nil || c.peekN == 0:
			return false // reset, or EOF
		default:
			pending = true
		}
	}
	if c.tls == nil {
		// Bytes waiting on plain HTTP are an answer nobody asked for.
		return !pending
	}
	return c.tlsSilent(pending)
}

// tlsSilent reads from an idle TLS connection without waiting (a
// millisecond when bytes are waiting in the socket, so that a whole
// record is read): it is open and silent if the read only timed out,
// after consuming post-handshake messages such as session tickets. Data
// that crypto/tls had already buffered, a close_notify (EOF) or any
// other error mean it is not.
func (c *h1Conn) tlsSilent(pending bool) bool {
	deadline := aLongTimeAgo
	if pending {
		deadline = time.Now().Add(time.Millisecond)
	}
	_ = c.nc.SetReadDeadline(deadline)
	n, err := c.nc.Read(c.peekBuf[:])
	return n == 0 && errors.Is(err, os.ErrDeadlineExceeded)
}

// keepAliveTimeoutParam is the Keep-Alive field's parameter for the idle
// timeout.
const keepAliveTimeoutParam = "timeout"

// parseKeepAliveTimeout returns the timeout=N parameter of a Keep-Alive
// field value (RFC 2068 section 19.7.1.1's syntax: comma-separated
// name=value pairs), or 0.
func parseKeepAliveTimeout(v string) time.Duration {
	for v != "" {
		var param string
		param, v, _ = strings.Cut(v, ",")
		name, value, ok := strings.Cut(param, "=")
		if !ok || !message.EqualFold(h1TrimOWS(name), keepAliveTimeoutParam) {
			continue
		}
		n, ok := h1ParseDecimal(h1TrimOWS(value), 9)
		if !ok {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	return 0
}
