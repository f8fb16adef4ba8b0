package message

// The interfaces below let a handler that does its own I/O on an event
// loop (core/proxy's upstream connections) serve a request on the loop
// that read it, as nginx and h2o do: no goroutine, no blocking read, no
// hand-off between the client's connection and the upstream's. The loop
// is the front end's: for h1, a *netpoll.Loop of core/netpoll, which this
// package, below every other, does not name.

// LoopServer is implemented by handlers that can serve some requests on
// the front end's event loop without blocking, finishing the response
// after Serve returns (see LoopWriter). A front end that serves on a loop
// asks it, per request, before it decides where to run the request.
type LoopServer interface {
	// ServesOnLoop reports whether Serve, given a LoopWriter, answers r
	// without waiting: at once, or by deferring the response. It must
	// not change r and must not wait.
	ServesOnLoop(r *Request) bool
}

// ServesOnLoop reports whether r can be served through h on an event
// loop: the handler that answers it, found by following Dispatchers as
// IsNonBlockingFor does, is a LoopServer that says so, or never waits.
func ServesOnLoop(h Handler, r *Request) bool {
	a, ok := answering(h, r)
	if !ok {
		return false
	}
	if ls, ok := a.(LoopServer); ok {
		return ls.ServesOnLoop(r)
	}
	return IsNonBlocking(a)
}

// LoopWriter is implemented by the response writers of a front end that
// serves requests on a core/netpoll loop (h1). A LoopServer uses it to
// keep the response open after Serve returns and to finish it from its
// own connections' events on the same loop. All its methods run on the
// loop's goroutine.
type LoopWriter interface {
	// Loop returns the event loop the request is served on (h1: a
	// *netpoll.Loop), or nil when it is not served on one (Defer then
	// refuses). A handler that does not know the loop's type serves the
	// request without deferring.
	Loop() any
	// Defer keeps the response open after Serve returns, until Done; it
	// reports false, and nothing changes, when the writer cannot. The
	// request's fields and what they refer to may not be read once Serve
	// returns (the handler copies what it needs first), with one
	// exception: its Trace may be written until Done or Gone (the proxy
	// names the upstream there), since the front end keeps the request
	// for its Observer until the exchange ends. Until Done,
	// the front end reads no further request of the connection and
	// reports to ev.
	Defer(ev LoopEvents) bool
	// Done ends a deferred response as the handler left it (see
	// Aborter), and the front end goes on with the connection. The
	// writer must not be used after it.
	Done()
	// Queued returns the bytes of response written and not yet taken
	// by the socket. A handler stops writing while it is large, and
	// goes on at LoopEvents.Writable.
	Queued() int
}

// LoopEvents receives what happens to the client's side of a deferred
// response, on the loop's goroutine.
type LoopEvents interface {
	// Writable reports that the queued response output has drained.
	Writable()
	// Gone reports that the client's connection closed: the handler
	// stops, and must not call Done or use the writer after it.
	Gone()
}
