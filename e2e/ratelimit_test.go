package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/anx-gateway/anx/e2e/harness"
)

// The limit of the flood tests: nginx's `limit_req zone=... burst=20
// nodelay` at rate=100r/s.
const (
	floodRate  = 100 // per second
	floodBurst = 20
	// floodFor is how long each flood lasts: the 10 s, in which
	// the burst and a few milliseconds of timing at either end stay well
	// inside the 5% tolerance (1020 allowed, give or take 51).
	floodFor = 10 * time.Second
	// floodPace is the flood's request rate, ten times the limit.
	floodPace = 1000
	// quietPace is the other client's rate: a tenth of the limit.
	quietPace = 10
	// rateFloodWorkers is how many requests of the flood are in flight at
	// most.
	rateFloodWorkers = 16
)

// rateLimitRoute is a site, without access log, whose /limited/ route
// answers "ok" under the rate_limit table limit, and whose /free/ route
// has none.
func rateLimitRoute(limit string) string {
	return proxyConfig("", "access_log = \"off\"\n"+route("/limited/", `respond = "ok\n"`, "rate_limit = "+limit)+route("/free/", `respond = "free\n"`))
}

// TestRateLimitFlood: with rate = "100/s", burst = 20 (nodelay) and one
// client sending 1000 req/s, the number of 200s is 100 per second of the
// flood plus the burst, within 5% (nginx's limit_req allows exactly
// that), and every other answer is a 429 with a Retry-After of at least
// 1 second; a second client at 10 req/s gets no error. Over h1, h2 and
// h3 keyed by client address (the second client comes from 127.0.0.2),
// and keyed by a header field (the second client sends another value).
//
// It does not run in parallel with other tests: a stall of anx longer
// than burst/rate (200 ms) loses allowance, as it would with nginx, and
// the count is exact only on a machine that keeps up.
func TestRateLimitFlood(t *testing.T) {
	byIP := rateLimitRoute(fmt.Sprintf(`{ rate = "%d/s", burst = %d, nodelay = true }`, floodRate, floodBurst))
	byHeader := rateLimitRoute(fmt.Sprintf(`{ rate = "%d/s", burst = %d, nodelay = true, key = "header:X-Client" }`, floodRate, floodBurst))
	for _, c := range []struct {
		name  string
		cfg   string
		proto harness.Proto
	}{
		{"client_ip/h1", byIP, harness.H1},
		{"client_ip/h2", byIP, harness.H2},
		{"client_ip/h3", byIP, harness.H3},
		{"header/h2", byHeader, harness.H2},
		{"header/h1", byHeader, harness.H1},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := startProxy(t, c.cfg)
			var loud, quiet floodSender
			if strings.HasPrefix(c.name, "header") {
				loud = floodSender{client: clientFrom(t, s, c.proto, "127.0.0.1"), header: "loud"}
				quiet = floodSender{client: clientFrom(t, s, c.proto, "127.0.0.1"), header: "quiet"}
			} else {
				loud = floodSender{client: clientFrom(t, s, c.proto, "127.0.0.1")}
				quiet = floodSender{client: clientFrom(t, s, c.proto, "127.0.0.2")}
			}
			// Connect first (16 connections for h1), so that the flood's
			// time is the limiter's, not the handshakes'.
			loud.warmUp(s.URL("/free/"), rateFloodWorkers)
			url := s.URL("/limited/x")
			var wg sync.WaitGroup
			var q floodTally
			stop := make(chan struct{})
			wg.Go(func() { quiet.run(url, quietPace, 1, stop, &q) })
			var l floodTally
			start := time.Now()
			loud.runFor(url, floodPace, rateFloodWorkers, floodFor, &l)
			elapsed := time.Since(start)
			close(stop)
			wg.Wait()

			want := floodRate*elapsed.Seconds() + floodBurst
			ok, limited := l.ok.Load(), l.limited.Load()
			t.Logf("%s: %d requests in %v (%.0f/s): %d 200, %d 429; want %.0f 200 (±5%%); the other client: %d 200",
				c.name, ok+limited+l.other.Load(), elapsed.Round(time.Millisecond), float64(ok+limited)/elapsed.Seconds(), ok, limited, want, q.ok.Load())
			if d := float64(ok) - want; d > want*0.05 || d < -want*0.05 {
				t.Errorf("%d requests got 200, want %.0f ± 5%% (100/s over %v, plus the burst of 20)", ok, want, elapsed)
			}
			if n := l.other.Load(); n > 0 {
				t.Errorf("the flood got %d answers that were neither 200 nor 429 with a Retry-After of 1 s or more; first: %s", n, l.firstOther())
			}
			if limited < int64(float64(floodRate)*floodFor.Seconds()) {
				t.Errorf("only %d requests got 429: the flood did not outrun the limit", limited)
			}
			if n := q.other.Load() + q.limited.Load(); n > 0 || q.ok.Load() < int64(quietPace*floodFor.Seconds()/2) {
				t.Errorf("the other client: %d answered 200, %d not (first: %s); want every one 200", q.ok.Load(), n, q.firstOther())
			}
			if r := get(s, c.proto, s.Client(c.proto), "/free/"); r.Status != http.StatusOK {
				t.Errorf("the route without a limit, after the flood: %d %v", r.Status, r.Err)
			}
		})
	}
}

// floodSender sends GETs with one client; header, when set, is the
// value of X-Client.
type floodSender struct {
	client *http.Client
	header string
}

// floodTally counts the answers of a flood.
type floodTally struct {
	ok, limited, other atomic.Int64
	mu                 sync.Mutex
	first              string // the first answer counted in other
}

func (f *floodTally) firstOther() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.first
}

func (f *floodTally) count(r harness.Response) {
	switch {
	case r.Err == nil && r.Status == http.StatusOK:
		f.ok.Add(1)
		return
	case r.Err == nil && r.Status == http.StatusTooManyRequests:
		if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err == nil && n >= 1 {
			f.limited.Add(1)
			return
		}
	}
	f.other.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.first == "" {
		f.first = fmt.Sprintf("status %d, Retry-After %q, error %v", r.Status, r.Header.Get("Retry-After"), r.Err)
	}
}

// warmUp sends n requests to url at once, so that the client has its
// connections open.
func (f floodSender) warmUp(url string, n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { f.get(url) })
	}
	wg.Wait()
}

// runFor sends perSecond requests a second to url from workers
// goroutines for d.
func (f floodSender) runFor(url string, perSecond, workers int, d time.Duration, tally *floodTally) {
	stop := make(chan struct{})
	timer := time.AfterFunc(d, func() { close(stop) })
	defer timer.Stop()
	f.run(url, perSecond, workers, stop, tally)
}

// run sends perSecond requests a second to url from workers goroutines
// until stop closes, and returns when every answer is counted.
func (f floodSender) run(url string, perSecond, workers int, stop <-chan struct{}, tally *floodTally) {
	tokens := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range tokens {
				tally.count(f.get(url))
			}
		})
	}
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			close(tokens)
			wg.Wait()
			return
		case <-tick.C:
			select {
			case tokens <- struct{}{}:
			default: // every worker busy: the flood runs as fast as the machine goes
			}
		}
	}
}

func (f floodSender) get(url string) harness.Response {
	ctx, cancel := context.WithTimeout(context.Background(), harness.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return harness.Response{Err: err}
	}
	if f.header != "" {
		req.Header.Set("X-Client", f.header)
	}
	res, err := f.client.Do(req)
	if err != nil {
		return harness.Response{Err: err}
	}
	defer res.Body.Close()
	_, err = io.Copy(io.Discard, res.Body)
	return harness.Response{Status: res.StatusCode, Header: res.Header, Err: err}
}

// clientFrom returns a client of s over p whose connections come from
// the local address ip (such as 127.0.0.2), closed in t.Cleanup.
func clientFrom(t *testing.T, s *harness.Server, p harness.Proto, ip string) *http.Client {
	local := net.ParseIP(ip)
	dialer := &net.Dialer{Timeout: harness.SafetyNet, LocalAddr: &net.TCPAddr{IP: local}}
	var rt http.RoundTripper
	switch p {
	case harness.H1:
		var protos http.Protocols
		protos.SetHTTP1(true)
		tr := &http.Transport{
			TLSClientConfig:     s.TLSConfig("http/1.1"),
			Protocols:           &protos,
			MaxIdleConnsPerHost: rateFloodWorkers, // keep the flood's connections
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, s.HTTPS)
			},
		}
		t.Cleanup(tr.CloseIdleConnections)
		rt = tr
	case harness.H2:
		tr := &http2.Transport{
			TLSClientConfig: s.TLSConfig("h2"),
			DialTLSContext: func(ctx context.Context, network, _ string, cfg *tls.Config) (net.Conn, error) {
				d := &tls.Dialer{NetDialer: dialer, Config: cfg}
				return d.DialContext(ctx, network, s.HTTPS)
			},
		}
		t.Cleanup(tr.CloseIdleConnections)
		rt = tr
	case harness.H3:
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: local})
		if err != nil {
			t.Fatal(err)
		}
		qt := &quic.Transport{Conn: udp}
		tr := &http3.Transport{
			TLSClientConfig: s.TLSConfig(http3.NextProtoH3),
			QUICConfig:      &quic.Config{HandshakeIdleTimeout: harness.SafetyNet, MaxIdleTimeout: harness.SafetyNet},
			Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
				to, err := net.ResolveUDPAddr("udp", s.HTTPS)
				if err != nil {
					return nil, err
				}
				return qt.Dial(ctx, to, tc, qc)
			},
		}
		t.Cleanup(func() { _ = tr.Close(); _ = qt.Close() })
		rt = tr
	}
	return &http.Client{Transport: rt, Timeout: harness.RequestTimeout}
}

// TestRateLimitReloadKeepsState: a SIGHUP that keeps a route's site, path
// and limit keeps its limiter: a client refused before the reload is
// still refused after it, and the count of refusals in the metrics goes
// on; a reload that changes the limit starts afresh.
func TestRateLimitReloadKeepsState(t *testing.T) {
	t.Parallel()
	adminAddr := "127.0.0.1:" + strconv.Itoa(harness.FreeTCPPort(t))
	withAdmin := func(cfg string) string { return "admin = \"" + adminAddr + "\"\n" + cfg }
	cfg := withAdmin(rateLimitRoute(`{ rate = "1/m" }`))
	s := startProxy(t, cfg)
	c := s.Client(harness.H1)
	statuses := func() [2]int {
		return [2]int{get(s, harness.H1, c, "/limited/").Status, get(s, harness.H1, c, "/limited/").Status}
	}
	limited := func() string {
		for line := range strings.SplitSeq(string(scrape(t, adminAddr)), "\n") {
			if strings.HasPrefix(line, `anx_rate_limited_total{route="/limited/",site="localhost"} `) {
				return line[strings.LastIndexByte(line, ' ')+1:]
			}
		}
		return "none"
	}
	if got := statuses(); got != [2]int{200, 429} {
		t.Fatalf("before the reload: %v, want [200 429]", got)
	}
	if got := limited(); got != "1" {
		t.Errorf("anx_rate_limited_total before the reload: %s, want 1", got)
	}
	more := cfg + route("/other/", `respond = "other\n"`)
	if line := s.Reload(t, renderConfig(s, more)); !strings.Contains(line, "msg=reloaded") {
		t.Fatalf("reload: %s", line)
	}
	if got := get(s, harness.H1, c, "/limited/").Status; got != 429 {
		t.Errorf("after a reload that kept the limit: %d, want 429 (the bucket kept)", got)
	}
	if got := limited(); got != "2" {
		t.Errorf("anx_rate_limited_total after the reload: %s, want 2", got)
	}
	changed := withAdmin(rateLimitRoute(`{ rate = "2/m" }`))
	if line := s.Reload(t, renderConfig(s, changed)); !strings.Contains(line, "msg=reloaded") {
		t.Fatalf("reload: %s", line)
	}
	if got := statuses(); got != [2]int{200, 429} {
		t.Errorf("after a reload that changed the limit: %v, want [200 429] (a new bucket)", got)
	}
}

// TestRateLimitDelays: without nodelay, requests within the burst are
// delayed to the rate, not refused: 6 requests at once with rate =
// "10/s", burst = 5 all get 200, the last after about 500 ms. Each
// protocol has its own bucket (a header key).
func TestRateLimitDelays(t *testing.T) {
	t.Parallel()
	s := startProxy(t, rateLimitRoute(`{ rate = "10/s", burst = 5, key = "header:X-Client" }`))
	for _, p := range harness.Protos {
		c := s.Client(p)
		get(s, p, c, "/free/") // connect first, so that the 6 arrive together
		var wg sync.WaitGroup
		statuses := make([]int, 6)
		start := time.Now()
		for i := range statuses {
			wg.Go(func() { statuses[i] = get(s, p, c, "/limited/", "X-Client", string(p)).Status })
		}
		wg.Wait()
		elapsed := time.Since(start)
		for i, st := range statuses {
			if st != http.StatusOK {
				t.Errorf("%s: request %d: %d, want 200 (delayed, not refused)", p, i+1, st)
			}
		}
		if elapsed < 450*time.Millisecond {
			t.Errorf("%s: 6 requests within a burst of 5 at 10/s took %v, want 500 ms of delay for the last", p, elapsed)
		}
	}
}

// TestRateLimitManyKeysBoundedMemory: a million distinct keys (a header
// key, one request each) all get 200 (each is a new bucket), and anx's
// resident memory stays bounded: the limiter tracks at most 100 000 keys
// of at most 64 bytes each (6.4 MB), so the second half-million keys must
// add less than rateLimitRSSPlateau, and the whole run less than
// rateLimitRSSBound over what anx used before.
//
// It does not run in parallel with other tests: it loads both cores, and
// other tests' memory would not show in anx's RSS anyway, but their
// timing would suffer.
func TestRateLimitManyKeysBoundedMemory(t *testing.T) {
	cfg := proxyConfig("", "http_mode = \"serve\"\naccess_log = \"off\"\n"+route("/k/", `respond = "ok\n"`, `rate_limit = { rate = "1/s", key = "header:X-Key" }`))
	s := startProxy(t, cfg)
	send := func(from, to int) {
		t.Helper()
		if bad := pipelineKeys(t, s.HTTP, from, to); bad != "" {
			t.Fatalf("keys %d to %d: %s", from, to, bad)
		}
	}
	start := time.Now()
	send(0, 100_000)
	before := rss(t, s)
	send(100_000, 500_000)
	half := rss(t, s)
	send(500_000, 1_000_000)
	after := rss(t, s)
	t.Logf("1 000 000 keys in %v; RSS %d MiB after 100k keys, %d MiB after 500k, %d MiB after 1M",
		time.Since(start).Round(time.Millisecond), before>>20, half>>20, after>>20)
	if after-before > rateLimitRSSBound {
		t.Errorf("RSS grew by %d MiB over 900k new keys, want under %d MiB", (after-before)>>20, rateLimitRSSBound>>20)
	}
	if after > rateLimitRSSMax {
		t.Errorf("RSS %d MiB after 1M keys, want under %d MiB", after>>20, rateLimitRSSMax>>20)
	}
	if after-half > rateLimitRSSPlateau {
		t.Errorf("RSS grew by %d MiB over the last 500k keys, want under %d MiB: the limiter's memory is not bounded", (after-half)>>20, rateLimitRSSPlateau>>20)
	}
}

// The bounds of TestRateLimitManyKeysBoundedMemory. The limiter's table
// (100k keys, 6.4 MB at most) is nearly full after the first 100k keys;
// what grows after is the garbage collector's slack and, under -race,
// the detector's shadow memory (measured: 27, 28 and 30 MiB after 100k,
// 500k and 1M keys with bin/anx; 74, 79 and 78 MiB with bin/anx-race).
const (
	rateLimitRSSMax     = 192 << 20
	rateLimitRSSBound   = 48 << 20
	rateLimitRSSPlateau = 24 << 20
)

func rss(t *testing.T, s *harness.Server) int64 {
	t.Helper()
	n, err := processRSS(s.PID())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// pipelineKeys sends GET /k/ with X-Key from..to-1 over 4 plain HTTP/1.1
// connections to addr, pipelined, and reads every response; it returns
// what went wrong, or "".
func pipelineKeys(t *testing.T, addr string, from, to int) string {
	const conns = 4
	errs := make([]string, conns)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() { errs[c] = pipelineRange(addr, from+c, to, conns) })
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			return e
		}
	}
	return ""
}

// pipelineRange sends the keys first, first+step, ... below to on one
// connection, pipelined in batches of 500, and checks that each gets a
// 200.
func pipelineRange(addr string, first, to, step int) string {
	conn, err := net.DialTimeout("tcp", addr, harness.SafetyNet)
	if err != nil {
		return err.Error()
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(harness.SafetyNet))
	w := bufio.NewWriterSize(conn, 64<<10)
	r := bufio.NewReaderSize(conn, 64<<10)
	const batch = 500
	for k := first; k < to; {
		sent := 0
		for ; sent < batch && k < to; k += step {
			fmt.Fprintf(w, "GET /k/ HTTP/1.1\r\nHost: localhost\r\nX-Key: key-%d\r\n\r\n", k)
			sent++
		}
		if err := w.Flush(); err != nil {
			return err.Error()
		}
		if bad := readStatuses(r, sent); bad != "" {
			return fmt.Sprintf("the batch before key %d: %s", k, bad)
		}
	}
	return ""
}

// readStatuses reads n responses of a pipelined batch and checks that
// each is a 200.
func readStatuses(r *bufio.Reader, n int) string {
	for got := 0; got < n; {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return fmt.Sprintf("after %d of %d responses: %v", got, n, err)
		}
		if !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
			continue
		}
		if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
			return fmt.Sprintf("response %d: %q, want 200 (a new key)", got+1, bytes.TrimSpace(line))
		}
		got++
	}
	return ""
}
