package h1

import (
	"crypto/tls"
	"errors"
	"time"
	"unsafe"

	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/core/pool"
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
	phaseHandshake phase = iota // TLS handshake (HandshakeTimeout)
	phaseHead                   // waiting for or reading a request head (ReadHeaderTimeout)
	phaseIdle                   // keep-alive, between requests (IdleTimeout)
	phaseWrite                  // output backed up; reading paused (WriteTimeout without progress)
	phaseHandOff                // waiting for the output to drain before going off the loop
	phaseDeferred               // a handler on the loop finishes the response later (deferred.go); reading paused
	phaseDetached               // served by a goroutine (a request body, ALPN h2)
	phaseLinger                 // lingering close: reading and dropping until EOF or lingerTimeout
)

// loopConn is one connection on an event loop. It is kept small, since it
// is all that an idle keep-alive connection costs besides its netpoll.Conn
// (and, over TLS, its tls.Conn): the request and response state lives in
// the loop's one exchange (loopState.x), used only while a request is
// served. Owned by the loop's goroutine, except while detached, when the
// goroutine serving it owns the tls.Conn.
type loopConn struct {
	h         *loopHandler
	nc        *netpoll.Conn
	*tlsState        // nil on a plain connection
	handOff   func() // phaseHandOff: what takes the connection off the loop once its output drains
	deferred  *conn  // phaseDeferred: the exchange whose response a handler finishes later
	lingered  int32  // bytes dropped while lingering
	phase     phase
	partial   bool // part of a request head has arrived (a timeout earns 408)
	draining  bool // Shutdown: close once the response in flight is done
}

// tlsState is what only a TLS connection on a loop holds.
type tlsState struct {
	tls         *netpoll.TLSConn
	tc          *tls.Conn // the TLS connection over tls
	serverName  string    // SNI
	plain       *[]byte   // decrypted input not yet consumed, (*plain)[:plainN]; nil when none
	plainN      int
	backlog     *backlog  // output behind a file body the pump sends; nil when none
	handshaking bool      // the handshake goroutine has started
	warming     bool      // a file worker reads the backlog's file for the pump
	closeAfter  closeKind // how to close once the backlog has gone out; keepOpen unless asked (closeAfterBacklog)
}

// closeKind is how a TLS connection closes once the backlog has gone out,
// when it was asked to close before (closeAfterBacklog): the close_notify
// must follow the response (crypto/tls writes nothing after it), and
// netpoll, which closes once its own queued output is sent, does not know
// the backlog.
type closeKind uint8

const (
	keepOpen    closeKind = iota // no close asked for
	closeNotify                  // close
	closeLinger                  // closeLingering
	closeSocket                  // the client ended the TLS session: close the socket
)

// isTLS reports whether the connection is TLS.
func (lc *loopConn) isTLS() bool { return lc.tlsState != nil }

// sni returns the server name a TLS client asked for, or "".
func (lc *loopConn) sni() string {
	if lc.tlsState == nil {
		return ""
	}
	return lc.serverName
}

// hasBacklog reports whether TLS output waits behind a file body.
func (lc *loopConn) hasBacklog() bool { return lc.tlsState != nil && lc.backlog != nil }

// onRead handles input according to the phase.
func (lc *loopConn) onRead(in []byte) int {
	switch lc.phase {
	case phaseLinger:
		lc.linger(len(in))
		return len(in)
	case phaseHandshake:
		return lc.handshakeInput(in)
	case phaseHandOff, phaseDetached:
		return 0 // paused or off the loop: not reached
	}
	if lc.isTLS() {
		return lc.readTLS(in)
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
	for lc.phase < phaseHandOff && !lc.nc.Closed() && !lc.stillBackedUp(x) {
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
	if lc.hasBacklog() {
		lc.pump()
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
		return true // the rest of in waits, paused, for the response to end
	}
	x.resp.finish(panicked)
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
	x.serverName = lc.sni()
	if lc.isTLS() {
		x.tlsConn = lc.tc
	}
	x.linger = false
	return x
}

// unbind takes the exchange back; its output must have been flushed.
func (lc *loopConn) unbind(x *conn) {
	x.out.release()
	x.out.err = nil
	x.out.nc = nil
	x.loop, x.tlsConn = nil, nil
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
		lc.nc.Pause()
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
	case phaseIdle, phaseHandshake:
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
// in the TLS backlog. The connection then reads no more requests.
func (lc *loopConn) backedUp() bool { return lc.nc.Buffered() > 0 || lc.hasBacklog() }

// stillBackedUp is backedUp for serve's next pipelined request, once the
// TLS backlog, if any, has had its chance: the output buffered behind it
// joins it and the pump sends what the socket takes. A backlog the socket
// takes whole (a file body small enough, or a client that keeps up) leaves
// nothing to wait for, so the next request is served now: no EPOLLOUT
// edge is coming to resume it (the socket never filled), and no input
// either (the client waits for the response).
func (lc *loopConn) stillBackedUp(x *conn) bool {
	if lc.hasBacklog() {
		if x.out.flush() != nil {
			return true // serve closes the connection
		}
		lc.pump()
	}
	return lc.backedUp()
}

// onWritable continues once the output has drained.
func (lc *loopConn) onWritable() {
	if lc.hasBacklog() {
		lc.pump()
		if lc.backedUp() || lc.nc.Closed() {
			return
		}
	}
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
		lc.nc.Resume() // hands kept input over again
		if lc.isTLS() {
			lc.readTLS(nil) // decrypted input waits here, not in the loop
		}
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
	case phaseLinger:
		lc.nc.Close()
	default:
		lc.nc.Timeout()
	}
}

// onClose gives back what the connection holds.
func (lc *loopConn) onClose(err error) {
	if lc.deferred != nil {
		lc.clientGone()
	}
	if lc.isTLS() {
		lc.tls.CloseInput(err) // ends a handshake's wait
	}
	lc.dropPlain()
	if lc.hasBacklog() {
		lc.backlog.release()
		lc.backlog = nil
	}
}

// Write is the output of the exchange while bound: through TLS, or
// straight to the socket. It never blocks (netpoll queues what the
// socket does not take) and, behind a TLS backlog, waits its turn there.
func (lc *loopConn) Write(p []byte) (int, error) {
	if lc.queued() > maxLoopOutput {
		return 0, errLoopOutput
	}
	switch {
	case lc.hasBacklog():
		lc.backlog.addBytes(p)
		return len(p), nil
	case lc.isTLS():
		return lc.tc.Write(p)
	}
	if err := lc.nc.Write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// queued returns the output bytes held in memory: in the socket's stead
// and on the TLS backlog (file regions waiting to be sent do not count).
func (lc *loopConn) queued() int {
	n := lc.nc.Queued()
	if lc.hasBacklog() {
		n += lc.backlog.bytes
	}
	return n
}

// SetWriteDeadline does nothing: the loop's write timeout is the phase's.
func (lc *loopConn) SetWriteDeadline(time.Time) error { return nil }

// close closes the connection once its output is sent; over TLS after a
// close_notify alert.
func (lc *loopConn) close() {
	if lc.closeAfterBacklog(closeNotify) {
		return
	}
	if lc.isTLS() && lc.phase != phaseHandshake {
		lc.tc.Close() // close_notify, then the TLSConn closes the loop connection
		return
	}
	lc.nc.Close()
}

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

// closeLingering sends the output, then a FIN, and reads and drops what
// the client still sends for up to lingerTimeout or lingerBytes before it
// closes: closing with unread input makes the kernel reset the connection,
// which can destroy the response before the client reads it (RFC 9112
// section 9.6; nginx's lingering_close).
func (lc *loopConn) closeLingering() {
	if lc.closeAfterBacklog(closeLinger) {
		lc.dropPlain() // the requests behind are not answered
		return
	}
	if lc.isTLS() {
		lc.tc.CloseWrite() // close_notify
	}
	lc.phase = phaseLinger
	lc.dropPlain()
	lc.nc.CloseWrite()
	lc.nc.SetTimeout(lingerTimeout)
}

// closeAfterBacklog asks for the close how once the TLS backlog has gone
// out (backlogSent) and reports true; without a backlog it reports false,
// and the caller closes now. Until then the connection waits as any whose
// output is backed up (phaseWrite, reading paused).
func (lc *loopConn) closeAfterBacklog(how closeKind) bool {
	if !lc.hasBacklog() {
		return false
	}
	lc.closeAfter = how
	return true
}

// backlogSent closes the connection, now that its TLS backlog has gone
// out, if it was asked to close before (closeAfterBacklog).
func (lc *loopConn) backlogSent() {
	how := lc.closeAfter
	lc.closeAfter = keepOpen
	switch how {
	case closeNotify:
		lc.close()
	case closeLinger:
		lc.nc.Resume() // lingering reads and drops; reading was paused behind the backlog
		lc.closeLingering()
	case closeSocket:
		lc.nc.Close()
	}
}

// linger drops n bytes read while lingering.
func (lc *loopConn) linger(n int) {
	if lc.lingered += int32(min(n, lingerBytes)); lc.lingered >= lingerBytes {
		lc.nc.Close()
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
	lc.nc.Pause()
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
	var c *conn
	if lc.isTLS() {
		if err := lc.tls.Detach(); err != nil {
			pool.Put(buf)
			lc.nc.Close()
			return
		}
		c = lc.h.srv.newConn(lc.tc)
	} else {
		nc, err := lc.nc.Detach()
		if err != nil {
			pool.Put(buf)
			lc.nc.Close()
			return
		}
		c = lc.h.srv.newConn(nc)
	}
	c.rbuf, c.r, c.w = buf, 0, n
	c.detachedFrom = lc
	c.serverName = lc.sni()
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
	if lc.isTLS() {
		if !keep {
			return // c.shut closed the tls.Conn, whose TLSConn closes the loop connection
		}
		lc.tls.Attach(lc.reattached)
		return
	}
	if !keep {
		lc.nc.Attach(c.nc, func() { lc.nc.Close() })
		return
	}
	lc.nc.Attach(c.nc, lc.reattached)
}

// reattached runs on the loop when a detached connection is back, idle.
func (lc *loopConn) reattached() {
	lc.phase, lc.partial = phaseIdle, false
	lc.nc.SetTimeout(lc.h.srv.idleTimeout())
	if lc.isTLS() {
		lc.readTLS(nil) // what crypto/tls holds already
	}
}

// dropPlain gives back the kept decrypted input.
func (lc *loopConn) dropPlain() {
	if lc.tlsState != nil && lc.plain != nil {
		pool.Put(lc.plain)
		lc.plain, lc.plainN = nil, 0
	}
}
