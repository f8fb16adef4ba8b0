package proxy

import (
	"fmt"
	"time"
)

// Protection configures how a route shields its upstreams and what it
// answers when they cannot: a bound on the requests in flight to each
// upstream with a wait queue (queue.go), a circuit breaker per upstream
// (breaker.go), and a degraded answer when no upstream can answer
// (degrade.go). Its zero value turns all of them off.
type Protection struct {
	// MaxConns bounds the requests of this route in flight to each
	// upstream at once. Zero: no bound.
	MaxConns int
	// MaxQueue is how many requests may wait for a free slot when every
	// usable upstream is at MaxConns; one more gets 503 at once. Zero
	// (the default): no queue, the excess gets 503 at once.
	MaxQueue int
	// QueueTimeout bounds a request's wait in the queue; it then gets
	// 503. Default 1s.
	QueueTimeout time.Duration

	// Breaker configures the circuit breaker of each upstream.
	Breaker Breaker

	// FallbackFile is the path of a file served, with FallbackStatus,
	// when no upstream can answer; read once when the route is built.
	FallbackFile string
	// FallbackStatus is FallbackFile's status. Default 503.
	FallbackStatus int
	// StaleIfError keeps the last good response to each GET URL this
	// long, and serves it when no upstream can answer (RFC 5861). Zero:
	// off.
	StaleIfError time.Duration
}

// Breaker configures a circuit breaker per upstream: it opens after
// Failures failures in a row, or when at least MinRequests requests in a
// Window failed at ErrorRate or more; while open the upstream gets no
// request for Open, then Probes requests try it (half-open): it closes
// when they all succeed and opens again when one fails. It is off when
// both Failures and ErrorRate are zero.
type Breaker struct {
	// Failures in a row that open the breaker. Zero: no such trigger.
	Failures int
	// ErrorRate (0 to 1) of failed requests in a Window that opens the
	// breaker. Zero: no such trigger.
	ErrorRate float64
	// Window is the span the error rate is measured over; it starts
	// again each Window. Default 10s.
	Window time.Duration
	// MinRequests is how many requests a Window needs before its error
	// rate counts. Default 20.
	MinRequests int
	// Open is how long an open breaker keeps requests away. Default 30s.
	Open time.Duration
	// Probes is how many requests a half-open breaker lets through; all
	// must succeed for it to close. Default 3.
	Probes int
}

// Defaults of Protection's zero values.
const (
	defaultQueueTimeout       = time.Second
	defaultFallbackStatus     = 503
	defaultBreakerWindow      = 10 * time.Second
	defaultBreakerMinRequests = 20
	defaultBreakerOpen        = 30 * time.Second
	defaultBreakerProbes      = 3
)

// enabled reports whether the breaker is on.
func (b *Breaker) enabled() bool { return b.Failures > 0 || b.ErrorRate > 0 }

// validate checks the protection options; errors name the option.
func (p *Protection) validate() error {
	switch {
	case p.MaxConns < 0:
		return fmt.Errorf("proxy: max_conns %d is negative", p.MaxConns)
	case p.MaxQueue < 0:
		return fmt.Errorf("proxy: max_queue %d is negative", p.MaxQueue)
	case p.MaxQueue > 0 && p.MaxConns == 0:
		return fmt.Errorf("proxy: max_queue needs max_conns (requests wait for a slot below max_conns)")
	case p.Breaker.Failures < 0:
		return fmt.Errorf("proxy: breaker_failures %d is negative", p.Breaker.Failures)
	case p.Breaker.ErrorRate < 0 || p.Breaker.ErrorRate > 1:
		return fmt.Errorf("proxy: breaker_error_rate %g is not between 0 and 1", p.Breaker.ErrorRate)
	case p.Breaker.MinRequests < 0 || p.Breaker.Probes < 0:
		return fmt.Errorf("proxy: breaker_min_requests and breaker_probes must be zero or more")
	case p.FallbackStatus != 0 && (p.FallbackStatus < 200 || p.FallbackStatus > 599):
		return fmt.Errorf("proxy: fallback_status %d is not a status from 200 to 599", p.FallbackStatus)
	}
	return nil
}

// applyDefaults fills the zero values that have a default.
func (p *Protection) applyDefaults() {
	if p.QueueTimeout <= 0 {
		p.QueueTimeout = defaultQueueTimeout
	}
	if p.FallbackStatus == 0 {
		p.FallbackStatus = defaultFallbackStatus
	}
	b := &p.Breaker
	if b.Window <= 0 {
		b.Window = defaultBreakerWindow
	}
	if b.MinRequests == 0 {
		b.MinRequests = defaultBreakerMinRequests
	}
	if b.Open <= 0 {
		b.Open = defaultBreakerOpen
	}
	if b.Probes == 0 {
		b.Probes = defaultBreakerProbes
	}
}
