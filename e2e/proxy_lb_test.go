package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// tally sends n GETs of target (made per request by targetOf) over h1 on
// one client and counts the answering upstream of each; non-200 answers
// count under "status <code>".
func tally(t *testing.T, s *harness.Server, c *http.Client, n int, targetOf func(i int) string, header ...string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := range n {
		r := get(s, harness.H1, c, targetOf(i), header...)
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

// same is a targetOf that always gives target.
func same(target string) func(int) string { return func(int) string { return target } }

// TestProxyRoundRobin: 300 requests over three upstreams (round_robin, the
// default) give each 100 ± 10.
func TestProxyRoundRobin(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, 3)
	s := startProxy(t, proxyConfig("", route("/", proxyTo(urls(ups)...))))
	got := tally(t, s, s.Client(harness.H1), 300, same("/echo"))
	t.Logf("round_robin, 300 requests: %v", got)
	for _, u := range ups {
		if n := got[u.Name]; n < 90 || n > 110 {
			t.Errorf("upstream %s got %d of 300 requests, want 100 ± 10 (all: %v)", u.Name, n, got)
		}
	}
}

// TestProxyWeighted: weights 3 and 1 under weighted_round_robin give a 3:1
// split of 400 requests (300 ± 20 and 100 ± 20).
func TestProxyWeighted(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, 2)
	s := startProxy(t, proxyConfig("", route("/", proxyTo(urls(ups)...), `lb_policy = "weighted_round_robin"`, "weights = [3, 1]")))
	got := tally(t, s, s.Client(harness.H1), 400, same("/echo"))
	t.Logf("weighted_round_robin [3, 1], 400 requests: %v", got)
	if a, b := got["u1"], got["u2"]; a < 280 || a > 320 || b < 80 || b > 120 {
		t.Errorf("weights [3, 1]: u1 %d, u2 %d of 400; want 300 ± 20 and 100 ± 20 (all: %v)", a, b, got)
	}
}

// TestProxyFirstFailsOver: under lb_policy "first" every request goes to
// the first upstream; once it is killed, every request goes to the second,
// none failing.
func TestProxyFirstFailsOver(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, 2)
	s := startProxy(t, proxyConfig("", route("/", proxyTo(urls(ups)...), `lb_policy = "first"`)), proxyFailures...)
	c := s.Client(harness.H1)
	if got := tally(t, s, c, 20, same("/echo")); got["u1"] != 20 {
		t.Errorf("first, both up: %v, want all 20 on u1", got)
	}
	ups[0].Kill()
	if got := tally(t, s, c, 20, same("/echo")); got["u2"] != 20 {
		t.Errorf("first, u1 killed: %v, want all 20 on u2 and none failed", got)
	}
}

// TestProxyHashSticky: ip_hash sends every request of one client to one
// upstream; uri_hash sends each URI always to the same upstream while
// different URIs spread; the header policy does the same per value of
// lb_header.
func TestProxyHashSticky(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, 3)
	site := route("/ip/", proxyTo(urls(ups)...), `lb_policy = "ip_hash"`) +
		route("/uri/", proxyTo(urls(ups)...), `lb_policy = "uri_hash"`) +
		route("/hdr/", proxyTo(urls(ups)...), `lb_policy = "header"`, `lb_header = "X-User"`)
	s := startProxy(t, proxyConfig("", site))
	c := s.Client(harness.H1)
	if got := tally(t, s, c, 30, func(i int) string { return fmt.Sprintf("/ip/%d", i) }); len(got) != 1 || got["error"] > 0 {
		t.Errorf("ip_hash, 30 requests from one client: %v, want all on one upstream", got)
	}
	checkSticky(t, "uri_hash", func(key string) map[string]int {
		return tally(t, s, c, 5, same("/uri/"+key))
	})
	checkSticky(t, "header", func(key string) map[string]int {
		return tally(t, s, c, 5, same("/hdr/x"), "X-User", key)
	})
}

// checkSticky asks send for 20 keys (5 requests each): each key must stay
// on one upstream, and the keys must use at least two upstreams.
func checkSticky(t *testing.T, policy string, send func(key string) map[string]int) {
	t.Helper()
	used := map[string]int{}
	for i := range 20 {
		key := fmt.Sprintf("key-%d", i)
		got := send(key)
		if len(got) != 1 {
			t.Errorf("%s: key %s went to %v, want one upstream", policy, key, got)
		}
		for u := range got {
			used[u]++
		}
	}
	t.Logf("%s: 20 keys over upstreams %v", policy, used)
	if len(used) < 2 {
		t.Errorf("%s: 20 keys all on %v, want them spread", policy, used)
	}
}

// TestProxyCookieSticky: lb_policy "cookie" sets its cookie on the first
// answer; requests carrying it all go to that upstream, while requests
// without it rotate.
func TestProxyCookieSticky(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, 3)
	s := startProxy(t, proxyConfig("", route("/", proxyTo(urls(ups)...), `lb_policy = "cookie"`, `lb_cookie = "sticky"`)))
	c := s.Client(harness.H1)
	first := get(s, harness.H1, c, "/echo")
	var cookie string
	for _, sc := range first.Header.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(sc, "sticky="); ok {
			cookie, _, _ = strings.Cut(v, ";")
		}
	}
	if cookie == "" {
		t.Fatalf("first answer (status %d): no Set-Cookie for sticky: %q", first.Status, first.Header.Values("Set-Cookie"))
	}
	owner := first.Header.Get("X-Upstream")
	if got := tally(t, s, c, 30, same("/echo"), "Cookie", "sticky="+cookie); len(got) != 1 || got[owner] != 30 {
		t.Errorf("30 requests with the cookie: %v, want all on %s", got, owner)
	}
	if got := tally(t, s, c, 30, same("/echo")); len(got) < 2 {
		t.Errorf("30 requests without the cookie: %v, want them spread", got)
	}
}

// TestProxyHashConsistent: under uri_hash over three upstreams, when one
// is killed (and marked down by its health checks), only its own keys
// move: of 1500 URIs, those on the other two stay put, and at most 1/3 +
// 5% of all keys move. (With 150 keys an upstream's share varies by 6
// keys (one standard deviation), so 5% (7.5 keys) was 1.2 deviations: it failed
// about one run in ten, by the ports chosen; with 1500 it is 4 deviations.)
func TestProxyHashConsistent(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, 3)
	s := startProxy(t, proxyConfig("", route("/", append([]string{proxyTo(urls(ups)...), `lb_policy = "uri_hash"`}, healthChecks...)...)), proxyFailures...)
	c := s.Client(harness.H1)
	const keys = 1500
	owner := func(i int) string { return get(s, harness.H1, c, fmt.Sprintf("/k/%d", i)).Header.Get("X-Upstream") }
	before := make([]string, keys)
	onKilled := -1
	for i := range before {
		before[i] = owner(i)
		if before[i] == ups[2].Name && onKilled < 0 {
			onKilled = i
		}
	}
	if onKilled < 0 {
		t.Fatalf("no key of %d on %s: %v", keys, ups[2].Name, before)
	}
	ups[2].Kill()
	if !waitFor(func() bool { o := owner(onKilled); return o != "" && o != ups[2].Name }) {
		t.Fatalf("key %d still not served by another upstream %v after %s was killed", onKilled, harness.SafetyNet, ups[2].Name)
	}
	moved, movedOthers := 0, 0
	for i := range before {
		after := owner(i)
		if after == before[i] {
			continue
		}
		moved++
		if before[i] != ups[2].Name {
			movedOthers++
			t.Errorf("key %d moved from %s to %q, though %s is still up", i, before[i], after, before[i])
		}
	}
	t.Logf("uri_hash: %d of %d keys moved when one of 3 upstreams went (%d of them from upstreams still up)", moved, keys, movedOthers)
	if limit := keys/3 + keys/20; moved > limit {
		t.Errorf("%d of %d keys moved, want at most 1/3 + 5%% (%d)", moved, keys, limit)
	}
}
