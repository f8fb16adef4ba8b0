package proxy

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// recorder is a message.ResponseWriter that keeps what a handler wrote,
// with the optional abilities a front end offers.
type recorder struct {
	header   message.Header
	trailer  message.Header
	status   int
	body     bytes.Buffer
	aborted  bool
	flushed  chan string // receives the body so far at each Flush, if set
	interims []int
}

func (rc *recorder) Header() *message.Header  { return &rc.header }
func (rc *recorder) Trailer() *message.Header { return &rc.trailer }
func (rc *recorder) Abort()                   { rc.aborted = true }

func (rc *recorder) WriteHeader(status int) {
	if rc.status == 0 {
		rc.status = status
	}
}

func (rc *recorder) Write(p []byte) (int, error) {
	rc.WriteHeader(200)
	return rc.body.Write(p)
}

func (rc *recorder) Flush() error {
	if rc.flushed != nil {
		rc.flushed <- rc.body.String()
	}
	return nil
}

func (rc *recorder) WriteInterim(status int, _ *message.Header) error {
	rc.interims = append(rc.interims, status)
	return nil
}

// request builds a client request as a front end would.
func request(method, target string, body string, fields ...string) *message.Request {
	path, query, _ := strings.Cut(target, "?")
	r := &message.Request{
		Method: method, Path: path, RawQuery: query, Host: "site.test",
		Proto: message.HTTP1, ProtoMinor: 1, Body: strings.NewReader(body),
		ContentLength: int64(len(body)),
		RemoteAddr:    netip.MustParseAddrPort("192.0.2.7:40000"),
	}
	for i := 0; i+1 < len(fields); i += 2 {
		r.Header.Add(fields[i], fields[i+1])
	}
	return r
}

// echoed is what the echo upstream reports about a request.
type echoed struct {
	Method, URI, Host, Body, Name string
	Header                        http.Header
}

// echoUpstream starts an upstream that answers every request with a JSON
// description of it, and counts requests.
func echoUpstream(t *testing.T, name string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "must not pass")
		w.Header().Set("Keep-Alive", "timeout=5")
		json.NewEncoder(w).Encode(echoed{Method: r.Method, URI: r.RequestURI, Host: r.Host, Body: string(body), Name: name, Header: r.Header})
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func newHandler(t *testing.T, cfg Config) *Handler {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func serve(h *Handler, r *message.Request) *recorder {
	rc := &recorder{}
	h.Serve(rc, r)
	return rc
}

func decode(t *testing.T, rc *recorder) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal(rc.body.Bytes(), &e); err != nil {
		t.Fatalf("status %d, body %q: %v", rc.status, rc.body.String(), err)
	}
	return e
}

func TestForwardsRequestAndFiltersFields(t *testing.T) {
	up, _ := echoUpstream(t, "a")
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: up.URL}}, Forwarded: true,
		RequestHeaders:  HeaderOps{Set: []Field{{"X-Set", "1"}}, Delete: []string{"X-Secret"}},
		ResponseHeaders: HeaderOps{Add: []Field{{"X-Down", "2"}}}})
	r := request("POST", "/a%2Fb/../c?q=%20x", "payload",
		"Connection", "X-Client-Hop", "X-Client-Hop", "1", "Keep-Alive", "1", "Proxy-Connection", "x",
		"TE", "trailers", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil", "X-Secret", "s", "X-Keep", "k")
	rc := serve(h, r)
	e := decode(t, rc)
	checks := []struct{ what, got, want string }{
		{"method", e.Method, "POST"},
		{"target", e.URI, "/a%2Fb/../c?q=%20x"},
		{"host", e.Host, "site.test"},
		{"body", e.Body, "payload"},
		{"X-Forwarded-For", e.Header.Get("X-Forwarded-For"), "192.0.2.7"},
		{"X-Forwarded-Proto", e.Header.Get("X-Forwarded-Proto"), "http"},
		{"X-Forwarded-Host", e.Header.Get("X-Forwarded-Host"), "site.test"},
		{"Forwarded", e.Header.Get("Forwarded"), "for=192.0.2.7;proto=http;host=site.test"},
		{"X-Client-Hop", e.Header.Get("X-Client-Hop"), ""},
		{"Keep-Alive", e.Header.Get("Keep-Alive"), ""},
		{"Proxy-Connection", e.Header.Get("Proxy-Connection"), ""},
		{"TE", e.Header.Get("Te"), ""},
		{"X-Secret", e.Header.Get("X-Secret"), ""},
		{"X-Set", e.Header.Get("X-Set"), "1"},
		{"X-Keep", e.Header.Get("X-Keep"), "k"},
		{"response X-Hop", rc.header.Get("X-Hop"), ""},
		{"response Keep-Alive", rc.header.Get("Keep-Alive"), ""},
		{"response Connection", rc.header.Get("Connection"), ""},
		{"response X-Down", rc.header.Get("X-Down"), "2"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.what, c.got, c.want)
		}
	}
}

func TestTrustedProxyFieldsAreAppendedTo(t *testing.T) {
	up, _ := echoUpstream(t, "a")
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: up.URL}},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	e := decode(t, serve(h, request("GET", "/", "", "X-Forwarded-For", "203.0.113.9", "X-Forwarded-Proto", "https")))
	if got, want := e.Header.Get("X-Forwarded-For"), "203.0.113.9, 192.0.2.7"; got != want {
		t.Errorf("X-Forwarded-For: got %q, want %q", got, want)
	}
	if got, want := e.Header.Get("X-Forwarded-Proto"), "https"; got != want {
		t.Errorf("X-Forwarded-Proto: got %q, want %q", got, want)
	}
}

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	var urls []Upstream
	var counts []*atomic.Int64
	for i := range 3 {
		up, n := echoUpstream(t, fmt.Sprint(i))
		urls, counts = append(urls, Upstream{URL: up.URL}), append(counts, n)
	}
	h := newHandler(t, Config{Upstreams: urls})
	for range 30 {
		if rc := serve(h, request("GET", "/", "")); rc.status != 200 {
			t.Fatalf("status %d", rc.status)
		}
	}
	for i, n := range counts {
		if n.Load() != 10 {
			t.Errorf("upstream %d got %d requests, want 10", i, n.Load())
		}
	}
}

func TestWeightedRoundRobinFollowsWeights(t *testing.T) {
	a, na := echoUpstream(t, "a")
	b, nb := echoUpstream(t, "b")
	h := newHandler(t, Config{Policy: WeightedRoundRobin, Upstreams: []Upstream{{URL: a.URL, Weight: 3}, {URL: b.URL, Weight: 1}}})
	for range 40 {
		serve(h, request("GET", "/", ""))
	}
	if na.Load() != 30 || nb.Load() != 10 {
		t.Errorf("got %d:%d, want 30:10", na.Load(), nb.Load())
	}
}

// closedAddr returns an address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestRefusedConnectionIsRetriedForAnyMethod(t *testing.T) {
	up, n := echoUpstream(t, "live")
	h := newHandler(t, Config{Policy: First, Upstreams: []Upstream{{URL: closedAddr(t)}, {URL: up.URL}}})
	rc := serve(h, request("POST", "/", "body"))
	if e := decode(t, rc); e.Name != "live" || e.Body != "body" || n.Load() != 1 {
		t.Errorf("got %+v after %d requests at the live upstream", e, n.Load())
	}
}

// swallowingUpstream reads each request head and closes the connection
// without answering; it counts the requests it got.
func swallowingUpstream(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			if k, _ := c.Read(buf); k > 0 {
				n.Add(1)
			}
			c.Close()
		}
	}()
	return "http://" + ln.Addr().String(), &n
}

func TestSentRequestIsRetriedOnlyWhenIdempotent(t *testing.T) {
	cases := []struct {
		method string
		fields []string
		status int
		live   int64
	}{
		{"POST", nil, 502, 0},
		{"POST", []string{"Idempotency-Key", "k1"}, 200, 1},
		{"GET", nil, 200, 1},
		{"PUT", nil, 200, 1},
	}
	for _, c := range cases {
		t.Run(c.method+fmt.Sprint(len(c.fields)), func(t *testing.T) {
			bad, swallowed := swallowingUpstream(t)
			up, n := echoUpstream(t, "live")
			h := newHandler(t, Config{Policy: First, Upstreams: []Upstream{{URL: bad}, {URL: up.URL}}})
			rc := serve(h, request(c.method, "/", "x", c.fields...))
			if rc.status != c.status || n.Load() != c.live || swallowed.Load() != 1 {
				t.Errorf("got status %d, %d at the live upstream, %d swallowed; want %d, %d, 1",
					rc.status, n.Load(), swallowed.Load(), c.status, c.live)
			}
		})
	}
}

func TestEveryUpstreamDownAnswers502(t *testing.T) {
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: closedAddr(t)}, {URL: closedAddr(t)}}})
	rc := serve(h, request("GET", "/", ""))
	if rc.status != 502 || strings.Contains(rc.body.String(), "127.0.0.1") {
		t.Errorf("got %d %q, want 502 naming no address", rc.status, rc.body.String())
	}
	// Both are now passively down: the next request is refused at once.
	if rc := serve(h, request("GET", "/", "")); rc.status != 502 {
		t.Errorf("second request: got %d, want 502", rc.status)
	}
}

func TestSlowUpstreamAnswers504(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	t.Cleanup(up.Close)
	t.Cleanup(func() { close(release) })
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: up.URL}}, ResponseHeaderTimeout: 100 * time.Millisecond})
	if rc := serve(h, request("GET", "/", "")); rc.status != 504 {
		t.Errorf("got %d, want 504", rc.status)
	}
}

func TestHealthChecksTakeUpstreamOutAndAllDownIs503(t *testing.T) {
	var healthy atomic.Bool
	checked := make(chan bool, 100)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			ok := healthy.Load()
			if !ok {
				w.WriteHeader(500)
			}
			checked <- ok
			return
		}
		io.WriteString(w, "app")
	}))
	t.Cleanup(up.Close)
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: up.URL}},
		Health: HealthCheck{Path: "/health", Interval: 20 * time.Millisecond}})
	waitCheck(t, checked, false)
	waitCheck(t, checked, false) // the state is set before the next check starts
	if rc := serve(h, request("GET", "/", "")); rc.status != 503 {
		t.Errorf("all down by health checks: got %d, want 503", rc.status)
	}
	healthy.Store(true)
	waitCheck(t, checked, true)
	waitCheck(t, checked, true)
	if rc := serve(h, request("GET", "/", "")); rc.status != 200 || rc.body.String() != "app" {
		t.Errorf("healthy again: got %d %q", rc.status, rc.body.String())
	}
}

func waitCheck(t *testing.T, checked chan bool, want bool) {
	t.Helper()
	for {
		select {
		case ok := <-checked:
			if ok == want {
				return
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("no health check")
		}
	}
}

func TestPassiveHealthStatusTakesUpstreamOut(t *testing.T) {
	var badHits atomic.Int64
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		badHits.Add(1)
		w.WriteHeader(503)
	}))
	t.Cleanup(bad.Close)
	good, n := echoUpstream(t, "good")
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: bad.URL}, {URL: good.URL}},
		Passive: PassiveHealth{MaxFails: 1, FailDuration: time.Hour, UnhealthyStatus: []int{503}}})
	for range 10 {
		serve(h, request("GET", "/", ""))
	}
	if badHits.Load() != 1 || n.Load() != 9 {
		t.Errorf("bad upstream got %d requests, good %d; want 1 and 9", badHits.Load(), n.Load())
	}
}

func TestCookieStickiness(t *testing.T) {
	a, _ := echoUpstream(t, "a")
	b, _ := echoUpstream(t, "b")
	h := newHandler(t, Config{Policy: CookieSticky, Upstreams: []Upstream{{URL: a.URL}, {URL: b.URL}}})
	first := serve(h, request("GET", "/", ""))
	cookie := first.header.Get("Set-Cookie")
	value, _, _ := strings.Cut(cookie, ";")
	if !strings.HasPrefix(value, "anx_upstream=") || strings.Contains(cookie, "127.0.0.1") {
		t.Fatalf("Set-Cookie %q", cookie)
	}
	name := decode(t, first).Name
	for range 6 {
		rc := serve(h, request("GET", "/", "", "Cookie", "x=1; "+value))
		if got := decode(t, rc).Name; got != name || rc.header.Has("Set-Cookie") {
			t.Fatalf("sticky request went to %q (Set-Cookie %q), want %q", got, rc.header.Get("Set-Cookie"), name)
		}
	}
}

func TestStreamedBodyIsFlushedPieceByPiece(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: two\n\n")
	}))
	t.Cleanup(up.Close)
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: up.URL}}})
	rc := &recorder{flushed: make(chan string, 10)}
	done := make(chan struct{})
	go func() { h.Serve(rc, request("GET", "/events", "")); close(done) }()
	if got := <-rc.flushed; got != "data: one\n\n" {
		t.Errorf("first flush carried %q", got)
	}
	close(release)
	<-done
	if got := rc.body.String(); got != "data: one\n\ndata: two\n\n" {
		t.Errorf("body %q", got)
	}
}

func TestBrokenUpstreamBodyAbortsResponse(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "short")
		w.(http.Flusher).Flush()
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	}))
	t.Cleanup(up.Close)
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: up.URL}}})
	rc := serve(h, request("GET", "/", ""))
	if rc.status != 200 || !rc.aborted {
		t.Errorf("got status %d aborted %v, want 200 and aborted", rc.status, rc.aborted)
	}
}

func TestRoutesKeepSeparateHealth(t *testing.T) {
	up, _ := echoUpstream(t, "a")
	shared := NewTransports()
	down, err := New(Config{Upstreams: []Upstream{{URL: up.URL}}, Logger: slog.New(slog.DiscardHandler)}, shared)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	other, err := New(Config{Upstreams: []Upstream{{URL: up.URL}}, Logger: slog.New(slog.DiscardHandler)}, shared)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	down.ups[0].checkDown.Store(true)
	if rc := serve(other, request("GET", "/", "")); rc.status != 200 {
		t.Errorf("the other route: got %d, want 200", rc.status)
	}
	if down.ups[0].tr != other.ups[0].tr {
		t.Error("two routes to one upstream do not share its transport")
	}
}

func TestConcurrentRequestsShareUpstreams(t *testing.T) {
	up, n := echoUpstream(t, "a")
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: up.URL}}, Policy: LeastConn})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if rc := serve(h, request("GET", "/", "")); rc.status != 200 {
				t.Errorf("status %d", rc.status)
			}
		})
	}
	wg.Wait()
	if n.Load() != 20 || h.ups[0].inflight.Load() != 0 {
		t.Errorf("got %d requests, %d still in flight", n.Load(), h.ups[0].inflight.Load())
	}
}

func TestEarlyHintsAreForwarded(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(103)
		io.WriteString(w, "final")
	}))
	t.Cleanup(up.Close)
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: up.URL}}})
	rc := serve(h, request("GET", "/", ""))
	if len(rc.interims) != 1 || rc.interims[0] != 103 || rc.status != 200 || rc.body.String() != "final" {
		t.Errorf("got interims %v, then %d %q", rc.interims, rc.status, rc.body.String())
	}
}

// trailerApp answers with a body and a grpc-status trailer, and reports
// the protocol it was reached over.
func trailerApp(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Trailer", "Grpc-Status")
	w.Header().Set("X-Proto", r.Proto)
	io.WriteString(w, "payload")
	w.Header().Set("Grpc-Status", "0")
}

func TestH2CUpstreamPassesTrailers(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(trailerApp))
	up.Config.Protocols = new(http.Protocols)
	up.Config.Protocols.SetUnencryptedHTTP2(true)
	up.Start()
	t.Cleanup(up.Close)
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: "h2c://" + up.Listener.Addr().String()}}})
	rc := serve(h, request("POST", "/svc/Method", "req", "TE", "trailers", "Content-Type", "application/grpc"))
	checkTrailerAnswer(t, rc, "HTTP/2.0")
}

func TestHTTPSUpstreamNegotiatesH2AndVerifies(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(trailerApp))
	up.EnableHTTP2 = true
	up.StartTLS()
	t.Cleanup(up.Close)
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	url := "https://" + up.Listener.Addr().String()
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: url}}, TLS: TLS{RootCAs: roots, ServerName: "example.com"}})
	checkTrailerAnswer(t, serve(h, request("GET", "/", "")), "HTTP/2.0")

	unverified := newHandler(t, Config{Upstreams: []Upstream{{URL: url}}})
	if rc := serve(unverified, request("GET", "/", "")); rc.status != 502 {
		t.Errorf("an upstream whose certificate the system roots do not trust: got %d, want 502", rc.status)
	}
}

func checkTrailerAnswer(t *testing.T, rc *recorder, proto string) {
	t.Helper()
	if rc.status != 200 || rc.body.String() != "payload" || rc.header.Get("X-Proto") != proto {
		t.Errorf("got %d %q over %q, want 200 \"payload\" over %s", rc.status, rc.body.String(), rc.header.Get("X-Proto"), proto)
	}
	if got := rc.trailer.Get("Grpc-Status"); got != "0" {
		t.Errorf("trailer Grpc-Status %q, want \"0\" (trailers %v)", got, rc.trailer.Fields())
	}
}

func TestUnsafeRequestNeverReachesUpstream(t *testing.T) {
	up, n := echoUpstream(t, "a")
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: up.URL}}})
	cases := map[string]*message.Request{
		"LF in value":     request("GET", "/", "", "X-A", "1\r\nX-Smuggled: 1"),
		"NUL in value":    request("GET", "/", "", "X-A", "1\x00"),
		"space in path":   request("GET", "/a b", ""),
		"CR in query":     request("GET", "/a?x=\r", ""),
		"bad field name":  request("GET", "/", "", "X A", "1"),
		"bad method":      request("G T", "/", ""),
		"LF in host":      func() *message.Request { r := request("GET", "/", ""); r.Host = "a\nb"; return r }(),
		"LF in trailer":   func() *message.Request { r := request("GET", "/", ""); r.Trailer.Add("X-T", "a\nb"); return r }(),
		"empty path":      request("GET", "", ""),
		"DEL in path":     request("GET", "/\x7f", ""),
		"tab in path":     request("GET", "/\t", ""),
		"space in method": request("GET ", "/", ""),
	}
	for name, r := range cases {
		if r == nil {
			continue
		}
		if rc := serve(h, r); rc.status != 400 {
			t.Errorf("%s: got %d, want 400", name, rc.status)
		}
	}
	if n.Load() != 0 {
		t.Errorf("the upstream got %d requests, want 0", n.Load())
	}
}

func TestTargetReachesUpstreamAsSent(t *testing.T) {
	up, _ := echoUpstream(t, "a")
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: up.URL}}})
	for _, target := range []string{"//api//users", "//evil.example/x?y=1", "/a%2Fb", "/%7Euser/", "//a%2F/b"} {
		if got := decode(t, serve(h, request("GET", target, ""))).URI; got != target {
			t.Errorf("sent %q, the upstream got %q", target, got)
		}
	}
}

func TestConnectTimeoutAnswers504(t *testing.T) {
	up, n := echoUpstream(t, "a")
	// A deadline that has passed before the dial starts: connecting
	// times out at once, whatever the machine's speed.
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: up.URL}}, ConnectTimeout: time.Nanosecond})
	if rc := serve(h, request("GET", "/", "")); rc.status != 504 || n.Load() != 0 {
		t.Errorf("got %d with %d requests upstream, want 504 and none", rc.status, n.Load())
	}
}

// closingOnSecondUpstream answers the first request of each connection
// and closes the connection when the next request arrives, unread, as an
// upstream whose idle timeout crossed the request does. It counts
// connections and the requests it answered.
func closingOnSecondUpstream(t *testing.T) (url string, conns, answered *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns, answered = new(atomic.Int64), new(atomic.Int64)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				answered.Add(1)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				br.Peek(1) // the next request: close without reading it
			})
		}
	})
	return "http://" + ln.Addr().String(), conns, answered
}

// TestReusedConnectionClosedByUpstreamIsSentAgain: a GET that a pooled
// connection loses, closed by the upstream as the request arrived, goes
// again over a new connection, even to the only upstream, which is not
// marked down for it; a POST, which may have been acted on, is not.
func TestReusedConnectionClosedByUpstreamIsSentAgain(t *testing.T) {
	url, conns, answered := closingOnSecondUpstream(t)
	h := newHandler(t, Config{Upstreams: []Upstream{{URL: url}}})
	for i, want := range []int{200, 200, 200} {
		if rc := serve(h, request("GET", "/x", "")); rc.status != want {
			t.Fatalf("GET %d: %d, want %d", i+1, rc.status, want)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("the upstream saw %d connections, want 3 (each GET after the first sent again on a new one)", n)
	}
	if rc := serve(h, request("POST", "/x", "body")); rc.status != 502 {
		t.Errorf("a POST lost by a reused connection answered %d, want 502", rc.status)
	}
	if n := answered.Load(); n != 3 {
		t.Errorf("the upstream answered %d requests, want 3", n)
	}
}
