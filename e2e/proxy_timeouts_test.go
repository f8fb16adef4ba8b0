package e2e

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
	"github.com/anx-gateway/anx/internal/testlisten"
)

// TestProxyConnectTimeout: an upstream whose accept queue is full never
// completes the TCP handshake. With connect_timeout = "1s" and a healthy
// second upstream (lb_policy "first"), a POST over h1, h2 and h3 is
// answered 200 by the second, body intact, counted there once, after at
// least the connect timeout (nothing was sent, so any method is retried).
// With the unreachable upstream alone the answer is 504 (as nginx answers
// a proxy_connect_timeout) after 1 s and well before the default 5 s. No
// connect got through: the accept queue holds only the test's own.
func TestProxyConnectTimeout(t *testing.T) {
	t.Parallel()
	hole, queued := testlisten.FullAcceptQueue(t)
	inQueue := queued()
	up := startUpstream(t, upstreamConfig{Name: "live"})
	site := route("/two/", proxyTo("http://"+hole, up.URL()), `lb_policy = "first"`, `connect_timeout = "1s"`, "max_fails = 0") +
		route("/one/", proxyTo("http://"+hole), `connect_timeout = "1s"`, "max_fails = 0")
	s := startProxy(t, proxyConfig("", site), proxyFailures...)
	for _, p := range harness.Protos {
		c := s.Client(p)
		before := up.Counts(t).Paths["/two/echo"]
		data := []byte("posted over " + string(p))
		start := time.Now()
		e := echoOf(t, string(p)+" POST past the unreachable upstream",
			s.Do(p, c, harness.Request{Method: http.MethodPost, Target: "/two/echo", Body: data}))
		took := time.Since(start)
		if e.Server != "live" || e.Body != string(data) {
			t.Errorf("%s POST: answered by %q with body %q, want \"live\" and %q", p, e.Server, e.Body, data)
		}
		if n := up.Counts(t).Paths["/two/echo"] - before; n != 1 {
			t.Errorf("%s POST: counted %d times by the live upstream, want 1", p, n)
		}
		if took < 900*time.Millisecond {
			t.Errorf("%s POST: answered in %v, want at least the 1 s connect timeout (the unreachable upstream tried first)", p, took)
		}
		start = time.Now()
		r := get(s, p, c, "/one/x")
		alone := time.Since(start)
		t.Logf("%s: POST retried on the live upstream after a connect timeout in %v; the unreachable upstream alone: %d in %v",
			p, took.Round(time.Millisecond), r.Status, alone.Round(time.Millisecond))
		if r.Err != nil || r.Status != http.StatusGatewayTimeout {
			t.Errorf("%s unreachable upstream alone: status %d (err %v), want 504", p, r.Status, r.Err)
		}
		checkErrorBody(t, string(p)+" 504", r.Body, hole)
		if alone < 900*time.Millisecond || alone > 4*time.Second {
			t.Errorf("%s unreachable upstream alone: answered in %v, want about the 1 s connect timeout (not the 5 s default)", p, alone)
		}
	}
	if n := queued(); n != inQueue {
		t.Errorf("the full listener's accept queue holds %d connections, was %d: a connect got through", n, inQueue)
	}
	if !loggedFailure(s.Stderr(), hole) {
		t.Errorf("no log line names the connect timeout of %s with its route and reason", hole)
	}
}

// acceptCounter is a loopback listener of the test process that counts
// the connections anx opens to it. It closes each at once (a connection
// that fails before any answer), or, holding, keeps it open reading
// until the peer closes (an upstream that never answers). A connection
// from 127.0.0.2 is the test's own marker, not counted: accepts come in
// order, so once the marker is accepted every earlier connection is
// counted. Its accept loop and the per-connection goroutines end when
// the test's cleanup closes the listener and the held connections.
type acceptCounter struct {
	ln      net.Listener
	hold    bool
	n       atomic.Int64      // connections accepted, markers not counted
	markers chan struct{}     // one per marker accepted
	mu      sync.Mutex        // guards conns
	conns   map[net.Conn]bool // held connections, closed at cleanup
}

// newAcceptCounter starts an acceptCounter on a free loopback port.
func newAcceptCounter(t *testing.T, hold bool) *acceptCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &acceptCounter{ln: ln, hold: hold, markers: make(chan struct{}, 16), conns: map[net.Conn]bool{}}
	done := make(chan struct{})
	go a.acceptLoop(done)
	t.Cleanup(func() {
		ln.Close()
		<-done
		a.mu.Lock()
		for c := range a.conns {
			c.Close()
		}
		a.mu.Unlock()
	})
	return a
}

func (a *acceptCounter) acceptLoop(done chan<- struct{}) {
	defer close(done)
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		if c.RemoteAddr().(*net.TCPAddr).IP.Equal(net.IPv4(127, 0, 0, 2)) {
			c.Close()
			a.markers <- struct{}{}
			continue
		}
		a.n.Add(1)
		if !a.hold {
			c.Close()
			continue
		}
		a.mu.Lock()
		a.conns[c] = true
		a.mu.Unlock()
		go func() {
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		}()
	}
}

// URL returns the listener's http URL.
func (a *acceptCounter) URL() string { return "http://" + a.ln.Addr().String() }

// Settled returns the connections accepted so far, once every connection
// made before the call has been accepted (a marker connection from
// 127.0.0.2 went through the queue behind them).
func (a *acceptCounter) Settled(t *testing.T) int64 {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: harness.SafetyNet}
	c, err := d.Dial("tcp", a.ln.Addr().String())
	if err != nil {
		t.Fatalf("marker connection to %s: %v", a.ln.Addr(), err)
	}
	defer c.Close()
	select {
	case <-a.markers:
	case <-time.After(harness.SafetyNet):
		t.Fatalf("the marker connection to %s was not accepted within %v", a.ln.Addr(), harness.SafetyNet)
	}
	return a.n.Load()
}

// acceptCounters starts n acceptCounters.
func acceptCounters(t *testing.T, n int, hold bool) []*acceptCounter {
	out := make([]*acceptCounter, n)
	for i := range out {
		out[i] = newAcceptCounter(t, hold)
	}
	return out
}

// settledTotal sums Settled over cs, and returns each.
func settledTotal(t *testing.T, cs []*acceptCounter) (int64, []int64) {
	var sum int64
	each := make([]int64, len(cs))
	for i, c := range cs {
		each[i] = c.Settled(t)
		sum += each[i]
	}
	return sum, each
}

// counterURLs returns the URLs of cs.
func counterURLs(cs []*acceptCounter) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.URL()
	}
	return out
}

// TestProxyMaxTries: three upstreams that accept and close every
// connection at once. With max_tries = 2 each GET makes exactly 2
// connection attempts (counted at the listeners) and gets 502; with
// max_tries = 3, exactly 3. Passive health is off, so that every
// upstream stays eligible.
func TestProxyMaxTries(t *testing.T) {
	t.Parallel()
	two, three := acceptCounters(t, 3, false), acceptCounters(t, 3, false)
	site := route("/two/", proxyTo(counterURLs(two)...), "max_tries = 2", "max_fails = 0") +
		route("/three/", proxyTo(counterURLs(three)...), "max_tries = 3", "max_fails = 0")
	s := startProxy(t, proxyConfig("", site), proxyFailures...)
	cases := []struct {
		prefix string
		cs     []*acceptCounter
		tries  int64
	}{{"/two/", two, 2}, {"/three/", three, 3}}
	const requests = 5
	for _, tc := range cases {
		c := s.Client(harness.H1)
		for i := range requests {
			before, _ := settledTotal(t, tc.cs)
			r := get(s, harness.H1, c, tc.prefix+"x")
			after, each := settledTotal(t, tc.cs)
			if r.Err != nil || r.Status != http.StatusBadGateway {
				t.Errorf("%s request %d: status %d (err %v), want 502", tc.prefix, i, r.Status, r.Err)
			}
			if got := after - before; got != tc.tries {
				t.Errorf("%s request %d: %d connection attempts, want exactly %d (max_tries)", tc.prefix, i, got, tc.tries)
			}
			if i == requests-1 {
				t.Logf("max_tries = %d: %d GETs made %d connection attempts in all, per upstream %v", tc.tries, requests, after, each)
			}
		}
	}
}

// TestProxyTryDuration: three upstreams that accept and never answer,
// response_header_timeout = "2s", max_tries = 3. With try_duration =
// "1s" the first attempt alone outlasts the budget: exactly 1 connection
// attempt, 504 after about 2 s. With try_duration = "60s" all three are
// tried: exactly 3 attempts, 504 after about 6 s.
func TestProxyTryDuration(t *testing.T) {
	t.Parallel()
	short, long := acceptCounters(t, 3, true), acceptCounters(t, 3, true)
	opts := []string{`response_header_timeout = "2s"`, "max_tries = 3", "max_fails = 0"}
	site := route("/short/", append([]string{proxyTo(counterURLs(short)...), `try_duration = "1s"`}, opts...)...) +
		route("/long/", append([]string{proxyTo(counterURLs(long)...), `try_duration = "60s"`}, opts...)...)
	s := startProxy(t, proxyConfig("", site), proxyFailures...)
	cases := []struct {
		prefix  string
		cs      []*acceptCounter
		tries   int64
		atLeast time.Duration
	}{{"/short/", short, 1, 1900 * time.Millisecond}, {"/long/", long, 3, 5900 * time.Millisecond}}
	for _, tc := range cases {
		start := time.Now()
		r := get(s, harness.H1, s.Client(harness.H1), tc.prefix+"x")
		took := time.Since(start)
		total, each := settledTotal(t, tc.cs)
		t.Logf("%s: %d in %v after %d connection attempts (per upstream %v)", tc.prefix, r.Status, took.Round(time.Millisecond), total, each)
		if r.Err != nil || r.Status != http.StatusGatewayTimeout {
			t.Errorf("%s: status %d (err %v), want 504", tc.prefix, r.Status, r.Err)
		}
		if total != tc.tries {
			t.Errorf("%s: %d connection attempts, want exactly %d", tc.prefix, total, tc.tries)
		}
		if took < tc.atLeast {
			t.Errorf("%s: answered in %v, want at least %v (%d response header timeouts of 2 s)", tc.prefix, took, tc.atLeast, tc.tries)
		}
	}
}

// curlOutcome is what one curl run reported.
type curlOutcome struct {
	Exit  int
	Bytes int64 // body bytes received
	Took  time.Duration
	Err   string // curl's error message
}

// curlCut runs curl over one protocol for path through s and reports its
// exit code, body size and time; a non-zero exit is the point, not a
// failure.
func curlCut(t *testing.T, s *harness.Server, curl, flag, path string) curlOutcome {
	t.Helper()
	start := time.Now()
	r := harness.RunCmd(t, s.Dir, harness.PeerTimeout, curl,
		append(curlArgs(s), flag, "-o", "/dev/null", "-w", "%{size_download}", s.URL(path))...)
	n, _ := strconv.ParseInt(strings.TrimSpace(r.Stdout), 10, 64)
	return curlOutcome{Exit: r.ExitCode, Bytes: n, Took: time.Since(start), Err: strings.TrimSpace(r.Stderr)}
}

// TestProxyReadTimeout: an upstream sends a 200 head with Content-Length
// 2000 and 1000 body bytes, then stalls. With read_timeout = "1s", curl
// over h1, h2 and h3 sees the response cut: a transfer error (not 0, not
// its own --max-time 60 s, code 28), fewer than 2000 bytes, after at
// least 1 s and well before curl's own limit. Exit codes, bytes and
// times are logged.
func TestProxyReadTimeout(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "stall"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()), `read_timeout = "1s"`, "max_fails = 0")), proxyFailures...)
	for _, p := range curlPeers(t) {
		o := curlCut(t, s, p.curl, p.flag, "/stall?size=2000")
		t.Logf("%s: curl exit %d, %d of 2000 bytes, in %v: %s", p.proto, o.Exit, o.Bytes, o.Took.Round(time.Millisecond), o.Err)
		if o.Exit == 0 || o.Exit == 28 {
			t.Errorf("%s: curl exit %d, want a transfer error (the response cut by read_timeout)", p.proto, o.Exit)
		}
		if o.Bytes >= 2000 {
			t.Errorf("%s: %d bytes received, want fewer than the 2000 announced", p.proto, o.Bytes)
		}
		if o.Took < 900*time.Millisecond || o.Took > 30*time.Second {
			t.Errorf("%s: cut after %v, want about the 1 s read_timeout", p.proto, o.Took)
		}
	}
	if n := up.Counts(t).Paths["/stall"]; n != 3 {
		t.Errorf("the upstream counted %d requests of /stall, want 3 (no retry once response bytes went out)", n)
	}
}

// TestProxyResponseHeaderTimeout: with response_header_timeout = "1s"
// and max_tries = 1, an upstream that sends no head gets the client a
// 504 over h1, h2 and h3 after at least 1 s (logged), counted once
// upstream; one that answers after 200 ms is passed on (200).
func TestProxyResponseHeaderTimeout(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "slow"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()), `response_header_timeout = "1s"`, "max_tries = 1", "max_fails = 0")), proxyFailures...)
	for _, p := range harness.Protos {
		c := s.Client(p)
		before := up.Counts(t).Paths["/slow"]
		start := time.Now()
		r := get(s, p, c, "/slow?delay=forever")
		took := time.Since(start)
		if r.Err != nil || r.Status != http.StatusGatewayTimeout {
			t.Errorf("%s no head: status %d (err %v), want 504", p, r.Status, r.Err)
		}
		if took < 900*time.Millisecond {
			t.Errorf("%s no head: 504 after %v, want at least the 1 s response_header_timeout", p, took)
		}
		if n := up.Counts(t).Paths["/slow"] - before; n != 1 {
			t.Errorf("%s no head: counted %d times upstream, want 1 (max_tries = 1)", p, n)
		}
		ok := get(s, p, c, "/slow?delay=200ms")
		t.Logf("%s: no head -> %d after %v; head after 200 ms -> %d %q", p, r.Status, took.Round(time.Millisecond), ok.Status, bytes.TrimSpace(ok.Body))
		if ok.Err != nil || ok.Status != http.StatusOK || string(ok.Body) != "slow answer\n" {
			t.Errorf("%s head after 200 ms: status %d body %q (err %v), want 200 \"slow answer\"", p, ok.Status, ok.Body, ok.Err)
		}
	}
}
