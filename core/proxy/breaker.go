package proxy

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// breakerState is a circuit breaker's state.
type breakerState uint32

// The states of a breaker.
const (
	breakerClosed   breakerState = iota // requests go through
	breakerOpen                         // no request goes through until openUntil
	breakerHalfOpen                     // Probes requests go through to test the upstream
)

var breakerStateNames = [...]string{breakerClosed: "closed", breakerOpen: "open", breakerHalfOpen: "half_open"}

// String names the state as logs and metrics show it.
func (s breakerState) String() string { return breakerStateNames[s] }

// breaker is the circuit breaker of one upstream of one route. Its state
// survives a reload (Transports.breakerFor) for an upstream that remains
// in a route of the same name; its settings are the route's (Breaker),
// passed to each call. Times are unix nanoseconds, passed in so that tests
// run it on a clock of their own. Safe for concurrent use: state and
// openUntil are read by every pick without the lock; the rest is guarded
// by mu.
type breaker struct {
	state     atomic.Uint32 // a breakerState
	openUntil atomic.Int64  // while open: when half-open begins

	mu           sync.Mutex
	inRow        int   // failures in a row (closed)
	windowStart  int64 // the current error-rate window's start
	windowReqs   int   // requests whose outcome is known in the window
	windowFails  int   // of which failed
	probesOut    int   // half-open: probes let through and not yet settled
	probesOK     int   // half-open: probes that succeeded
	halfOpenedAt int64 // when it turned half-open (or last re-armed its probes)
}

// transition is a change of a breaker's state, for the log.
type transition struct {
	from, to breakerState
	reason   string
}

// current returns the state (a breaker open past openUntil still says
// open: the first admit turns it half-open).
func (b *breaker) current() breakerState { return breakerState(b.state.Load()) }

// allows reports, without taking a slot, whether a request could go
// through at now: closed, open past its time, or half-open with a probe
// slot left. The balancer asks it of every candidate.
func (b *breaker) allows(cfg *Breaker, now int64) bool {
	switch b.current() {
	case breakerClosed:
		return true
	case breakerOpen:
		return now >= b.openUntil.Load()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.probesOut < cfg.Probes || b.probesStuck(cfg, now)
}

// admit takes a request through at now: always when closed; as a probe
// when half-open and a probe slot is free (an open breaker past its time
// turns half-open first). It reports false when the request may not go,
// and probe when it is one of the half-open probes.
func (b *breaker) admit(cfg *Breaker, now int64) (ok bool, t *transition) {
	if b.current() == breakerClosed {
		return true, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.current() {
	case breakerClosed:
		return true, nil
	case breakerOpen:
		if now < b.openUntil.Load() {
			return false, nil
		}
		b.state.Store(uint32(breakerHalfOpen))
		b.probesOut, b.probesOK, b.halfOpenedAt = 0, 0, now
		t = &transition{breakerOpen, breakerHalfOpen, fmt.Sprintf("open for %v: letting %d probe requests through", cfg.Open, cfg.Probes)}
	}
	if b.probesOut >= cfg.Probes {
		if !b.probesStuck(cfg, now) {
			return false, t
		}
		// Probes let through an Open ago never settled (their clients
		// went away before an answer): let others try.
		b.probesOut, b.halfOpenedAt = 0, now
	}
	b.probesOut++
	return true, t
}

// probesStuck reports whether the probes of a half-open breaker have
// been out longer than Open without settling. Called with mu held.
func (b *breaker) probesStuck(cfg *Breaker, now int64) bool {
	return now-b.halfOpenedAt >= int64(cfg.Open)
}

// record counts the outcome of a request that admit let through:
// failures may open the breaker (closed), a failed probe opens it again,
// and Probes successful probes close it. It returns the transition it
// made, if any.
func (b *breaker) record(cfg *Breaker, ok bool, now int64) *transition {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.current() {
	case breakerOpen:
		return nil // an answer to a request sent before it opened
	case breakerHalfOpen:
		return b.recordProbe(cfg, ok, now)
	}
	if now-b.windowStart >= int64(cfg.Window) {
		b.windowStart, b.windowReqs, b.windowFails = now, 0, 0
	}
	b.windowReqs++
	if ok {
		b.inRow = 0
		return nil
	}
	b.inRow++
	b.windowFails++
	switch {
	case cfg.Failures > 0 && b.inRow >= cfg.Failures:
		return b.open(cfg, now, breakerClosed, fmt.Sprintf("%d failures in a row", b.inRow))
	case cfg.ErrorRate > 0 && b.windowReqs >= cfg.MinRequests && float64(b.windowFails) >= cfg.ErrorRate*float64(b.windowReqs):
		return b.open(cfg, now, breakerClosed, fmt.Sprintf("%d of %d requests failed within %v (breaker_error_rate %g)",
			b.windowFails, b.windowReqs, cfg.Window, cfg.ErrorRate))
	}
	return nil
}

// recordProbe settles a half-open probe. Called with mu held.
func (b *breaker) recordProbe(cfg *Breaker, ok bool, now int64) *transition {
	b.probesOut = max(b.probesOut-1, 0)
	if !ok {
		return b.open(cfg, now, breakerHalfOpen, "a probe request failed")
	}
	if b.probesOK++; b.probesOK < cfg.Probes {
		return nil
	}
	b.state.Store(uint32(breakerClosed))
	b.inRow, b.windowStart, b.windowReqs, b.windowFails = 0, now, 0, 0
	return &transition{breakerHalfOpen, breakerClosed, fmt.Sprintf("%d probe requests succeeded", b.probesOK)}
}

// open opens the breaker for Open from now. Called with mu held.
func (b *breaker) open(cfg *Breaker, now int64, from breakerState, why string) *transition {
	b.openUntil.Store(now + int64(cfg.Open))
	b.state.Store(uint32(breakerOpen))
	return &transition{from, breakerOpen, why + fmt.Sprintf("; open for %v", cfg.Open)}
}

// routeUpstream names an upstream of a route, for Transports.breakers.
type routeUpstream struct{ route, url string }

// breakerFor returns the breaker of upstream url in the route called
// route, making it if no handler holds one: a reloaded route keeps the
// state of the upstreams that remain in it, as it keeps their
// connections.
func (s *Transports) breakerFor(route, url string) *breaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.breakers.acquire(routeUpstream{route, url}, func() *breaker { return new(breaker) })
}

// releaseBreaker gives back a breaker; the last handler's release
// forgets it.
func (s *Transports) releaseBreaker(b *breaker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.breakers.release(b)
}

// protect gives u the route's max_conns and its breaker.
func (h *Handler) protect(u *upstream) {
	u.maxConns = int64(h.cfg.Protect.MaxConns)
	if h.cfg.Protect.Breaker.enabled() {
		u.brk, u.brkCfg = h.shared.breakerFor(h.cfg.Name, u.url), &h.cfg.Protect.Breaker
	}
}
