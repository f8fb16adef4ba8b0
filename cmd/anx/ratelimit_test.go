//go:build linux && !race

package main

import (
	"testing"
	"time"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"
	"github.com/anx-gateway/anx/core/limit"
)

// TestKeepAliveRateLimitedProxyAllocatesNothing: a proxied route under a
// rate limit that never delays is still served on the event loop, and
// the limiter adds no allocation per request of a known key (the client's
// address): the same count as TestKeepAliveProxiedRequestAllocations.
func TestKeepAliveRateLimitedProxyAllocatesNothing(t *testing.T) {
	rl := &config.RateLimit{Rate: config.LimitRate{Rate: limit.Rate{N: limit.MaxRateN, Period: time.Second}}, Burst: config.LimitBurst{N: limit.MaxBurst}, NoDelay: true}
	gw, allocs := proxiedKeepAliveAllocs(t, config.Route{RateLimit: rl})
	if allocs != 0 {
		t.Errorf("a rate-limited proxied keep-alive request allocates %v times, want 0", allocs)
	}
	if got := len(gw.handlers.limiters); got != 1 {
		t.Errorf("%d limiters, want the route's one", got)
	}
}
