package proxy

import (
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"github.com/anx-gateway/anx/core/netpoll"
	"golang.org/x/sys/unix"
)

// loopTarget is how an event loop reaches an HTTP/1.1 upstream, and the
// connections each loop keeps to it: a loop's connections are its own,
// used by its goroutine only, so taking one and putting it back costs no
// lock (the sync.Map is read once per request, without a lock, to find
// the loop's pool).
type loopTarget struct {
	network, addr  string // for netpoll.Loop.Dial; network "" when not dialable
	connectTimeout time.Duration
	pools          *sync.Map // *netpoll.Loop -> *loopPool
}

// newLoopTarget returns the loop target of t: http:// to an IP address,
// or unix:. Others (https://, h2c://, a host name, which the loop cannot
// resolve) get none, and their requests are served off the loop.
func newLoopTarget(t Target, connectTimeout time.Duration) loopTarget {
	lt := loopTarget{connectTimeout: connectTimeout, pools: new(sync.Map)}
	switch t.Scheme {
	case "unix":
		lt.network, lt.addr = "unix", t.Addr
	case "http":
		if ap, err := netip.ParseAddrPort(t.Addr); err == nil && ap.Addr().Zone() == "" {
			lt.network, lt.addr = "tcp", t.Addr
		}
	}
	return lt
}

// dialable reports whether loops can reach the upstream.
func (lt *loopTarget) dialable() bool { return lt.network != "" }

// pool returns loop l's pool for the upstream, making it on first use.
func (lt *loopTarget) pool(l *netpoll.Loop, c *h1Client) *loopPool {
	if p, ok := lt.pools.Load(l); ok {
		return p.(*loopPool)
	}
	p, _ := lt.pools.LoadOrStore(l, &loopPool{client: c, loop: l})
	return p.(*loopPool)
}

// closeIdle closes every loop's idle connections, each on its loop.
func (lt *loopTarget) closeIdle() {
	if lt.pools == nil {
		return
	}
	lt.pools.Range(func(_, v any) bool {
		p := v.(*loopPool)
		_ = p.loop.Submit(p.closeIdle)
		return true
	})
}

// loopPool is one loop's idle connections to one upstream, the most
// recently used last. Owned by the loop's goroutine.
type loopPool struct {
	client *h1Client
	loop   *netpoll.Loop
	idle   []*loopConn
}

// peekAfterIdle is how long a pooled connection may have been idle
// before get peeks at its socket. An upstream that closes idle
// connections (the Traefik "502 EOF" case) does so after a second or
// more, and the peek finds a close that the loop has not handled yet;
// under load connections come back within milliseconds, and a close
// since (a crash, not an idle timeout) is what resendFresh is for.
const peekAfterIdle = 100 * time.Millisecond

// get returns an idle connection that is still open and silent, or nil.
func (p *loopPool) get() *loopConn {
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.client.pooled.Add(-1)
		c.pooled = false
		if c.usable() {
			c.idleFor = c.nc.Now().Sub(c.idleSince)
			return c
		}
		c.nc.Close()
	}
	return nil
}

// put keeps an idle connection, or closes it when the pool is full.
func (p *loopPool) put(c *loopConn) {
	keep := min(p.client.opts.keepAliveTimeout, c.upstreamIdle, p.client.idleClose.reuseLimit())
	if len(p.idle) >= p.client.opts.keepAlive || c.draining || keep <= 0 {
		c.nc.Close() // full, shutting down, or the upstream keeps it idle too briefly
		return
	}
	c.pooled = true
	c.idleSince = c.nc.Now()
	c.nc.SetTimeout(keep)
	p.idle = append(p.idle, c)
	p.client.pooled.Add(1)
}

// remove takes a connection that closed out of the pool.
func (p *loopPool) remove(c *loopConn) {
	for i, ic := range p.idle {
		if ic == c {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			p.idle = p.idle[:len(p.idle):len(p.idle)]
			p.client.pooled.Add(-1)
			break
		}
	}
	c.pooled = false
}

// closeIdle closes the pooled connections.
func (p *loopPool) closeIdle() {
	for _, c := range p.idle {
		c.nc.Close()
	}
}

// dial opens a new connection from the pool's loop, whose connect is
// bounded by the connect timeout.
func (p *loopPool) dial() (*loopConn, error) {
	c := &loopConn{pool: p, upstreamIdle: maxDuration}
	nc, err := p.loop.Dial(p.client.onLoop.network, p.client.onLoop.addr, c)
	if err != nil {
		return nil, err
	}
	c.nc = nc
	c.connecting = true
	if d := p.client.onLoop.connectTimeout; d > 0 {
		nc.SetTimeout(d)
	}
	return c, nil
}

// loopConn is one connection from a loop to an upstream: its own
// netpoll.Handler, carrying one exchange at a time (x), or idle in its
// loop's pool.
type loopConn struct {
	pool *loopPool
	nc   *netpoll.Conn
	x    *loopExchange // the exchange it carries; nil when idle

	connecting bool          // dialed, not yet open
	reused     bool          // it carried an exchange before this one
	pooled     bool          // in the pool's idle list
	draining   bool          // Shutdown: close after the exchange in flight
	reusable   bool          // the response in flight allows another exchange after it
	idleSince  time.Time     // while pooled: when it went idle (the loop's clock)
	idleFor    time.Duration // reused: how long it had been idle
	// upstreamIdle is how long the upstream keeps the connection idle,
	// less the margin (its Keep-Alive field), or the maximum.
	upstreamIdle time.Duration
}

// usable reports whether a pooled connection may carry a request: it is
// open, has not idled past the upstream's learned idle timeout and, if it
// has been idle for peekAfterIdle or more, is alive. One found closed
// teaches the learner.
func (c *loopConn) usable() bool {
	if c.nc.Closed() {
		return false
	}
	idle := c.nc.Now().Sub(c.idleSince)
	learner := &c.pool.client.idleClose
	switch {
	case idle >= learner.reuseLimit():
		return false
	case idle < peekAfterIdle || c.alive():
		return true
	}
	learner.observe(idle)
	return false
}

// alive reports whether the upstream has neither closed the connection
// nor sent anything unasked: a peek that does not wait, for a close the
// loop has not handled yet.
func (c *loopConn) alive() bool {
	var one [1]byte
	_, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(c.nc.Fd()), uintptr(unsafe.Pointer(&one[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	return errno == unix.EAGAIN // nothing to read: open and silent
}

// OnOpen starts the wait for the response once connected.
func (c *loopConn) OnOpen(nc *netpoll.Conn) {
	c.connecting = false
	if c.x != nil {
		c.x.sent(c)
	}
}

// OnRead hands the upstream's bytes to the exchange; bytes on an idle
// connection are an answer nobody asked for, which closes it.
func (c *loopConn) OnRead(nc *netpoll.Conn, in []byte) int {
	if c.x == nil {
		nc.Close()
		return len(in)
	}
	return c.x.read(c, in)
}

// OnWritable does nothing: a request head is written whole, queued by
// netpoll if the socket does not take it.
func (c *loopConn) OnWritable(*netpoll.Conn) {}

// OnClose ends the exchange in flight, if any, with err, or takes an idle
// connection out of the pool: one the upstream closed teaches the
// learner its idle timeout.
func (c *loopConn) OnClose(nc *netpoll.Conn, err error) {
	if c.pooled {
		c.pool.remove(c)
		if lostByReuse(err) {
			c.pool.client.idleClose.observe(nc.Now().Sub(c.idleSince))
		}
	}
	if x := c.x; x != nil {
		c.x = nil
		x.closed(c, err)
	}
}

// OnDrain closes an idle connection at Shutdown; a busy one closes after
// its exchange.
func (c *loopConn) OnDrain(*netpoll.Conn) {
	if c.x == nil {
		c.nc.Close()
		return
	}
	c.draining = true
}
