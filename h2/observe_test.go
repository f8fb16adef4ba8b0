package h2

import (
	"crypto/tls"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// observed is one exchange an Observer saw, copied out of the request.
type observed struct {
	method, path string
	proto        message.Proto
	tlsVersion   uint16
	status       int
	sent, recv   int64
	cut, timed   bool
}

// observations is an Observer that records what it sees.
type observations struct {
	mu  sync.Mutex
	got []observed
	n   chan struct{}
}

func (o *observations) Observe(r *message.Request, out *message.Outcome) {
	o.mu.Lock()
	o.got = append(o.got, observed{
		method: r.Method, path: r.Path, proto: r.Proto, tlsVersion: r.TLSVersion, status: out.Status,
		sent: out.Sent, recv: out.Received, cut: out.Cut, timed: !out.Start.IsZero() && !out.End.Before(out.Start),
	})
	o.mu.Unlock()
	o.n <- struct{}{}
}

// wait returns the observations once there are n, sorted by path.
func (o *observations) wait(t *testing.T, n int) []observed {
	t.Helper()
	for range n {
		select {
		case <-o.n:
		case <-time.After(hangTimeout):
			t.Fatalf("the Observer saw fewer than %d exchanges", n)
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	got := slices.Clone(o.got)
	slices.SortFunc(got, func(a, b observed) int { return strings.Compare(a.path, b.path) })
	return got
}

func TestObserverSeesEveryStream(t *testing.T) {
	obs := &observations{n: make(chan struct{}, 100)}
	ts := start(t, &Server{Observer: obs, MaxBodyBytes: 100, Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if r.Path == "/missing" {
			w.WriteHeader(404)
			return
		}
		w.Header().Set("Content-Length", "5")
		w.Write([]byte("hello"))
		_ = n
	})})
	c := ts.client(t)
	get(t, c, "GET", ts.url("/a"))
	get(t, c, "GET", ts.url("/missing"))
	resp, err := c.Post(ts.url("/post"), "text/plain", strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	// Read to the end: a client that closes a response before its
	// END_STREAM resets the stream, and the Observer rightly calls it cut.
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = c.Post(ts.url("/too-large"), "text/plain", strings.NewReader(strings.Repeat("x", 200)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := obs.wait(t, 4)
	tls13 := uint16(tls.VersionTLS13)
	want := []observed{
		{method: "GET", path: "/a", proto: message.HTTP2, tlsVersion: tls13, status: 200, sent: 5, timed: true},
		{method: "GET", path: "/missing", proto: message.HTTP2, tlsVersion: tls13, status: 404, timed: true},
		{method: "POST", path: "/post", proto: message.HTTP2, tlsVersion: tls13, status: 200, sent: 5, recv: 3, timed: true},
		{method: "POST", path: "/too-large", proto: message.HTTP2, tlsVersion: tls13, status: 413, timed: true},
	}
	if len(got) != len(want) {
		t.Fatalf("observed %d exchanges, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		if g.path == "/too-large" {
			g.recv, g.cut = 0, false // what of the content came, and whether the stream was reset after the 413, race the client
		}
		if g != want[i] {
			t.Errorf("got %+v, want %+v", got[i], want[i])
		}
	}
}
