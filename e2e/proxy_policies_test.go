package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
)

// Hold closes (true) or opens (false) the gate of the upstream's /gated
// path; opening it releases every request waiting there.
func (u *upstreamProc) Hold(t testing.TB, on bool) {
	t.Helper()
	v := "0"
	if on {
		v = "1"
	}
	u.control(t, "/hold?on="+v, nil)
}

// gatedLoad is what loadAgainstHeld measured.
type gatedLoad struct {
	// AtRelease counts the /gated requests each upstream had received
	// when all n had been sent (the held one's all still waiting).
	AtRelease map[string]int64
	// Answers counts the answers by X-Upstream (non-200s under "status
	// N", transport failures under "error"), after the release.
	Answers map[string]int
}

// loadAgainstHeld closes the gate of held, then has workers goroutines
// share n GETs of /gated through anx over HTTP/1.1 (a connection each):
// a request that lands on held waits there, taking its worker out. Once
// every request has been answered or waits at held, it counts the
// requests per upstream, opens the gate and collects the answers. When
// all workers are stuck at held (the policy ignored its load), it fails
// t at once.
func loadAgainstHeld(t *testing.T, s *harness.Server, ups []*upstreamProc, held *upstreamProc, workers, n int) gatedLoad {
	t.Helper()
	held.Hold(t, true)
	c := s.Client(harness.H1)
	var sent, done atomic.Int64
	var mu sync.Mutex // guards answers
	answers := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for sent.Add(1) <= int64(n) {
				r := get(s, harness.H1, c, "/gated")
				key := r.Header.Get("X-Upstream")
				switch {
				case r.Err != nil:
					key = "error"
				case r.Status != http.StatusOK:
					key = fmt.Sprintf("status %d", r.Status)
				}
				mu.Lock()
				answers[key]++
				mu.Unlock()
				done.Add(1)
			}
		})
	}
	stuck := false
	settled := waitFor(func() bool {
		waiting := held.Counts(t).Waiting
		stuck = waiting >= int64(workers)
		return stuck || done.Load()+waiting >= int64(n)
	})
	at := map[string]int64{}
	for _, u := range ups {
		at[u.Name] = u.Counts(t).Paths["/gated"]
	}
	held.Hold(t, false)
	wg.Wait()
	switch {
	case stuck:
		t.Fatalf("all %d workers are stuck at the held upstream %s after %d answers: the policy sent new requests to the busy upstream (counts %v)",
			workers, held.Name, done.Load(), at)
	case !settled:
		t.Fatalf("%d requests not all answered or waiting within %v (answered %d, counts %v)", n, harness.SafetyNet, done.Load(), at)
	}
	return gatedLoad{AtRelease: at, Answers: answers}
}

// checkAllAnswered fails t unless every one of n requests got a 200.
func checkAllAnswered(t *testing.T, what string, answers map[string]int, n int) {
	t.Helper()
	ok := 0
	for k, v := range answers {
		if !strings.HasPrefix(k, "status ") && k != "error" {
			ok += v
		}
	}
	if ok != n {
		t.Errorf("%s: %d of %d requests answered 200 (answers %v)", what, ok, n, answers)
	}
}

// TestProxyLeastConn: under least_conn, one upstream holds every request
// (its gate closed), the other answers at once. Eight workers share 200
// requests: the held upstream gets a request only while it has no more in
// flight than the fast one, so it ends up with at most about half the
// workers' requests (4, plus 2 for anx's in-flight count lagging the
// answers) and the fast one with the rest; round robin would strand
// every worker on the held one. All 200 answer 200 once it is released.
func TestProxyLeastConn(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, 2)
	s := startProxy(t, proxyConfig("", route("/", proxyTo(urls(ups)...), `lb_policy = "least_conn"`, "max_fails = 0")))
	const workers, n = 8, 200
	got := loadAgainstHeld(t, s, ups, ups[0], workers, n)
	slow, fast := got.AtRelease[ups[0].Name], got.AtRelease[ups[1].Name]
	t.Logf("least_conn, %d requests by %d workers: held %s got %d, fast %s got %d; answers after the release %v",
		n, workers, ups[0].Name, slow, ups[1].Name, fast, got.Answers)
	if limit := int64(workers/2 + 2); slow > limit {
		t.Errorf("the held upstream got %d requests, want at most %d (least_conn sends new requests to the fast one)", slow, limit)
	}
	if slow+fast != n {
		t.Errorf("the upstreams counted %d + %d requests, want %d", slow, fast, n)
	}
	checkAllAnswered(t, "least_conn", got.Answers, n)
}

// TestProxyRandomTwo: random_two spreads 300 requests sent one after the
// other over three upstreams (each gets at least 50, a fair share being
// 100); then, with one upstream holding every request, eight workers
// share 300 requests: the held one gets at most about half the workers'
// requests (it wins a draw only against an upstream at least as loaded),
// each other one at least a quarter of them.
func TestProxyRandomTwo(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, 3)
	s := startProxy(t, proxyConfig("", route("/", proxyTo(urls(ups)...), `lb_policy = "random_two"`, "max_fails = 0")))
	spread := tally(t, s, s.Client(harness.H1), 300, same("/echo"))
	t.Logf("random_two, 300 requests one after the other: %v", spread)
	for _, u := range ups {
		if spread[u.Name] < 50 {
			t.Errorf("random_two: %s got %d of 300 requests, want at least 50 (all: %v)", u.Name, spread[u.Name], spread)
		}
	}
	const workers, n = 8, 300
	got := loadAgainstHeld(t, s, ups, ups[0], workers, n)
	t.Logf("random_two, %d requests by %d workers with %s held: %v at the release; answers %v",
		n, workers, ups[0].Name, got.AtRelease, got.Answers)
	if held, limit := got.AtRelease[ups[0].Name], int64(workers/2+2); held > limit {
		t.Errorf("the held upstream got %d requests, want at most %d (random_two prefers the less loaded)", held, limit)
	}
	for _, u := range ups[1:] {
		if c := got.AtRelease[u.Name]; c < n/4 {
			t.Errorf("%s got %d of %d requests, want at least %d", u.Name, c, n, n/4)
		}
	}
	checkAllAnswered(t, "random_two", got.Answers, n)
}

// logLineWith returns whether a line of log contains every one of parts.
func logLineWith(log string, parts ...string) bool {
	for line := range strings.SplitSeq(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// slowStartWindow is one window of requests sent after an upstream came
// back: when it started (since the health flip was seen) and the share
// the returning upstream got.
type slowStartWindow struct {
	Start time.Duration
	Share float64
}

// TestProxySlowStart: two upstreams, round robin, slow_start = "20s",
// active health checks. Both up from the start share evenly. Then u2
// fails its checks; once anx logs it down and then, passing again, logs
// it "healthy again", requests go in windows of 100, one after the
// other. In the first window u2 gets well under its fair share of 50%
// (under 25%: slow start begins at a tenth of it, about 5%); windows that
// start 20 s or more after the flip give it 40% to 60%. The share of
// every window is logged.
func TestProxySlowStart(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, 2)
	back := ups[1]
	opts := append([]string{proxyTo(urls(ups)...), `slow_start = "20s"`, "max_fails = 0"}, healthChecks...)
	s := startProxy(t, proxyConfig("", route("/", opts...)), proxyFailures...)
	c := s.Client(harness.H1)
	shareOf := func(got map[string]int) float64 {
		return float64(got[back.Name]) / float64(got[ups[0].Name]+got[back.Name])
	}
	if got := tally(t, s, c, 100, same("/echo")); shareOf(got) < 0.4 || shareOf(got) > 0.6 {
		t.Errorf("both up from the start: %v, want an even split (slow start applies only to an upstream coming back)", got)
	}
	back.SetHealthy(t, false)
	upstreamField := "upstream=" + back.URL()
	if !waitFor(func() bool { return logLineWith(s.Stderr(), "failed its health check", upstreamField) }) {
		t.Fatalf("anx logged no failed health check of %s within %v", back.Name, harness.SafetyNet)
	}
	if got := tally(t, s, c, 20, same("/echo")); got[ups[0].Name] != 20 {
		t.Fatalf("u2 down: %v, want all 20 on u1", got)
	}
	back.SetHealthy(t, true)
	if !waitFor(func() bool { return logLineWith(s.Stderr(), "healthy again", upstreamField) }) {
		t.Fatalf("anx logged no return of %s within %v", back.Name, harness.SafetyNet)
	}
	flip := time.Now()
	const slowStart, window = 20 * time.Second, 100
	var windows []slowStartWindow
	var late []float64
	for len(late) < 2 {
		start := time.Since(flip)
		got := tally(t, s, c, window, same("/echo"))
		if got["error"] > 0 || got[ups[0].Name]+got[back.Name] != window {
			t.Fatalf("window at %v: %v, want every request answered by u1 or u2", start, got)
		}
		windows = append(windows, slowStartWindow{Start: start.Round(time.Millisecond), Share: shareOf(got)})
		if start >= slowStart {
			late = append(late, shareOf(got))
		}
	}
	t.Logf("slow_start 20s: %s's share of %d windows of %d requests after it came back (fair 0.5; expected 0.05 rising to 0.5), mean per 2 s: %s",
		back.Name, len(windows), window, meanPer2s(windows))
	if first := windows[0]; first.Share >= 0.25 {
		t.Errorf("first window (from %v after the flip): share %.2f, want under 0.25 (fair share 0.5)", first.Start, first.Share)
	}
	for _, sh := range late {
		if sh < 0.4 || sh > 0.6 {
			t.Errorf("a window 20 s or more after the flip: share %.2f, want 0.4 to 0.6 (windows %v)", sh, windows)
		}
	}
}

// meanPer2s renders the mean share of the windows that start in each 2 s
// after the flip ("0-2s 0.06, 2-4s 0.14, ...").
func meanPer2s(windows []slowStartWindow) string {
	var sums []float64
	var counts []int
	for _, w := range windows {
		i := int(w.Start / (2 * time.Second))
		for len(sums) <= i {
			sums, counts = append(sums, 0), append(counts, 0)
		}
		sums[i] += w.Share
		counts[i]++
	}
	var b strings.Builder
	for i := range sums {
		if counts[i] > 0 {
			fmt.Fprintf(&b, "%d-%ds %.2f (%d), ", 2*i, 2*i+2, sums[i]/float64(counts[i]), counts[i])
		}
	}
	return strings.TrimSuffix(b.String(), ", ")
}
