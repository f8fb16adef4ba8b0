package accesslog

import (
	"encoding/json"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/core/message"
)

func TestLoggerLogsEachRouteToItsSite(t *testing.T) {
	var a, b, unrouted lockedBuffer
	api := &message.RouteInfo{Site: "a.test", Path: "/api/*"}
	files := &message.RouteInfo{Site: "b.test"}
	quiet := &message.RouteInfo{Site: "c.test"}
	wa, wb, wu := NewStream(&a, 0, nil), NewStream(&b, 0, nil), NewStream(&unrouted, 0, nil)
	l := New(&Config{
		Routes:   map[*message.RouteInfo]Site{api: {Out: wa}, files: {Out: wb, Format: Combined}, quiet: {}},
		Unrouted: Site{Out: wu},
	})
	for _, rt := range []*message.RouteInfo{api, files, quiet, nil} {
		r := testRequest("GET", "h", "/", "")
		r.Trace.Route = rt
		l.Observe(r, testOutcome(200))
	}
	for _, w := range []*Writer{wa, wb, wu} {
		w.Close()
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(a.String()), &m); err != nil || m["route"] != "/api/*" || m["site"] != "a.test" {
		t.Errorf("site a's log %q: want one JSON line of route /api/* (%v)", a.String(), err)
	}
	if !combinedLine.MatchString(b.String()) {
		t.Errorf("site b's log %q: want one combined line", b.String())
	}
	if err := json.Unmarshal([]byte(unrouted.String()), &m); err != nil || m["site"] != "" {
		t.Errorf("the unrouted log %q: want one JSON line without a site (%v)", unrouted.String(), err)
	}
}

func TestLoggerSetSwitchesDestination(t *testing.T) {
	var before, after lockedBuffer
	rt := &message.RouteInfo{Site: "a.test"}
	w1, w2 := NewStream(&before, 0, nil), NewStream(&after, 0, nil)
	l := New(&Config{Routes: map[*message.RouteInfo]Site{rt: {Out: w1}}})
	r := testRequest("GET", "h", "/1", "")
	r.Trace.Route = rt
	l.Observe(r, testOutcome(200))
	l.Set(&Config{Routes: map[*message.RouteInfo]Site{rt: {Out: w2, Format: Combined}}})
	r.Path = "/2"
	l.Observe(r, testOutcome(200))
	w1.Close()
	w2.Close()
	if !strings.Contains(before.String(), `"uri":"/1"`) || strings.Contains(before.String(), `"uri":"/2"`) {
		t.Errorf("before Set: %q", before.String())
	}
	if !strings.Contains(after.String(), `"GET /2 HTTP/2"`) || strings.Contains(after.String(), "GET /1") {
		t.Errorf("after Set: %q", after.String())
	}
}

func TestLoggerTrustedProxy(t *testing.T) {
	var out lockedBuffer
	rt := &message.RouteInfo{Site: "a.test"}
	w := NewStream(&out, 0, nil)
	l := New(&Config{
		Routes:         map[*message.RouteInfo]Site{rt: {Out: w}},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
	})
	r := testRequest("GET", "h", "/", "")
	r.Trace.Route = rt
	r.Header.Add("X-Forwarded-For", "198.51.100.4")
	r.Header.Add("X-Request-ID", "edge-42")
	l.Observe(r, testOutcome(200))
	w.Close()
	var m map[string]any
	if err := json.Unmarshal([]byte(out.String()), &m); err != nil {
		t.Fatal(err)
	}
	if m["remote"] != "198.51.100.4" || m["request_id"] != "edge-42" {
		t.Errorf("remote %v request_id %v: want the trusted proxy's client and id", m["remote"], m["request_id"])
	}
}

// benchLogger is a Logger of one JSON route to a stream that discards.
func benchLogger(f Format) (*Logger, *message.Request, *Writer) {
	rt := &message.RouteInfo{Site: "example.com", Path: "/api/*"}
	w := NewStream(io.Discard, 0, nil)
	l := New(&Config{Routes: map[*message.RouteInfo]Site{rt: {Out: w, Format: f}}})
	r := testRequest("GET", "example.com", "/api/items/42", "page=2&sort=desc")
	r.Trace.Route = rt
	r.Trace.Upstream, r.Trace.UpstreamStatus = "http://127.0.0.1:9000", 200
	return l, r, w
}

func benchmarkObserve(b *testing.B, f Format) {
	l, r, w := benchLogger(f)
	defer w.Close()
	o := testOutcome(200)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.Trace.ID = ""
		l.Observe(r, o)
	}
}

// BenchmarkObserveJSON is the cost on the loop of one JSON line: 0
// allocs/op.
func BenchmarkObserveJSON(b *testing.B) { benchmarkObserve(b, JSON) }

// BenchmarkObserveCombined is the same in the combined format.
func BenchmarkObserveCombined(b *testing.B) { benchmarkObserve(b, Combined) }

func TestObserveAllocatesNothing(t *testing.T) {
	for _, f := range []Format{JSON, Combined} {
		l, r, w := benchLogger(f)
		o := testOutcome(200)
		allocs := testing.AllocsPerRun(1000, func() {
			r.Trace.ID = ""
			l.Observe(r, o)
		})
		w.Close()
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per line, want 0", f, allocs)
		}
	}
}

func TestSiteOfHost(t *testing.T) {
	c := &Config{Unrouted: Site{Name: "unrouted"}}
	if err := c.Hosts.Add("a.test", Site{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	for authority, want := range map[string]string{"A.Test:8080": "a", "other.test": "unrouted", "": "unrouted"} {
		if got := c.siteOfHost(authority).Name; got != want {
			t.Errorf("%q: got %s, want %s", authority, got, want)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { c.siteOfHost("A.Test:8443") }); allocs != 0 {
		t.Errorf("siteOfHost allocates %.1f times", allocs)
	}
}

func TestLoggerLogsUnroutedRequestsByHost(t *testing.T) {
	var a, unrouted lockedBuffer
	wa, wu := NewStream(&a, 0, nil), NewStream(&unrouted, 0, nil)
	cfg := &Config{Unrouted: Site{Out: wu}}
	if err := cfg.Hosts.Add("a.test", Site{Out: wa, Name: "a.test"}); err != nil {
		t.Fatal(err)
	}
	l := New(cfg)
	for _, host := range []string{"a.test:8080", "nobody.test"} {
		l.Observe(testRequest("GET", host, "/", ""), testOutcome(308))
	}
	wa.Close()
	wu.Close()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.String()), &m); err != nil || m["site"] != "a.test" || m["host"] != "a.test:8080" {
		t.Errorf("a.test's log %q: want the line of a.test:8080 with its site (%v)", a.String(), err)
	}
	if err := json.Unmarshal([]byte(unrouted.String()), &m); err != nil || m["host"] != "nobody.test" || m["site"] != "" {
		t.Errorf("the unrouted log %q: want the line of nobody.test without a site (%v)", unrouted.String(), err)
	}
}
