package h1

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/pool"
	"github.com/anx-gateway/anx/tls/onloop"
)

// States of a connection, as Shutdown and Close see them.
const (
	stateIdle   int32 = iota // waiting for a request; Shutdown may close it
	stateActive              // reading, serving or answering a request
	stateClosed              // closing; nobody else may claim it
)

// Sizes and times of the input path.
const (
	readBufSize   = 4 << 10              // first read buffer; grows to MaxHeaderBytes for big heads
	drainBytes    = 256 << 10            // most unread body read after the handler to keep the connection
	drainTimeout  = 5 * time.Second      // longest that draining may take
	lingerBytes   = onloop.LingerBytes   // most bytes read and dropped in a lingering close, as on the loops
	lingerTimeout = onloop.LingerTimeout // longest lingering close
	fileCopySize  = 32 << 10             // buffer for files that cannot go by sendfile
)

// conn is one client connection and its state machine: wait idle, read a
// head, run the handler, finish the response, drain the body, repeat.
//
// Everything in it is owned by the connection's goroutine (Serve starts
// one; ServeConn uses its caller's), except state, which Shutdown and Close
// also read and write, and nc, which they may close. The fields set in
// newConn do not change after.
type conn struct {
	srv        *Server
	nc         net.Conn
	tcp        *net.TCPConn    // nc as a plain TCP conn, for sendfile; nil otherwise
	tlsConn    *tls.Conn       // nc as a TLS conn; nil otherwise
	secure     bool            // requests arrive over TLS (tlsConn set, or a TLS loop connection bound)
	raw        syscall.RawConn // for waits without reading (wait_linux.go); may be nil
	remote     netip.AddrPort  // the client's address
	serverName string          // TLS SNI, set by handshake
	tlsVersion uint16          // the TLS version, set by handshake; 0 plain
	start      time.Time       // when the connection was accepted
	// headAt is when the request being served had its head whole (for
	// Observer's Outcome.Start).
	headAt  time.Time
	outcome message.Outcome // what observe reports, reused
	// headCopy holds the head of a deferred request while its response
	// is pending (keepHead), from core/pool; nil otherwise.
	headCopy *[]byte

	state atomic.Int32 // stateIdle, stateActive or stateClosed; shared with Shutdown and Close

	// Read side: unread input is (*rbuf)[r:w]. rbuf is borrowed from
	// core/pool while the connection has work and nil while it is idle.
	rbuf   *[]byte
	r, w   int
	peek   [1]byte            // the byte a wait read or peeked at
	peeked bool               // peek[0] was read and belongs at the start of the input
	polled bool               // waitReadable's callback has asked the poller to wait
	peekFn func(uintptr) bool // waitReadable's callback, made once
	// peekInput's buffer, result and callback (made once).
	peekBuf  []byte
	peekN    int
	peekInFn func(uintptr) bool
	linger   bool // close with a lingering read (the client may still be sending)
	// blocked: the last request went to a handler that may wait (see
	// awaitNext).
	blocked bool

	loop *loopConn // the loop connection this exchange serves now; nil for a goroutine's conn

	// detachedFrom is the loop connection a goroutine's conn was
	// detached from (serveDetached), nil otherwise: after an Upgrade, the
	// socket goes back to it to close. Set before serving.
	detachedFrom *loopConn

	out  outBuf          // write side
	req  message.Request // the request being served; reused
	info headInfo        // what parseHead noted about it
	body body            // its content, req.Body
	resp response        // the handler's ResponseWriter
}

// newConn wraps an accepted connection.
func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, start: time.Now()}
	c.state.Store(stateIdle)
	switch t := nc.(type) {
	case *net.TCPConn:
		c.tcp = t
	case *tls.Conn:
		c.tlsConn, c.secure = t, true
	}
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		ap := a.AddrPort()
		c.remote = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	c.initWait()
	c.out.nc = nc
	c.out.timeout = s.writeTimeout()
	c.body.c = c
	c.resp.c = c
	return c
}

// newExchange makes the request and response state that a loop lends to
// its connections, one request at a time (loopConn.bind).
func (s *Server) newExchange() *conn {
	x := &conn{srv: s}
	x.state.Store(stateActive)
	x.body.c = x
	x.resp.c = x
	return x
}

// closeIfIdle closes the connection if it is waiting for a request. It is
// called by Shutdown, from another goroutine.
func (c *conn) closeIfIdle() {
	if c.state.CompareAndSwap(stateIdle, stateClosed) {
		c.nc.Close()
	}
}

// serve runs the connection until it closes.
func (c *conn) serve() {
	defer c.shut()
	if !c.handshake() {
		return
	}
	rht := c.srv.readHeaderTimeout()
	deadline := deadlineAfter(c.start, rht)
	for first := true; ; first = false {
		if !first {
			if c.r == c.w {
				c.release()
				if c.waitIdle(deadlineAfter(time.Now(), c.srv.idleTimeout())) != nil {
					return
				}
			}
			deadline = deadlineAfter(time.Now(), rht)
		} else if c.waitIdle(deadline) != nil {
			return
		}
		if !c.serveRequest(deadline) || c.srv.shutdown.Load() {
			return
		}
		if !c.headBuffered() && c.out.flush() != nil {
			return
		}
	}
}

// serveBuffered serves a connection that a loop handed over with the
// input it had (loopConn.detach): requests until the input runs dry. It
// reports whether the connection can go back to the loop to wait for the
// next request; false means it must close (c.shut).
func (c *conn) serveBuffered() bool {
	if !c.handshake() {
		return false
	}
	rht := c.srv.readHeaderTimeout()
	for {
		if !c.serveRequest(deadlineAfter(time.Now(), rht)) || c.srv.shutdown.Load() {
			return false
		}
		if c.r == c.w {
			if c.out.flush() != nil {
				return false
			}
			if more, keep := c.awaitNext(); !more {
				return keep
			}
			continue
		}
		if !c.headBuffered() && c.out.flush() != nil {
			return false
		}
	}
}

// detachedLinger is how long a detached connection waits on its
// goroutine for the next request before it goes back to its loop. A
// keep-alive client of a proxied site sends its next request within
// milliseconds; serving it on the same goroutine spares the hand-back and
// the next hand-off (dup, epoll_ctl, a new goroutine), which cost more
// than the request. An idle connection is back on the loop, holding no
// goroutine, after this long.
const detachedLinger = time.Second

// awaitNext waits, holding no buffer, up to detachedLinger for the next
// request on a detached connection whose last request went to a handler
// that may wait (a proxied one). It reports more when one is arriving and
// is to be served here; otherwise keep says whether the connection may
// go back to the loop (the wait timed out, the last request did not
// block, or the next one is for the loop: see nextIsForLoop) or must
// close (EOF, an error, Shutdown).
func (c *conn) awaitNext() (more, keep bool) {
	if !c.blocked {
		return false, true
	}
	c.release()
	err := c.waitIdle(time.Now().Add(detachedLinger))
	c.nc.SetReadDeadline(time.Time{})
	switch {
	case err == nil:
		return !c.nextIsForLoop(), true
	case err == errShuttingDown:
		c.state.Store(stateActive) // the loop drains it
		return false, true
	case err != errClosedIdle && isTimeout(err) && c.state.CompareAndSwap(stateIdle, stateActive):
		return false, true
	}
	return false, false // EOF, an error, or Shutdown closed it
}

// nextIsForLoop reports whether the request arriving on a plain detached
// connection can be served on the loop: its whole head is in the socket
// (looked at with MSG_PEEK, so it stays there for the loop to read), it
// has no content, and its handler never waits or can serve it on the
// loop (message.ServesOnLoop). Over TLS the wait has read
// a byte already, so the request is served here.
func (c *conn) nextIsForLoop() bool {
	if c.raw == nil || c.peeked {
		return false
	}
	buf := pool.Get(readBufSize)
	defer pool.Put(buf)
	n := c.peekInput(*buf)
	if n <= 0 {
		return false
	}
	lim := c.srv.limits()
	skip, size, err := headAt((*buf)[:n], lim)
	if err != nil || size == 0 {
		return false
	}
	c.newRequest()
	head := (*buf)[skip : skip+size]
	if parseHead(unsafe.String(&head[0], len(head)), &c.req, &c.info, lim) != nil {
		return false
	}
	kind, _, err := c.info.framing(c.req.ProtoMinor)
	forLoop := err == nil && kind == bodyNone && (c.srv.Handler == nil || message.ServesOnLoop(c.srv.Handler, &c.req))
	c.newRequest() // its strings point into buf
	return forLoop
}

// deadlineAfter returns from+d, or no deadline when d is 0.
func deadlineAfter(from time.Time, d time.Duration) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return from.Add(d)
}

// handshake finishes a TLS handshake the caller has not done, within
// ReadHeaderTimeout, and notes the SNI name.
func (c *conn) handshake() bool {
	if c.tlsConn == nil {
		return true
	}
	st := c.tlsConn.ConnectionState()
	if !st.HandshakeComplete {
		c.nc.SetDeadline(deadlineAfter(c.start, c.srv.readHeaderTimeout()))
		if err := c.tlsConn.Handshake(); err != nil {
			c.srv.debug("h1: TLS handshake failed", "remote", c.remote, "error", err)
			return false
		}
		c.nc.SetWriteDeadline(time.Time{})
		st = c.tlsConn.ConnectionState()
	}
	c.serverName, c.tlsVersion = st.ServerName, st.Version
	return true
}

// waitIdle waits, holding no buffer, until the next request starts to
// arrive or the deadline passes. It reports false when the connection
// should close: timeout, EOF, or Shutdown.
func (c *conn) waitIdle(deadline time.Time) error {
	c.state.Store(stateIdle)
	if c.srv.shutdown.Load() { // after the Store: Shutdown sees idle, or we see it
		return errShuttingDown
	}
	c.nc.SetReadDeadline(deadline)
	if err := c.waitReadable(); err != nil {
		return err
	}
	if !c.state.CompareAndSwap(stateIdle, stateActive) {
		return errClosedIdle
	}
	return nil
}

// Why waitIdle gave up, besides the wait's own error.
var (
	errShuttingDown = errors.New("h1: shutting down")     // before the wait
	errClosedIdle   = errors.New("h1: closed while idle") // by Shutdown, during the wait
)

// waitByReading is the portable idle wait: it reads one byte into c.peek.
func (c *conn) waitByReading() error {
	for {
		n, err := c.nc.Read(c.peek[:])
		if n == 1 {
			c.peeked = true
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// serveRequest reads one request, runs the handler and finishes the
// response. It reports whether the connection can carry another request.
func (c *conn) serveRequest(deadline time.Time) bool {
	c.nc.SetReadDeadline(deadline)
	lim := c.srv.limits()
	n, err := c.readHead(lim)
	if err != nil {
		c.fail(err, false)
		return false
	}
	head := string((*c.rbuf)[c.r : c.r+n])
	c.r += n
	c.newRequest()
	c.headAt = c.srv.now()
	if err := parseHead(head, &c.req, &c.info, lim); err != nil {
		c.fail(err, c.req.Method == "HEAD")
		return false
	}
	if !c.frame() {
		return false
	}
	c.blocked = c.detachedFrom != nil && !message.IsNonBlockingFor(c.srv.Handler, &c.req)
	panicked := c.runHandler()
	c.resp.finish(panicked)
	c.observe(false, c.srv.now())
	if c.resp.closeAfter || c.out.err != nil {
		return false
	}
	return c.body.drain()
}

// frame sets up the request body and the response from the parsed head,
// refusing what cannot be served.
func (c *conn) frame() bool {
	minor, isHead := c.req.ProtoMinor, c.req.Method == "HEAD"
	kind, length, err := c.info.framing(minor)
	if err != nil {
		c.fail(err, isHead)
		return false
	}
	if max := c.srv.maxBodyBytes(); kind == bodyLength && max >= 0 && length > max {
		c.fail(ErrBodyTooLarge, isHead)
		return false
	}
	expect := false
	if c.info.expects > 0 && minor == 1 { // RFC 9110 section 10.1.1: ignored in HTTP/1.0
		if c.info.expects > 1 || !message.EqualFold(c.info.expect, "100-continue") {
			c.fail(refuse(417, "unsupported expectation"), isHead)
			return false
		}
		expect = kind != bodyNone
	}
	c.body.start(kind, length, expect)
	c.req.Body = &c.body
	c.req.ContentLength = length
	c.resp.start(isHead, minor, c.info.persistent(minor))
	// Body reads never flush (see readMore): the answers to earlier
	// pipelined requests go out now, before the handler may wait for
	// content the client sends only once it has them.
	if kind != bodyNone && c.out.pending() && c.out.flush() != nil {
		return false
	}
	return true
}

// newRequest empties c.req for the next request, keeping its header's
// storage.
func (c *conn) newRequest() {
	h, tr := c.req.Header, c.req.Trailer
	h.Reset()
	tr.Reset()
	c.req = message.Request{
		Header:     h,
		Trailer:    tr,
		RemoteAddr: c.remote,
		TLS:        c.secure,
		ServerName: c.serverName,
		TLSVersion: c.tlsVersion,
	}
}

// runHandler calls the handler, recovering a panic so that one bad request
// does not take the process down.
func (c *conn) runHandler() (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			panicked = true
			c.srv.logError("h1: handler panicked", "remote", c.remote, "method", c.req.Method,
				"path", c.req.Path, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	if h := c.srv.Handler; h != nil {
		h.Serve(&c.resp, &c.req)
	} else {
		c.resp.header.Set("Content-Type", "text/plain; charset=utf-8")
		c.resp.header.Set("Content-Length", "10")
		c.resp.WriteHeader(404)
		c.resp.Write([]byte("Not Found\n"))
	}
	return false
}

// readHead reads until the input starts with a complete request head
// within lim, and returns its length. Empty lines before the request line
// are dropped. The error is a *StatusError when the client earned a
// response (414, 431, 400 for a bare CR, 408 for a head cut off by
// ReadHeaderTimeout), or the read error when it did not.
func (c *conn) readHead(lim limits) (int, error) {
	from := 0     // where scanHead resumes
	seen := false // whether any byte of this request has arrived
	for {
		if c.r < c.w {
			seen = true
			buf := *c.rbuf
			if from == 0 {
				k, err := skipEmptyLines(buf[c.r:c.w])
				c.r += k
				if err != nil {
					return 0, err
				}
			}
			if c.r < c.w && buf[c.r] != '\r' {
				in := buf[c.r:min(c.w, c.r+lim.maxHeadBytes)]
				n, next := scanHead(in, from)
				if n > 0 {
					return n, nil
				}
				from = next
				if len(in) == lim.maxHeadBytes {
					return 0, headTooLarge(in)
				}
			}
		}
		if err := c.fillHead(lim.maxHeadBytes); err != nil {
			if (seen || c.r < c.w) && isTimeout(err) {
				return 0, refuse(408, "request head not received in time")
			}
			return 0, err
		}
	}
}

// headTooLarge returns the error of a head that did not end within the
// limit: 414 when even the request line did not (RFC 9112 section 3), 431
// otherwise (RFC 6585 section 5).
func headTooLarge(in []byte) *StatusError {
	if bytes.IndexByte(in, '\n') < 0 {
		return refuse(414, "request line too long")
	}
	return refuse(431, "request head too large")
}

// headBuffered reports whether the input already holds the whole head of
// another request; the responses written so far then wait in the output
// buffer to leave with the next one (pipelining).
func (c *conn) headBuffered() bool {
	if c.r == c.w {
		return false
	}
	in := (*c.rbuf)[c.r:c.w]
	k, err := skipEmptyLines(in)
	if err != nil || k == len(in) || in[k] == '\r' {
		return false
	}
	in = in[k:]
	n, _ := scanHead(in[:min(len(in), c.srv.limits().maxHeadBytes)], 0)
	return n > 0
}

// borrowRead makes sure the connection has its read buffer.
func (c *conn) borrowRead() {
	if c.rbuf != nil {
		return
	}
	c.rbuf = pool.Get(readBufSize)
	c.r, c.w = 0, 0
	if c.peeked {
		(*c.rbuf)[0] = c.peek[0]
		c.w = 1
		c.peeked = false
	}
}

// fillHead reads more of a request head, making room first: compacting
// the unread input to the front, or moving it to a buffer twice as large,
// up to the head limit.
func (c *conn) fillHead(limit int) error {
	c.borrowRead()
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	if c.w == len(*c.rbuf) {
		if c.r > 0 {
			c.compact()
		} else if len(*c.rbuf) < limit {
			bigger := pool.Get(2 * len(*c.rbuf))
			c.w = copy(*bigger, (*c.rbuf)[c.r:c.w])
			c.r = 0
			pool.Put(c.rbuf)
			c.rbuf = bigger
		}
	}
	if c.out.pending() { // the client may wait for these before sending more
		if err := c.out.flush(); err != nil {
			return err
		}
	}
	return c.readMore()
}

// fillBody reads more of a request body into the read buffer, under the
// given deadline.
func (c *conn) fillBody(deadline time.Time) error {
	c.borrowRead()
	if c.r == c.w {
		c.r, c.w = 0, 0
	} else if c.w == len(*c.rbuf) {
		c.compact()
	}
	c.nc.SetReadDeadline(deadline)
	err := c.readMore()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// compact moves the unread input to the front of the read buffer.
func (c *conn) compact() {
	c.w = copy(*c.rbuf, (*c.rbuf)[c.r:c.w])
	c.r = 0
}

// readMore reads into the free end of the read buffer. It does not touch
// the output, so that a handler may read the body while another goroutine
// writes the response.
func (c *conn) readMore() error {
	if c.w == len(*c.rbuf) {
		return errors.New("h1: read buffer full") // cannot happen: callers make room
	}
	for {
		n, err := c.nc.Read((*c.rbuf)[c.w:])
		c.w += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readDirect reads straight into p, bypassing the read buffer, once the
// buffer is empty: large request bodies are not copied twice.
func (c *conn) readDirect(p []byte, deadline time.Time) (int, error) {
	c.nc.SetReadDeadline(deadline)
	for {
		n, err := c.nc.Read(p)
		if n > 0 {
			return n, nil
		}
		if err == io.EOF {
			return 0, io.ErrUnexpectedEOF
		}
		if err != nil {
			return 0, err
		}
	}
}

// isTimeout reports whether err is a deadline passing.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// fail answers a request that cannot be served. A *StatusError gets its
// status with "Connection: close"; the connection then closes, lingering
// so that the client can read the answer. Other errors (EOF, reset) close
// the connection without a word.
func (c *conn) fail(err error, isHead bool) {
	var se *StatusError
	if !errors.As(err, &se) {
		return
	}
	c.srv.debug("h1: refused request", "remote", c.remote, "status", se.Status, "error", err)
	c.writeError(se.Status, isHead)
	c.observeRefusal(se.Status)
	c.linger = se.Status != 408 // a client too slow to send its head is not waited for
}

// writeError writes a complete error response of h1's own: a tiny text
// body and "Connection: close" (RFC 9112 section 9.6).
func (c *conn) writeError(status int, isHead bool) {
	o := &c.out
	reason := reasonPhrase(status)
	o.write(statusLine(o.scratch[:0], status))
	o.writeString(c.srv.dates.Line(time.Now()))
	o.writeString("Server: anx\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n")
	if c.srv.AltSvc != "" {
		o.writeField("Alt-Svc", c.srv.AltSvc)
	}
	o.writeString("Content-Length: ")
	o.writeInt(int64(len(reason) + 1))
	o.writeString("\r\n\r\n")
	if !isHead {
		o.writeString(reason)
		o.writeString("\n")
	}
}

// release gives the buffers back to the pool while the connection waits
// idle. The output must have been flushed and the input consumed.
func (c *conn) release() {
	c.out.release()
	if c.rbuf != nil {
		pool.Put(c.rbuf)
		c.rbuf = nil
		c.r, c.w = 0, 0
	}
}

// shut flushes what is left, closes the connection, lingering when the
// client may still be sending, and gives back its buffers. A connection a
// handler took with Upgrade is only let go of: the tunnel closes it.
func (c *conn) shut() {
	if c.upgraded() {
		c.release()
		return
	}
	c.state.Store(stateClosed)
	c.out.flush()
	if c.out.err == nil && (c.linger || c.r < c.w || c.body.unread()) {
		c.lingerClose()
	}
	c.nc.Close()
	c.release()
	c.srv.untrackConn(c)
}

// lingerClose half-closes the connection and reads, for a short while, what
// the client still sends, dropping it. Closing with unread input makes the
// kernel send RST, which can destroy the response before the client reads
// it (RFC 9112 section 9.6; nginx's lingering_close).
func (c *conn) lingerClose() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	if c.tlsConn != nil { // CloseWrite sent close_notify; now the FIN
		if tcw, ok := c.tlsConn.NetConn().(interface{ CloseWrite() error }); ok {
			tcw.CloseWrite()
		}
	}
	c.borrowRead()
	c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
	for total := 0; total < lingerBytes; {
		n, err := c.nc.Read(*c.rbuf)
		total += n
		if err != nil {
			break
		}
	}
	c.r, c.w = 0, 0
}
