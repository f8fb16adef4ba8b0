package e2e

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
)

// healthChecks are the route options of fast active health checks.
var healthChecks = []string{`health_uri = "/health"`, `health_interval = "200ms"`, `health_timeout = "2s"`,
	"health_fails = 1", "health_passes = 1"}

// totalOf sums the requests of path counted by ups.
func totalOf(t *testing.T, ups []*upstreamProc, path string) int64 {
	var n int64
	for _, u := range ups {
		if path == "" {
			n += u.Counts(t).Total
		} else {
			n += u.Counts(t).Paths[path]
		}
	}
	return n
}

// TestProxyFailoverUnderLoad: h2load sends 10000 GETs (8 connections, 4
// streams each) through anx to three upstream processes; one is killed by
// pid once 2000 requests have reached the upstreams. Every request
// succeeds (0 failed, 0 errored, all 2xx, counted from h2load's summary).
func TestProxyFailoverUnderLoad(t *testing.T) {
	t.Parallel()
	h2load := harness.Peer(t, "h2load")
	ups := startUpstreams(t, 3)
	s := startProxy(t, proxyConfig("", route("/", proxyTo(urls(ups)...))), proxyFailures...)
	const n = 10000
	run := harness.GoCmd(t, s.Dir, harness.PeerTimeout, h2load, "-c8", "-m4", "-n", strconv.Itoa(n), s.URL("/echo"))
	var killedAt int64
	var r harness.Result
	finished := false
	for !finished && killedAt == 0 {
		select {
		case r = <-run:
			finished = true
		case <-time.After(20 * time.Millisecond):
			if total := totalOf(t, ups, "/echo"); total >= 2000 {
				ups[1].Kill()
				killedAt = total
			}
		}
	}
	if !finished {
		r = <-run
	}
	t.Logf("h2load:\n%s%s", r.Stdout, r.Stderr)
	if killedAt == 0 {
		t.Fatalf("h2load finished before 2000 requests reached the upstreams: no upstream was killed mid-load")
	}
	after := totalOf(t, []*upstreamProc{ups[0], ups[2]}, "/echo")
	t.Logf("killed %s (pid %d) when the upstreams had counted %d requests; the other two counted %d in all",
		ups[1].Name, ups[1].cmd.Process.Pid, killedAt, after)
	m := h2loadSummary.FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("h2load printed no request summary (exit %d)", r.ExitCode)
	}
	want := []string{strconv.Itoa(n), strconv.Itoa(n), strconv.Itoa(n), strconv.Itoa(n), "0", "0"}
	if !slices.Equal(m[1:], want) {
		t.Errorf("h2load total/started/done/succeeded/failed/errored: got %v, want %v", m[1:], want)
	}
	if codes := "status codes: " + strconv.Itoa(n) + " 2xx,"; !strings.Contains(r.Stdout, codes) {
		t.Errorf("h2load status codes: want %q in its output", codes)
	}
}

// TestProxyAllDown502: when no upstream accepts connections the answer is
// a 502 at once over h1, h2 and h3 (not a hang, not a 500), with a small
// body that names no address.
func TestProxyAllDown502(t *testing.T) {
	t.Parallel()
	a, b := refusedURL(t), refusedURL(t)
	s := startProxy(t, proxyConfig("", route("/", proxyTo(a, b))), proxyFailures...)
	for _, p := range harness.Protos {
		start := time.Now()
		r := get(s, p, s.Client(p), "/echo")
		t.Logf("%s: %d in %v", p, r.Status, time.Since(start).Round(time.Millisecond))
		if r.Err != nil || r.Status != http.StatusBadGateway {
			t.Errorf("%s: status %d (err %v), want 502", p, r.Status, r.Err)
		}
		checkErrorBody(t, string(p)+" 502", r.Body, hostPort(a), hostPort(b))
	}
}

// TestProxyHealthChecks: active checks mark upstreams whose /health fails
// down: with both down the answer is 503 and neither gets a request; when
// one passes again it gets the traffic back, the other none.
func TestProxyHealthChecks(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, 2)
	s := startProxy(t, proxyConfig("", route("/", append([]string{proxyTo(urls(ups)...)}, healthChecks...)...)), proxyFailures...)
	c := s.Client(harness.H1)
	if r := get(s, harness.H1, c, "/echo"); r.Status != http.StatusOK {
		t.Fatalf("both healthy: status %d, want 200", r.Status)
	}
	for _, u := range ups {
		u.SetHealthy(t, false)
	}
	if !waitFor(func() bool { return get(s, harness.H1, c, "/echo").Status == http.StatusServiceUnavailable }) {
		t.Fatalf("both failing /health: no 503 within %v", harness.SafetyNet)
	}
	before := totalOf(t, ups, "/echo")
	if got := tally(t, s, c, 10, same("/echo")); got["status 503"] != 10 {
		t.Errorf("both marked down: %v, want 10 times 503", got)
	}
	if after := totalOf(t, ups, "/echo"); after != before {
		t.Errorf("both marked down: the upstreams counted %d requests more, want 0", after-before)
	}
	ups[0].SetHealthy(t, true)
	if !waitFor(func() bool { return get(s, harness.H1, c, "/echo").Status == http.StatusOK }) {
		t.Fatalf("u1 passing /health again: no 200 within %v", harness.SafetyNet)
	}
	if got := tally(t, s, c, 10, same("/echo")); got["u1"] != 10 {
		t.Errorf("u1 back, u2 down: %v, want all 10 on u1", got)
	}
}

// TestProxyRecovery: an upstream process killed by pid gets no requests
// (none fail); restarted on its port, it gets traffic back.
func TestProxyRecovery(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, 2)
	s := startProxy(t, proxyConfig("", route("/", append([]string{proxyTo(urls(ups)...)}, healthChecks...)...)), proxyFailures...)
	c := s.Client(harness.H1)
	ups[1].Kill()
	if got := tally(t, s, c, 20, same("/echo")); got["u1"] != 20 {
		t.Errorf("u2 killed: %v, want all 20 on u1, none failed", got)
	}
	back := ups[1].Restart(t)
	failed := 0
	if !waitFor(func() bool {
		r := get(s, harness.H1, c, "/echo")
		if r.Status != http.StatusOK {
			failed++
		}
		return r.Header.Get("X-Upstream") == back.Name
	}) {
		t.Fatalf("u2 restarted on %s: no request reached it within %v", back.Addrs.HTTP, harness.SafetyNet)
	}
	if failed > 0 {
		t.Errorf("%d requests failed while u2 came back, want 0", failed)
	}
}

// TestProxyHealthPerRoute: two routes name the same upstream; only one
// route's health path fails. That route answers 503, the other keeps
// serving from the same upstream (health state belongs to the route).
func TestProxyHealthPerRoute(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "shared"})
	site := route("/a/", proxyTo(up.URL()), `health_uri = "/health"`, `health_interval = "200ms"`, "health_fails = 1") +
		route("/b/", proxyTo(up.URL()), `health_uri = "/status/503"`, `health_interval = "200ms"`, "health_fails = 1")
	s := startProxy(t, proxyConfig("", site), proxyFailures...)
	c := s.Client(harness.H1)
	if !waitFor(func() bool {
		cn := up.Counts(t)
		return cn.Paths["/health"] >= 2 && cn.Paths["/status/503"] >= 2
	}) {
		t.Fatalf("no two health checks of each route within %v: %v", harness.SafetyNet, up.Counts(t).Paths)
	}
	if !waitFor(func() bool { return get(s, harness.H1, c, "/b/x").Status == http.StatusServiceUnavailable }) {
		t.Errorf("/b/ (its health path fails): no 503 within %v", harness.SafetyNet)
	}
	if got := tally(t, s, c, 10, same("/a/x")); got["shared"] != 10 {
		t.Errorf("/a/ (its health path passes), same upstream: %v, want 10 answers from it", got)
	}
}
