package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/anx-gateway/anx/core/message"
)

// observe makes one synthetic ended exchange on route info.
func observe(q *Requests, info *message.RouteInfo, proto message.Proto, status int, d time.Duration) {
	r := &message.Request{Proto: proto}
	r.Trace.Route = info
	start := time.Unix(1000, 0)
	q.Observe(r, &message.Outcome{Status: status, Sent: 100, Received: 10, Start: start, End: start.Add(d)})
}

func TestRequestsCountByRouteProtoAndClass(t *testing.T) {
	q := NewRequests()
	root := &message.RouteInfo{Site: "example.com"}
	api := &message.RouteInfo{Site: "example.com", Path: "/api/*"}
	q.SetRoutes([]*message.RouteInfo{root, api})
	for range 3 {
		observe(q, root, message.HTTP1, 200, time.Millisecond)
	}
	observe(q, root, message.HTTP2, 304, time.Millisecond)
	observe(q, api, message.HTTP3, 502, time.Millisecond)
	observe(q, api, message.HTTP3, 0, time.Millisecond)
	observe(q, nil, message.HTTP1, 421, time.Millisecond)

	want := `
# HELP anx_http_requests_total Requests that ended, by site, route, protocol and status class (none: no status was sent).
# TYPE anx_http_requests_total counter
anx_http_requests_total{code_class="2xx",proto="h1",route="(root)",site="example.com"} 3
anx_http_requests_total{code_class="3xx",proto="h2",route="(root)",site="example.com"} 1
anx_http_requests_total{code_class="5xx",proto="h3",route="/api/*",site="example.com"} 1
anx_http_requests_total{code_class="none",proto="h3",route="/api/*",site="example.com"} 1
anx_http_requests_total{code_class="4xx",proto="h1",route="(none)",site="(none)"} 1
`
	c := &collector{requests: q, now: time.Now}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "anx_http_requests_total"); err != nil {
		t.Error(err)
	}
	wantBytes := `
# HELP anx_http_response_bytes_total Response content bytes sent.
# TYPE anx_http_response_bytes_total counter
anx_http_response_bytes_total{proto="h1",route="(root)",site="example.com"} 300
anx_http_response_bytes_total{proto="h2",route="(root)",site="example.com"} 100
anx_http_response_bytes_total{proto="h3",route="/api/*",site="example.com"} 200
anx_http_response_bytes_total{proto="h1",route="(none)",site="(none)"} 100
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(wantBytes), "anx_http_response_bytes_total"); err != nil {
		t.Error(err)
	}
}

func TestRequestsHistogramBuckets(t *testing.T) {
	q := NewRequests()
	root := &message.RouteInfo{Site: "a"}
	q.SetRoutes([]*message.RouteInfo{root})
	for _, d := range []time.Duration{200 * time.Microsecond, 500 * time.Microsecond, 3 * time.Millisecond, 2 * time.Second, 2 * time.Minute} {
		observe(q, root, message.HTTP2, 200, d)
	}
	count, sum, buckets := q.routes()[0].protos[1].duration.snapshot()
	if count != 5 {
		t.Errorf("count = %d, want 5", count)
	}
	if wantSum := (200*time.Microsecond + 500*time.Microsecond + 3*time.Millisecond + 2*time.Second + 2*time.Minute).Seconds(); sum != wantSum {
		t.Errorf("sum = %v, want %v", sum, wantSum)
	}
	// Buckets are cumulative, bounds inclusive: 0.5 ms holds the first
	// two, 5 ms the third too, 2.5 s the fourth, and no bound the last.
	for bound, want := range map[float64]uint64{0.0005: 2, 0.001: 2, 0.0025: 2, 0.005: 3, 1: 3, 2.5: 4, 60: 4} {
		if buckets[bound] != want {
			t.Errorf("bucket le=%v: %d, want %d", bound, buckets[bound], want)
		}
	}
}

func TestReloadKeepsTotalsOfRemainingRoutes(t *testing.T) {
	q := NewRequests()
	oldRoot := &message.RouteInfo{Site: "a"}
	oldGone := &message.RouteInfo{Site: "a", Path: "/old"}
	q.SetRoutes([]*message.RouteInfo{oldRoot, oldGone})
	observe(q, oldRoot, message.HTTP1, 200, time.Millisecond)
	observe(q, oldGone, message.HTTP1, 200, time.Millisecond)

	newRoot := &message.RouteInfo{Site: "a"}
	added := &message.RouteInfo{Site: "a", Path: "/new"}
	q.SetRoutes([]*message.RouteInfo{newRoot, added})
	observe(q, newRoot, message.HTTP1, 200, time.Millisecond)
	observe(q, oldRoot, message.HTTP1, 200, time.Millisecond) // in flight across the reload
	observe(q, added, message.HTTP1, 404, time.Millisecond)
	observe(q, oldGone, message.HTTP1, 200, time.Millisecond) // its route is gone: unrouted

	want := `
# HELP anx_http_requests_total Requests that ended, by site, route, protocol and status class (none: no status was sent).
# TYPE anx_http_requests_total counter
anx_http_requests_total{code_class="2xx",proto="h1",route="(root)",site="a"} 3
anx_http_requests_total{code_class="4xx",proto="h1",route="/new",site="a"} 1
anx_http_requests_total{code_class="2xx",proto="h1",route="(none)",site="(none)"} 1
`
	if err := testutil.CollectAndCompare(&collector{requests: q, now: time.Now}, strings.NewReader(want), "anx_http_requests_total"); err != nil {
		t.Error(err)
	}

	// Two reloads on, a RouteInfo of the first config still finds its
	// route by name.
	q.SetRoutes([]*message.RouteInfo{{Site: "a"}})
	observe(q, oldRoot, message.HTTP1, 200, time.Millisecond)
	if got := q.totals()[0]; got != 5 {
		t.Errorf("h1 total after two reloads = %d, want 5 (the root's 3 and the unrouted 1 kept, /new's 1 gone with it, +1)", got)
	}
}

func TestObserveAllocatesNothing(t *testing.T) {
	q := NewRequests()
	info := &message.RouteInfo{Site: "a", Path: "/x"}
	q.SetRoutes([]*message.RouteInfo{info})
	r := &message.Request{Proto: message.HTTP2}
	r.Trace.Route = info
	r.Trace.Upstream, r.Trace.UpstreamTime = "127.0.0.1:9000", time.Millisecond
	o := &message.Outcome{Status: 200, Sent: 1024, Start: time.Now(), End: time.Now().Add(time.Millisecond)}
	q.Observe(r, o) // the upstream's histogram is made once
	if n := testing.AllocsPerRun(1000, func() { q.Observe(r, o) }); n != 0 {
		t.Errorf("Observe allocates %v times per call, want 0", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	q := NewRequests()
	var routes []*message.RouteInfo
	for i := range 50 {
		routes = append(routes, &message.RouteInfo{Site: "site", Path: "/" + strings.Repeat("x", i)})
	}
	q.SetRoutes(routes)
	o := &message.Outcome{Status: 200, Sent: 1024, Start: time.Now(), End: time.Now().Add(time.Millisecond)}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := &message.Request{Proto: message.HTTP1}
		i := 0
		for pb.Next() {
			r.Trace.Route = routes[i%len(routes)]
			q.Observe(r, o)
			i++
		}
	})
}
