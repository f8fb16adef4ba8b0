package message

import "net"

// The interfaces below are optional abilities of a ResponseWriter or a
// Handler. A handler that needs one finds it with a type assertion and
// degrades (or answers an error) when the front end lacks it; every front
// end documents which ones it implements.

// Flusher is implemented by response writers that can send what is
// buffered now: streaming handlers (server-sent events, a proxied stream)
// call it after each piece so that the client sees it at once.
type Flusher interface {
	// Flush sends the response head, if not yet sent, and every body
	// byte written so far.
	Flush() error
}

// TrailerWriter is implemented by response writers that can send trailer
// fields after the content (RFC 9110 section 6.5): HTTP/1.1 in a chunked
// body, HTTP/2 and HTTP/3 in a trailing HEADERS frame.
type TrailerWriter interface {
	// Trailer returns the trailer fields to send after the body. Fields
	// set in it before the handler returns are sent then; a front end
	// that cannot send them (an HTTP/1.1 response framed by
	// Content-Length, HTTP/1.0) drops them. Announcing them in a
	// "Trailer" header field is the handler's choice.
	Trailer() *Header
}

// InterimWriter is implemented by response writers that can send
// informational (1xx) responses before the final one: 100 Continue and
// 103 Early Hints, as a proxy forwards them (RFC 9110 section 15.2).
type InterimWriter interface {
	// WriteInterim sends an informational response with the given
	// status (100 to 199, but not 101) and fields, which the front end
	// filters as it does a final response's. It fails once the final
	// response has started.
	WriteInterim(status int, fields *Header) error
}

// Upgrader is implemented by response writers that can switch protocols:
// HTTP/1.1 connections (RFC 9110 section 7.8), and HTTP/2 and HTTP/3
// streams of an extended CONNECT (Request.Protocol set, RFC 8441 and
// RFC 9220), where the switch is a 200 and the stream carries the
// tunnel. A proxy tunnels a WebSocket that way.
type Upgrader interface {
	// Upgrade sends "101 Switching Protocols" with the fields set in
	// Header (the handler sets Upgrade; the front end writes Connection),
	// or over HTTP/2 and HTTP/3 a 200 without them, and hands the
	// connection (the stream) over. The returned Conn reads what the
	// client sends after the request (bytes already received come
	// first) and writes to the client untouched. The handler owns it
	// until it closes it, which ends the client's connection (over
	// HTTP/2 and HTTP/3, the stream); it may outlive Serve. Over plain
	// TCP the Conn passes io.Copy's ReaderFrom and WriterTo checks on to
	// the socket, so that a copy to or from another TCP socket uses
	// splice(2).
	Upgrade() (net.Conn, error)
}

// Dispatcher is implemented by handlers that pass each request on to one
// of several handlers: a routing table, a site's path routes. A front end
// asks it which handler would serve a request before it decides where to
// run it (see NonBlocking).
type Dispatcher interface {
	// HandlerFor returns the handler that Serve would pass r to; for a
	// wrapper that adds to every response, the wrapped handler. It must
	// not change r and must not wait.
	HandlerFor(r *Request) Handler
}

// IsNonBlockingFor reports whether serving r through h never waits:
// it follows Dispatchers down to the handler that answers r and asks it.
func IsNonBlockingFor(h Handler, r *Request) bool {
	a, ok := answering(h, r)
	return ok && IsNonBlocking(a)
}

// answering follows Dispatchers from h down to the handler that answers
// r: one that is no Dispatcher, or a Dispatcher that answers r itself
// (HandlerFor returns nil). It reports false for a cycle of Dispatchers.
func answering(h Handler, r *Request) (Handler, bool) {
	for range 16 { // bounded: a cycle of dispatchers is a bug, not a loop
		d, ok := h.(Dispatcher)
		if !ok {
			return h, true
		}
		next := d.HandlerFor(r)
		if next == nil {
			return h, true
		}
		h = next
	}
	return nil, false
}

// Aborter is implemented by response writers that can end a response as
// broken: a proxy whose upstream fails after the head went out must not
// let the client take the truncated body for a whole one.
type Aborter interface {
	// Abort marks the response broken. When the handler returns, the
	// front end ends it so that the client sees it incomplete: HTTP/1.1
	// closes the connection without the last chunk (or short of the
	// Content-Length), HTTP/2 and HTTP/3 reset the stream.
	Abort()
}
