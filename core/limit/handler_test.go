package limit

import (
	"net/netip"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/route"
)

// recorder is a ResponseWriter that keeps the status and the header.
type recorder struct {
	header message.Header
	status int
}

func (w *recorder) Header() *message.Header { return &w.header }
func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}
func (w *recorder) Write(p []byte) (int, error) { w.WriteHeader(200); return len(p), nil }

func TestHandlerRefusesWith429AndRetryAfter(t *testing.T) {
	l := mustNew(t, Config{Rate: Rate{1, time.Minute}, Burst: 1, NoDelay: true})
	h := &Handler{Limiter: l, Handler: route.Fixed{Status: 200, Body: "ok"}}
	r := &message.Request{Method: "GET", Path: "/", RemoteAddr: netip.MustParseAddrPort("192.0.2.1:1")}
	var statuses []int
	var last *recorder
	for range 3 {
		last = &recorder{}
		h.Serve(last, r)
		statuses = append(statuses, last.status)
	}
	if statuses[0] != 200 || statuses[1] != 200 || statuses[2] != 429 {
		t.Fatalf("statuses %v, want [200 200 429]", statuses)
	}
	// One more request needs a whole minute's drain, less what passed.
	if got := last.header.Get("Retry-After"); got != "60" && got != "59" {
		t.Errorf("Retry-After %q, want 60 (or 59 on a slow clock)", got)
	}
	other := &recorder{}
	h.Serve(other, &message.Request{Method: "GET", Path: "/", RemoteAddr: netip.MustParseAddrPort("192.0.2.2:1")})
	if other.status != 200 {
		t.Errorf("another client: %d, want 200", other.status)
	}
}

func TestHandlerDelaysWithinBurst(t *testing.T) {
	l := mustNew(t, Config{Rate: Rate{20, time.Second}, Burst: 2})
	h := &Handler{Limiter: l, Key: Key{Kind: Global}, Handler: route.Fixed{Status: 200}}
	r := &message.Request{Method: "GET", Path: "/"}
	start := time.Now()
	for range 3 {
		w := &recorder{}
		h.Serve(w, r)
		if w.status != 200 {
			t.Fatalf("status %d, want 200", w.status)
		}
	}
	// The second waits 50 ms and the third 100 ms from the start, minus
	// what the bucket drained meanwhile: at least 100 ms in all less a
	// millisecond of rounding per request.
	if el := time.Since(start); el < 95*time.Millisecond {
		t.Errorf("3 requests at once within a burst of 2 at 20/s took %v, want about 100 ms of delay", el)
	}
}

func TestHandlerWhereItRuns(t *testing.T) {
	fixed := route.Fixed{Status: 200}
	r := &message.Request{Method: "GET", Path: "/"}
	for _, c := range []struct {
		name        string
		cfg         Config
		nonBlocking bool
	}{
		{"nodelay", Config{Rate: Rate{1, time.Second}, Burst: 5, NoDelay: true}, true},
		{"burst 0", Config{Rate: Rate{1, time.Second}}, true},
		{"delay covers the burst", Config{Rate: Rate{1, time.Second}, Burst: 5, Delay: 5}, true},
		{"may delay", Config{Rate: Rate{1, time.Second}, Burst: 5}, false},
	} {
		h := &Handler{Limiter: mustNew(t, c.cfg), Handler: fixed}
		if got := message.IsNonBlockingFor(h, r); got != c.nonBlocking {
			t.Errorf("%s: IsNonBlockingFor = %v, want %v", c.name, got, c.nonBlocking)
		}
		if got := h.NonBlocking(); got != c.nonBlocking {
			t.Errorf("%s: NonBlocking = %v, want %v", c.name, got, c.nonBlocking)
		}
	}
}

// loopServer stands for a proxy route: it serves every request on the
// event loop (message.LoopServer) but is no NonBlocking handler.
type loopServer struct{ passThrough }

func (loopServer) ServesOnLoop(*message.Request) bool { return true }

// A limit that never delays leaves the decision to the handler it wraps
// (a proxied GET stays on the loop); one that may delay takes its requests
// off the loop.
func TestHandlerServesOnLoopOnlyWithoutDelay(t *testing.T) {
	r := &message.Request{Method: "GET", Path: "/"}
	nodelay := &Handler{Limiter: mustNew(t, Config{Rate: Rate{1, time.Second}, Burst: 5, NoDelay: true}), Handler: loopServer{}}
	if !message.ServesOnLoop(nodelay, r) {
		t.Error("nodelay over a loop server: not served on the loop")
	}
	delaying := &Handler{Limiter: mustNew(t, Config{Rate: Rate{1, time.Second}, Burst: 5}), Handler: loopServer{}}
	if message.ServesOnLoop(delaying, r) || message.IsNonBlockingFor(delaying, r) {
		t.Error("a limit that may delay is served on the loop")
	}
}

func TestRetryAfter(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{0, "1"}, {time.Millisecond, "1"}, {time.Second, "1"}, {time.Second + 1, "2"}, {9 * time.Second, "9"}, {10 * time.Second, "10"}, {time.Hour, "3600"}} {
		if got := retryAfter(c.d); got != c.want {
			t.Errorf("retryAfter(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

// passThrough answers nothing, so that only the limiter's own work is
// measured.
type passThrough struct{}

func (passThrough) Serve(message.ResponseWriter, *message.Request) {}

func TestHandlerAllocatesNothingForKnownKey(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, key := range []Key{{Kind: ClientIP}, {Kind: HeaderKey, Header: "X-Api-Key"}, {Kind: PathKey}, {Kind: Global}} {
		l := mustNew(t, Config{Rate: Rate{MaxRateN, time.Second}, Burst: MaxBurst, NoDelay: true})
		h := &Handler{Limiter: l, Key: key, Trusted: trusted, Handler: passThrough{}}
		r := &message.Request{Method: "GET", Path: "/api/x", RemoteAddr: netip.MustParseAddrPort("10.1.1.1:1")}
		r.Header.Add("X-Forwarded-For", "198.51.100.9")
		r.Header.Add("X-Api-Key", "k")
		w := &recorder{}
		h.Serve(w, r)
		if n := testing.AllocsPerRun(1000, func() { h.Serve(w, r) }); n != 0 {
			t.Errorf("key %v: %v allocations per request, want 0", key, n)
		}
	}
}

// BenchmarkHandlerClientIP measures the limiter's part of a request that
// passes: the client's address, its key, the bucket. The requests come
// from 1024 addresses, so that none nears the limit.
func BenchmarkHandlerClientIP(b *testing.B) {
	l := mustNew(b, Config{Rate: Rate{MaxRateN, time.Second}, Burst: MaxBurst, NoDelay: true})
	h := &Handler{Limiter: l, Handler: passThrough{}}
	reqs := make([]message.Request, 1024)
	for i := range reqs {
		reqs[i] = message.Request{Method: "GET", Path: "/", RemoteAddr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), 1)}
	}
	w := &recorder{}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.Serve(w, &reqs[i%len(reqs)])
		i++
	}
	if w.status != 0 {
		b.Fatalf("a request was answered %d: the benchmark reached the limit", w.status)
	}
}
