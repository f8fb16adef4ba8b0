package limit

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/route"
)

// Handler limits the requests Handler serves with Limiter, counted by
// Key: a refused request gets 429 Too Many Requests with Retry-After; an
// allowed one the limiter delays waits first, off the front end's event
// loop (see NonBlocking).
type Handler struct {
	Limiter *Limiter
	Key     Key
	// Trusted lists the proxies whose X-Forwarded-For names the client
	// (trusted_proxies), for a ClientIP key.
	Trusted []netip.Prefix
	Handler message.Handler
}

// NonBlocking reports whether Serve never waits: when the limiter never
// delays and the wrapped handler never waits. It implements
// message.NonBlocking.
func (h *Handler) NonBlocking() bool {
	return !h.Limiter.cfg.MayDelay() && message.IsNonBlocking(h.Handler)
}

// HandlerFor returns the wrapped handler when the limiter never delays,
// so that a front end asks it where to run the request (a 429 never
// waits); else nil: Handler answers itself, and as it may wait, off the
// loop. It implements message.Dispatcher.
func (h *Handler) HandlerFor(*message.Request) message.Handler {
	if h.Limiter.cfg.MayDelay() {
		return nil
	}
	return h.Handler
}

// Serve accounts r and refuses, delays or passes it on.
func (h *Handler) Serve(w message.ResponseWriter, r *message.Request) {
	key, ok := h.Key.of(h.Limiter, r, h.Trusted)
	if !ok {
		h.Handler.Serve(w, r)
		return
	}
	d := h.Limiter.Take(key)
	if !d.Allowed {
		w.Header().Set("Retry-After", retryAfter(d.RetryAfter))
		route.Respond(w, r, 429, "429 Too Many Requests\n")
		return
	}
	if d.Wait > 0 {
		time.Sleep(d.Wait) // off the loop: HandlerFor and NonBlocking say so
	}
	h.Handler.Serve(w, r)
}

// retryAfter returns the Retry-After value for a wait: whole seconds,
// rounded up, at least 1. Waits under 10 s need no allocation.
func retryAfter(d time.Duration) string {
	s := max((d+time.Second-1)/time.Second, 1)
	if s < 10 {
		return "123456789"[s-1 : s]
	}
	return strconv.FormatInt(int64(s), 10)
}
