package h1

import "github.com/anx-gateway/anx/core/message"

// A deferred response (message.LoopWriter): a handler that serves a
// request on the loop with I/O of its own there (core/proxy's upstream
// connections) defers the response in Serve and finishes it from its own
// events. Meanwhile the connection keeps the exchange it was lent
// (loopConn.deferred), the loop lends its other connections a spare one
// (loopState.spares), reading is paused with any pipelined input kept,
// and the write timeout watches the output. Done finishes the response as
// the handler's return does for any other, and the connection goes on
// with its next request.

var _ message.LoopWriter = (*response)(nil)

// Loop returns the event loop serving the request, a *netpoll.Loop, or
// nil when the connection is served by a goroutine.
func (r *response) Loop() any {
	if lc := r.c.loop; lc != nil {
		return lc.nc.Loop()
	}
	return nil
}

// Defer keeps the response open after Serve returns (message.LoopWriter).
// It refuses off the loop, after an Upgrade, and a second time.
func (r *response) Defer(ev message.LoopEvents) bool {
	if r.c.loop == nil || r.deferred || r.upgraded || ev == nil {
		return false
	}
	r.deferred, r.events = true, ev
	return true
}

// Queued returns the response bytes not yet taken by the socket: those
// buffered in the exchange and those the connection holds.
func (r *response) Queued() int {
	n := r.c.out.n
	if lc := r.c.loop; lc != nil {
		n += lc.queued()
	}
	return n
}

// Done ends a deferred response (message.LoopWriter). Called while Serve
// has not returned yet, it only undoes Defer: the response then ends as
// any other when Serve returns.
func (r *response) Done() {
	if !r.deferred {
		return
	}
	r.deferred, r.events = false, nil
	if lc := r.c.loop; lc != nil && lc.deferred == r.c {
		lc.endDeferred()
	}
}

// deferResponse takes the exchange x out of the loop's hands when its
// handler deferred the response, and reports whether it did. A handler
// that panicked has its deferral undone: the response ends now.
func (lc *loopConn) deferResponse(x *conn, panicked bool) bool {
	if !x.resp.deferred {
		return false
	}
	if panicked {
		x.resp.deferred, x.resp.events = false, nil
		return false
	}
	st := lc.h.state(lc.nc)
	st.x = st.spare(lc.h.srv)
	lc.deferred = x
	lc.phase = phaseDeferred
	lc.c.Pause()
	lc.nc.SetTimeout(lc.h.srv.writeTimeout())
	return true
}

// endDeferred finishes the deferred exchange's response, gives the
// exchange back to the loop and goes on: closing if the response says
// so, else waiting for its output to drain and reading the next request.
func (lc *loopConn) endDeferred() {
	x := lc.deferred
	lc.deferred = nil
	x.resp.finish(false)
	x.observe(false, lc.nc.Now())
	closing := x.resp.closeAfter || x.out.err != nil
	if x.out.flush() != nil {
		closing = true
	}
	lc.unbind(x)
	lc.h.state(lc.nc).putSpare(x)
	if lc.nc.Closed() {
		return
	}
	if closing {
		lc.closeAfterDeferred()
		return
	}
	lc.phase, lc.partial = phaseWrite, false
	if lc.backedUp() {
		lc.nc.SetTimeout(lc.h.srv.writeTimeout()) // onWritable goes on
		return
	}
	lc.onWritable()
}

// closeAfterDeferred closes the connection after a deferred response
// that ends it: with a lingering close when requests wait behind it,
// which are dropped unanswered, else at once (after its output).
func (lc *loopConn) closeAfterDeferred() {
	if lc.c.Kept() == 0 {
		lc.close()
		return
	}
	lc.closeLingering() // the layer resumes reading, to drop
}

// deferredTimeout is the deadline of a deferred response: a client that
// stopped taking its output is cut off after the write timeout; while
// nothing is queued the handler's own timeouts apply.
func (lc *loopConn) deferredTimeout() {
	wt := lc.h.srv.writeTimeout()
	if lc.queued() == 0 {
		lc.nc.SetTimeout(wt)
		return
	}
	idle := lc.nc.Now().Sub(lc.nc.Progress())
	if idle >= wt {
		lc.nc.Timeout()
		return
	}
	lc.nc.SetTimeout(wt - idle)
}

// clientGone tells the handler of a deferred response that the
// connection closed, and takes the exchange back.
func (lc *loopConn) clientGone() {
	x := lc.deferred
	lc.deferred = nil
	ev := x.resp.events
	x.resp.deferred, x.resp.events = false, nil
	if ev != nil {
		ev.Gone()
	}
	x.observe(true, lc.nc.Now())
	x.out.release()
	x.out.err = nil
	x.out.nc = nil
	x.loop = nil
	lc.h.state(lc.nc).putSpare(x)
}

// spare returns an exchange for the loop to lend while another is
// deferred: a recycled one, or a new one.
func (st *loopState) spare(s *Server) *conn {
	if n := len(st.spares); n > 0 {
		x := st.spares[n-1]
		st.spares[n-1] = nil
		st.spares = st.spares[:n-1]
		return x
	}
	return s.newExchange()
}

// putSpare keeps an exchange whose deferred response ended, for the next
// deferral.
func (st *loopState) putSpare(x *conn) { st.spares = append(st.spares, x) }
