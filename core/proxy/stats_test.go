package proxy

import "testing"

// TestStatsCountAttemptsRetriesAndFailures sends requests to a route
// whose first upstream refuses connections: each request fails there,
// is retried on the live one, and the counts say so.
func TestStatsCountAttemptsRetriesAndFailures(t *testing.T) {
	up, n := echoUpstream(t, "live")
	dead := closedAddr(t)
	h := newHandler(t, Config{Policy: First, Upstreams: []Upstream{{URL: dead}, {URL: up.URL}},
		Passive: PassiveHealth{MaxFails: 100}})
	for range 3 {
		if rc := serve(h, request("GET", "/", "")); rc.status != 200 {
			t.Fatalf("status %d, want 200 from the live upstream", rc.status)
		}
	}
	want := []UpstreamStats{
		{URL: dead, Up: true, Requests: 3, Failures: 3},
		{URL: up.URL, Up: true, Requests: 3, Retries: 3, Pooled: 1}, // one connection, back in the pool after each request
	}
	got := h.Stats()
	if len(got) != len(want) {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("upstream %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if n.Load() != 3 {
		t.Errorf("the live upstream got %d requests, want 3", n.Load())
	}
}
