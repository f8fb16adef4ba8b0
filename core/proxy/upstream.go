package proxy

import (
	"sync"
	"sync/atomic"
	"time"
)

// upstream is one upstream of one route, with the route's view of its
// health: two routes that name the same address keep separate health
// (caddy#7870), while they share its connections (Transports).
type upstream struct {
	url    string
	target Target
	weight int
	id     string // the cookie value that names it: a hash, not the address
	key    uint64 // its hash for rendezvous hashing
	tr     transport
	h2     bool // the transport speaks HTTP/2 (h2c, or https that may)

	inflight atomic.Int64 // requests being served through it
	maxConns int64        // Protection.MaxConns; 0: no bound

	// brk is its circuit breaker, shared with the same upstream of the
	// same route in a reloaded config (Transports.breakerFor); brkCfg the
	// route's settings for it. nil when the route has no breaker.
	brk    *breaker
	brkCfg *Breaker

	// For Stats: attempts sent to it (pickFor), those that retried a
	// failed one, and failures on real traffic (failed).
	requests, retries, failures atomic.Uint64

	// Health. checkDown is written by the route's health checker and read
	// by every request; downUntil (unix nanoseconds) by passive health;
	// upSince (unix nanoseconds) is when it last became available, for
	// slow start.
	checkDown atomic.Bool
	downUntil atomic.Int64
	upSince   atomic.Int64

	mu    sync.Mutex // guards fails
	fails []int64    // unix nanoseconds of recent failures, oldest first

	// Owned by the health checker's goroutine.
	passes, failsInRow int
}

// available reports whether requests may go to u at now.
func (u *upstream) available(now int64) bool {
	return !u.checkDown.Load() && now >= u.downUntil.Load() && (u.brk == nil || u.brk.allows(u.brkCfg, now))
}

// failed records a failure on real traffic at now; MaxFails of them within
// FailDuration take u out until FailDuration after the last.
func (u *upstream) failed(p *PassiveHealth, now int64) (wentDown bool) {
	u.failures.Add(1)
	if p.MaxFails < 0 {
		return false
	}
	window := int64(p.FailDuration)
	u.mu.Lock()
	defer u.mu.Unlock()
	kept := u.fails[:0]
	for _, t := range u.fails {
		if now-t < window {
			kept = append(kept, t)
		}
	}
	u.fails = append(kept, now)
	if len(u.fails) < p.MaxFails {
		return false
	}
	was := now < u.downUntil.Load()
	u.downUntil.Store(now + window)
	u.upSince.Store(now + window)
	return !was
}

// slowStartShare is the fraction of its full share that u gets at now:
// from a tenth, growing linearly over d since it became available.
func (u *upstream) slowStartShare(d time.Duration, now int64) float64 {
	if d <= 0 {
		return 1
	}
	age := now - u.upSince.Load()
	if age >= int64(d) {
		return 1
	}
	if age < 0 {
		age = 0
	}
	return 0.1 + 0.9*float64(age)/float64(d)
}

// tried is the set of upstreams one request has tried, by index.
type tried struct {
	small uint64
	large map[int]bool // only for routes with more than 64 upstreams
}

func (t *tried) has(i int) bool {
	if i < 64 {
		return t.small&(1<<i) != 0
	}
	return t.large[i]
}

func (t *tried) add(i int) {
	if i < 64 {
		t.small |= 1 << i
		return
	}
	if t.large == nil {
		t.large = map[int]bool{}
	}
	t.large[i] = true
}
