package h3

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/internal/testpki"
)

// hangTimeout is the safety net of every wait in these tests: it only
// turns a hang into a failure, and is sized for -race on a busy 2-core
// machine and for qemu emulation. No test waits it out when it passes.
const hangTimeout = 3 * time.Minute

// testServer is a Server on a real UDP socket on 127.0.0.1, with a
// certificate for example.com and 127.0.0.1.
type testServer struct {
	srv  *Server
	addr string
	pki  *testpki.PKI
}

// start serves srv on a fresh loopback UDP socket. The Serve goroutine
// belongs to the test; cleanup closes the server, waits for Serve to
// return and closes the socket.
func start(t *testing.T, srv *Server) *testServer {
	t.Helper()
	pki := testpki.New(t, "example.com", "127.0.0.1")
	srv.TLSConfig = pki.ServerConfig()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() }) // after serveOn's cleanup
	serveOn(t, srv, pc)
	return &testServer{srv: srv, addr: pc.LocalAddr().String(), pki: pki}
}

// serveOn serves srv on pc until cleanup, which closes the server and
// waits for Serve to return.
func serveOn(t *testing.T, srv *Server, pc net.PacketConn) {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(pc) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	})
}

// tlsConfig returns a client configuration for ts with ALPN h3.
func (ts *testServer) tlsConfig() *tls.Config {
	return ts.pki.ClientConfig(http3.NextProtoH3)
}

// client returns quic-go's HTTP/3 client for ts; cleanup closes it.
func (ts *testServer) client(t *testing.T) *http.Client { return clientOf(t, ts.pki) }

// clientOf returns quic-go's HTTP/3 client trusting pki; cleanup closes
// it.
func clientOf(t *testing.T, pki *testpki.PKI) *http.Client {
	tr := &http3.Transport{TLSClientConfig: pki.ClientConfig(http3.NextProtoH3)}
	t.Cleanup(func() { tr.Close() })
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

// hello answers "hello, h3" with a Content-Length and records the request
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
		_, _ = w.Write([]byte("hello, h3"))
	}
}

func TestGet(t *testing.T) {
	var last atomic.Pointer[message.Request]
	ts := start(t, &Server{Handler: hello(&last)})
	resp, body := get(t, ts.client(t), "GET", ts.url("/hello?x=1"))
	if resp.StatusCode != 200 || body != "hello, h3" || resp.ProtoMajor != 3 {
		t.Fatalf("got %s %d %q, want HTTP/3 200 %q", resp.Proto, resp.StatusCode, body, "hello, h3")
	}
	if got := resp.Header.Get("Content-Length"); got != "9" {
		t.Errorf("Content-Length = %q, want 9", got)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/plain" {
		t.Errorf("Content-Type = %q, want text/plain", got)
	}
	r := last.Load()
	if r.Proto != message.HTTP3 || !r.TLS || r.ServerName != "example.com" || r.Method != "GET" ||
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
	ts := start(t, &Server{Handler: hello(&last)})
	resp, body := get(t, ts.client(t), "HEAD", ts.url("/hello"))
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Length") != "9" {
		t.Errorf("HEAD: %d %q Content-Length %q; want 200, no body, 9", resp.StatusCode, body, resp.Header.Get("Content-Length"))
	}
}

// TestNoSniffNoHopByHop checks two things net/http-style writers would
// otherwise do: guess a Content-Type, and pass connection-specific fields.
func TestNoSniffNoHopByHop(t *testing.T) {
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		w.Header().Set("Connection", "close")
		w.Header().Set("Transfer-Encoding", "chunked")
		w.Header().Set("X-Kept", "1")
		_, _ = w.Write([]byte("<html><body>x</body></html>"))
	})})
	resp, body := get(t, ts.client(t), "GET", ts.url("/"))
	if resp.StatusCode != 200 || body != "<html><body>x</body></html>" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	for _, k := range []string{"Content-Type", "Connection", "Transfer-Encoding"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("%s = %q, want none", k, v)
		}
	}
	if resp.Header.Get("X-Kept") != "1" {
		t.Errorf("X-Kept missing")
	}
}

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

// TestConcurrentRequests holds n requests open at once on one connection.
func TestConcurrentRequests(t *testing.T) {
	const n = 100
	var arrived atomic.Int32
	all := make(chan struct{})
	var mu sync.Mutex
	ports := map[uint16]bool{}
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		mu.Lock()
		ports[r.RemoteAddr.Port()] = true
		mu.Unlock()
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

// TestMalformedPathIsMessageError sends :path values that are not valid
// URIs (the malformed percent-encodings of statictest's InvalidURI
// cases). RFC 9114 section 4.1.2 makes a malformed request a stream error
// of type H3_MESSAGE_ERROR: the server resets that request stream with
// H3_MESSAGE_ERROR, no handler runs, and the connection serves on.
func TestMalformedPathIsMessageError(t *testing.T) {
	var calls atomic.Int32
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		calls.Add(1)
	})})
	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	defer cancel()
	qc, err := quic.DialAddr(ctx, ts.addr, ts.tlsConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer qc.CloseWithError(0, "")
	tr := &http3.Transport{}
	defer tr.Close()
	cc := tr.NewClientConn(qc)
	for _, path := range []string{"/%zz", "/hello%2", "/hello%"} {
		// URL.Opaque goes out as the :path, unchanged.
		req := &http.Request{Method: "GET", URL: &url.URL{Scheme: "https", Host: "example.com", Opaque: path}, Header: http.Header{}}
		resp, err := cc.RoundTrip(req.WithContext(ctx))
		if err == nil {
			resp.Body.Close()
			t.Errorf(":path %q: got status %d, want the stream reset with H3_MESSAGE_ERROR", path, resp.StatusCode)
			continue
		}
		if h3err, ok := errors.AsType[*http3.Error](err); !ok || h3err.ErrorCode != http3.ErrCodeMessageError || !h3err.Remote {
			t.Errorf(":path %q: got %v, want the server's H3_MESSAGE_ERROR (%#x)", path, err, uint64(http3.ErrCodeMessageError))
		}
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://example.com/valid", nil)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatalf("valid request after the malformed ones: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("valid request after the malformed ones: status %d, want 200", resp.StatusCode)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want once (for /valid only)", n)
	}
}

// TestShutdown: a request in flight when Shutdown starts completes; the
// client learns of the GOAWAY (new requests fail with quic-go's "graceful
// shutdown" error) and closes the drained connection, and Shutdown
// returns nil.
func TestShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var slow atomic.Bool
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		if r.Path == "/slow" && slow.CompareAndSwap(false, true) {
			close(entered)
			<-release
			w.Header().Set("Content-Length", "9")
			_, _ = w.Write([]byte("slow done"))
			return
		}
		_, _ = w.Write([]byte("fast"))
	})})

	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	defer cancel()
	qc, err := quic.DialAddr(ctx, ts.addr, ts.tlsConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http3.Transport{}
	defer tr.Close()
	cc := tr.NewClientConn(qc)
	defer qc.CloseWithError(0, "")

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", "https://example.com/slow", nil)
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
	go func() { shutdown <- ts.srv.Shutdown(ctx) }()

	// Wait for the GOAWAY to reach the client.
	for {
		req, _ := http.NewRequest("GET", "https://example.com/fast", nil)
		resp, err := cc.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		} else if strings.Contains(err.Error(), "graceful shutdown") {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("client never saw GOAWAY")
		case <-time.After(10 * time.Millisecond): // the poll's pace, not a wait for an event
		}
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}

	close(release)
	if r := <-got; r.err != nil || r.body != "slow done" {
		t.Errorf("in-flight request: %q, %v; want %q", r.body, r.err, "slow done")
	}
	select {
	case err := <-shutdown:
		if err != nil {
			t.Errorf("Shutdown = %v, want nil", err)
		}
	case <-time.After(hangTimeout):
		t.Fatal("Shutdown did not return after the last request")
	}
	select {
	case <-qc.Context().Done():
	case <-time.After(hangTimeout):
		t.Error("client connection still open after Shutdown")
	}
}

// TestShutdownDeadline: a response that never ends is cut off when the
// context ends; its handler sees its writes fail and returns.
func TestShutdownDeadline(t *testing.T) {
	entered := make(chan struct{})
	var once sync.Once
	handlerErr := make(chan error, 1)
	ts := start(t, &Server{Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		flusher := w.(interface{ Flush() error })
		for {
			_, err := w.Write([]byte("tick\n"))
			if err == nil {
				err = flusher.Flush()
			}
			if err != nil {
				handlerErr <- err
				return
			}
			once.Do(func() { close(entered) })
			// The state under test: a response that never ends. The
			// pace only spares the CPU; no outcome depends on it.
			time.Sleep(10 * time.Millisecond)
		}
	})})
	c := ts.client(t)
	failed := make(chan error, 1)
	go func() {
		resp, err := c.Get(ts.url("/forever"))
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		failed <- err
	}()
	<-entered
	const deadline = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	began := time.Now()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(began); took < deadline {
		t.Errorf("Shutdown returned after %v, before its context's %v deadline", took, deadline)
	}
	if err := <-handlerErr; err == nil {
		t.Error("handler's writes kept succeeding")
	}
	if err := <-failed; err == nil {
		t.Errorf("response cut off by Shutdown read to a clean end")
	}
}

func TestListenAndServe(t *testing.T) {
	pki := testpki.New(t, "example.com", "127.0.0.1")
	probe, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.LocalAddr().String()
	probe.Close()

	srv := &Server{
		Handler:   message.HandlerFunc(func(message.ResponseWriter, *message.Request) {}),
		TLSConfig: pki.ServerConfig(),
		Addr:      addr,
	}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	// Wait until a QUIC handshake succeeds. Packets sent before the
	// socket is bound are lost, and the client sends its Initial again;
	// an attempt fails only after quic-go's handshake idle timeout, and
	// then the next one starts.
	ts := &testServer{addr: addr, pki: pki}
	for deadline := time.Now().Add(hangTimeout); ; {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		qc, err := quic.DialAddr(ctx, addr, ts.tlsConfig(), nil)
		cancel()
		if err == nil {
			qc.CloseWithError(0, "")
			break
		}
		select {
		case err := <-served:
			t.Fatalf("ListenAndServe = %v before Shutdown", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListenAndServe never answered: %v", err)
		}
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) || !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("ListenAndServe = %v, want ErrServerClosed", err)
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("socket still bound after ListenAndServe returned: %v", err)
	}
	pc.Close()
	if err := srv.ListenAndServe(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ListenAndServe after Shutdown = %v, want ErrServerClosed", err)
	}
}

func TestAltSvc(t *testing.T) {
	for port, want := range map[int]string{443: `h3=":443"; ma=2592000`, 8443: `h3=":8443"; ma=2592000`} {
		if got := AltSvc(port); got != want {
			t.Errorf("AltSvc(%d) = %q, want %q", port, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	h := message.HandlerFunc(func(message.ResponseWriter, *message.Request) {})
	good := testpki.New(t, "example.com").ServerConfig()
	for _, tc := range []struct {
		srv  *Server
		want string
	}{
		{&Server{Handler: h, TLSConfig: good}, ""},
		{&Server{TLSConfig: good}, "h3: no Handler"},
		{&Server{Handler: h}, "h3: no TLSConfig"},
		{&Server{Handler: h, TLSConfig: &tls.Config{}}, "h3: TLSConfig has no certificate"},
		{&Server{Handler: h, TLSConfig: good, MaxHeaderBytes: -1}, "h3: negative MaxHeaderBytes -1"},
		{&Server{Handler: h, TLSConfig: good, MaxConcurrentStreams: -1}, "h3: negative MaxConcurrentStreams -1"},
	} {
		got := ""
		if err := tc.srv.Validate(); err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("Validate() = %q, want %q", got, tc.want)
		}
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := (&Server{Handler: h}).Serve(pc); err == nil || err.Error() != "h3: no TLSConfig" {
		t.Errorf("Serve without TLSConfig = %v", err)
	}
}

// TestBufferWarning asks for more buffer than any system grants, to see
// the warning: one log line naming the sysctl fix, and quic-go's own
// warning switched off.
func TestBufferWarning(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	rcv, snd, ok := raiseBuffers(pc, wantBufferBytes)
	if !ok || rcv <= 0 || snd <= 0 {
		t.Fatalf("raiseBuffers = %d, %d, %v on a UDP socket", rcv, snd, ok)
	}
	t.Logf("UDP buffers here: receive %d KiB, send %d KiB (want %d KiB)", rcv>>10, snd>>10, wantBufferBytes>>10)

	t.Setenv(quicBufferWarningEnv, "")
	os.Unsetenv(quicBufferWarningEnv)
	var logged bytes.Buffer
	s := &Server{Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	s.checkBuffersWant(pc, math.MaxInt32)
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") ||
		!strings.Contains(lines[0], "sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000") {
		t.Errorf("logged %q, want one warning with the sysctl fix", logged.String())
	}
	if v := os.Getenv(quicBufferWarningEnv); v != "true" {
		t.Errorf("%s = %q, want true", quicBufferWarningEnv, v)
	}

	logged.Reset()
	s.checkBuffersWant(pc, 1<<10)
	if logged.Len() != 0 {
		t.Errorf("logged %q for buffers that are big enough", logged.String())
	}
}

// TestHeaderTooLarge sends a header past MaxHeaderBytes; quic-go answers
// 431 without calling the handler.
func TestHeaderTooLarge(t *testing.T) {
	var calls atomic.Int32
	ts := start(t, &Server{MaxHeaderBytes: 1 << 10, Handler: message.HandlerFunc(func(w message.ResponseWriter, r *message.Request) {
		calls.Add(1)
	})})
	req, _ := http.NewRequest("GET", ts.url("/"), nil)
	req.Header.Set("X-Big", strings.Repeat("a", 4<<10))
	resp, err := ts.client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 431 || calls.Load() != 0 {
		t.Errorf("oversized header: %d after %d handler calls, want 431 and none", resp.StatusCode, calls.Load())
	}
}
