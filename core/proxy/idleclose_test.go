package proxy

import (
	"io"
	"net/http"
	"testing"
	"time"
)

func TestIdleCloseLearnerKeepsTheShortestClose(t *testing.T) {
	var l idleCloseLearner
	if got := l.reuseLimit(); got != maxDuration {
		t.Fatalf("nothing seen: limit %v, want none", got)
	}
	l.observe(300 * time.Millisecond) // a restart or a crash, not an idle timeout
	if got := l.reuseLimit(); got != maxDuration {
		t.Fatalf("a close under %v taught the limit %v", minLearnedIdleClose, got)
	}
	for _, c := range []struct {
		seen, limit time.Duration
	}{
		{60 * time.Second, 59 * time.Second},
		{5 * time.Second, 4 * time.Second},
		{8 * time.Second, 4 * time.Second}, // a longer close keeps the shorter one
		{time.Second, 750 * time.Millisecond},
	} {
		l.observe(c.seen)
		if got := l.reuseLimit(); got != c.limit {
			t.Errorf("after a close at %v: limit %v, want %v", c.seen, got, c.limit)
		}
	}
}

func TestH1ClientLearnsTheUpstreamIdleTimeout(t *testing.T) {
	// An upstream that closes idle connections after 1 s and does not say
	// so (net/http's IdleTimeout sends no Keep-Alive field): once the
	// client has seen one close, it pools connections for less than that
	// and takes a fresh one past it, so that no request, a POST included,
	// crosses the upstream's close.
	up := newHTTPUpstream(t, "tcp", time.Second, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	c := testClient(up.ln.Addr().String(), defaultTestOptions)
	defer c.closeIdle()
	if _, err := do(t, c, getRequest("/")); err != nil {
		t.Fatal(err)
	}
	up.waitClosed(t)
	if conn := c.getIdle(); conn != nil {
		t.Fatal("getIdle returned a connection the upstream had closed")
	}
	limit := c.idleClose.reuseLimit()
	if limit >= time.Second || limit < 500*time.Millisecond {
		t.Fatalf("reuse limit %v after a close at 1 s idle, want under a second", limit)
	}
	if _, err := do(t, c, getRequest("/")); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	pooled := c.idle[len(c.idle)-1]
	kept := pooled.expires.Sub(pooled.idleSince)
	c.mu.Unlock()
	if kept > limit {
		t.Errorf("pooled for %v, past the reuse limit %v", kept, limit)
	}
	// Idle past the limit (a lower bound that a slow machine only
	// lengthens), the next request takes a new connection.
	time.Sleep(limit + 50*time.Millisecond)
	req := getRequest("/")
	req.Method = http.MethodPost
	if res, err := do(t, c, req); err != nil || res.body != "ok" {
		t.Fatalf("POST after the limit: %v %q", err, res.body)
	}
	if n := up.opened.Load(); n != 3 {
		t.Errorf("%d connections for three requests spaced past the limit, want 3", n)
	}
}
