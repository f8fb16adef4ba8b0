//go:build linux && !race

package main

import (
	"io"
	"strings"
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
	file := []byte(strings.Repeat("x", 1024))
	rl := &config.RateLimit{Rate: config.LimitRate{Rate: limit.Rate{N: limit.MaxRateN, Period: time.Second}}, Burst: config.LimitBurst{N: limit.MaxBurst}, NoDelay: true}
	gw, c := startLocalGateway(t, config.Site{Hosts: []string{"localhost"}, HTTPMode: config.HTTPServe,
		Routes: []config.Route{{Path: "/", Proxy: []config.Upstream{{URL: cannedUpstream(t, file)}}, RateLimit: rl}}})
	req := []byte("GET /a.css HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n")
	first := firstAnswer(t, gw.httpAddr(), req, file)
	out := make([]byte, len(first))
	exchange := func() {
		c.SetDeadline(time.Now().Add(2 * time.Minute)) // a safety net against a hang
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, out); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		exchange()
	}
	if allocs := testing.AllocsPerRun(2000, exchange); allocs != 0 {
		t.Errorf("a rate-limited proxied keep-alive request allocates %v times, want 0", allocs)
	}
	if got := len(gw.handlers.limiters); got != 1 {
		t.Errorf("%d limiters, want the route's one", got)
	}
}
