//go:build !race

// The allocation tests count the allocations of the whole process, which
// the race detector's instrumentation adds to: they are left out of -race
// builds rather than skipped. make test runs them in every serve mode:
//
//	go test -count=1 -run Alloc ./h1 -args -h1.serve=fast
//	go test -count=1 -run Alloc ./h1 -args -h1.serve=loop
//	go test -count=1 -run Alloc ./h1 -args -h1.serve=goroutine

package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// The answer to browserRequest from helloHandler around its Date value,
// an IMF-fixdate (RFC 9110 section 5.6.7).
const (
	helloBeforeDate = "HTTP/1.1 200 OK\r\nDate: "
	helloAfterDate  = "\r\nServer: anx\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"
)

// imfFixdateLen is the length of an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT".
const imfFixdateLen = 29

// keepAliveAllocs is the most a keep-alive request for helloHandler may
// allocate in each serve mode (serveMode), counted over the process (the
// test's client side allocates nothing):
//   - fast: served on the loop, where the head's strings point into the
//     input and the exchange is the loop's: nothing.
//   - goroutine: one goroutine per connection, which keeps its conn and
//     buffers across requests; the head becomes one string per request.
//   - loop: the handler may block, so every request goes off the loop to
//     a goroutine (loopConn.detach) and comes back (reattach). Measured
//     at 24 with Go 1.26 (go test -memprofile): netpoll.Conn.Detach
//     makes a net.Conn of a duplicate of the socket (net.FileConn: 2
//     os.Files, 2+2 sockaddrs, the netFD, the TCPConn and its raw conn:
//     9), h1 a new conn for it (newConn, initWait: 2) whose headers
//     grow from empty, to browserRequest's 14 fields (5) and
//     helloHandler's 2 (2), the head string (1), the closures of
//     detach, goOff, serveDetached and reattach (4) and netpoll's
//     Attach (1). A change to this path shows here first.
var keepAliveAllocs = map[string]float64{"fast": 0, "goroutine": 1, "loop": 24}

func TestKeepAliveRequestAllocations(t *testing.T) {
	// Per keep-alive request the server allocates nothing on the loop
	// (the head's strings point into the input, which the handler runs
	// before the loop reuses) and only the head string on a goroutine:
	// buffers come from the pool, the Date line from the per-second
	// cache, the request and response structs are reused.
	want, ok := keepAliveAllocs[*serveMode]
	if !ok {
		t.Fatalf("no allocation bound for -h1.serve=%s", *serveMode)
	}
	allocs := keepAliveRequestAllocs(t, helloHandler)
	if allocs > want {
		t.Errorf("-h1.serve=%s: a keep-alive request allocates %v times, want at most %v", *serveMode, allocs, want)
	}
	t.Logf("-h1.serve=%s: %v allocations per keep-alive request", *serveMode, allocs)
}

// dispatchedAllocs is the most a keep-alive request for helloHandler
// behind a message.Dispatcher that declares it NonBlocking may allocate:
// on the loops (fast and loop: serve does not wrap a handler that says
// whether it blocks) nothing, as without the Dispatcher; with Serve the
// head string.
var dispatchedAllocs = map[string]float64{"fast": 0, "loop": 0, "goroutine": 1}

func TestDispatchedKeepAliveRequestAllocations(t *testing.T) {
	// The loop asks the Dispatcher for each request's handler
	// (message.IsNonBlockingFor): that decision allocates nothing.
	want, ok := dispatchedAllocs[*serveMode]
	if !ok {
		t.Fatalf("no allocation bound for -h1.serve=%s", *serveMode)
	}
	h := routes{static: nonBlocking{helloHandler}, app: mayBlock{helloHandler}}
	allocs := keepAliveRequestAllocs(t, h)
	if allocs > want {
		t.Errorf("-h1.serve=%s: a keep-alive request through a Dispatcher allocates %v times, want at most %v", *serveMode, allocs, want)
	}
	t.Logf("-h1.serve=%s: %v allocations per keep-alive request through a Dispatcher", *serveMode, allocs)
}

// keepAliveRequestAllocs serves h, which must answer browserRequest as
// helloHandler does, and returns the allocations of the whole process
// per keep-alive request (the test's client side allocates nothing).
func keepAliveRequestAllocs(t *testing.T, h message.Handler) float64 {
	t.Helper()
	addr := serve(t, &Server{Handler: h})
	c, br := dial(t, addr)
	return roundAllocs(t, c, br)
}

// roundAllocs sends browserRequest on c and reads helloHandler's answer
// from br, over and over, and returns the allocations of the whole
// process per round.
func roundAllocs(t *testing.T, c io.Writer, br *bufio.Reader) float64 {
	t.Helper()
	req := []byte(browserRequest)
	out := make([]byte, len(helloBeforeDate)+imfFixdateLen+len(helloAfterDate))
	answers, wrong := 0, 0 // answers read, and those that were not that answer
	exchange := func() {
		answers++
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(br, out); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(out, []byte(helloBeforeDate)) || !bytes.HasSuffix(out, []byte(helloAfterDate)) {
			wrong++
		}
	}
	exchange() // warms the pools and the connection
	allocs := testing.AllocsPerRun(2000, exchange)
	if wrong > 0 {
		t.Errorf("%d answers of %d were not %q + date + %q; the last: %q",
			wrong, answers, helloBeforeDate, helloAfterDate, out)
	}
	date := string(out[len(helloBeforeDate):][:imfFixdateLen])
	if _, err := time.Parse(http.TimeFormat, date); err != nil {
		t.Errorf("the last answer's Date %q is not an IMF-fixdate: %v", date, err)
	}
	return allocs
}

// loopTLSKeepAliveAllocs is the most a keep-alive request for
// helloHandler may allocate over TLS on the loop, counted over the
// process (the test's crypto/tls client included). The decryption buffer
// is the loop's (tls/onloop) and crypto/tls reuses its record buffers,
// but each of its reads from the network allocates a small reader
// (tls.Conn.readFromUntil, Go 1.26): the server's read of the request,
// its read that finds no more input (netpoll.ErrNoInput), and the
// client's read of the response. Measured with go test -memprofile.
const loopTLSKeepAliveAllocs = 3

func TestLoopTLSKeepAliveRequestAllocations(t *testing.T) {
	l := serveLoopTLS(t, &Server{Handler: nonBlocking{helloHandler}})
	c, br := l.dial(t)
	allocs := roundAllocs(t, c, br)
	if allocs > loopTLSKeepAliveAllocs {
		t.Errorf("a keep-alive request over TLS on the loop allocates %v times, want at most %v", allocs, loopTLSKeepAliveAllocs)
	}
	t.Logf("%v allocations per keep-alive request over TLS on the loop", allocs)
}

// countingObserver counts the exchanges it sees, as cheaply as an
// Observer can.
type countingObserver struct{ n atomic.Int64 }

func (o *countingObserver) Observe(*message.Request, *message.Outcome) { o.n.Add(1) }

func TestObservedKeepAliveRequestAllocations(t *testing.T) {
	// An Observer adds no allocation: the request and the Outcome it
	// sees are the connection's own, reused.
	want, ok := keepAliveAllocs[*serveMode]
	if !ok {
		t.Fatalf("no allocation bound for -h1.serve=%s", *serveMode)
	}
	obs := &countingObserver{}
	addr := serve(t, &Server{Handler: helloHandler, Observer: obs})
	c, br := dial(t, addr)
	allocs := roundAllocs(t, c, br)
	if allocs > want {
		t.Errorf("-h1.serve=%s: an observed keep-alive request allocates %v times, want at most %v", *serveMode, allocs, want)
	}
	if obs.n.Load() == 0 {
		t.Error("the Observer saw no exchange")
	}
}
