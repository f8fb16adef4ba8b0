package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/internal/testpki"
	"github.com/anx-gateway/anx/tls/onloop"
)

const altSvc = `h3=":443"; ma=2592000`

// hangTimeout is the safety net of every wait in these tests: it only
// turns a hang into a failure, and is sized for -race on a busy 2-core
// machine and for qemu emulation. No test waits it out when it passes.
const hangTimeout = 3 * time.Minute

// waitFor polls cond until it holds, failing the test after hangTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(hangTimeout); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after %v", what, hangTimeout)
		}
	}
}

// testServer is a Server on event loops of its own behind TLS
// (tls/onloop) on 127.0.0.1, with a certificate for example.com and
// 127.0.0.1.
type testServer struct {
	srv  *Server
	ns   *netpoll.Server
	addr string
	pki  *testpki.PKI
}

// start serves srv on a fresh loopback listener with TLS and ALPN h2;
// cleanup shuts the loops down.
func start(t *testing.T, srv *Server) *testServer {
	t.Helper()
	pki := testpki.New(t, "example.com", "127.0.0.1")
	h := &onloop.Handler{TLSConfig: pki.ServerConfig("h2", "http/1.1"), Protocols: map[string]onloop.Protocol{"h2": srv}}
	ns := &netpoll.Server{Handler: h, Loops: 2}
	h.Prepare(ns)
	if err := ns.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, ns: ns, addr: ns.Addr().String(), pki: pki}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
		defer cancel()
		ts.ns.Shutdown(ctx)
	})
	return ts
}

// shutdown shuts the server's loops down, as the gateway does.
func (ts *testServer) shutdown(ctx context.Context) error { return ts.ns.Shutdown(ctx) }

// client returns an x/net HTTP/2 client for ts; cleanup closes its
// connections.
func (ts *testServer) client(t *testing.T) *http.Client {
	tr := &http2.Transport{TLSClientConfig: ts.pki.ClientConfig()}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func (ts *testServer) url(path string) string { return "https://" + ts.addr + path }

// get sends a request and returns the response with its whole body.
func get(t *testing.T, c *http.Client, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// hello answers "hello, h2" with a Content-Length and records the request
// in *last.
func hello(last *atomic.Pointer[message.Request]) message.HandlerFunc {
	return func(w message.ResponseWriter, r *message.Request) {
		cp := *r
		cp.Header = message.Header{}
		for _, f := range r.Header.Fields() {
			cp.Header.Add(f.Name, f.Value)
		}
		cp.Body = nil
		last.Store(&cp)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "9")
		_, _ = w.Write([]byte("hello, h2"))
	}
}

func TestGet(t *testing.T) {
	var last atomic.Pointer[message.Request]
	ts := start(t, &Server{Handler: hello(&last), AltSvc: altSvc})
	resp, body := get(t, ts.client(t), "GET", ts.url("/hello?x=1"))
	if resp.StatusCode != 200 || body != "hello, h2" || resp.ProtoMajor != 2 {
		t.Fatalf("got %s %d %q, want HTTP/2 200 %q", resp.Proto, resp.StatusCode, body, "hello, h2")
	}
	if got := resp.Header.Get("Alt-Svc"); got != altSvc {
		t.Errorf("Alt-Svc = %q, want %q", got, altSvc)
	}
	if got := resp.Header.Get("Content-Length"); got != "9" {
		t.Errorf("Content-Length = %q, want 9", got)
	}
	r := last.Load()
	if r.Proto != message.HTTP2 || !r.TLS || r.ServerName != "example.com" || r.Method != "GET" ||
		r.Path != "/hello" || r.RawQuery != "x=1" || r.Host != ts.addr {
		t.Errorf("handler saw %+v", r)
	}
	if !r.RemoteAddr.Addr().IsLoopback() || r.RemoteAddr.Port() == 0 {
		t.Errorf("RemoteAddr = %v, want a loopback address and port", r.RemoteAddr)
	}
	for _, f := range r.Header.Fields() {
		if strings.HasPrefix(f.Name, ":") {
			t.Errorf("pseudo-header %q reached the handler", f.Name)
		}
	}
}

func TestHead(t *testing.T) {
	var last atomic.Pointer[message.Request]
	ts := start(t, &Server{Handler: hello(&last), AltSvc: altSvc})
	resp, body := get(t, ts.client(t), "HEAD", ts.url("/hello"))
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Length") != "9" {
		t.Errorf("HEAD: %d %q Content-Length %q; want 200, no body, 9", resp.StatusCode, body, resp.Header.Get("Content-Length"))
	}
	if resp.Header.Get("Alt-Svc") != altSvc {
		t.Errorf("HEAD: no Alt-Svc")
	}
}

// TestRawPath checks that encoded bytes in the path reach the handler as
// the client sent them.
func TestRawPath(t *testing.T) {
	var last atomic.Pointer[message.Request]
	ts := start(t, &Server{Handler: hello(&last)})
	c := ts.client(t)
	for _, tc := range []struct{ target, path, query string }{
		{"/a%2Fb/%2e%2e/c?x=%2F", "/a%2Fb/%2e%2e/c", "x=%2F"},
		{"/%2e%2e/%2e%2e/etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", ""},
		{"/static/%2E%2e%2fsecret", "/static/%2E%2e%2fsecret", ""},
		{"/a/../b", "/a/../b", ""},
		{"/caf%C3%A9%20x", "/caf%C3%A9%20x", ""},
	} {
		resp, _ := get(t, c, "GET", ts.url(tc.target))
		r := last.Load()
		if resp.StatusCode != 200 || r.Path != tc.path || r.RawQuery != tc.query {
			t.Errorf("%s: status %d, handler saw path %q query %q; want %q %q",
				tc.target, resp.StatusCode, r.Path, r.RawQuery, tc.path, tc.query)
		}
	}
}

// TestConcurrentStreams holds n requests open at once on one connection.
func TestConcurrentStreams(t *testing.T) {
	const n = 200
	var arrived atomic.Int32
	all := make(chan struct{})
	var mu sync.Mutex
	ports := map[uint16]bool{}
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		mu.Lock()
		ports[r.RemoteAddr.Port()] = true
		mu.Unlock()
		if r.Method == "HEAD" {
			return
		}
		if arrived.Add(1) == n {
			close(all)
		}
		select {
		case <-all:
		case <-time.After(hangTimeout):
			w.WriteHeader(503)
			return
		}
		_, _ = fmt.Fprintf(w, "stream %s", r.Path)
	})})
	c := ts.client(t)
	// x/net's client assumes 100 streams until it has the server's
	// SETTINGS; one request first teaches it the real limit.
	if resp, err := c.Head(ts.url("/warm-up")); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			path := fmt.Sprintf("/%d", i)
			resp, err := c.Get(ts.url(path))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 || string(body) != "stream "+path {
				errs <- fmt.Errorf("%s: %d %q %v", path, resp.StatusCode, body, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(ports) != 1 {
		t.Errorf("requests came over %d connections, want 1", len(ports))
	}
}

// rawClient speaks HTTP/2 frames directly, to see what the server sends.
type rawClient struct {
	t   *testing.T
	c   net.Conn
	fr  *http2.Framer
	buf bytes.Buffer
	enc *hpack.Encoder
	// settings holds the values of the server's first SETTINGS frame.
	settings map[http2.SettingID]uint32
}

// dialRaw opens a TLS connection with ALPN h2 and sends the preface and
// an empty SETTINGS frame.
func dialRaw(t *testing.T, ts *testServer) *rawClient {
	t.Helper()
	c, err := tls.Dial("tcp", ts.addr, ts.pki.ClientConfig("h2"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return newRaw(t, c)
}

func newRaw(t *testing.T, c net.Conn) *rawClient {
	rc := &rawClient{t: t, c: c, fr: http2.NewFramer(c, c)}
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	rc.enc = hpack.NewEncoder(&rc.buf)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return rc
}

// request opens stream id with a GET of path and no body.
func (rc *rawClient) request(id uint32, path string) {
	rc.t.Helper()
	rc.headers(id, "GET", path, true)
}

// headers opens stream id with a request head for method and path on
// example.com followed by extra, in one HEADERS frame; endStream says that
// no body follows.
func (rc *rawClient) headers(id uint32, method, path string, endStream bool, extra ...hpack.HeaderField) {
	rc.t.Helper()
	rc.buf.Reset()
	for _, f := range slices.Concat(pseudoFields(method, path), extra) {
		_ = rc.enc.WriteField(f)
	}
	err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.buf.Bytes(), EndStream: endStream, EndHeaders: true})
	if err != nil {
		rc.t.Fatal(err)
	}
}

// pseudoFields returns the pseudo-header fields rawClient.headers sends
// for a request of method and path on example.com.
func pseudoFields(method, path string) []hpack.HeaderField {
	return []hpack.HeaderField{
		{Name: ":method", Value: method},
		{Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "example.com"},
		{Name: ":path", Value: path},
	}
}

// nextGoAway reads the next frame that is not connection housekeeping and
// fails unless it is a GOAWAY.
func (rc *rawClient) nextGoAway() *http2.GoAwayFrame {
	rc.t.Helper()
	f := rc.next()
	ga, ok := f.(*http2.GoAwayFrame)
	if !ok {
		rc.t.Fatalf("%v, want GOAWAY", describe(f))
	}
	return ga
}

// body reads DATA frames up to one with END_STREAM and returns their
// content.
func (rc *rawClient) body() string {
	rc.t.Helper()
	var body []byte
	for {
		f := rc.next()
		df, ok := f.(*http2.DataFrame)
		if !ok {
			rc.t.Fatalf("%v, want DATA", describe(f))
		}
		body = append(body, df.Data()...)
		if df.StreamEnded() {
			return string(body)
		}
	}
}

// nextRaw reads the next frame, whatever it is.
func (rc *rawClient) nextRaw() http2.Frame {
	rc.t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(hangTimeout))
	f, err := rc.fr.ReadFrame()
	if err != nil {
		rc.t.Fatalf("reading a frame: %v", err)
	}
	return f
}

// next reads the next frame that is not connection housekeeping,
// answering the server's SETTINGS on the way and recording the first.
func (rc *rawClient) next() http2.Frame {
	rc.t.Helper()
	for {
		_ = rc.c.SetReadDeadline(time.Now().Add(hangTimeout))
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("reading a frame: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if rc.settings == nil {
					rc.settings = map[http2.SettingID]uint32{}
					_ = f.ForeachSetting(func(s http2.Setting) error {
						rc.settings[s.ID] = s.Val
						return nil
					})
				}
				_ = rc.fr.WriteSettingsAck()
			}
			continue
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = rc.fr.WritePing(true, f.Data) // as clients do (Shutdown's PING waits for it)
			}
			continue
		case *http2.WindowUpdateFrame:
			continue
		}
		return f
	}
}

// TestShutdownSendsGoAway watches the frames: a GOAWAY NO_ERROR that
// takes every stream and a PING; a stream the client opens before it
// answers the PING (one that was on its way) is served; then the GOAWAY
// naming the last stream taken, the open stream's whole response, and
// Shutdown returns.
func TestShutdownSendsGoAway(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		if r.Path == "/fast" {
			_, _ = w.Write([]byte("fast"))
			return
		}
		close(entered)
		<-release
		_, _ = w.Write([]byte("slow done"))
	})})
	rc := dialRaw(t, ts)
	rc.request(1, "/slow")
	<-entered

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
		defer cancel()
		shutdown <- ts.shutdown(ctx)
	}()
	first := rc.nextGoAway()
	if first.ErrCode != http2.ErrCodeNo || first.LastStreamID != 1<<31-1 {
		t.Errorf("first GOAWAY %v last stream %d, want NO_ERROR and 2^31-1", first.ErrCode, first.LastStreamID)
	}
	f := rc.nextRaw()
	ping, ok := f.(*http2.PingFrame)
	if !ok || ping.IsAck() {
		t.Fatalf("after the first GOAWAY: %v, want a PING", describe(f))
	}
	// A request that was on its way when the GOAWAY came is served.
	rc.request(3, "/fast")
	hf, ok := rc.next().(*http2.MetaHeadersFrame)
	if !ok || hf.StreamID != 3 || hf.PseudoValue("status") != "200" {
		t.Fatalf("stream 3 opened after the first GOAWAY: %v, want its 200", describe(hf))
	}
	// The handler runs off the loop: "fast" may leave in one DATA frame
	// with END_STREAM, or in one without and an empty one with it.
	if body := rc.body(); body != "fast" {
		t.Fatalf("stream 3: body %q, want \"fast\"", body)
	}
	_ = rc.fr.WritePing(true, ping.Data)
	ga := rc.nextGoAway()
	if ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 3 {
		t.Errorf("final GOAWAY %v last stream %d, want NO_ERROR and 3", ga.ErrCode, ga.LastStreamID)
	}
	for id, want := range map[http2.SettingID]uint32{
		http2.SettingMaxConcurrentStreams: DefaultMaxConcurrentStreams,
		http2.SettingMaxFrameSize:         DefaultMaxReadFrameSize,
		http2.SettingMaxHeaderListSize:    advertisedHeaderListSize(DefaultMaxHeaderBytes),
	} {
		if v := rc.settings[id]; v != want {
			t.Errorf("SETTINGS %v = %d, want %d", id, v, want)
		}
	}
	// Shutdown has sent the GOAWAY, so it is waiting; the stream is still
	// open (its handler waits for release), so it must not have returned.
	// The response that follows, on this same connection, shows that the
	// connection was not closed under the stream either.
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with a stream still open", err)
	default:
	}

	close(release)
	hf, ok = rc.next().(*http2.MetaHeadersFrame)
	if !ok || hf.PseudoValue("status") != "200" {
		t.Fatalf("after release: %v, want HEADERS :status 200", hf)
	}
	if body := rc.body(); body != "slow done" {
		t.Errorf("body %q, want %q", body, "slow done")
	}
	rc.c.Close()
	waitShutdown(t, shutdown)
}

// TestShutdownWithClient finishes an in-flight request made through x/net's
// client after that client has seen the GOAWAY; Shutdown returns as soon
// as the client closes the drained connection.
func TestShutdownWithClient(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		close(entered)
		<-release
		w.Header().Set("Content-Length", "9")
		_, _ = w.Write([]byte("slow done"))
	})})
	tc, err := tls.Dial("tcp", ts.addr, ts.pki.ClientConfig("h2"))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := (&http2.Transport{}).NewClientConn(tc)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", ts.url("/slow"), nil)
		resp, err := cc.RoundTrip(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-entered
	shutdown := make(chan error, 1)
	go func() { shutdown <- ts.shutdown(context.Background()) }()
	// x/net's client marks its connection closing when the GOAWAY
	// arrives: only then is the request released.
	waitFor(t, "the client to get the GOAWAY", func() bool { return cc.State().Closing })
	close(release)
	if r := <-got; r.err != nil || r.body != "slow done" {
		t.Errorf("in-flight request: %q, %v; want %q", r.body, r.err, "slow done")
	}
	waitShutdown(t, shutdown)
}

// waitShutdown waits for the result of Shutdown on done, up to
// hangTimeout, and checks that it is nil.
func waitShutdown(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown = %v, want nil", err)
		}
	case <-time.After(hangTimeout):
		t.Fatal("Shutdown did not return")
	}
}

// TestShutdownDeadline: a handler that never finishes is cut off when the
// context ends.
func TestShutdownDeadline(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		close(entered)
		<-release
	})})
	c := ts.client(t)
	failed := make(chan error, 1)
	go func() {
		resp, err := c.Get(ts.url("/forever"))
		if err == nil {
			resp.Body.Close()
		}
		failed <- err
	}()
	<-entered
	const deadline = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	began := time.Now()
	if err := ts.shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(began); took < deadline {
		t.Errorf("Shutdown returned after %v, before its context's %v deadline", took, deadline)
	}
	if err := <-failed; err == nil {
		t.Errorf("request cut off by Shutdown succeeded")
	}
}

// TestIdleTimeout: a connection without a stream gets GOAWAY NO_ERROR once
// IdleTimeout has passed, not before. The clock starts before the dial,
// so before the server's idle timer; the upper bound is rc.next's
// safety net.
func TestIdleTimeout(t *testing.T) {
	var last atomic.Pointer[message.Request]
	const idle = 100 * time.Millisecond
	ts := start(t, &Server{Handler: hello(&last), IdleTimeout: idle})
	start := time.Now()
	rc := dialRaw(t, ts)
	f := rc.next()
	if ga, ok := f.(*http2.GoAwayFrame); !ok || ga.ErrCode != http2.ErrCodeNo {
		t.Fatalf("idle connection got %v, want GOAWAY NO_ERROR", f)
	}
	if d := time.Since(start); d < idle {
		t.Errorf("GOAWAY %v after the dial, before IdleTimeout %v", d, idle)
	}
}

func TestBodyLimit(t *testing.T) {
	ts := start(t, &Server{MaxBodyBytes: 4, Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	})})
	resp, err := ts.client(t).Post(ts.url("/up"), "text/plain", strings.NewReader("too long"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("POST over MaxBodyBytes: %d, want 413", resp.StatusCode)
	}
}

func TestValidate(t *testing.T) {
	h := message.HandlerFunc(func(message.ResponseWriter, *message.Request) {})
	for _, tc := range []struct {
		srv  *Server
		want string
	}{
		{&Server{Handler: h}, ""},
		{&Server{}, "h2: no Handler"},
		{&Server{Handler: h, MaxReadFrameSize: 1000}, "h2: MaxReadFrameSize 1000 outside [16384, 16777215]"},
		{&Server{Handler: h, MaxReadFrameSize: 1 << 24}, "h2: MaxReadFrameSize 16777216 outside [16384, 16777215]"},
		{&Server{Handler: h, MaxHeaderBytes: -1}, "h2: negative MaxHeaderBytes -1"},
	} {
		got := ""
		if err := tc.srv.Validate(); err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("Validate() = %q, want %q", got, tc.want)
		}
	}
}

// TestHeaderTooLarge sends a header list past MaxHeaderBytes; x/net answers
// 431 without calling the handler.
func TestHeaderTooLarge(t *testing.T) {
	var calls atomic.Int32
	ts := start(t, &Server{MaxHeaderBytes: 1 << 10, Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		calls.Add(1)
	})})
	rc := dialRaw(t, ts)
	// Many fields under the limit each: one field longer than the whole
	// limit is a COMPRESSION_ERROR for the connection instead.
	var big []hpack.HeaderField
	for i := range 8 {
		big = append(big, hpack.HeaderField{Name: fmt.Sprintf("x-big-%d", i), Value: strings.Repeat("a", 500)})
	}
	rc.headers(1, "GET", "/", true, big...)
	wantStatus(t, rc.next(), "431")
	if v, want := rc.settings[http2.SettingMaxHeaderListSize], advertisedHeaderListSize(1<<10); v != want {
		t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE = %d, want %d", v, want)
	}
	if calls.Load() != 0 {
		t.Errorf("handler called for an oversized header")
	}
}

// wantStatus fails the test unless f is a HEADERS frame with that :status.
func wantStatus(t *testing.T, f http2.Frame, status string) {
	t.Helper()
	if hf, ok := f.(*http2.MetaHeadersFrame); !ok || hf.PseudoValue("status") != status {
		t.Fatalf("got %s, want HEADERS :status %s", describe(f), status)
	}
}

// describe names a frame with what tells it apart in a failure message.
func describe(f http2.Frame) string {
	switch f := f.(type) {
	case *http2.GoAwayFrame:
		return fmt.Sprintf("GOAWAY %v last stream %d %q", f.ErrCode, f.LastStreamID, f.DebugData())
	case *http2.RSTStreamFrame:
		return fmt.Sprintf("RST_STREAM %v on stream %d", f.ErrCode, f.StreamID)
	case *http2.MetaHeadersFrame:
		return fmt.Sprintf("HEADERS :status %q on stream %d", f.PseudoValue("status"), f.StreamID)
	}
	return f.Header().String()
}

// fieldOverhead is what RFC 9113 section 6.5.2 adds to the octets of a
// field line's name and value in the size that
// SETTINGS_MAX_HEADER_LIST_SIZE bounds.
const fieldOverhead = 32

// overheadFields is for how many field lines Server adds that overhead to
// MaxHeaderBytes in the SETTINGS_MAX_HEADER_LIST_SIZE it advertises (see
// Server.MaxHeaderBytes).
const overheadFields = 10

// advertisedHeaderListSize is the SETTINGS_MAX_HEADER_LIST_SIZE that
// Server.MaxHeaderBytes documents for a limit of maxHeaderBytes octets of
// names and values: that, and room for the overhead of overheadFields
// field lines.
func advertisedHeaderListSize(maxHeaderBytes int) uint32 {
	return uint32(maxHeaderBytes + overheadFields*fieldOverhead)
}

// listSize is the size of fields as RFC 9113 section 6.5.2 counts it.
func listSize(fields []hpack.HeaderField) int {
	n := 0
	for _, f := range fields {
		n += len(f.Name) + len(f.Value) + fieldOverhead
	}
	return n
}

// fill returns n field lines that bring a request head of method and path
// (pseudoFields) to a list of exactly size octets (listSize).
func fill(t *testing.T, size int, method, path string, n int) []hpack.HeaderField {
	t.Helper()
	fields := make([]hpack.HeaderField, n)
	left := size - listSize(pseudoFields(method, path))
	for i := range fields {
		fields[i].Name = fmt.Sprintf("x-fill-%d", i)
		left -= len(fields[i].Name) + fieldOverhead
	}
	if left < n {
		t.Fatalf("no room for %d fields in a list of %d octets", n, size)
	}
	for i := range fields {
		share := left / (n - i)
		fields[i].Value = strings.Repeat("a", share)
		left -= share
	}
	return fields
}

// TestHeaderListSizeBoundary checks the SETTINGS_MAX_HEADER_LIST_SIZE the
// server advertises, read from the wire, against what it does: a request
// whose header list is exactly that size (RFC 9113 section 6.5.2: name
// and value octets plus 32 a field line, pseudo-header fields included) is
// served, and one octet more gets 431 without reaching the handler. Sent
// as 10 field lines, the list that is served holds MaxHeaderBytes octets
// of names and values, as Server.MaxHeaderBytes documents.
func TestHeaderListSizeBoundary(t *testing.T) {
	const maxHeaderBytes = 1 << 10
	var calls atomic.Int32
	ts := start(t, &Server{MaxHeaderBytes: maxHeaderBytes, Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		calls.Add(1)
	})})
	rc := dialRaw(t, ts)
	rc.request(1, "/settings") // its answer comes after the server's SETTINGS
	wantStatus(t, rc.next(), "200")
	limit, ok := rc.settings[http2.SettingMaxHeaderListSize]
	if !ok {
		t.Fatal("the server advertised no SETTINGS_MAX_HEADER_LIST_SIZE")
	}
	const lines = 10 // 4 pseudo-header fields, 6 others
	atLimit := fill(t, int(limit), "GET", "/", lines-4)
	if names := listSize(slices.Concat(pseudoFields("GET", "/"), atLimit)) - lines*fieldOverhead; names != maxHeaderBytes {
		t.Errorf("a list of %d field lines at the advertised %d octets holds %d octets of names and values, want MaxHeaderBytes %d",
			lines, limit, names, maxHeaderBytes)
	}
	rc.headers(3, "GET", "/", true, atLimit...)
	wantStatus(t, rc.next(), "200")
	rc.headers(5, "GET", "/", true, fill(t, int(limit)+1, "GET", "/", lines-4)...)
	wantStatus(t, rc.next(), "431")
	if n := calls.Load(); n != 2 {
		t.Errorf("handler called %d times, want 2 (not for the list over the limit)", n)
	}
}

// TestMalformedPathIsStreamError sends :path values that are not valid
// URIs (the malformed percent-encodings of statictest's InvalidURI
// cases). RFC 9113 section 8.1.1 makes a malformed request a stream error
// of type PROTOCOL_ERROR: the server resets that stream with RST_STREAM
// PROTOCOL_ERROR, no handler runs, and the connection serves on.
func TestMalformedPathIsStreamError(t *testing.T) {
	var calls atomic.Int32
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		calls.Add(1)
	})})
	rc := dialRaw(t, ts)
	id := uint32(1)
	for _, path := range []string{"/%zz", "/hello%2", "/hello%"} {
		rc.request(id, path)
		f := rc.next()
		if rst, ok := f.(*http2.RSTStreamFrame); !ok || rst.StreamID != id || rst.ErrCode != http2.ErrCodeProtocol {
			t.Errorf(":path %q: got %s, want RST_STREAM PROTOCOL_ERROR on stream %d", path, describe(f), id)
		}
		id += 2
	}
	rc.request(id, "/valid")
	wantStatus(t, rc.next(), "200")
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want once (for /valid only)", n)
	}
}

// TestRapidReset opens and resets streams faster than handlers finish: a
// reset stream's handler keeps its slot until it returns, the streams
// over the limit are refused, and past 100 resets in a second the
// connection ends with ENHANCE_YOUR_CALM; CountError hears about it.
func TestRapidReset(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var mu sync.Mutex
	var counted []string
	ts := start(t, &Server{
		MaxConcurrentStreams: 2,
		CountError: func(e string) {
			mu.Lock()
			counted = append(counted, e)
			mu.Unlock()
		},
		Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) { <-release }),
	})
	rc := dialRaw(t, ts)
	for id := uint32(1); id < 2*(maxResetsPerSecond+20); id += 2 {
		rc.buf.Reset()
		for _, f := range pseudoFields("GET", "/") {
			_ = rc.enc.WriteField(f)
		}
		err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.buf.Bytes(), EndStream: true, EndHeaders: true})
		if err == nil {
			err = rc.fr.WriteRSTStream(id, http2.ErrCodeCancel)
		}
		if err != nil {
			break // the server has hung up
		}
	}
	for {
		f := rc.next()
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
				t.Errorf("GOAWAY %v, want ENHANCE_YOUR_CALM", ga.ErrCode)
			}
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(counted, "conn_ENHANCE_YOUR_CALM") {
		t.Errorf("CountError heard %q, want conn_ENHANCE_YOUR_CALM", counted)
	}
}

// TestReadTimeout: a request whose body stops arriving is reset when
// ReadTimeout passes, not before, and the handler's read fails.
func TestReadTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	readErr := make(chan error, 1)
	ts := start(t, &Server{ReadTimeout: timeout, Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		readErr <- err
	})})
	rc := dialRaw(t, ts)
	opened := time.Now() // before the server opens the stream and starts its timer
	rc.headers(1, "POST", "/up", false)
	_ = rc.fr.WriteData(1, false, []byte("a trickle"))
	select {
	case err := <-readErr:
		if err == nil {
			t.Error("body read ended cleanly")
		}
		if d := time.Since(opened); d < timeout {
			t.Errorf("body read failed %v after the request opened, before ReadTimeout %v", d, timeout)
		}
	case <-time.After(hangTimeout):
		t.Fatal("handler still reading after ReadTimeout")
	}
	for {
		if rst, ok := rc.next().(*http2.RSTStreamFrame); ok {
			if rst.StreamID != 1 {
				t.Errorf("RST_STREAM on stream %d", rst.StreamID)
			}
			break
		}
	}
}
