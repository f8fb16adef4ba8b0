package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// TestProxyReloadKeepsPool: a SIGHUP whose new config still names the
// upstream keeps anx's pooled connections to it: the requests after the
// reload come on the connections the upstream already counted.
func TestProxyReloadKeepsPool(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()))))
	c := s.Client(harness.H1)
	if got := tally(t, s, c, 5, same("/echo")); got["app"] != 5 {
		t.Fatalf("before the reload: %v, want 5 answers from app", got)
	}
	before := up.Counts(t).Conns
	next := proxyConfig("", route("/other/", `respond = "other"`)+route("/", proxyTo(up.URL())))
	if line := s.Reload(t, renderConfig(s, next)); !strings.Contains(line, "msg=reloaded") {
		t.Fatalf("reload: %s", line)
	}
	if r := get(s, harness.H1, c, "/other/x"); r.Status != http.StatusOK || string(r.Body) != "other" {
		t.Errorf("the new route /other/: status %d body %q, want 200 \"other\"", r.Status, r.Body)
	}
	if got := tally(t, s, c, 5, same("/echo")); got["app"] != 5 {
		t.Errorf("after the reload: %v, want 5 answers from app", got)
	}
	if after := up.Counts(t).Conns; after != before {
		t.Errorf("the upstream counted %d connections before the reload and %d after, want the pooled ones reused", before, after)
	}
}

// TestProxyReloadInFlight: a response streaming from upstream a when a
// SIGHUP moves the route to b finishes from a (its remaining events keep
// coming), while a new request goes to b.
func TestProxyReloadInFlight(t *testing.T) {
	t.Parallel()
	a, b := startUpstream(t, upstreamConfig{Name: "a"}), startUpstream(t, upstreamConfig{Name: "b"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(a.URL()))))
	const n = 5
	ctx, cancel := context.WithTimeout(context.Background(), harness.SafetyNet)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL(fmt.Sprintf("/sse?n=%d&id=reload", n)), nil)
	res, err := s.Client(harness.H2).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	reloaded := false
	delays, err := readEvents(res.Body, n, func() {
		if !reloaded {
			reloaded = true
			if line := s.Reload(t, renderConfig(s, proxyConfig("", route("/", proxyTo(b.URL()))))); !strings.Contains(line, "msg=reloaded") {
				t.Fatalf("reload: %s", line)
			}
			if e := echoOf(t, "GET /echo after the reload", get(s, harness.H1, s.Client(harness.H1), "/echo")); e.Server != "b" {
				t.Errorf("after the reload /echo was answered by %q, want b", e.Server)
			}
		}
		a.control(t, "/sse-ack?id=reload", nil)
	})
	if err != nil {
		t.Errorf("the stream from a across the reload: %v (after %d of %d events)", err, len(delays), n)
	}
	if got := res.Header.Get("X-Upstream"); got != "a" {
		t.Errorf("the stream came from %q, want a", got)
	}
}
