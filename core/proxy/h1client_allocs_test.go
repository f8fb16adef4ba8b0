//go:build !race

// The allocation test counts the allocations of the whole process, which
// the race detector's instrumentation (and its random dropping of
// sync.Pool items) adds to: it is left out of -race builds, as h1's are.
// Run it with: go test -count=1 -run Alloc ./core/proxy

package proxy

import (
	"context"
	"testing"
)

func TestH1ClientPooledRoundTripAllocs(t *testing.T) {
	addr := fixedUpstream(t, 1024)
	c := testClient(addr, defaultTestOptions)
	defer c.closeIdle()
	req := benchRequest()
	buf := make([]byte, 4096)
	for range 10 { // fill the pools
		if n, err := pooledRoundTrip(context.Background(), c, req, buf); err != nil || n != 1024 {
			t.Fatal(n, err)
		}
	}
	allocs := testing.AllocsPerRun(200, func() {
		if n, err := pooledRoundTrip(context.Background(), c, req, buf); err != nil || n != 1024 {
			t.Fatal(n, err)
		}
	})
	t.Logf("%.1f allocations per pooled round trip", allocs)
	if allocs > 0 {
		t.Errorf("%.1f allocations per pooled keep-alive round trip, want 0", allocs)
	}
}
