package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
)

// TestProxyBreakerOpensAndCloses: of two upstreams, u1 answers every
// request 500 (an unhealthy_status). Its breaker opens on the 5th
// failure, after which it gets no request while open (counted at u1)
// and u2 takes them all; restarted healthy on its port, it gets the
// breaker's probes once breaker_open has passed, the breaker closes and
// u1 gets its share again. Over h1 (on the event loop) and h2 (off it).
func TestProxyBreakerOpensAndCloses(t *testing.T) {
	t.Parallel()
	const failures, open = 5, 4 * time.Second
	bad := startUpstream(t, upstreamConfig{Name: "u1", FailAll: true})
	good := startUpstream(t, upstreamConfig{Name: "u2"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(bad.URL(), good.URL()),
		"unhealthy_status = [500]", "breaker_failures = "+strconv.Itoa(failures),
		fmt.Sprintf("breaker_open = %q", open.String()), "breaker_probes = 2")), proxyFailures...)
	logged := func(what string) int { return strings.Count(s.Stderr(), "circuit breaker "+what) }
	for _, p := range []harness.Proto{harness.H1, harness.H2} {
		c := s.Client(p)
		opened, closed := logged("open"), logged("closed")
		// Round robin: every other request goes to u1 until its breaker
		// opens on its 5th 500.
		var sentLast time.Time
		for bad.Counts(t).Total < failures {
			sentLast = time.Now()
			if r := get(s, p, c, "/echo"); r.Err != nil {
				t.Fatalf("%s: %v", p, r.Err)
			}
		}
		if !waitFor(func() bool { return logged("open") > opened }) {
			t.Fatalf("%s: no log of the breaker opening", p)
		}
		// It opened after the last request to u1 was sent: until then and
		// open more, nothing may reach u1. Send for most of that time.
		until := sentLast.Add(open - time.Second)
		n := 0
		for time.Now().Before(until) {
			r := get(s, p, c, "/echo")
			if r.Err != nil || r.Status != http.StatusOK || r.Header.Get("X-Upstream") != "u2" {
				t.Fatalf("%s: while u1's breaker is open: status %d from %q (err %v), want 200 from u2", p, r.Status, r.Header.Get("X-Upstream"), r.Err)
			}
			n++
		}
		if got := bad.Counts(t).Total; got != failures {
			t.Fatalf("%s: u1 counted %d requests, want %d: requests reached it while its breaker was open", p, got, failures)
		}
		t.Logf("%s: breaker opened after %d failures; %d requests while open, all on u2, none on u1", p, failures, n)

		// u1 comes back healthy on its port: the probes close the breaker.
		bad.Kill()
		fixed := startUpstream(t, upstreamConfig{Name: "u1", HTTPAddr: bad.Addrs.HTTP})
		if !waitFor(func() bool {
			get(s, p, c, "/echo")
			return fixed.Counts(t).Total >= 2 && logged("closed") > closed
		}) {
			t.Fatalf("%s: the breaker did not close within %v", p, harness.SafetyNet)
		}
		if got := tally(t, s, s.Client(harness.H1), 20, same("/echo")); got["u1"] < 8 || got["u1"]+got["u2"] != 20 {
			t.Errorf("%s: after the breaker closed: %v, want about 10 each", p, got)
		}
		// Back to a failing u1 for the next protocol: the breaker must
		// open again from closed.
		fixed.Kill()
		bad = startUpstream(t, upstreamConfig{Name: "u1", HTTPAddr: bad.Addrs.HTTP, FailAll: true})
	}
}

// TestProxyMaxConnsQueue: with max_conns = 2, max_queue = 2 and
// queue_timeout = 1s, two requests held by the upstream fill its slots;
// of three more, two wait in the queue and get 503 after the timeout, one
// finds the queue full and gets 503; all with Retry-After, none hangs,
// and the upstream never sees more than two. Over h1, h2 and h3.
func TestProxyMaxConnsQueue(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "u1"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()),
		"max_conns = 2", "max_queue = 2", `queue_timeout = "1s"`)), proxyFailures...)
	for _, p := range harness.Protos {
		up.Hold(t, true)
		before := up.Counts(t).Paths["/gated"]
		held := make(chan harness.Response, 2)
		for range 2 {
			go func() { held <- get(s, p, s.Client(p), "/gated") }()
		}
		if !waitFor(func() bool { return up.Counts(t).Waiting == 2 }) {
			t.Fatalf("%s: the two held requests did not reach the upstream", p)
		}
		type answer struct {
			r    harness.Response
			took time.Duration
		}
		excess := make(chan answer, 3)
		for range 3 {
			go func() {
				start := time.Now()
				r := get(s, p, s.Client(p), "/gated")
				excess <- answer{r, time.Since(start)}
			}()
		}
		waited := 0
		for range 3 {
			a := <-excess
			if a.r.Err != nil || a.r.Status != http.StatusServiceUnavailable || a.r.Header.Get("Retry-After") == "" {
				t.Fatalf("%s: beyond max_conns: status %d, Retry-After %q (err %v), want 503 with Retry-After",
					p, a.r.Status, a.r.Header.Get("Retry-After"), a.r.Err)
			}
			if a.took >= time.Second {
				waited++
			}
			t.Logf("%s: 503 after %v", p, a.took.Round(time.Millisecond))
		}
		if waited < 2 {
			t.Errorf("%s: %d of the 503s came after queue_timeout, want at least the 2 queued", p, waited)
		}
		if got := up.Counts(t).Paths["/gated"] - before; got != 2 {
			t.Errorf("%s: the upstream got %d requests, want the 2 within max_conns", p, got)
		}
		up.Hold(t, false)
		for range 2 {
			if r := <-held; r.Err != nil || r.Status != http.StatusOK {
				t.Errorf("%s: a held request: status %d (err %v)", p, r.Status, r.Err)
			}
		}
		if r := get(s, p, s.Client(p), "/echo"); r.Status != http.StatusOK {
			t.Errorf("%s: after the slots freed: status %d", p, r.Status)
		}
	}
}

// echoTarget returns the request target an echo response reports, or "".
func echoTarget(body []byte) string {
	var e echoReply
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Target
}

// degradeResult classifies one answer of the degradation test.
type degradeResult struct {
	upstream, fallback, stale, badN int
	bad                             []string // the first few bad answers
}

// TestProxyDegradesWhenEveryUpstreamDies: load over h1, h2 and h3 on two
// routes, one with a fallback file (503) and one with stale_if_error;
// every upstream is killed by pid under the load, then one is started
// again. Every answer is the upstream's, the fallback file with its
// status, or for the stale route the response kept for its URL (with
// Age): no error, no other status, no hang; and traffic returns to the
// upstream that came back.
func TestProxyDegradesWhenEveryUpstreamDies(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, 2)
	page := []byte("<html><body>Down for maintenance</body></html>\n")
	file := filepath.Join(t.TempDir(), "maintenance.html")
	harness.WriteFile(t, file, page)
	passive := []string{"max_fails = 1", `fail_duration = "1s"`}
	s := startProxy(t, proxyConfig("",
		route("/m/", append([]string{proxyTo(urls(ups)...), fmt.Sprintf("fallback_file = %q", file), "fallback_status = 503"}, passive...)...)+
			route("/s/", append([]string{proxyTo(urls(ups)...), `stale_if_error = "10m"`}, passive...)...)), proxyFailures...)

	// The stale route keeps the last response of each URL (an echo of
	// the request: each has its own request id, so a stale answer is
	// told by its Age and the target it echoes).
	const urlsPerProto = 4

	var mu sync.Mutex
	results := map[harness.Proto]*degradeResult{}
	check := func(p harness.Proto, target string, r harness.Response) {
		mu.Lock()
		defer mu.Unlock()
		res := results[p]
		switch {
		case r.Err == nil && r.Status == http.StatusOK && r.Header.Get("Age") == "" && r.Header.Get("X-Upstream") != "":
			res.upstream++
		case r.Err == nil && r.Status == http.StatusServiceUnavailable && bytes.Equal(r.Body, page) &&
			r.Header.Get("Content-Type") == "text/html; charset=utf-8" && len(target) > 2 && target[:3] == "/m/":
			res.fallback++
		case r.Err == nil && r.Status == http.StatusOK && r.Header.Get("Age") != "" && echoTarget(r.Body) == target:
			res.stale++
		default:
			res.badN++
			if len(res.bad) < 5 {
				res.bad = append(res.bad, fmt.Sprintf("%s: status %d, err %v, body %q", target, r.Status, r.Err, clip(r.Body, 0)))
			}
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range harness.Protos {
		results[p] = &degradeResult{}
		for w := range 4 {
			c := s.Client(p)
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					target := "/m/echo"
					if (i+w)%2 == 1 {
						target = fmt.Sprintf("/s/echo?i=%d", i%urlsPerProto)
					}
					check(p, target, get(s, p, c, target))
				}
			})
		}
	}
	counted := func() (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range results {
			n += r.upstream + r.fallback + r.stale + r.badN
		}
		return n
	}
	degraded := func() (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range results {
			n += min(r.fallback, r.stale)
		}
		return n
	}
	if !waitFor(func() bool { return counted() >= 300 }) {
		t.Fatal("the load did not start")
	}
	for _, u := range ups {
		u.Kill()
	}
	if !waitFor(func() bool { return degraded() >= 300 }) {
		t.Fatal("no degraded answers after every upstream was killed")
	}
	back := ups[0].Restart(t)
	if !waitFor(func() bool { return back.Counts(t).Total >= 100 }) {
		t.Fatalf("the upstream started again got no traffic within %v", harness.SafetyNet)
	}
	close(stop)
	wg.Wait()
	for _, p := range harness.Protos {
		r := results[p]
		t.Logf("%s: %d from upstreams, %d fallback, %d stale, %d bad", p, r.upstream, r.fallback, r.stale, r.badN)
		if r.badN > 0 {
			t.Errorf("%s: %d answers were neither the upstream's nor the degraded one, the first: %q", p, r.badN, r.bad)
		}
		if r.fallback == 0 || r.stale == 0 || r.upstream == 0 {
			t.Errorf("%s: want upstream, fallback and stale answers each", p)
		}
	}
}

// TestProxyBreakerSurvivesReload: an upstream whose breaker is open stays
// out after a SIGHUP that keeps it in the route (a route is added
// beside): no request reaches it over h1, h2 or h3, and /metrics says
// open.
func TestProxyBreakerSurvivesReload(t *testing.T) {
	t.Parallel()
	bad := startUpstream(t, upstreamConfig{Name: "u1", FailAll: true})
	good := startUpstream(t, upstreamConfig{Name: "u2"})
	api := route("/", proxyTo(bad.URL(), good.URL()), "unhealthy_status = [500]", "breaker_failures = 3", `breaker_open = "1h"`)
	adminAddr := "127.0.0.1:" + strconv.Itoa(harness.FreeTCPPort(t))
	top := fmt.Sprintf("admin = %q\n", adminAddr)
	cfg := proxyConfig(top, api)
	s := startProxy(t, cfg, proxyFailures...)
	c := s.Client(harness.H1)
	for bad.Counts(t).Total < 3 {
		if r := get(s, harness.H1, c, "/echo"); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if !waitFor(func() bool { return strings.Contains(s.Stderr(), "circuit breaker open") }) {
		t.Fatal("the breaker did not open")
	}
	if got := s.Reload(t, renderConfig(s, proxyConfig(top, route("=/ping", `respond = "pong"`)+api))); !strings.Contains(got, "msg=reloaded") {
		t.Fatalf("reload: %s", got)
	}
	if r := get(s, harness.H1, c, "/ping"); r.Status != http.StatusOK {
		t.Fatalf("the reloaded config is not serving: status %d", r.Status)
	}
	for _, p := range harness.Protos {
		if got := tallyOver(t, s, p, 20); got["u2"] != 20 {
			t.Errorf("%s after the reload: %v, want all 20 on u2", p, got)
		}
	}
	if got := bad.Counts(t).Total; got != 3 {
		t.Errorf("u1 counted %d requests, want 3: its open breaker was forgotten by the reload", got)
	}
	metrics := string(scrape(t, adminAddr))
	for _, want := range []string{
		fmt.Sprintf(`anx_upstream_breaker{route="localhost /",state="open",upstream=%q} 1`, bad.URL()),
		fmt.Sprintf(`anx_upstream_breaker{route="localhost /",state="closed",upstream=%q} 1`, good.URL()),
		fmt.Sprintf(`anx_upstream_up{route="localhost /",upstream=%q} 0`, bad.URL()),
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestProxyBreakerErrorRate: with breaker_error_rate = 0.5 and
// breaker_min_requests = 10, a lone upstream that fails every other
// request opens on the 10th and then gets none: the route answers 503
// with Retry-After at once.
func TestProxyBreakerErrorRate(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "u1"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()), "unhealthy_status = [500]",
		"breaker_error_rate = 0.5", "breaker_min_requests = 10", `breaker_window = "1h"`, `breaker_open = "1h"`)), proxyFailures...)
	c := s.Client(harness.H2)
	for i := range 10 {
		target := "/echo"
		if i%2 == 1 {
			target = "/status/500"
		}
		if r := get(s, harness.H2, c, target); r.Err != nil || r.Status == http.StatusServiceUnavailable {
			t.Fatalf("request %d: status %d (err %v) before the window had its 10 requests", i+1, r.Status, r.Err)
		}
	}
	for _, p := range harness.Protos {
		r := get(s, p, s.Client(p), "/echo")
		if r.Err != nil || r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "3600" {
			t.Errorf("%s: status %d, Retry-After %q (err %v), want 503 with Retry-After 3600", p, r.Status, r.Header.Get("Retry-After"), r.Err)
		}
	}
	if got := up.Counts(t).Total; got != 10 {
		t.Errorf("the upstream counted %d requests, want 10: none after its breaker opened", got)
	}
	if !strings.Contains(s.Stderr(), "5 of 10 requests failed") {
		t.Errorf("no log of the breaker opening on its error rate")
	}
}

// tallyOver sends n GETs of /echo over p and counts the answers by upstream,
// or by status or error.
func tallyOver(t *testing.T, s *harness.Server, p harness.Proto, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	c := s.Client(p)
	for range n {
		r := get(s, p, c, "/echo")
		switch {
		case r.Err != nil:
			got["error"]++
		case r.Status != http.StatusOK:
			got[fmt.Sprintf("status %d", r.Status)]++
		default:
			got[r.Header.Get("X-Upstream")]++
		}
	}
	return got
}
