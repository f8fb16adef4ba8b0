package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"
)

// TestKeepAliveProtectedProxyAllocatesNothing: a route with max_conns, a
// queue and a circuit breaker still proxies a keep-alive request on the
// event loop without allocating: taking and giving back a slot and
// counting the outcome in the breaker cost no allocation.
func TestKeepAliveProtectedProxyAllocatesNothing(t *testing.T) {
	file := []byte(strings.Repeat("x", 1024))
	protect := config.Protection{MaxConns: config.Count{N: 100}, MaxQueue: config.Count{N: 10},
		BreakerFailures: config.Count{N: 5}, BreakerErrorRate: config.Fraction{V: 0.5}}
	gw, c := startLocalGateway(t, config.Site{Hosts: []string{"localhost"}, HTTPMode: config.HTTPServe,
		Routes: []config.Route{{Path: "/", Proxy: []config.Upstream{{URL: cannedUpstream(t, file)}}, Protection: protect}}})
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
		t.Errorf("a protected proxied keep-alive request allocates %v times, want 0", allocs)
	}
	if st := gw.handlers.proxies[0].Stats(); st[0].Breaker != "closed" || st[0].Requests < 2000 {
		t.Errorf("upstream stats %+v: want a closed breaker and every request counted", st[0])
	}
}
