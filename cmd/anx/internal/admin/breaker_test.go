package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCollectorBreakerState: an upstream with a breaker has one series
// per state, 1 for the current one; one without a breaker has none.
func TestCollectorBreakerState(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	src := Sources{Upstreams: func() []Upstream {
		return []Upstream{
			{Route: "a /", URL: "http://127.0.0.1:9000", Breaker: "open", Pooled: -1},
			{Route: "a /", URL: "http://127.0.0.1:9001", Pooled: -1},
		}
	}}
	c := &collector{requests: NewRequests(), sources: src, now: func() time.Time { return now }}
	want := `
# HELP anx_upstream_breaker 1 for the state the upstream's circuit breaker is in (closed, open, half_open), 0 for the others; absent without a breaker.
# TYPE anx_upstream_breaker gauge
anx_upstream_breaker{route="a /",state="closed",upstream="http://127.0.0.1:9000"} 0
anx_upstream_breaker{route="a /",state="half_open",upstream="http://127.0.0.1:9000"} 0
anx_upstream_breaker{route="a /",state="open",upstream="http://127.0.0.1:9000"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "anx_upstream_breaker"); err != nil {
		t.Error(err)
	}
}
