package h1

import (
	"errors"
	"time"
	"unsafe"

	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/core/pool"
	"github.com/anx-gateway/anx/tls/onloop"
)

// maxLoopOutput bounds the output a handler running on the loop may leave
// queued: a NonBlocking handler sends large bodies with WriteFile, whose
// bytes are not queued; one that writes more through Write is refused
// rather than let it fill memory.
const maxLoopOutput = 4 << 20

// errLoopOutput is Write's error past maxLoopOutput.
var errLoopOutput = errors.New("h1: a handler on the event loop wrote more than 4 MiB without waiting; it is not NonBlocking")

// phase is where a loop connection is in its life; it decides what an
// expired deadline means.
type phase uint8

const (
	phaseHead     phase = iota // waiting for or reading a request head (ReadHeaderTimeout)
	phaseIdle                  // keep-alive, between requests (IdleTimeout)
	phaseWrite                 // output backed up; reading paused (WriteTimeout without progress)
	phaseHandOff               // waiting for the output to drain before going off the loop
	phaseDeferred              // a handler on the loop finishes the response later (deferred.go); reading paused
	phaseDetached              // served by a goroutine (a request body)
	phaseLinger                // lingering close: the layer reads and drops until EOF or its timeout
)

// loopConn is one connection on an event loop. It is kept small, since it
// is all that an idle keep-alive connection costs besides its onloop.Conn
// and netpoll.Conn (and, over TLS, its tls.Conn): the request and response
// state lives in the loop's one exchange (loopState.x), used only while a
// request is served. Whether the connection is TLS is the layer's
// business: c takes plaintext out and hands plaintext in. Owned by the
// loop's goroutine, except while detached, when the goroutine serving it
// owns the connection.
type loopConn struct {
	h        *loopHandler
	c        *onloop.Conn  // the connection in the layer: output, closing, TLS facts
	nc       *netpoll.Conn // c.Net(): deadlines, Submit
	handOff  func()        // phaseHandOff: what takes the connection off the loop once its output drains
	deferred *conn         // phaseDeferred: the exchange whose response a handler finishes later
	phase    phase
	partial  bool // part of a request head has arrived (a timeout earns 408)
	draining bool // Shutdown: close once the response in flight is done
}

// onRead handles input according to the phase.
func (lc *loopConn) onRead(in []byte) int {
	switch lc.phase {
	case phaseLinger:
		return len(in) // the layer drops it: not reached
	case phaseHandOff, phaseDetached:
		return 0 // paused or off the loop: not reached
	}
	return lc.serve(in)
}

// serve answers the complete requests at the start of in (pipelined
// requests one after the other, their responses batched into one write)
// and returns the bytes it consumed; an incomplete head stays for the next
// call. A request with content, or any request when the handler may block,
// goes off the loop with everything after it (detach).
func (lc *loopConn) serve(in []byte) int {
	x := lc.bind()
	consumed, served := 0, false
	for lc.phase < phaseHandOff && !lc.nc.Closed() && !lc.backedUp() {
		skip, n, err := headAt(in[consumed:], x.srv.limits())
		if err != nil {
			x.fail(err, false)
			lc.closeAfterError(x)
			consumed = len(in)
			break
		}
		consumed += skip
		if n == 0 {
			break
		}
		if lc.serveOne(x, in[consumed:], n) {
			consumed += n
		} else {
			consumed = len(in) // refused, closing, or handed off with the rest
		}
		served = true
	}
	if x.out.flush() != nil && !lc.nc.Closed() {
		lc.nc.Close() // a response cut short: its framing is broken
	}
	if lc.deferred != x {
		lc.unbind(x)
	}
	lc.afterBatch(consumed < len(in), served)
	return consumed
}

// serveOne serves the request whose head is the first n bytes of in. It
// reports false when the rest of in is no longer this loop's business:
// the connection closes, or went off the loop with it.
func (lc *loopConn) serveOne(x *conn, in []byte, n int) bool {
	x.newRequest()
	x.headAt = x.srv.loopNow(lc.nc)
	// The head's strings point into in, which is valid until OnRead
	// returns: the handler runs before then and must not keep them
	// (message.Request).
	if err := parseHead(unsafe.String(&in[0], n), &x.req, &x.info, x.srv.limits()); err != nil {
		x.fail(err, x.req.Method == "HEAD")
		lc.closeAfterError(x)
		return false
	}
	if kind, _, err := x.info.framing(x.req.ProtoMinor); err == nil && kind != bodyNone || !lc.h.onLoop(&x.req) {
		lc.detach(in)
		return false
	}
	if !x.frame() {
		lc.closeAfterError(x)
		return false
	}
	lc.partial = false
	panicked := x.runHandler()
	if lc.deferResponse(x, panicked) {
		x.keepHead(in[:n]) // in is the loop's again once OnRead returns
		return true        // the rest of in waits, paused, for the response to end
	}
	x.resp.finish(panicked)
	x.observe(false, lc.nc.Now())
	if x.resp.closeAfter || x.out.err != nil {
		x.out.flush() // the response before the close
		if len(in) > n {
			lc.closeLingering() // pipelined requests we will not answer
		} else {
			lc.close()
		}
		return false
	}
	return true
}

// headAt finds the request head at the start of buf after any empty
// lines: it returns the length of those lines and of the head, 0 while the
// head is incomplete, or the error that refuses it.
func headAt(buf []byte, lim limits) (skip, n int, err error) {
	skip, err = skipEmptyLines(buf)
	if err != nil {
		return 0, 0, err
	}
	rest := buf[skip:]
	if len(rest) == 0 || rest[0] == '\r' { // nothing yet, or a CR waiting for its LF
		return skip, 0, nil
	}
	window := rest[:min(len(rest), lim.maxHeadBytes)]
	if n, _ = scanHead(window, 0); n == 0 && len(window) == lim.maxHeadBytes {
		return skip, 0, headTooLarge(window)
	}
	return skip, n, nil
}

// bind lends the loop's exchange to this connection for one batch of
// requests.
func (lc *loopConn) bind() *conn {
	x := lc.h.state(lc.nc).x
	x.loop = lc
	x.out.nc = lc
	x.remote = lc.nc.RemoteAddr()
	x.serverName = lc.c.ServerName()
	x.tlsVersion = lc.c.TLSVersion()
	x.secure = lc.c.TLS()
	x.linger = false
	return x
}

// unbind takes the exchange back; its output must have been flushed.
func (lc *loopConn) unbind(x *conn) {
	x.out.release()
	x.out.err = nil
	x.out.nc = nil
	x.loop = nil
}

// afterBatch sets the deadline for what the connection waits for next.
func (lc *loopConn) afterBatch(partial, served bool) {
	if lc.phase >= phaseHandOff || lc.nc.Closed() {
		return
	}
	s := lc.h.srv
	switch {
	case lc.backedUp():
		lc.partial = partial
		lc.phase = phaseWrite
		lc.c.Pause()
		lc.nc.SetTimeout(s.writeTimeout())
	case partial:
		if lc.phase != phaseHead || served {
			lc.nc.SetTimeout(s.readHeaderTimeout()) // from the head's first byte
		}
		lc.phase, lc.partial = phaseHead, true
	case lc.draining:
		lc.close()
	case served || lc.phase == phaseWrite:
		lc.phase, lc.partial = phaseIdle, false
		lc.nc.SetTimeout(s.idleTimeout())
	}
}

// onDrain closes the connection for Shutdown if it has nothing in
// flight, else marks it to close when it is done: after the response
// being sent, or after the request whose head is arriving (its response
// says Connection: close).
func (lc *loopConn) onDrain() {
	switch lc.phase {
	case phaseIdle:
		lc.close()
	case phaseHead:
		if !lc.partial {
			lc.close()
			return
		}
		lc.draining = true
	case phaseWrite, phaseHandOff, phaseDeferred:
		lc.draining = true
	}
}

// backedUp reports whether output waits: queued in the socket's stead, or
// on the layer's TLS backlog behind a file body. The connection then
// reads no more requests. A backlog the socket takes whole (a file body
// small enough, or a client that keeps up) has gone by the time the
// handler returns (the layer pumps it as it comes), so the next pipelined
// request is served now: no EPOLLOUT edge is coming to resume it (the
// socket never filled), and no input either (the client waits for the
// response).
func (lc *loopConn) backedUp() bool { return lc.c.Buffered() > 0 }

// onWritable continues once the output has drained (the layer's TLS
// backlog included).
func (lc *loopConn) onWritable() {
	switch lc.phase {
	case phaseHandOff:
		lc.tryHandOff()
	case phaseDeferred:
		lc.deferred.resp.events.Writable()
	case phaseWrite:
		if lc.draining && !lc.partial {
			lc.close()
			return
		}
		lc.phase = phaseIdle
		timeout := lc.h.srv.idleTimeout()
		if lc.partial {
			lc.phase, timeout = phaseHead, lc.h.srv.readHeaderTimeout()
		}
		lc.nc.SetTimeout(timeout)
		lc.c.Resume() // hands kept input over again
	}
}

// onTimeout acts on the phase's deadline.
func (lc *loopConn) onTimeout() {
	s := lc.h.srv
	switch lc.phase {
	case phaseDeferred:
		lc.deferredTimeout()
	case phaseWrite, phaseHandOff:
		// A slow reader that keeps reading is not cut off; a stalled one is.
		if idle := lc.nc.Now().Sub(lc.nc.Progress()); idle < s.writeTimeout() {
			lc.nc.SetTimeout(s.writeTimeout() - idle)
			return
		}
		lc.nc.Timeout()
	case phaseHead:
		if !lc.partial {
			lc.nc.Timeout()
			return
		}
		x := lc.bind()
		x.writeError(408, false) // the head did not arrive in time; no lingering
		x.out.flush()
		lc.unbind(x)
		lc.close()
	default:
		lc.nc.Timeout()
	}
}

// onClose gives back what the connection holds.
func (lc *loopConn) onClose() {
	if lc.deferred != nil {
		lc.clientGone()
	}
}

// Write is the output of the exchange while bound, through the layer
// (encrypted over TLS). It never blocks (netpoll queues what the socket
// does not take) and, behind a TLS file body, waits its turn on the
// layer's backlog.
func (lc *loopConn) Write(p []byte) (int, error) {
	if lc.queued() > maxLoopOutput {
		return 0, errLoopOutput
	}
	if err := lc.c.Write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// queued returns the output bytes held in memory: in the socket's stead
// and on the TLS backlog (file regions waiting to be sent do not count).
func (lc *loopConn) queued() int { return lc.c.Queued() }

// SetWriteDeadline does nothing: the loop's write timeout is the phase's.
func (lc *loopConn) SetWriteDeadline(time.Time) error { return nil }

// close closes the connection once its output is sent; over TLS after
// the backlog and a close_notify alert.
func (lc *loopConn) close() { lc.c.Close() }

// closeAfterError closes after a refused request: with a lingering close
// when the client may still be sending (x.linger), else at once.
func (lc *loopConn) closeAfterError(x *conn) {
	x.out.flush()
	if x.linger {
		lc.closeLingering()
		return
	}
	lc.close()
}

// closeLingering sends the output, then a FIN, and has the layer read
// and drop what the client still sends for a while before it closes
// (onloop.Conn.CloseWrite): closing with unread input makes the kernel
// reset the connection, which can destroy the response before the client
// reads it (RFC 9112 section 9.6; nginx's lingering_close). Behind a TLS
// backlog the connection waits as any whose output is backed up
// (phaseWrite, reading paused) and lingers once the backlog is out.
func (lc *loopConn) closeLingering() {
	lc.c.CloseWrite()
	if lc.c.Lingering() {
		lc.phase = phaseLinger
	}
}

// detach hands the connection to a goroutine, which serves the request
// whose head starts in and everything after it: a request with content
// (whose arrival the loop must not wait for), or any request when the
// handler may block. The connection comes back to the loop when the
// goroutine has no input left (conn.serveBuffered).
func (lc *loopConn) detach(in []byte) {
	buf := pool.Get(max(readBufSize, len(in)))
	n := copy(*buf, in)
	lc.goOff(func() { lc.serveDetached(buf, n) })
}

// goOff takes the connection off the loop once its output has drained
// and this callback has returned (netpoll.Conn.Detach needs both), then
// runs off.
func (lc *loopConn) goOff(off func()) {
	lc.phase = phaseHandOff
	lc.handOff = off
	lc.c.Pause()
	lc.nc.SetTimeout(lc.h.srv.writeTimeout())
	lc.nc.Submit(lc.tryHandOff)
}

// tryHandOff runs the pending hand-off if the output has drained; else
// onWritable calls it again.
func (lc *loopConn) tryHandOff() {
	if lc.nc.Closed() || lc.phase != phaseHandOff || lc.backedUp() {
		return
	}
	lc.phase = phaseDetached
	off := lc.handOff
	lc.handOff = nil
	off()
}

// serveDetached starts the goroutine that serves a detached connection,
// with the n bytes of input in buf.
func (lc *loopConn) serveDetached(buf *[]byte, n int) {
	nc, err := lc.c.Detach() // the *tls.Conn over TLS
	if err != nil {
		pool.Put(buf)
		lc.nc.Close()
		return
	}
	c := lc.h.srv.newConn(nc)
	c.rbuf, c.r, c.w = buf, 0, n
	c.detachedFrom = lc
	c.serverName = lc.c.ServerName()
	c.tlsVersion = lc.c.TLSVersion()
	c.state.Store(stateActive)
	lc.h.srv.trackDetached(c)
	go lc.runDetached(c) // exits when the connection goes back to the loop or closes
}

// runDetached is the goroutine of a detached connection. After an
// Upgrade the connection stays off the loop, the handler's, until it
// closes it (conn.closeHijacked).
func (lc *loopConn) runDetached(c *conn) {
	keep := c.serveBuffered()
	if c.upgraded() {
		c.release()
		return
	}
	if keep {
		c.release()
		c.srv.untrackConn(c)
	} else {
		c.shut()
	}
	lc.reattach(c, keep)
}

// reattach gives a detached connection back to its loop: to wait for the
// next request, or to close.
func (lc *loopConn) reattach(c *conn, keep bool) {
	switch {
	case keep:
		lc.c.Attach(c.nc, lc.reattached)
	case !lc.c.TLS():
		lc.c.Attach(c.nc, func() { lc.nc.Close() })
	}
	// Over TLS, c.shut closed the tls.Conn, whose netpoll.TLSConn closes
	// the loop connection.
}

// reattached runs on the loop when a detached connection is back, idle;
// the layer then hands over the input it holds (over TLS, what crypto/tls
// decrypted).
func (lc *loopConn) reattached() {
	lc.phase, lc.partial = phaseIdle, false
	lc.nc.SetTimeout(lc.h.srv.idleTimeout())
}
