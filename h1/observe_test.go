package h1

import (
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// observed is one exchange an Observer saw, copied out of the request.
type observed struct {
	method, path string
	status       int
	sent, recv   int64
	cut          bool
	timed        bool // Start and End set, End not before Start
}

// observations is an Observer that records what it sees.
type observations struct {
	mu  sync.Mutex
	got []observed
	n   chan struct{}
}

func newObservations() *observations { return &observations{n: make(chan struct{}, 100)} }

func (o *observations) Observe(r *message.Request, out *message.Outcome) {
	o.mu.Lock()
	o.got = append(o.got, observed{
		method: r.Method, path: r.Path, status: out.Status, sent: out.Sent, recv: out.Received, cut: out.Cut,
		timed: !out.Start.IsZero() && !out.End.Before(out.Start),
	})
	o.mu.Unlock()
	o.n <- struct{}{}
}

// wait returns the first n observations, waiting for them.
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
	return append([]observed(nil), o.got...)
}

func TestObserverSeesEveryExchange(t *testing.T) {
	obs := newObservations()
	s := &Server{Observer: obs, Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Path == "/missing" {
			w.WriteHeader(404)
			return
		}
		w.Header().Set("Content-Length", "5")
		w.Write([]byte("hello"))
		_ = body
	})}
	addr := serve(t, s)
	c, br := dial(t, addr)
	// Two pipelined GETs, a POST with content, then a malformed request
	// that h1 refuses itself (400) and that closes the connection.
	send(t, c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"+
		"GET /bad HTTP/1.1\r\nHost: x\r\nBad Field: y\r\n\r\n")
	for _, method := range []string{"GET", "GET", "POST", "GET"} {
		readResponse(t, br, method)
	}
	got := obs.wait(t, 4)
	want := []observed{
		{method: "GET", path: "/a", status: 200, sent: 5, timed: true},
		{method: "GET", path: "/missing", status: 404, timed: true},
		{method: "POST", path: "/p", status: 200, sent: 5, recv: 3, timed: true},
		{status: 400, timed: true},
	}
	if len(got) != len(want) {
		t.Fatalf("observed %d exchanges, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		if i == 3 { // how much of a refused head was parsed is h1's business
			g.method, g.path = "", ""
		}
		if g != want[i] {
			t.Errorf("exchange %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestObserverSeesACutResponse(t *testing.T) {
	obs := newObservations()
	s := &Server{Observer: obs, Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write([]byte(strings.Repeat("x", 10))) // and then no more
	})}
	addr := serve(t, s)
	c, _ := dial(t, addr)
	send(t, c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	got := obs.wait(t, 1)
	if g := got[0]; g.status != 200 || g.sent != 10 || !g.cut {
		t.Errorf("got %+v, want status 200, 10 bytes sent, cut", g)
	}
}

// headRecorder is an Observer that copies the strings of each request
// it sees.
type headRecorder struct {
	heads chan string
}

func (h *headRecorder) Observe(r *message.Request, _ *message.Outcome) {
	h.heads <- r.Method + " " + r.Path + "?" + r.RawQuery + " host=" + r.Host + " ua=" + r.Header.Get("User-Agent")
}

func TestObserverSeesADeferredRequestWhole(t *testing.T) {
	// A response the handler defers ends after the loop has read other
	// input into the buffer the request's strings pointed into: the
	// Observer must still see the request as it came.
	obs := &headRecorder{heads: make(chan string, 10)}
	h := newDeferringHandler(1)
	addr := serveDeferring(t, &Server{Handler: h, Observer: obs, Loops: 1})
	c, br := dial(t, addr)
	send(t, c, "GET /first?q=1 HTTP/1.1\r\nHost: one.example\r\nUser-Agent: agent-one\r\n\r\n")
	first := h.next(t)
	// Another connection of the only loop overwrites its input.
	other, otherBr := dial(t, addr)
	send(t, other, "GET /now/xxxxx?z=9 HTTP/1.1\r\nHost: two.example\r\nUser-Agent: agent-two\r\n\r\n")
	checkAnswer(t, otherBr, "now /now/xxxxx", "14", false)
	if got, want := <-obs.heads, "GET /now/xxxxx?z=9 host=two.example ua=agent-two"; got != want {
		t.Errorf("observed %q, want %q", got, want)
	}
	first.answer(t)
	checkAnswer(t, br, "answer to /first", "16", false)
	select {
	case got := <-obs.heads:
		if want := "GET /first?q=1 host=one.example ua=agent-one"; got != want {
			t.Errorf("observed the deferred request as %q, want %q", got, want)
		}
	case <-time.After(hangTimeout):
		t.Fatal("the Observer never saw the deferred request")
	}
}
