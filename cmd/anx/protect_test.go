//go:build linux && !race

package main

import (
	"testing"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"
)

// TestKeepAliveProtectedProxyAllocatesNothing: a route with max_conns, a
// queue and a circuit breaker still proxies a keep-alive request on the
// event loop without allocating: taking and giving back a slot and
// counting the outcome in the breaker cost no allocation.
func TestKeepAliveProtectedProxyAllocatesNothing(t *testing.T) {
	protect := config.Protection{MaxConns: config.Count{N: 100}, MaxQueue: config.Count{N: 10},
		BreakerFailures: config.Count{N: 5}, BreakerErrorRate: config.Fraction{V: 0.5}}
	gw, allocs := proxiedKeepAliveAllocs(t, config.Route{Protection: protect})
	if allocs != 0 {
		t.Errorf("a protected proxied keep-alive request allocates %v times, want 0", allocs)
	}
	if st := gw.handlers.proxies[0].Stats(); st[0].Breaker != "closed" || st[0].Requests < 2000 {
		t.Errorf("upstream stats %+v: want a closed breaker and every request counted", st[0])
	}
}
