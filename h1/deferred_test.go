package h1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/netpoll"
)

// The tests of this file exercise deferred responses (deferred.go,
// message.LoopWriter): a handler serving on the event loop defers the
// response in Serve and the test finishes it later, on the loop's
// goroutine, through netpoll.Loop.Submit, as core/proxy does from its
// upstream connections' events. A response is deferred only on the
// loop, so these tests run the server on its loops whatever -h1.serve
// says (serveDeferring), and never skip.

// deferringHandler is a message.LoopServer that serves on the loop every
// request but those under /off. By path:
//   - /off...: served off the loop, answers with what Loop and Defer
//     return there;
//   - /now...: answers at once, as any handler on the loop;
//   - /sync...: defers, checks that a second Defer refuses, writes the
//     response and calls Done, all before Serve returns;
//   - /panic...: defers, hands the deferral to the test, and panics;
//   - anything else: defers, and hands the deferral to the test
//     (deferred), which finishes it on the loop.
//
// Before it defers, it checks that Defer(nil) refuses.
//
// Every response carries X-On: where Serve ran. The handler logs, in
// order, each request it serves ("serve /path") and each deferral the
// test ends ("done /path").
type deferringHandler struct {
	deferred chan *deferral // the deferrals handed to the test, in the order served

	mu  sync.Mutex // guards log: appended on the loops, read by the test
	log []string
}

// newDeferringHandler returns a handler with room for capacity deferrals
// the test has not taken yet (Serve, on the loop, must not wait).
func newDeferringHandler(capacity int) *deferringHandler {
	return &deferringHandler{deferred: make(chan *deferral, capacity)}
}

// ServesOnLoop serves every request but those under /off on the loop
// (message.LoopServer).
func (h *deferringHandler) ServesOnLoop(r *message.Request) bool {
	return !strings.HasPrefix(r.Path, "/off")
}

func (h *deferringHandler) Serve(w message.ResponseWriter, r *message.Request) {
	path := strings.Clone(r.Path) // r is not valid once Serve returns
	h.record("serve " + path)
	w.Header().Set("X-On", servedOn())
	if strings.HasPrefix(path, "/now") {
		w.Header().Set("Content-Length", strconv.Itoa(len("now "+path)))
		io.WriteString(w, "now "+path)
		return
	}
	lw, ok := w.(message.LoopWriter)
	if !ok {
		w.WriteHeader(500)
		io.WriteString(w, "no LoopWriter")
		return
	}
	if strings.HasPrefix(path, "/off") {
		body := fmt.Sprintf("loop=%v defer=%v", lw.Loop(), lw.Defer(&deferral{gone: make(chan struct{})}))
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
		return
	}
	if lw.Defer(nil) {
		lw.Done()
		w.WriteHeader(500)
		io.WriteString(w, "Defer(nil) accepted")
		return
	}
	loop, ok := lw.Loop().(*netpoll.Loop)
	if !ok || loop == nil {
		w.WriteHeader(500)
		io.WriteString(w, "not on a netpoll loop")
		return
	}
	d := &deferral{h: h, w: w, lw: lw, loop: loop, path: path, gone: make(chan struct{})}
	if !lw.Defer(d) {
		w.WriteHeader(500)
		io.WriteString(w, "Defer refused")
		return
	}
	switch {
	case strings.HasPrefix(path, "/sync"):
		body := fmt.Sprintf("sync %s again=%v", path, lw.Defer(d))
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
		h.record("done " + path)
		lw.Done()
	case strings.HasPrefix(path, "/panic"):
		h.deferred <- d
		panic("h1 test: a handler that deferred its response panics")
	default:
		h.deferred <- d
	}
}

// record appends an event to the log.
func (h *deferringHandler) record(event string) {
	h.mu.Lock()
	h.log = append(h.log, event)
	h.mu.Unlock()
}

// events returns the log so far.
func (h *deferringHandler) events() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.log)
}

// next returns the next deferral, failing the test after hangTimeout.
func (h *deferringHandler) next(t *testing.T) *deferral {
	t.Helper()
	select {
	case d := <-h.deferred:
		return d
	case <-time.After(hangTimeout):
		t.Fatalf("no response deferred within %v", hangTimeout)
		return nil
	}
}

// deferral is one response the handler deferred. Its fields but the
// counters and gone are used on the loop's goroutine only (onLoop).
type deferral struct {
	h    *deferringHandler
	w    message.ResponseWriter
	lw   message.LoopWriter
	loop *netpoll.Loop // taken in Serve, on the loop
	path string

	onWritable func() // what Writable does; nil for nothing
	writables  atomic.Int32
	gones      atomic.Int32
	gone       chan struct{} // closed by the first Gone
}

// Writable counts the call and runs onWritable (message.LoopEvents).
func (d *deferral) Writable() {
	d.writables.Add(1)
	if d.onWritable != nil {
		d.onWritable()
	}
}

// Gone counts the call and closes gone (message.LoopEvents).
func (d *deferral) Gone() {
	if d.gones.Add(1) == 1 {
		close(d.gone)
	}
}

// onLoop runs f on the deferral's loop and waits for it to return.
func (d *deferral) onLoop(t *testing.T, f func()) {
	t.Helper()
	runOnLoop(t, d.loop, f)
}

// finish writes the rest of the response with write and ends it with
// Done, on the loop, after logging "done /path".
func (d *deferral) finish(t *testing.T, write func(w message.ResponseWriter)) {
	t.Helper()
	d.onLoop(t, func() {
		write(d.w)
		d.h.record("done " + d.path)
		d.lw.Done()
	})
}

// answer finishes the response with the body "answer to /path", framed
// by Content-Length.
func (d *deferral) answer(t *testing.T) {
	t.Helper()
	d.finish(t, func(w message.ResponseWriter) {
		body := "answer to " + d.path
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	})
}

// runOnLoop runs f on loop's goroutine (netpoll.Loop.Submit) and waits
// for it to return.
func runOnLoop(t *testing.T, loop *netpoll.Loop, f func()) {
	t.Helper()
	ran := make(chan struct{})
	if err := loop.Submit(func() { defer close(ran); f() }); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	select {
	case <-ran:
	case <-time.After(hangTimeout):
		t.Fatalf("the loop did not run a submitted function within %v", hangTimeout)
	}
}

// serveDeferring runs s on its event loops on loopback, whatever
// -h1.serve says, and returns its address (serveLoops).
func serveDeferring(t *testing.T, s *Server) string {
	t.Helper()
	return serveLoops(t, s, goleak.IgnoreCurrent())
}

// checkAnswer reads a response and checks that it is a 200 with body
// want, served on the loop, framed as framing ("chunked" or a length),
// keeping the connection open unless closing.
func checkAnswer(t *testing.T, br *bufio.Reader, want, framing string, closing bool) {
	t.Helper()
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != 200 || body != want {
		t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, want)
	}
	if got := strings.Join(resp.TransferEncoding, ",") + resp.Header.Get("Content-Length"); got != framing {
		t.Errorf("%q: framing %q, want %q", want, got, framing)
	}
	if on := resp.Header.Get("X-On"); on != "loop" {
		t.Errorf("%q: served on %q, want the loop", want, on)
	}
	if resp.Close != closing {
		t.Errorf("%q: Connection: close is %v, want %v", want, resp.Close, closing)
	}
}

// checkEvents checks the handler's log.
func checkEvents(t *testing.T, h *deferringHandler, want ...string) {
	t.Helper()
	if got := h.events(); !slices.Equal(got, want) {
		t.Errorf("handler events:\ngot  %q\nwant %q", got, want)
	}
}

// deferredResponseCompletes checks, on a connection to a server with
// handler h, that a deferred response framed by Content-Length, then a
// chunked one whose first piece the client reads before Done, reach the
// client whole, and that the next request on the connection is served.
func deferredResponseCompletes(t *testing.T, h *deferringHandler, c net.Conn, br *bufio.Reader) {
	t.Helper()
	send(t, c, "GET /length HTTP/1.1\r\nHost: h\r\n\r\n")
	d := h.next(t)
	d.finish(t, func(w message.ResponseWriter) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	})
	checkAnswer(t, br, "hello", "5", false)

	// A chunked body: the head and the first chunk, written and flushed
	// after Serve returned, reach the client before the response ends.
	send(t, c, "GET /chunked HTTP/1.1\r\nHost: h\r\n\r\n")
	d = h.next(t)
	d.onLoop(t, func() {
		io.WriteString(d.w, "first ")
		if err := d.w.(message.Flusher).Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
	})
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("reading the deferred head: %v", err)
	}
	if resp.StatusCode != 200 || strings.Join(resp.TransferEncoding, ",") != "chunked" || resp.Header.Get("X-On") != "loop" {
		t.Errorf("deferred head: %d, framing %q, X-On %q; want 200, chunked, on the loop",
			resp.StatusCode, resp.TransferEncoding, resp.Header.Get("X-On"))
	}
	if got := readN(t, resp.Body, len("first ")); got != "first " {
		t.Errorf("first piece %q, want %q", got, "first ")
	}
	d.finish(t, func(w message.ResponseWriter) { io.WriteString(w, "and last") })
	if rest, err := io.ReadAll(resp.Body); err != nil || string(rest) != "and last" || resp.Close {
		t.Errorf("rest of the chunked body: %q, %v, close=%v; want %q, keep-alive", rest, err, resp.Close, "and last")
	}

	send(t, c, "GET /now/after HTTP/1.1\r\nHost: h\r\n\r\n")
	checkAnswer(t, br, "now /now/after", "14", false)
	checkEvents(t, h, "serve /length", "done /length", "serve /chunked", "done /chunked", "serve /now/after")
}

func TestDeferredResponseCompletes(t *testing.T) {
	h := newDeferringHandler(1)
	addr := serveDeferring(t, &Server{Handler: h})
	c, br := dial(t, addr)
	deferredResponseCompletes(t, h, c, br)
}

func TestDeferredResponseOverTLS(t *testing.T) {
	// Deferred responses on the loop's TLS: complete ones, pipelined
	// requests held in the decrypted input until Done, and backpressure.
	t.Run("completes", func(t *testing.T) {
		h := newDeferringHandler(1)
		l := serveLoopTLS(t, &Server{Handler: h})
		c, br := l.dial(t)
		deferredResponseCompletes(t, h, c, br)
	})
	t.Run("pipelined", func(t *testing.T) {
		h := newDeferringHandler(2)
		l := serveLoopTLS(t, &Server{Handler: h})
		c, br := l.dial(t)
		deferredHoldsPipelined(t, h, c, br)
	})
	t.Run("backpressure", func(t *testing.T) {
		h := newDeferringHandler(1)
		l := serveLoopTLS(t, &Server{Handler: h})
		c, br := l.dialConfig(t, l.config("http/1.1"), 64<<10) // a small receive window: the output backs up soon
		deferredBackpressure(t, h, c, br)
	})
}

func TestDeferredResponseHoldsPipelinedRequests(t *testing.T) {
	h := newDeferringHandler(2)
	addr := serveDeferring(t, &Server{Handler: h})
	c, br := dial(t, addr)
	deferredHoldsPipelined(t, h, c, br)
}

// deferredHoldsPipelined checks, on a connection to a server with
// handler h, that of requests sent in one write, the first deferred, the
// second is served only once the first response is done, and that the
// answers come back in order (the first one's bytes are written only at
// its Done, so an answer served early would come before it).
func deferredHoldsPipelined(t *testing.T, h *deferringHandler, c net.Conn, br *bufio.Reader) {
	t.Helper()
	send(t, c, "GET /first HTTP/1.1\r\nHost: h\r\n\r\n"+
		"GET /now/second HTTP/1.1\r\nHost: h\r\n\r\n"+
		"GET /third HTTP/1.1\r\nHost: h\r\n\r\n")
	h.next(t).answer(t)
	third := h.next(t)
	if third.path != "/third" {
		t.Fatalf("second deferral for %q, want /third", third.path)
	}
	third.answer(t)
	checkAnswer(t, br, "answer to /first", "16", false)
	checkAnswer(t, br, "now /now/second", "15", false)
	checkAnswer(t, br, "answer to /third", "16", false)
	checkEvents(t, h, "serve /first", "done /first", "serve /now/second", "serve /third", "done /third")
}

func TestDeferredResponseHoldsLaterRequests(t *testing.T) {
	// A request that arrives while the response before it is deferred is
	// served only once that response is done.
	h := newDeferringHandler(1)
	addr := serveDeferring(t, &Server{Handler: h})
	c, br := dial(t, addr)
	send(t, c, "GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
	first := h.next(t)
	send(t, c, "GET /now/second HTTP/1.1\r\nHost: h\r\n\r\n")
	waitAcknowledged(t, c)
	// The server's socket had the second request before these run on the
	// loop: the second no-op runs after an epoll_wait that reported it.
	first.onLoop(t, func() {})
	first.onLoop(t, func() {})
	checkEvents(t, h, "serve /first")
	first.answer(t)
	checkAnswer(t, br, "answer to /first", "16", false)
	checkAnswer(t, br, "now /now/second", "15", false)
	checkEvents(t, h, "serve /first", "done /first", "serve /now/second")
}

// waitAcknowledged waits until the server's kernel has acknowledged
// everything written on c (c's send queue is empty), whether or not the
// server has read it.
func waitAcknowledged(t *testing.T, c net.Conn) {
	t.Helper()
	waitFor(t, func() bool {
		s, ok := readTCPTable(t).from(t, c.LocalAddr(), c.RemoteAddr())
		if ok && s.state != tcpEstablished {
			t.Fatalf("waiting for the server to acknowledge: the connection is in TCP state %#x", s.state)
		}
		return ok && s.txQueue == 0
	})
}

func TestDeferredResponsesOfManyConnections(t *testing.T) {
	// Fifty connections of one loop each defer a response at once and
	// are answered in reverse order: each gets its own answer. The loop
	// lends each connection after a deferred one a spare exchange, and
	// keeps those back from ended deferrals for the next ones: twice
	// fifty deferrals leave it fifty spares, not a hundred.
	const conns = 50
	h := newDeferringHandler(conns)
	s := &Server{Handler: h, Loops: 1}
	addr := serveDeferring(t, s)
	clients := make([]net.Conn, conns)
	readers := make([]*bufio.Reader, conns)
	for i := range conns {
		clients[i], readers[i] = dial(t, addr)
	}
	for round := range 2 {
		for i, c := range clients {
			send(t, c, fmt.Sprintf("GET /round%d/conn%d HTTP/1.1\r\nHost: h\r\n\r\n", round, i))
		}
		pending := make([]*deferral, conns)
		for i := range pending {
			pending[i] = h.next(t)
		}
		for i := range slices.Backward(pending) {
			pending[i].answer(t)
		}
		for i, br := range readers {
			want := fmt.Sprintf("answer to /round%d/conn%d", round, i)
			checkAnswer(t, br, want, strconv.Itoa(len(want)), false)
		}
		if n := loopSpares(t, s, pending[0].loop); n != conns {
			t.Errorf("round %d: the loop keeps %d spare exchanges, want %d (one per deferral in flight at once)", round, n, conns)
		}
	}
}

// loopSpares returns how many exchanges the loop of s keeps to lend
// (loopState.spares), as read on the loop.
func loopSpares(t *testing.T, s *Server, loop *netpoll.Loop) int {
	t.Helper()
	s.mu.Lock()
	lh := s.proto
	s.mu.Unlock()
	n := -1
	runOnLoop(t, loop, func() { n = len(lh.states[loop.Index()].spares) })
	return n
}

// TestDeferredResponseClientGone has a client close or reset its
// connection while its response is deferred, with the handler writing
// (the write fails) or silent (the paused connection hears of the
// hang-up: netpoll's HangupHandler): the handler hears of it (Gone, once)
// and calls no Done; the loop goes on serving other connections,
// deferred responses included.
func TestDeferredResponseClientGone(t *testing.T) {
	for _, tc := range []struct {
		name      string
		headFirst bool // the client reads the response head before it goes
		reset     bool // the client resets the connection rather than close it
	}{
		{"closes before any output", false, false},
		{"closes after the head", true, false},
		{"resets before any output", false, true},
		{"resets after the head", true, true},
	} {
		for _, writing := range []bool{true, false} {
			name := tc.name + map[bool]string{true: ", handler writing", false: ", handler silent"}[writing]
			t.Run(name, func(t *testing.T) {
				h := newDeferringHandler(1)
				addr := serveDeferring(t, &Server{Handler: h, Loops: 1})
				c, br := dial(t, addr)
				send(t, c, "GET /abandoned HTTP/1.1\r\nHost: h\r\n\r\n")
				d := h.next(t)
				if tc.headFirst {
					d.onLoop(t, func() { d.w.(message.Flusher).Flush() })
					if resp, err := http.ReadResponse(br, &http.Request{Method: "GET"}); err != nil || resp.StatusCode != 200 {
						t.Fatalf("reading the head: %v", err)
					}
				}
				if tc.reset {
					c.(*progressConn).Conn.(*net.TCPConn).SetLinger(0)
				}
				c.Close()
				if writing {
					writeUntilGone(t, d)
				} else {
					awaitGone(t, d)
				}

				other, obr := dial(t, addr)
				send(t, other, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
				h.next(t).answer(t)
				checkAnswer(t, obr, "answer to /next", "15", false)
				if n := d.gones.Load(); n != 1 {
					t.Errorf("Gone called %d times, want once", n)
				}
				checkEvents(t, h, "serve /abandoned", "serve /next", "done /next")
			})
		}
	}
}

// writeUntilGone writes and flushes a piece of d's response on the loop,
// again and again, until d's Gone: writing to a connection the client
// has left fails (at once after a reset, at the second write after a
// close), and the connection closes.
func writeUntilGone(t *testing.T, d *deferral) {
	t.Helper()
	waitFor(t, func() bool {
		select {
		case <-d.gone:
			return true
		default:
		}
		d.onLoop(t, func() {
			if d.gones.Load() == 0 { // the writer is not used after Gone
				io.WriteString(d.w, "more")
				d.w.(message.Flusher).Flush()
			}
		})
		return false
	})
}

// awaitGone waits for d's Gone.
func awaitGone(t *testing.T, d *deferral) {
	t.Helper()
	select {
	case <-d.gone:
	case <-time.After(hangTimeout):
		t.Fatalf("Gone not called within %v of the client's close", hangTimeout)
	}
}

func TestDeferredResponseBackpressure(t *testing.T) {
	h := newDeferringHandler(1)
	addr := serveDeferring(t, &Server{Handler: h})
	c := rawDial(t, addr, 64<<10) // a small receive window: the output backs up soon
	deferredBackpressure(t, h, c, bufio.NewReader(c))
}

// deferredBackpressure checks, on a connection to a server with handler
// h whose client has a small receive window, that a deferred response
// writing a large body while the client reads nothing has its output
// queue (Queued grows) and stops; that once the client reads, Writable
// tells it to go on; that the whole body arrives intact, and the next
// request is served.
func deferredBackpressure(t *testing.T, h *deferringHandler, c net.Conn, br *bufio.Reader) {
	t.Helper()
	const (
		size      = 24 << 20
		piece     = 256 << 10
		highWater = 1 << 20
	)
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i*7 + i>>13)
	}
	send(t, c, "GET /large HTTP/1.1\r\nHost: h\r\n\r\n")
	d := h.next(t)

	// The pump runs on the loop: it writes pieces until the queue is
	// above highWater, then waits for Writable. It reports its first stop
	// (the bytes queued then) or its failure on stopped.
	type stop struct {
		queued int
		err    error
	}
	stopped := make(chan stop, 2)
	var pump func()
	written, stops := 0, 0
	pump = func() {
		for written < size {
			if q := d.lw.Queued(); q > highWater {
				if stops++; stops == 1 {
					stopped <- stop{queued: q}
				}
				return
			}
			n, err := d.w.Write(body[written : written+piece])
			written += n
			if err != nil {
				stopped <- stop{err: fmt.Errorf("write after %d bytes: %w", written, err)}
				d.lw.Done()
				return
			}
		}
		d.h.record("done " + d.path)
		d.lw.Done()
	}
	d.onLoop(t, func() {
		d.w.Header().Set("Content-Length", strconv.Itoa(size))
		d.onWritable = pump
		pump()
	})
	select {
	case s := <-stopped:
		if s.err != nil {
			t.Fatalf("the handler's output never backed up: %v", s.err)
		}
		if s.queued <= highWater {
			t.Errorf("stopped at %d bytes queued, want more than %d", s.queued, highWater)
		}
	case <-time.After(hangTimeout):
		t.Fatalf("the output never backed up above %d bytes queued", highWater)
	}

	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("reading the head: %v", err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body after %d bytes: %v", len(got), err)
	}
	checkBytes(t, "body", got, body)
	if n := d.writables.Load(); n == 0 {
		t.Error("Writable never called")
	}
	send(t, c, "GET /now/after HTTP/1.1\r\nHost: h\r\n\r\n")
	checkAnswer(t, br, "now /now/after", "14", false)
	checkEvents(t, h, "serve /large", "done /large", "serve /now/after")
}

func TestDeferredResponseDoneInServe(t *testing.T) {
	// A handler that defers and calls Done before Serve returns answers
	// as any other: the requests pipelined behind it are served at once.
	// Defer refuses a second time (the handler answers again=false).
	h := newDeferringHandler(1)
	addr := serveDeferring(t, &Server{Handler: h})
	c, br := dial(t, addr)
	send(t, c, "GET /sync/1 HTTP/1.1\r\nHost: h\r\n\r\n"+
		"GET /sync/2 HTTP/1.1\r\nHost: h\r\n\r\n"+
		"GET /now/3 HTTP/1.1\r\nHost: h\r\n\r\n")
	checkAnswer(t, br, "sync /sync/1 again=false", "24", false)
	checkAnswer(t, br, "sync /sync/2 again=false", "24", false)
	checkAnswer(t, br, "now /now/3", "10", false)
	checkEvents(t, h, "serve /sync/1", "done /sync/1", "serve /sync/2", "done /sync/2", "serve /now/3")
	if len(h.deferred) != 0 {
		t.Errorf("%d responses left deferred, want none", len(h.deferred))
	}
}

func TestDeferredResponseConnectionClose(t *testing.T) {
	// A request with Connection: close: once its deferred response is
	// done, the server closes the connection, leaving a request
	// pipelined behind it unanswered.
	for _, tc := range []struct {
		name      string
		pipelined string
	}{
		{"alone", ""},
		{"with a request behind", "GET /now/behind HTTP/1.1\r\nHost: h\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newDeferringHandler(1)
			addr := serveDeferring(t, &Server{Handler: h})
			c, br := dial(t, addr)
			send(t, c, "GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"+tc.pipelined)
			h.next(t).answer(t)
			checkAnswer(t, br, "answer to /last", "15", true)
			expectEOF(t, br)
			checkEvents(t, h, "serve /last", "done /last")
		})
	}
}

func TestDeferredResponseShutdown(t *testing.T) {
	// Shutdown while a response is deferred waits for it: it reaches the
	// client whole, then the connection closes.
	h := newDeferringHandler(1)
	s := &Server{Handler: h}
	addr := serveDeferring(t, s)
	c, br := dial(t, addr)
	send(t, c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	d := h.next(t)
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }() // ends once the connection has closed
	d.answer(t)
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != 200 || body != "answer to /slow" {
		t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, "answer to /slow")
	}
	expectEOF(t, br)
	c.Close() // ends the server's lingering close, if it lingers
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(hangTimeout):
		t.Fatalf("Shutdown did not return within %v", hangTimeout)
	}
}

func TestDeferRefusedOffTheLoop(t *testing.T) {
	// Off the loop, Loop returns nil and Defer refuses: for a request a
	// LoopServer leaves to a goroutine, and on a server that runs Serve
	// on a listener.
	t.Run("detached", func(t *testing.T) {
		addr := serveDeferring(t, &Server{Handler: newDeferringHandler(1)})
		c, br := dial(t, addr)
		send(t, c, "GET /off HTTP/1.1\r\nHost: h\r\n\r\n")
		resp, body := readResponse(t, br, "GET")
		if on := resp.Header.Get("X-On"); resp.StatusCode != 200 || body != "loop=<nil> defer=false" || on != "goroutine" {
			t.Errorf("got %d %q served on %q, want 200 %q on a goroutine", resp.StatusCode, body, on, "loop=<nil> defer=false")
		}
	})
	t.Run("Serve", func(t *testing.T) {
		addr := serveGoroutines(t, &Server{Handler: newDeferringHandler(1)}, goleak.IgnoreCurrent())
		c, br := dial(t, addr)
		send(t, c, "GET /off HTTP/1.1\r\nHost: h\r\n\r\n"+"GET /defer HTTP/1.1\r\nHost: h\r\n\r\n")
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "loop=<nil> defer=false" {
			t.Errorf("/off: got %d %q, want 200 %q", resp.StatusCode, body, "loop=<nil> defer=false")
		}
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 500 || body != "not on a netpoll loop" {
			t.Errorf("/defer: got %d %q, want 500 %q", resp.StatusCode, body, "not on a netpoll loop")
		}
	})
}

func TestDeferredResponseHandlerPanics(t *testing.T) {
	// A handler that panics after it deferred has its deferral undone:
	// the client gets a 500 and the connection closes, as after any
	// panic; the handler hears nothing more (no Gone); the loop goes on.
	h := newDeferringHandler(1)
	addr := serveDeferring(t, &Server{Handler: h, Loops: 1})
	expectExchange(t, addr, "GET /panic HTTP/1.1\r\nHost: h\r\n\r\n", errorResponse(500, ""))
	d := h.next(t)
	d.onLoop(t, func() {}) // after the loop's turn that closed the connection
	if n := d.gones.Load(); n != 0 {
		t.Errorf("Gone called %d times for a deferral undone by a panic, want never", n)
	}
	c, br := dial(t, addr)
	send(t, c, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	h.next(t).answer(t)
	checkAnswer(t, br, "answer to /next", "15", false)
}

func TestDeferredResponseWriteTimeout(t *testing.T) {
	// A deferred response whose client stops reading is cut off
	// WriteTimeout after the output last moved: the handler hears of it
	// (Gone).
	const wt = 300 * time.Millisecond
	h := newDeferringHandler(1)
	addr := serveDeferring(t, &Server{Handler: h, WriteTimeout: wt})
	start := time.Now()           // before the connection opens: before any progress of its output
	c := rawDial(t, addr, 64<<10) // a small receive window, never read
	send(t, c, "GET /stalled HTTP/1.1\r\nHost: h\r\n\r\n")
	d := h.next(t)
	piece := make([]byte, 256<<10)
	var werr error
	d.onLoop(t, func() {
		d.w.Header().Set("Content-Length", strconv.Itoa(1<<30))
		for written := 0; d.lw.Queued() == 0 && werr == nil; written += len(piece) {
			if written >= 256<<20 {
				werr = fmt.Errorf("the output never queued after %d bytes", written)
				return
			}
			_, werr = d.w.Write(piece)
		}
	})
	if werr != nil {
		t.Fatalf("writing until the output queues: %v", werr)
	}
	awaitGone(t, d)
	if elapsed := time.Since(start); elapsed < wt {
		t.Errorf("cut off after %v, want not before %v", elapsed, wt)
	}
}
