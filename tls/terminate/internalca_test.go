package terminate_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/anx-gateway/anx/certs"
	"github.com/anx-gateway/anx/tls/terminate"
)

// hangTimeout is the safety net of every wait in this file: it only turns
// a hang into a failure, and is sized for -race on a busy 2-core machine
// and for qemu emulation. No test waits it out when it passes.
const hangTimeout = 3 * time.Minute

// TestInternalCA serves certificates of the internal CA through a Server,
// to a client that trusts only the CA's root.
func TestInternalCA(t *testing.T) {
	m, err := certs.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer waitLockRefreshers(t)
	defer m.Close()
	if err := m.Apply(certs.Policy{Sites: []certs.Site{{Names: []string{"localhost", "127.0.0.1"}}}}); err != nil {
		t.Fatal(err)
	}
	ca := m.CA()
	cfg := terminate.Config{GetCertificate: m.GetCertificate}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := &terminate.Server{
		TLSConfig: cfg.TLSConfig(),
		Default:   func(c *tls.Conn) { c.Write([]byte("http/1.1")); c.Close() },
		Protocols: map[string]func(*tls.Conn){"h2": func(c *tls.Conn) { c.Write([]byte("h2")); c.Close() }},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-served; !errors.Is(err, terminate.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	}()

	roots := x509.NewCertPool()
	roots.AddCert(ca.Root())
	tests := []struct {
		serverName string // "" sends no SNI; the client checks 127.0.0.1
		alpn       []string
		want       string // "" if the handshake must fail
	}{
		{"localhost", []string{"h2", "http/1.1"}, "h2"},
		{"localhost", nil, "http/1.1"},
		{"", []string{"h2"}, "h2"},
		{"evil.example", nil, ""},
	}
	for _, tt := range tests {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: hangTimeout}, "tcp", ln.Addr().String(),
			&tls.Config{RootCAs: roots, ServerName: tt.serverName, NextProtos: tt.alpn})
		if tt.want == "" {
			if err == nil {
				c.Close()
				t.Errorf("%q: handshake succeeded, want a failure", tt.serverName)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.serverName, err)
			continue
		}
		got, _ := io.ReadAll(c)
		c.Close()
		if string(got) != tt.want {
			t.Errorf("%q %q: handler %q, want %q", tt.serverName, tt.alpn, got, tt.want)
		}
	}
}

// waitLockRefreshers waits for certmagic's lock-file refreshers to end, so
// that TestMain's leak check passes: each certificate obtained leaves one
// polling its released lock file for up to 5 s after Close. certmagic
// offers no way to wait for them, so this polls the goroutines' stacks
// (at a pace that spares the CPU, not a wait for an event of its own).
func waitLockRefreshers(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(hangTimeout)
	for {
		n := runtime.Stack(buf, true)
		if !bytes.Contains(buf[:n], []byte("certmagic.keepLockfileFresh")) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("certmagic's lock refreshers still run %v after Close", hangTimeout)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
