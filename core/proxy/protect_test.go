package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// TestBreakerStateMachine walks one breaker through its states on a
// clock of the test's own.
func TestBreakerStateMachine(t *testing.T) {
	cfg := Breaker{Failures: 3, Open: 10 * time.Second, Probes: 2}
	p := Protection{Breaker: cfg}
	p.applyDefaults()
	cfg = p.Breaker
	var b breaker
	now := int64(1e12)
	step := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
	}
	for i := range 2 {
		step(fmt.Sprintf("failure %d", i+1), b.record(&cfg, false, now) == nil, true)
	}
	b.record(&cfg, true, now) // a success breaks the row
	step("after a success", b.current(), breakerClosed)
	b.record(&cfg, false, now)
	b.record(&cfg, false, now)
	tr := b.record(&cfg, false, now)
	step("third failure in a row opens", tr != nil && tr.to == breakerOpen, true)
	step("open refuses", b.allows(&cfg, now+int64(9*time.Second)), false)
	ok, _ := b.admit(&cfg, now+int64(9*time.Second))
	step("open admits", ok, false)

	later := now + int64(10*time.Second)
	step("open past its time allows", b.allows(&cfg, later), true)
	ok, tr = b.admit(&cfg, later)
	step("first probe admitted", ok && tr != nil && tr.to == breakerHalfOpen, true)
	ok, _ = b.admit(&cfg, later)
	step("second probe admitted", ok, true)
	ok, _ = b.admit(&cfg, later)
	step("third request while probes are out", ok, false)
	step("allows while probes are out", b.allows(&cfg, later), false)
	step("first probe succeeds", b.record(&cfg, true, later) == nil, true)
	tr = b.record(&cfg, true, later)
	step("second probe closes", tr != nil && tr.to == breakerClosed, true)

	for range 3 {
		tr = b.record(&cfg, false, later)
	}
	step("opens again", b.current(), breakerOpen)
	again := later + int64(10*time.Second)
	b.admit(&cfg, again)
	tr = b.record(&cfg, false, again)
	step("a failed probe reopens", tr != nil && tr.from == breakerHalfOpen && tr.to == breakerOpen, true)
	step("reopened for Open", b.allows(&cfg, again+int64(9*time.Second)), false)

	// Probes that never settle (their clients left) are let go after Open.
	third := again + int64(10*time.Second)
	b.admit(&cfg, third)
	b.admit(&cfg, third)
	ok, _ = b.admit(&cfg, third+int64(time.Second))
	step("probes out", ok, false)
	ok, _ = b.admit(&cfg, third+int64(10*time.Second))
	step("unsettled probes re-armed after Open", ok, true)
}

// TestBreakerErrorRate opens on the rate only once the window has its
// minimum of requests, and forgets a window that has passed.
func TestBreakerErrorRate(t *testing.T) {
	p := Protection{Breaker: Breaker{ErrorRate: 0.5, MinRequests: 10, Window: time.Second}}
	p.applyDefaults()
	cfg := p.Breaker
	var b breaker
	now := int64(1e12)
	for i := range 9 {
		b.record(&cfg, i%2 == 0, now) // 4 failures of 9
	}
	if b.current() != breakerClosed {
		t.Fatal("opened below MinRequests")
	}
	// A new window: the 9 are forgotten; 5 failures of 10 open it.
	now += int64(time.Second)
	var tr *transition
	for i := range 10 {
		if t := b.record(&cfg, i%2 == 0, now); t != nil {
			tr = t
		}
	}
	if tr == nil || tr.to != breakerOpen || !strings.Contains(tr.reason, "5 of 10") {
		t.Fatalf("transition %+v, state %v", tr, b.current())
	}
}

// TestOpenBreakerKeepsUpstreamOut sends traffic to a route whose first
// upstream fails every request: after breaker_failures failures it gets
// no more requests, and the other one takes them all.
func TestOpenBreakerKeepsUpstreamOut(t *testing.T) {
	var bad atomic.Int64
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bad.Add(1)
		w.WriteHeader(500)
	}))
	t.Cleanup(failing.Close)
	good, n := echoUpstream(t, "good")
	h := newHandler(t, Config{
		Policy: RoundRobin, Upstreams: []Upstream{{URL: failing.URL}, {URL: good.URL}},
		Passive: PassiveHealth{UnhealthyStatus: []int{500}},
		Protect: Protection{Breaker: Breaker{Failures: 4, Open: time.Hour}},
	})
	for range 40 {
		serve(h, request("GET", "/", ""))
	}
	if bad.Load() != 4 || n.Load() != 36 {
		t.Fatalf("failing upstream got %d requests, good %d; want 4 and 36", bad.Load(), n.Load())
	}
	if st := h.Stats(); st[0].Breaker != "open" || st[0].Up || st[1].Breaker != "closed" {
		t.Fatalf("stats %+v", st)
	}
}

// TestEveryBreakerOpenAnswers503: with every upstream's breaker open the
// answer is 503 with Retry-After (breaker_open), at once.
func TestEveryBreakerOpenAnswers503(t *testing.T) {
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: closedAddr(t)}, {URL: closedAddr(t)}},
		Protect: Protection{Breaker: Breaker{Failures: 1, Open: time.Minute}}})
	if rc := serve(h, request("GET", "/", "")); rc.status != 502 {
		t.Fatalf("the failing request: status %d", rc.status)
	}
	rc := serve(h, request("GET", "/", ""))
	if rc.status != 503 || rc.header.Get("Retry-After") != "60" {
		t.Fatalf("every breaker open: status %d, Retry-After %q", rc.status, rc.header.Get("Retry-After"))
	}
}

// blockingUpstream holds every request until release is called, and
// reports each arrival on arrived.
func blockingUpstream(t *testing.T) (url string, arrived chan struct{}, release func()) {
	t.Helper()
	arrived, released := make(chan struct{}, 100), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-released
		w.Write([]byte("done"))
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	t.Cleanup(release)
	return srv.URL, arrived, release
}

// TestMaxConnsQueueTimeoutAndFullQueue: with one slot and a queue of
// one, a request beyond the slot waits QueueTimeout and gets 503, and one
// beyond the queue gets 503 at once.
func TestMaxConnsQueueTimeoutAndFullQueue(t *testing.T) {
	url, arrived, release := blockingUpstream(t)
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: url}},
		Protect: Protection{MaxConns: 1, MaxQueue: 1, QueueTimeout: 300 * time.Millisecond}})
	first := make(chan *recorder)
	go func() { first <- serve(h, request("GET", "/", "")) }()
	<-arrived

	queued := make(chan *recorder)
	start := time.Now()
	go func() { queued <- serve(h, request("GET", "/", "")) }()
	waitFor(t, func() bool { return h.queue.waiting.Load() == 1 })
	rc := serve(h, request("GET", "/", "")) // the queue is full
	if rc.status != 503 || rc.header.Get("Retry-After") == "" {
		t.Fatalf("beyond the queue: status %d, Retry-After %q", rc.status, rc.header.Get("Retry-After"))
	}
	rc = <-queued
	if waited := time.Since(start); rc.status != 503 || waited < 300*time.Millisecond {
		t.Fatalf("queued: status %d after %v", rc.status, waited)
	}
	release()
	if rc := <-first; rc.status != 200 {
		t.Fatalf("first: status %d", rc.status)
	}
	if got := h.ups[0].inflight.Load(); got != 0 {
		t.Fatalf("%d still in flight", got)
	}
}

// TestQueuedRequestTakesFreedSlot: a queued request goes to the upstream
// as soon as the request ahead of it ends.
func TestQueuedRequestTakesFreedSlot(t *testing.T) {
	url, arrived, release := blockingUpstream(t)
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: url}},
		Protect: Protection{MaxConns: 1, MaxQueue: 4, QueueTimeout: time.Minute}})
	done := make(chan *recorder, 2)
	go func() { done <- serve(h, request("GET", "/", "")) }()
	<-arrived
	go func() { done <- serve(h, request("GET", "/", "")) }()
	waitFor(t, func() bool { return h.queue.waiting.Load() == 1 })
	if h.ups[0].inflight.Load() != 1 {
		t.Fatal("the queued request went past max_conns")
	}
	release()
	for range 2 {
		if rc := <-done; rc.status != 200 {
			t.Fatalf("status %d", rc.status)
		}
	}
}

// TestNoQueueRefusesAtOnce: without max_queue the excess gets 503 at
// once.
func TestNoQueueRefusesAtOnce(t *testing.T) {
	url, arrived, _ := blockingUpstream(t)
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: url}}, Protect: Protection{MaxConns: 1}})
	go serve(h, request("GET", "/", ""))
	<-arrived
	if rc := serve(h, request("GET", "/", "")); rc.status != 503 {
		t.Fatalf("status %d", rc.status)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFallbackFileWhenEveryUpstreamFails: the file, its type and status.
func TestFallbackFileWhenEveryUpstreamFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "maintenance.html")
	os.WriteFile(file, []byte("<p>back soon</p>"), 0o644)
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: closedAddr(t)}},
		Protect: Protection{FallbackFile: file}})
	rc := serve(h, request("GET", "/x", ""))
	if rc.status != 503 || rc.body.String() != "<p>back soon</p>" ||
		rc.header.Get("Content-Type") != "text/html; charset=utf-8" || rc.header.Get("Retry-After") == "" {
		t.Fatalf("status %d, body %q, header %v", rc.status, rc.body.String(), rc.header.Fields())
	}
}

// TestStaleIfErrorServesLastGoodResponse: a response kept while the
// upstream worked is served with its Age when it fails; an uncacheable
// one is not kept.
func TestStaleIfErrorServesLastGoodResponse(t *testing.T) {
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			panic(http.ErrAbortHandler) // the connection closes: a failure
		}
		if r.URL.Path == "/private" {
			w.Header().Set("Cache-Control", "private")
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "page %s", r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: srv.URL}}, Passive: PassiveHealth{MaxFails: -1},
		Protect: Protection{StaleIfError: time.Minute}})
	for _, p := range []string{"/a", "/private"} {
		if rc := serve(h, request("GET", p, "")); rc.status != 200 {
			t.Fatalf("%s: status %d", p, rc.status)
		}
	}
	down.Store(true)
	rc := serve(h, request("GET", "/a", ""))
	if rc.status != 200 || rc.body.String() != "page /a" || rc.header.Get("Age") == "" || rc.header.Get("Content-Type") != "text/plain" {
		t.Fatalf("stale: status %d, body %q, header %v", rc.status, rc.body.String(), rc.header.Fields())
	}
	if rc := serve(h, request("HEAD", "/a", "")); rc.status != 200 || rc.body.Len() != 0 {
		t.Fatalf("stale HEAD: status %d, body %q", rc.status, rc.body.String())
	}
	if rc := serve(h, request("GET", "/private", "")); rc.status != 502 {
		t.Fatalf("private: status %d", rc.status)
	}
	if rc := serve(h, request("GET", "/a?other", "")); rc.status != 502 {
		t.Fatalf("another query: status %d", rc.status)
	}
}

// TestStaleCacheBounds: entries beyond the byte bound evict the oldest;
// a body over the entry bound is not kept; an expired entry is not
// served.
func TestStaleCacheBounds(t *testing.T) {
	s := newStaleCache()
	now := int64(1e12)
	body := make([]byte, staleMaxBody)
	n := staleMaxBytes/staleMaxBody + 8
	for i := range n {
		s.store(&staleRecord{key: uint64(i + 1), status: 200, body: body, lifetime: time.Minute}, now)
	}
	entries, bytes := s.staleSize()
	if bytes > staleMaxBytes || entries >= n || entries < staleMaxBytes/staleMaxBody-2 {
		t.Fatalf("%d entries, %d bytes (bound %d)", entries, bytes, staleMaxBytes)
	}
	if _, ok := s.entries[1]; ok {
		t.Fatal("the oldest entry was kept")
	}
	if _, ok := s.entries[uint64(n)]; !ok {
		t.Fatal("the newest entry was evicted")
	}
	for i := range 3 * staleMaxEntries {
		s.store(&staleRecord{key: uint64(i%(staleMaxEntries+100)) + 1000, status: 200, lifetime: time.Minute}, now)
	}
	if entries, _ := s.staleSize(); entries > staleMaxEntries || len(s.order) > 2*entries+64 {
		t.Fatalf("%d entries, order %d", entries, len(s.order))
	}
	var rec staleRecord
	rec.add(make([]byte, staleMaxBody))
	rec.add([]byte{1})
	if !rec.tooBig || rec.body != nil {
		t.Fatal("a body over staleMaxBody was kept")
	}
	s.store(&staleRecord{key: 7, status: 200, lifetime: time.Second}, now)
	if s.serve(&recorder{}, false, 7, now+int64(time.Second)) {
		t.Fatal("an expired entry was served")
	}
}

// TestCacheable: which responses are kept, and for how long.
func TestCacheable(t *testing.T) {
	for _, tc := range []struct {
		status int
		fields []string
		want   time.Duration
	}{
		{200, nil, time.Minute},
		{204, []string{"Cache-Control", "public, max-age=5"}, time.Minute},
		{200, []string{"Cache-Control", "max-age=10, stale-if-error=20"}, 30 * time.Second},
		{200, []string{"Cache-Control", "no-store"}, 0},
		{200, []string{"Cache-Control", "Private"}, 0},
		{200, []string{"Set-Cookie", "a=b"}, 0},
		{200, []string{"Vary", "Accept-Language"}, 0},
		{200, []string{"Content-Length", fmt.Sprint(staleMaxBody + 1)}, 0},
		{206, nil, 0},
		{404, nil, 0},
	} {
		var h message.Header
		for i := 0; i+1 < len(tc.fields); i += 2 {
			h.Add(tc.fields[i], tc.fields[i+1])
		}
		got, ok := cacheable(tc.status, &h, time.Minute)
		if !ok {
			got = 0
		}
		if got != tc.want {
			t.Errorf("%d %v: got %v, want %v", tc.status, tc.fields, got, tc.want)
		}
	}
}

// TestBreakerStateSurvivesReload: a route built again on the same
// Transports, under the same name, keeps its upstreams' breakers.
func TestBreakerStateSurvivesReload(t *testing.T) {
	shared := NewTransports()
	cfg := Config{Name: "r", Upstreams: []Upstream{{URL: closedAddr(t)}}, MaxTries: 1,
		Protect: Protection{Breaker: Breaker{Failures: 1, Open: time.Hour}}}
	old, err := New(cfg, shared)
	if err != nil {
		t.Fatal(err)
	}
	serve(old, request("GET", "/", ""))
	reloaded, err := New(cfg, shared)
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	defer reloaded.Close()
	if st := reloaded.Stats(); st[0].Breaker != "open" {
		t.Fatalf("after the reload: %+v", st)
	}
}

// TestStaleCacheSurvivesReload: a route built again on the same
// Transports, under the same name, serves what the old one kept.
func TestStaleCacheSurvivesReload(t *testing.T) {
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			panic(http.ErrAbortHandler)
		}
		w.Write([]byte("kept"))
	}))
	t.Cleanup(srv.Close)
	shared := NewTransports()
	cfg := Config{Name: "r", Upstreams: []Upstream{{URL: srv.URL}}, Protect: Protection{StaleIfError: time.Minute}}
	old, err := New(cfg, shared)
	if err != nil {
		t.Fatal(err)
	}
	if rc := serve(old, request("GET", "/p", "")); rc.status != 200 {
		t.Fatalf("status %d", rc.status)
	}
	reloaded, err := New(cfg, shared)
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	defer reloaded.Close()
	down.Store(true)
	if rc := serve(reloaded, request("GET", "/p", "")); rc.status != 200 || rc.body.String() != "kept" {
		t.Fatalf("after the reload: status %d, body %q", rc.status, rc.body.String())
	}
}
