package message

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"time"
	"unsafe"
)

// Observer sees every request once its exchange has ended: the access log
// and the metrics are Observers. The front ends (h1, h2, h3) call it.
type Observer interface {
	// Observe is called once per request, after its response ended
	// (written whole, failed, or cut by the client), on the goroutine that
	// ended it, often an event loop: it must not block, and must not keep
	// r, o or anything they refer to after it returns.
	Observe(r *Request, o *Outcome)
}

// Outcome is how an exchange ended, as its front end saw it.
type Outcome struct {
	// Status is the final status sent; 0 when the exchange ended before
	// any (the client went away, or the request was cut).
	Status int
	// Sent counts the response content bytes written to the connection
	// (for a file body, as the sender reported them).
	Sent int64
	// Received counts the request content bytes read.
	Received int64
	// Start is when the request's head had arrived whole; End is when
	// the exchange ended.
	Start, End time.Time
	// Cut is true when the response did not reach its end: the
	// connection or stream closed or was reset first.
	Cut bool
}

// Duration is how long the exchange took, from its head to its end.
func (o *Outcome) Duration() time.Duration { return o.End.Sub(o.Start) }

// Trace is what the engine says about how it served a request, for the
// Observers: the routing layer names the route, a proxy route its
// upstream. Front ends reset it for each request.
type Trace struct {
	// Route is the route that served the request; nil when no site took
	// it (421, or an answer of the front end itself).
	Route *RouteInfo
	// ID is the request's id: the X-Request-ID field a trusted proxy
	// sent, or one made here (see MakeID). Empty until someone needs it.
	ID string
	// Upstream is the address of the upstream that answered a proxied
	// request ("" when none did), UpstreamStatus its status and
	// UpstreamTime how long its response head took.
	Upstream       string
	UpstreamStatus int
	UpstreamTime   time.Duration
	// idBuf holds a made ID, so that making one allocates nothing.
	idBuf [idLen]byte
}

// RouteInfo names a route for logs and metrics. The config layer makes one
// per route when it builds the routing tables; they are immutable after,
// so observers may key their own per-route state by the pointer.
type RouteInfo struct {
	// Site is the name of the route's site (its first host).
	Site string
	// Path is the route's path pattern; "" for the site's own files
	// (its root).
	Path string
}

// idLen is the length of a made request ID: 128 random bits in hex.
const idLen = 32

// MakeID gives the request a new random ID, unless it has one, and returns
// it. It allocates nothing: the text lives in the Trace, valid until the
// front end resets it for the next request.
func (t *Trace) MakeID() string {
	if t.ID != "" {
		return t.ID
	}
	var random [idLen / 2]byte
	binary.LittleEndian.PutUint64(random[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(random[8:], rand.Uint64())
	hex.Encode(t.idBuf[:], random[:])
	t.ID = unsafe.String(&t.idBuf[0], idLen)
	return t.ID
}

// Reset clears the trace for the next request.
func (t *Trace) Reset() {
	t.Route, t.ID, t.Upstream, t.UpstreamStatus, t.UpstreamTime = nil, "", "", 0, 0
}
