package proxy

import "time"

// UpstreamStats is what a route counts of one of its upstreams, for
// metrics.
type UpstreamStats struct {
	URL string // as configured
	// Up is true while requests may go to it: neither the health checks
	// nor passive health took it out, and its breaker is not open.
	Up bool
	// Requests counts the attempts sent to it, retries included;
	// Retries those that retried an attempt that failed on another (or
	// the same) upstream; Failures the attempts that failed and counted
	// toward passive health.
	Requests, Retries, Failures uint64
	// InFlight is how many requests are being served through it now.
	InFlight int64
	// Breaker is the state of its circuit breaker: "closed", "open" or
	// "half_open"; "" when the route has none.
	Breaker string
	// Pooled is how many idle connections to it are kept for reuse
	// (shared by every route that names the same upstream); -1 when its
	// transport does not say (HTTP/2 and TLS upstreams, net/http's).
	Pooled int64
}

// idleCounter is implemented by transports that count their pooled idle
// connections.
type idleCounter interface{ idleConns() int64 }

// pooledOf returns how many idle connections tr pools, or -1.
func pooledOf(tr transport) int64 {
	if c, ok := tr.(idleCounter); ok {
		return c.idleConns()
	}
	return -1
}

// Stats reads the counters of the route's upstreams, in config order.
// Safe from any goroutine.
func (h *Handler) Stats() []UpstreamStats {
	now := time.Now().UnixNano()
	out := make([]UpstreamStats, len(h.ups))
	for i, u := range h.ups {
		out[i] = UpstreamStats{
			URL: u.url, Up: u.available(now),
			Requests: u.requests.Load(), Retries: u.retries.Load(), Failures: u.failures.Load(),
			InFlight: u.inflight.Load(), Pooled: pooledOf(u.tr),
		}
		if u.brk != nil {
			out[i].Breaker = u.brk.current().String()
		}
	}
	return out
}

// Name is the route's name in logs and metrics (Config.Name).
func (h *Handler) Name() string { return h.cfg.Name }

// pickFor is pick for a request's choice; it counts the attempt on the
// upstream it returns, as a retry when t has tried some already.
func (b *balancer) pickFor(c *choice, t *tried, now int64) int {
	i := b.pickUncounted(c, t, now)
	if i >= 0 {
		b.count(i, t)
	}
	return i
}

// count counts an attempt on upstream i, as a retry when t has tried
// some already.
func (b *balancer) count(i int, t *tried) {
	u := b.ups[i]
	u.requests.Add(1)
	if t.small != 0 || len(t.large) > 0 {
		u.retries.Add(1)
	}
}
