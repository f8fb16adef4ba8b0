package route

import (
	"strings"
	"sync/atomic"

	"github.com/anx-gateway/anx/core/message"
)

// Live serves through whichever Table was stored last, so that a reload
// changes the sites of running servers without touching their listeners
// or connections: each request is routed by the table current when it
// arrives. The zero Live answers 503 until Store.
type Live struct {
	table atomic.Pointer[Table]
}

// NewLive returns a Live serving t.
func NewLive(t *Table) *Live {
	l := &Live{}
	l.table.Store(t)
	return l
}

// Store makes t the table served from now on. Front ends decide per
// request whether a handler may run on their event loop (see
// message.IsNonBlockingFor and HandlerFor), so any table may replace any
// other: a reload may add a route that blocks (a proxy) to sites that
// served only files.
func (l *Live) Store(t *Table) {
	l.table.Store(t)
}

// NonBlocking reports whether the current table never blocks.
func (l *Live) NonBlocking() bool {
	t := l.table.Load()
	return t == nil || t.NonBlocking()
}

// HandlerFor returns the current table, or one that answers 503 before
// the first Store. It implements message.Dispatcher: the front end then
// asks the table.
func (l *Live) HandlerFor(*message.Request) message.Handler {
	if t := l.table.Load(); t != nil {
		return t
	}
	return unavailable{}
}

// Serve routes r through the current table.
func (l *Live) Serve(w message.ResponseWriter, r *message.Request) {
	l.HandlerFor(r).Serve(w, r)
}

// unavailable answers 503.
type unavailable struct{}

// NonBlocking reports true.
func (unavailable) NonBlocking() bool { return true }

// Serve answers 503.
func (unavailable) Serve(w message.ResponseWriter, r *message.Request) {
	Respond(w, r, 503, "503 Service Unavailable\n")
}

// WithHeader is a handler that sets one response header field on every
// response of Handler, before it runs: e.g. Strict-Transport-Security on
// the HTTPS side of a site.
type WithHeader struct {
	Name, Value string
	Handler     message.Handler
}

// NonBlocking reports whether the wrapped handler never blocks.
func (h WithHeader) NonBlocking() bool { return message.IsNonBlocking(h.Handler) }

// HandlerFor returns the wrapped handler: it implements
// message.Dispatcher, so that a front end asks the handler that serves r.
func (h WithHeader) HandlerFor(*message.Request) message.Handler { return h.Handler }

// Serve sets the field and calls the wrapped handler.
func (h WithHeader) Serve(w message.ResponseWriter, r *message.Request) {
	w.Header().Set(h.Name, h.Value)
	h.Handler.Serve(w, r)
}

// ACMEHTTP01Prefix is the path prefix of ACME HTTP-01 validation requests
// (RFC 8555 section 8.3).
const ACMEHTTP01Prefix = "/.well-known/acme-challenge/"

// HTTPChallenge answers ACME HTTP-01 validation requests before Handler
// sees them, whatever Handler does with the rest (a site in redirect mode
// redirects everything else). Solve returns the key authorization for a
// host (without port) and path, if one is being validated.
type HTTPChallenge struct {
	Solve   func(host, path string) (keyAuth string, ok bool)
	Handler message.Handler
}

// NonBlocking reports whether the wrapped handler never blocks; Solve
// must not block either (it reads memory).
func (h HTTPChallenge) NonBlocking() bool { return message.IsNonBlocking(h.Handler) }

// HandlerFor returns the wrapped handler for a request that is no
// challenge validation, and nil (HTTPChallenge answers it itself, without
// waiting when the wrapped handler does not) for one that may be. It
// implements message.Dispatcher.
func (h HTTPChallenge) HandlerFor(r *message.Request) message.Handler {
	if isChallenge(r) {
		return nil
	}
	return h.Handler
}

func isChallenge(r *message.Request) bool {
	return len(r.Path) > len(ACMEHTTP01Prefix) && strings.HasPrefix(r.Path, ACMEHTTP01Prefix) &&
		(r.Method == "GET" || r.Method == "HEAD")
}

// Serve answers a GET for a challenge being validated, and passes anything
// else on.
func (h HTTPChallenge) Serve(w message.ResponseWriter, r *message.Request) {
	if isChallenge(r) {
		if keyAuth, ok := h.Solve(hostname(r.Host), r.Path); ok {
			w.Header().Set("Cache-Control", "no-store")
			Respond(w, r, 200, keyAuth)
			return
		}
	}
	h.Handler.Serve(w, r)
}

// Named is a handler that names the route serving each request in its
// Trace (for the access log and the metrics) before Handler runs. The
// config layer wraps every route, and every site's own files, in one.
type Named struct {
	Info    *message.RouteInfo
	Handler message.Handler
}

// NonBlocking reports whether the wrapped handler never blocks.
func (h Named) NonBlocking() bool { return message.IsNonBlocking(h.Handler) }

// HandlerFor returns the wrapped handler: it implements
// message.Dispatcher, so that a front end asks the handler that serves r.
func (h Named) HandlerFor(*message.Request) message.Handler { return h.Handler }

// Serve names the route in r's Trace and calls the wrapped handler.
func (h Named) Serve(w message.ResponseWriter, r *message.Request) {
	r.Trace.Route = h.Info
	h.Handler.Serve(w, r)
}
