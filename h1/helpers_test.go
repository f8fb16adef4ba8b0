package h1

import (
	"bufio"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/anx-gateway/anx/core/message"
)

// TestMain fails the run if goroutines started by the tests are still
// alive once every test has passed; serve checks each test on its own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// serveMode is how serve runs a Server: "loop" on the event loops with
// the handler as it is (a handler that does not say it is NonBlocking
// gets every request on a goroutine: the detached path), "fast" on the
// loops with the handler declared NonBlocking (requests without content
// are served on the loop), or "goroutine" with Serve on a net.Listener.
// make test runs the package in every mode.
var serveMode = flag.String("h1.serve", "fast", "how serve runs the server: fast, loop or goroutine")

// serve starts s on loopback and returns its address. At cleanup it
// closes s, checks that it stopped cleanly and that every goroutine
// started since serve was called has ended.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	before := goleak.IgnoreCurrent()
	if *serveMode == "goroutine" {
		return serveGoroutines(t, s, before)
	}
	if _, declared := s.Handler.(message.NonBlocking); *serveMode == "fast" && s.Handler != nil && !declared {
		s.Handler = nonBlocking{s.Handler}
	}
	return serveLoops(t, s, before)
}

// serveLoops runs s on its event loops on loopback and returns its
// address; at cleanup it closes s and checks that every goroutine started
// since before has ended.
func serveLoops(t *testing.T, s *Server, before goleak.Option) string {
	t.Helper()
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		goleak.VerifyNone(t, before)
	})
	return s.Addr().String()
}

// nonBlocking declares a test's handler NonBlocking.
type nonBlocking struct{ message.Handler }

func (nonBlocking) NonBlocking() bool { return true }

// mayBlock declares that a test's handler blocks or streams large bodies,
// so that serve never runs it on a loop.
type mayBlock struct{ message.Handler }

func (mayBlock) NonBlocking() bool { return false }

// serveGoroutines runs s with Serve on a loopback listener.
func serveGoroutines(t *testing.T, s *Server, before goleak.Option) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		goleak.VerifyNone(t, before)
	})
	return ln.Addr().String()
}

// dial connects to addr; the connection is closed at cleanup and every
// read or write on it fails after a few seconds rather than hanging.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// send writes raw to c.
func send(t *testing.T, c net.Conn, raw string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("writing request: %v", err)
	}
}

// readResponse reads one response (to a request of the given method) and
// its whole body.
func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	return resp, string(body)
}

// expectEOF checks that the server closes the connection without sending
// anything more.
func expectEOF(t *testing.T, br *bufio.Reader) {
	t.Helper()
	rest, err := io.ReadAll(br)
	if err != nil && !isReset(err) {
		t.Errorf("waiting for the server to close: %v", err)
	}
	if len(rest) > 0 {
		t.Errorf("server sent %q after the last response, want nothing", rest)
	}
}

// isReset reports whether err is a connection reset.
func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// exchange sends raw on a new connection and returns all the server sends
// until it closes the connection, with the Date value masked.
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, br := dial(t, addr)
	send(t, c, raw)
	out, err := io.ReadAll(br)
	if err != nil && !isReset(err) {
		t.Fatalf("reading: %v (got %q)", err, out)
	}
	return maskDate(string(out))
}

// expectExchange checks that raw, sent on a new connection, gets exactly
// want (with the Date value masked) before the server closes the
// connection.
func expectExchange(t *testing.T, addr, raw, want string) {
	t.Helper()
	if got := exchange(t, addr, raw); got != want {
		t.Errorf("%q:\ngot  %q\nwant %q", raw, got, want)
	}
}

// maskDate replaces the value of every Date field with "X".
func maskDate(s string) string {
	return dateField.ReplaceAllString(s, "Date: X\r\n")
}

var dateField = regexp.MustCompile(`Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n`)

// recorder is a handler that remembers what it served and answers with a
// description of the request.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (rec *recorder) Serve(w message.ResponseWriter, r *message.Request) {
	body, err := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.seen = append(rec.seen, r.Method+" "+r.Path)
	rec.mu.Unlock()
	if err != nil {
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, r.Method+" "+r.Path+" q="+r.RawQuery+" host="+r.Host+" body="+string(body))
}

// requests returns what the recorder served.
func (rec *recorder) requests() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.seen...)
}

// Short names for handler signatures in test tables.
type (
	mrw         = message.ResponseWriter
	mreq        = message.Request
	handlerFunc = message.HandlerFunc
)

// waitFor polls cond until it holds, failing the test after 5 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
	}
}
