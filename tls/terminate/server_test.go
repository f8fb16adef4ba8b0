package terminate

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/anx-gateway/anx/internal/testpki"
)

// TestMain fails the run if goroutines started by the tests are still
// alive once every test has passed; checkLeaks checks a test on its own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// checkLeaks fails the test if goroutines started since the call outlive
// it. Call it first, so that its cleanup runs last.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

// hangTimeout is the safety net of every wait in these tests: it only
// turns a hang into a failure, and is sized for -race on a busy 2-core
// machine and for qemu emulation. No test waits it out when it passes.
const hangTimeout = 3 * time.Minute

// newPKI returns a test certificate for localhost and 127.0.0.1.
func newPKI(t testing.TB) *testpki.PKI {
	t.Helper()
	return testpki.New(t, "localhost", "127.0.0.1")
}

// testServer is a Server serving on 127.0.0.1.
type testServer struct {
	*Server
	addr     string
	roots    *x509.CertPool
	serveErr chan error
}

// start serves s on a new 127.0.0.1 listener, with a TLS config from cfg
// and a test certificate (newPKI) unless s has a TLSConfig. The server is
// shut down at the end of the test, and Serve must then return
// ErrServerClosed.
func start(t *testing.T, s *Server, cfg Config) *testServer {
	t.Helper()
	ts := &testServer{Server: s, serveErr: make(chan error, 1)}
	if s.TLSConfig == nil {
		pki := newPKI(t)
		cfg.GetCertificate = pki.GetCertificate
		s.TLSConfig = cfg.TLSConfig()
		ts.roots = pki.Pool()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	go func() { ts.serveErr <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-ts.serveErr; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ts
}

// dial connects a TLS client trusting the test certificate, with
// ServerName localhost unless cfg sets one, and completes the handshake.
func (ts *testServer) dial(cfg *tls.Config) (*tls.Conn, error) {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg = cfg.Clone()
	if cfg.RootCAs == nil {
		cfg.RootCAs = ts.roots
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "localhost"
	}
	return tls.DialWithDialer(&net.Dialer{Timeout: hangTimeout}, "tcp", ts.addr, cfg)
}

// rawDial opens a TCP connection that speaks no TLS.
func (ts *testServer) rawDial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// reply is a handler that writes its name and closes the connection.
func reply(name string) func(*tls.Conn) {
	return func(c *tls.Conn) {
		c.Write([]byte(name))
		c.Close()
	}
}

// waitFor polls cond until it holds, failing the test after hangTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(hangTimeout); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after %v", what, hangTimeout)
		}
	}
}

// readClosed reads from c until the server closes it, failing the test if
// that takes hangTimeout, and returns what was read.
func readClosed(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(hangTimeout))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v (read %q)", hangTimeout, b)
	}
	return b
}

func TestDispatchByALPN(t *testing.T) {
	checkLeaks(t)
	tests := []struct {
		name       string
		serverALPN []string
		clientALPN []string
		want       string // handler that answers, or "" if the handshake fails
		wantALPN   string
	}{
		{"h2", nil, []string{"h2", "http/1.1"}, "h2", "h2"},
		{"http/1.1", nil, []string{"http/1.1"}, "default", "http/1.1"},
		{"no ALPN", nil, nil, "default", ""},
		{"unknown only", nil, []string{"spdy/3"}, "", ""},
		{"acme-tls/1", []string{"h2", "http/1.1", "acme-tls/1"}, []string{"acme-tls/1"}, "acme", "acme-tls/1"},
		{"h2 off, client h2 first", []string{"http/1.1"}, []string{"h2", "http/1.1"}, "default", "http/1.1"},
		{"h2 off, client h2 only", []string{"http/1.1"}, []string{"h2"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, &Server{
				Protocols: map[string]func(*tls.Conn){"h2": reply("h2"), "acme-tls/1": reply("acme")},
				Default:   reply("default"),
			}, Config{NextProtos: tt.serverALPN})
			c, err := ts.dial(&tls.Config{NextProtos: tt.clientALPN})
			if tt.want == "" {
				if err == nil {
					c.Close()
					t.Fatal("handshake succeeded, want a failure")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.ConnectionState().NegotiatedProtocol; got != tt.wantALPN {
				t.Errorf("negotiated %q, want %q", got, tt.wantALPN)
			}
			if got := readClosed(t, c); string(got) != tt.want {
				t.Errorf("handler %q answered, want %q", got, tt.want)
			}
		})
	}
}

func TestNoHandlerCloses(t *testing.T) {
	checkLeaks(t)
	ts := start(t, &Server{Protocols: map[string]func(*tls.Conn){"h2": reply("h2")}}, Config{})
	c, err := ts.dial(&tls.Config{NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := readClosed(t, c); len(got) != 0 {
		t.Errorf("read %q, want the connection closed", got)
	}
}

func TestVersionsAndSuites(t *testing.T) {
	checkLeaks(t)
	ts := start(t, &Server{Default: reply("ok")}, Config{})
	cbc := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	}
	tests := []struct {
		name        string
		cfg         *tls.Config
		ok          bool
		wantVersion uint16
		wantCurve   tls.CurveID
	}{
		{"default client", &tls.Config{}, true, tls.VersionTLS13, tls.X25519MLKEM768},
		{"TLS 1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, false, 0, 0},
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}, false, 0, 0},
		{"TLS 1.2 default suites", &tls.Config{MaxVersion: tls.VersionTLS12}, true, tls.VersionTLS12, tls.X25519},
		{"TLS 1.2 CBC only", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: cbc}, false, 0, 0},
		{"TLS 1.2 ChaCha20", &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}, true, tls.VersionTLS12, tls.X25519},
		{"TLS 1.3 X25519", &tls.Config{CurvePreferences: []tls.CurveID{tls.X25519}}, true, tls.VersionTLS13, tls.X25519},
		{"TLS 1.3 P-256", &tls.Config{CurvePreferences: []tls.CurveID{tls.CurveP256}}, true, tls.VersionTLS13, tls.CurveP256},
		{"P-384 only", &tls.Config{CurvePreferences: []tls.CurveID{tls.CurveP384}}, false, 0, 0},
		{"TLS 1.2 P-384 only", &tls.Config{MaxVersion: tls.VersionTLS12, CurvePreferences: []tls.CurveID{tls.CurveP384}}, false, 0, 0},
	}
	var fails uint64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ts.dial(tt.cfg)
			if !tt.ok {
				if err == nil {
					st := c.ConnectionState()
					c.Close()
					t.Fatalf("handshake succeeded with version %#x suite %s, want a failure",
						st.Version, tls.CipherSuiteName(st.CipherSuite))
				}
				fails++
				waitFor(t, "the failure to be counted", func() bool { return ts.Stats().Failed == fails })
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			st := c.ConnectionState()
			if st.Version != tt.wantVersion || st.CurveID != tt.wantCurve {
				t.Errorf("got version %#x curve %v, want %#x %v", st.Version, st.CurveID, tt.wantVersion, tt.wantCurve)
			}
			readClosed(t, c)
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written.
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestHandshakeTimeout: a client that sends nothing is closed once
// HandshakeTimeout has passed, not before (the clock starts before the
// dial, so before the server's), and the timeout is counted and logged.
// The upper bound is readClosed's safety net.
func TestHandshakeTimeout(t *testing.T) {
	checkLeaks(t)
	var log syncBuffer
	const timeout = 300 * time.Millisecond
	ts := start(t, &Server{
		Default:          reply("ok"),
		HandshakeTimeout: timeout,
		Logger:           slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, Config{})
	dialed := time.Now()
	silent := ts.rawDial(t)
	got := readClosed(t, silent)
	if took := time.Since(dialed); len(got) != 0 || took < timeout {
		t.Errorf("silent client: read %q, closed %v after the dial, want nothing, not before %v", got, took, timeout)
	}
	waitFor(t, "the timeout to be logged", func() bool { return strings.Contains(log.String(), "timeout=true") })
	if st := ts.Stats(); st.Accepted != 1 || st.Failed != 1 || st.TimedOut != 1 || st.Established != 0 {
		t.Errorf("stats got %+v, want 1 accepted, failed and timed out", st)
	}
	if !strings.Contains(log.String(), "level=DEBUG") || !strings.Contains(log.String(), "terminate: handshake failed") {
		t.Errorf("log got %q, want a debug record of the failure", log.String())
	}
}

// TestSlowClientDoesNotBlock holds a handshake open without sending
// anything and checks that another client is served meanwhile: while the
// silent client's handshake is still in flight (neither failed nor timed
// out, with a HandshakeTimeout no test run reaches), the other one is
// answered.
func TestSlowClientDoesNotBlock(t *testing.T) {
	checkLeaks(t)
	ts := start(t, &Server{Default: reply("ok"), HandshakeTimeout: 10 * hangTimeout}, Config{})
	ts.rawDial(t)
	waitFor(t, "the silent client to be accepted", func() bool { return ts.Stats().Accepted == 1 })
	c, err := ts.dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := readClosed(t, c); string(got) != "ok" {
		t.Errorf("got %q, want ok", got)
	}
	if st := ts.Stats(); st.Accepted != 2 || st.Established != 1 || st.Failed != 0 {
		t.Errorf("stats got %+v, want the silent client's handshake still in flight and the other established", st)
	}
}

func TestGarbageCounted(t *testing.T) {
	checkLeaks(t)
	ts := start(t, &Server{Default: reply("ok")}, Config{})
	plain := ts.rawDial(t)
	plain.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"))
	readClosed(t, plain)
	waitFor(t, "the failure to be counted", func() bool { return ts.Stats().Failed == 1 })
	c, err := ts.dial(nil)
	if err != nil {
		t.Fatalf("client after garbage: %v", err)
	}
	defer c.Close()
	// A TLS 1.3 client is done before the server has read its Finished.
	waitFor(t, "the handshake to be counted", func() bool { return ts.Stats().Established == 1 })
	if st := ts.Stats(); st.TimedOut != 0 || st.Failed != 1 {
		t.Errorf("stats got %+v, want 1 established, no timeout", st)
	}
}

// TestDeadlineCleared checks that a dispatched connection outlives
// HandshakeTimeout: its handler reads after the handshake's deadline has
// passed. A handshake slower than the timeout (a loaded or emulated
// machine) is cut and counted as timed out, which says nothing of the
// deadline of a dispatched connection: the test then tries again with
// twice the timeout.
func TestDeadlineCleared(t *testing.T) {
	checkLeaks(t)
	for timeout := 100 * time.Millisecond; !deadlineCleared(t, timeout); timeout *= 2 {
		if timeout > hangTimeout {
			t.Fatalf("every handshake timed out, up to a HandshakeTimeout of %v", timeout)
		}
		t.Logf("the handshake took longer than a HandshakeTimeout of %v here; trying %v", timeout, 2*timeout)
	}
}

// deadlineCleared serves one connection with HandshakeTimeout timeout; its
// handler echoes 4 bytes that the client sends once the handshake's
// deadline has passed. It reports false if the handshake itself timed out.
func deadlineCleared(t *testing.T, timeout time.Duration) bool {
	t.Helper()
	entered := make(chan time.Time, 1)
	ts := start(t, &Server{
		HandshakeTimeout: timeout,
		Default: func(c *tls.Conn) {
			entered <- time.Now()
			defer c.Close()
			buf := make([]byte, 4)
			if _, err := io.ReadFull(c, buf); err != nil {
				c.Write([]byte(err.Error()))
				return
			}
			c.Write(buf)
		},
	}, Config{})
	c, err := ts.dial(nil)
	waitFor(t, "the handshake to end", func() bool { st := ts.Stats(); return st.Established+st.Failed == 1 })
	if ts.Stats().TimedOut == 1 {
		if c != nil {
			c.Close()
		}
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server set the deadline before the handshake, which ended
	// before the handler began: timeout after that, the deadline is past.
	// This sleep is the state under test, a connection idle beyond it.
	time.Sleep(time.Until((<-entered).Add(timeout)))
	c.Write([]byte("ping"))
	if got := readClosed(t, c); string(got) != "ping" {
		t.Errorf("handler answered %q, want ping", got)
	}
	return true
}

func TestMaxHandshakes(t *testing.T) {
	checkLeaks(t)
	ts := start(t, &Server{Default: reply("ok"), MaxHandshakes: 1}, Config{})
	silent := ts.rawDial(t)
	waitFor(t, "the silent client to be accepted", func() bool { return ts.Stats().Accepted == 1 })

	// The only slot is taken, so the server does not accept: the second
	// client's handshake must not complete. A slow machine cannot make
	// it complete, only a server that ignores MaxHandshakes.
	cfg := &tls.Config{RootCAs: ts.roots, ServerName: "localhost"}
	if c, err := tls.DialWithDialer(&net.Dialer{Timeout: 300 * time.Millisecond}, "tcp", ts.addr, cfg); err == nil {
		c.Close()
		t.Fatal("a second handshake completed while the only slot was taken")
	}
	if n := ts.Stats().Accepted; n != 1 {
		t.Errorf("%d connections accepted while the only slot was taken, want 1", n)
	}
	silent.Close()
	c, err := ts.dial(nil)
	if err != nil {
		t.Fatalf("after the slot was freed: %v", err)
	}
	defer c.Close()
	if got := readClosed(t, c); string(got) != "ok" {
		t.Errorf("got %q, want ok", got)
	}
}

func TestShutdown(t *testing.T) {
	checkLeaks(t)
	pki := newPKI(t)
	// A HandshakeTimeout no test run reaches: the connection in handshake
	// can only be closed by Shutdown.
	s := &Server{
		TLSConfig:        (&Config{GetCertificate: pki.GetCertificate}).TLSConfig(),
		HandshakeTimeout: 10 * hangTimeout,
	}
	held := make(chan *tls.Conn, 1)
	s.Default = func(c *tls.Conn) { held <- c }

	var addrs []string
	errs := make(chan error, 2)
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		go func() { errs <- s.Serve(ln) }()
	}

	// A dispatched connection, held by its "protocol server".
	client, err := tls.DialWithDialer(&net.Dialer{Timeout: hangTimeout}, "tcp", addrs[0], pki.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	dispatched := <-held
	// A connection in handshake.
	silent, err := net.Dial("tcp", addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitFor(t, "both clients to be accepted", func() bool { return s.Stats().Accepted == 2 })

	// Shutdown must not wait for the handshake in flight (its timeout is
	// out of reach): it returns, and the connection is closed, within the
	// safety net.
	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	}
	readClosed(t, silent)
	for _, addr := range addrs {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts after Shutdown", addr)
		}
	}
	if st := s.Stats(); st.Failed != 0 || st.TimedOut != 0 {
		t.Errorf("stats got %+v, want no failure or timeout counted for shutdown", st)
	}

	// The dispatched connection is its handler's: it still works.
	dispatched.Write([]byte("still here"))
	dispatched.Close()
	if got := readClosed(t, client); string(got) != "still here" {
		t.Errorf("dispatched connection: got %q, want \"still here\"", got)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown returned %v, want ErrServerClosed", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener passed to Serve after Shutdown: Accept got %v, want it closed", err)
	}
}

func TestCloseBeforeServe(t *testing.T) {
	checkLeaks(t)
	s := &Server{TLSConfig: &tls.Config{}}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve got %v, want ErrServerClosed", err)
	}
}

func TestServeNilTLSConfig(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := (&Server{}).Serve(ln); err == nil || errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve got %v, want an error about TLSConfig", err)
	}
}

// flakyListener fails its first Accepts with a temporary error, or every
// Accept with a permanent one.
type flakyListener struct {
	net.Listener
	temporary atomic.Int32 // failures left
	permanent bool
}

// tempError is an accept error that says it is temporary.
type tempError struct{}

func (tempError) Error() string   { return "accept: too many open files" }
func (tempError) Temporary() bool { return true }
func (tempError) Timeout() bool   { return false }

// Accept fails as configured, then accepts.
func (l *flakyListener) Accept() (net.Conn, error) {
	if l.permanent {
		return nil, errors.New("accept: broken")
	}
	if l.temporary.Add(-1) >= 0 {
		return nil, tempError{}
	}
	return l.Listener.Accept()
}

func TestAcceptErrors(t *testing.T) {
	checkLeaks(t)
	pki := newPKI(t)
	tlsConfig := (&Config{GetCertificate: pki.GetCertificate}).TLSConfig()

	t.Run("temporary", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fl := &flakyListener{Listener: ln}
		fl.temporary.Store(3)
		s := &Server{TLSConfig: tlsConfig, Default: reply("ok")}
		errs := make(chan error, 1)
		go func() { errs <- s.Serve(fl) }()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: hangTimeout}, "tcp", ln.Addr().String(), pki.ClientConfig())
		if err != nil {
			t.Fatalf("after temporary accept errors: %v", err)
		}
		c.Close()
		s.Close()
		if err := <-errs; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	t.Run("permanent", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := &Server{TLSConfig: tlsConfig}
		if err := s.Serve(&flakyListener{Listener: ln, permanent: true}); err == nil || errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want the accept error", err)
		}
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("listener not closed when Serve returned: Accept got %v", err)
		}
	})
}

// BenchmarkHandshakeMemory measures the memory held per connection in
// handshake, the figure behind DefaultMaxHandshakes: connections that sent
// nothing, and connections that sent a ClientHello and stopped before
// their Finished. It opens 1000 connections per iteration; the figures
// vary by a few KiB between runs, with the goroutines' starting stack size.
func BenchmarkHandshakeMemory(b *testing.B) {
	hello := clientHello(b)
	cfg := (&Config{GetCertificate: newPKI(b).GetCertificate}).TLSConfig()
	for _, tc := range []struct {
		name  string
		hello []byte
	}{{"silent", nil}, {"hello", hello}} {
		b.Run(tc.name, func(b *testing.B) {
			var sum uint64
			for b.Loop() {
				sum += heldPerConn(b, cfg, tc.hello, 1000)
			}
			b.ReportMetric(float64(sum)/float64(b.N), "B/conn")
		})
	}
}

// heldPerConn opens n connections that each send hello and wait, and
// returns the heap and stack they make the server hold, per connection.
func heldPerConn(b *testing.B, cfg *tls.Config, hello []byte, n int) uint64 {
	s := &Server{TLSConfig: cfg, MaxHandshakes: -1, HandshakeTimeout: time.Minute}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()
	before := inUse()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		c.Write(hello)
		conns = append(conns, c)
	}
	for deadline := time.Now().Add(hangTimeout); parkedHandshakes() < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d handshakes wait for their client after %v", parkedHandshakes(), n, hangTimeout)
		}
	}
	return (inUse() - before) / uint64(n)
}

// parkedHandshakes counts the connection goroutines of Server that wait
// for the network: handshakes that have read and answered all their
// client sent, and wait for more.
func parkedHandshakes() int {
	buf := make([]byte, 64<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte(" [IO wait")) && bytes.Contains(g, []byte("terminate.(*Server).handle(")) {
			n++
		}
	}
	return n
}

// inUse returns the heap and stack memory in use after a GC.
func inUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// clientHello records the first flight of a Go TLS client.
func clientHello(b *testing.B) []byte {
	c, s := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tls.Client(c, &tls.Config{ServerName: "localhost", NextProtos: []string{"h2", "http/1.1"}}).Handshake()
	}()
	buf := make([]byte, 64<<10)
	n, err := s.Read(buf)
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	<-done
	return buf[:n]
}
