package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/anx-gateway/anx/internal/testpki"
)

const altSvc = `h3=":443"; ma=2592000`

// testServer is a Server behind a real TLS listener on 127.0.0.1, with a
// certificate for example.com and 127.0.0.1.
type testServer struct {
	srv  *Server
	addr string
	pki  *testpki.PKI
}

// start serves srv on a fresh loopback listener with TLS and ALPN h2.
func start(t *testing.T, srv *Server) *testServer {
	t.Helper()
	pki := testpki.New(t, "example.com", "127.0.0.1")
	cfg := pki.ServerConfig("h2", "http/1.1")
	addr := listen(t, srv, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			tc.Close()
			return
		}
		srv.ServeConn(tc)
	})
	return &testServer{srv: srv, addr: addr, pki: pki}
}

// listen accepts connections on a fresh loopback listener and hands each
// to serve in a goroutine of its own. The accept loop and those goroutines
// belong to the test; cleanup closes the listener and srv and waits for
// all of them. listen returns the listener's address.
func listen(t *testing.T, srv *Server, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		srv.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

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
		case <-time.After(10 * time.Second):
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
	for _, f := range [][2]string{{":method", method}, {":scheme", "https"}, {":authority", "example.com"}, {":path", path}} {
		_ = rc.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for _, f := range extra {
		_ = rc.enc.WriteField(f)
	}
	err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.buf.Bytes(), EndStream: endStream, EndHeaders: true})
	if err != nil {
		rc.t.Fatal(err)
	}
}

// next reads the next frame that is not connection housekeeping,
// answering the server's SETTINGS on the way and recording the first.
func (rc *rawClient) next() http2.Frame {
	rc.t.Helper()
	for {
		_ = rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
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
		case *http2.WindowUpdateFrame, *http2.PingFrame:
			continue
		}
		return f
	}
}

// TestShutdownSendsGoAway watches the frames: GOAWAY NO_ERROR naming the
// open stream, then that stream's whole response, then Shutdown returns.
func TestShutdownSendsGoAway(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		close(entered)
		<-release
		_, _ = w.Write([]byte("slow done"))
	})})
	rc := dialRaw(t, ts)
	rc.request(1, "/slow")
	<-entered

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdown <- ts.srv.Shutdown(ctx)
	}()
	f := rc.next()
	ga, ok := f.(*http2.GoAwayFrame)
	if !ok {
		t.Fatalf("first frame after Shutdown: %v, want GOAWAY", f)
	}
	if ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 {
		t.Errorf("GOAWAY %v last stream %d, want NO_ERROR and 1", ga.ErrCode, ga.LastStreamID)
	}
	for id, want := range map[http2.SettingID]uint32{
		http2.SettingMaxConcurrentStreams: DefaultMaxConcurrentStreams,
		http2.SettingMaxFrameSize:         DefaultMaxReadFrameSize,
		http2.SettingMaxHeaderListSize:    DefaultMaxHeaderBytes + 320,
	} {
		if v := rc.settings[id]; v != want {
			t.Errorf("SETTINGS %v = %d, want %d", id, v, want)
		}
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with a stream still open", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := ts.srv.serve(nopConn()); !errors.Is(err, ErrServerClosed) || !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("a connection handed over during Shutdown: %v, want ErrServerClosed", err)
	}

	close(release)
	hf, ok := rc.next().(*http2.MetaHeadersFrame)
	if !ok || hf.PseudoValue("status") != "200" {
		t.Fatalf("after release: %v, want HEADERS :status 200", hf)
	}
	var body []byte
	for {
		df, ok := rc.next().(*http2.DataFrame)
		if !ok {
			t.Fatalf("want DATA")
		}
		body = append(body, df.Data()...)
		if df.StreamEnded() {
			break
		}
	}
	if string(body) != "slow done" {
		t.Errorf("body %q, want %q", body, "slow done")
	}
	rc.c.Close()
	waitShutdown(t, shutdown)
	if n := ts.srv.Conns(); n != 0 {
		t.Errorf("%d connections left", n)
	}
}

// TestShutdownWithClient finishes an in-flight request made through x/net's
// client; Shutdown returns as soon as the client closes the drained
// connection.
func TestShutdownWithClient(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		close(entered)
		<-release
		w.Header().Set("Content-Length", "9")
		_, _ = w.Write([]byte("slow done"))
	})})
	c := ts.client(t)
	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := c.Get(ts.url("/slow"))
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
	go func() { shutdown <- ts.srv.Shutdown(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if r := <-got; r.err != nil || r.body != "slow done" {
		t.Errorf("in-flight request: %q, %v; want %q", r.body, r.err, "slow done")
	}
	waitShutdown(t, shutdown)
}

// waitShutdown waits up to 5 seconds for the result of Shutdown on done
// and checks that it is nil.
func waitShutdown(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
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
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if err := <-failed; err == nil {
		t.Errorf("request cut off by Shutdown succeeded")
	}
	if n := ts.srv.Conns(); n != 0 {
		t.Errorf("%d connections left after Shutdown", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	var last atomic.Pointer[message.Request]
	ts := start(t, &Server{Handler: hello(&last), IdleTimeout: 100 * time.Millisecond})
	rc := dialRaw(t, ts)
	start := time.Now()
	f := rc.next()
	if ga, ok := f.(*http2.GoAwayFrame); !ok || ga.ErrCode != http2.ErrCodeNo {
		t.Fatalf("idle connection got %v, want GOAWAY NO_ERROR", f)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("GOAWAY after %v", d)
	}
}

func TestH2C(t *testing.T) {
	var last atomic.Pointer[message.Request]
	srv := &Server{Handler: hello(&last)}
	addr := listen(t, srv, srv.ServeH2C)

	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	resp, body := get(t, &http.Client{Transport: tr}, "GET", "http://"+addr+"/%2e%2e")
	r := last.Load()
	if resp.StatusCode != 200 || body != "hello, h2" || r.TLS || r.Path != "/%2e%2e" || r.Proto != message.HTTP2 {
		t.Errorf("h2c: %d %q, handler saw TLS %v path %q proto %v", resp.StatusCode, body, r.TLS, r.Path, r.Proto)
	}
}

func TestServeConnRefusesOtherALPN(t *testing.T) {
	pki := testpki.New(t, "example.com")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var logged bytes.Buffer
	srv := &Server{
		Handler: message.HandlerFunc(func(message.ResponseWriter, *message.Request) {}),
		Logger:  slog.New(slog.NewTextHandler(&logged, nil)),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		tc := tls.Server(c, pki.ServerConfig("http/1.1"))
		if err := tc.Handshake(); err != nil {
			tc.Close()
			return
		}
		srv.ServeConn(tc)
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), pki.ClientConfig("http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-done
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("read %d bytes from a refused connection", n)
	}
	if !strings.Contains(logged.String(), `level=WARN msg="h2: connection refused"`) || !strings.Contains(logged.String(), `\"http/1.1\"`) {
		t.Errorf("log %q, want a warning naming the ALPN protocol", logged.String())
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
	if err := (&Server{}).serve(nopConn()); err == nil || err.Error() != "h2: no Handler" {
		t.Errorf("serving without Handler: %v", err)
	}
}

// nopConn returns one end of a pipe whose other end is closed.
func nopConn() net.Conn {
	a, b := net.Pipe()
	b.Close()
	return a
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
	f := rc.next()
	if hf, ok := f.(*http2.MetaHeadersFrame); !ok || hf.PseudoValue("status") != "431" {
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			t.Fatalf("got GOAWAY %v %q, want HEADERS :status 431", ga.ErrCode, ga.DebugData())
		}
		t.Fatalf("got %v, want HEADERS :status 431", f)
	}
	if v := rc.settings[http2.SettingMaxHeaderListSize]; v != 1<<10+320 {
		t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE = %d, want %d", v, 1<<10+320)
	}
	if calls.Load() != 0 {
		t.Errorf("handler called for an oversized header")
	}
}

// TestRapidReset opens and resets streams faster than handlers finish:
// x/net keeps counting a reset stream's handler until it returns, queues
// the rest, and ends the connection with ENHANCE_YOUR_CALM once more than
// 4×MaxConcurrentStreams wait; CountError hears about it.
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
	for id := uint32(1); id < 2*20; id += 2 {
		rc.request(id, "/")
		if err := rc.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			break // the server may already have hung up
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
	if !slices.Contains(counted, "conn_ENHANCE_YOUR_CALM_too_many_early_resets") {
		t.Errorf("CountError heard %q, want too_many_early_resets", counted)
	}
}

// TestReadTimeout: a request whose body stops arriving is reset when
// ReadTimeout passes, and the handler's read fails.
func TestReadTimeout(t *testing.T) {
	readErr := make(chan error, 1)
	ts := start(t, &Server{ReadTimeout: 100 * time.Millisecond, Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		readErr <- err
	})})
	rc := dialRaw(t, ts)
	rc.headers(1, "POST", "/up", false)
	_ = rc.fr.WriteData(1, false, []byte("a trickle"))
	select {
	case err := <-readErr:
		if err == nil {
			t.Error("body read ended cleanly")
		}
	case <-time.After(5 * time.Second):
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
