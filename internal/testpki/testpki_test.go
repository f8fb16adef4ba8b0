package testpki_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/anx-gateway/anx/internal/testpki"
)

// handshake runs a TLS handshake between server and client over
// loopback TCP (buffered, unlike net.Pipe, so that an alert sent by one
// end cannot block against the other end's flight) and returns the
// server's connection state and the client's error.
func handshake(t *testing.T, server, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan tls.ConnectionState, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- tls.ConnectionState{}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(hangTimeout))
		srv := tls.Server(c, server)
		srv.Handshake()
		done <- srv.ConnectionState()
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), hangTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hangTimeout))
	cc := tls.Client(c, client)
	err = cc.Handshake()
	cc.Close()
	return <-done, err
}

// hangTimeout bounds a handshake's I/O: a safety net against a hang, sized
// for -race and emulation on a busy machine, which a passing run never nears.
const hangTimeout = 2 * time.Minute

func TestHandshake(t *testing.T) {
	pki := testpki.New(t, "example.com", "127.0.0.1", "::1")
	for _, name := range []string{"example.com", "127.0.0.1", "::1"} {
		cfg := pki.ClientConfig("h2")
		cfg.ServerName = name
		st, err := handshake(t, pki.ServerConfig("h2", "http/1.1"), cfg)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if st.NegotiatedProtocol != "h2" {
			t.Errorf("%s: negotiated %q, want h2", name, st.NegotiatedProtocol)
		}
	}
	cfg := pki.ClientConfig()
	cfg.ServerName = "other.example"
	if _, err := handshake(t, pki.ServerConfig(), cfg); err == nil {
		t.Error("a name outside the certificate was accepted")
	}
}

func TestClientConfigNamesTheFirstName(t *testing.T) {
	pki := testpki.New(t, "localhost", "127.0.0.1")
	cfg := pki.ClientConfig("http/1.1")
	if cfg.ServerName != "localhost" || cfg.RootCAs != pki.Pool() || len(cfg.NextProtos) != 1 {
		t.Errorf("ClientConfig = ServerName %q RootCAs %p NextProtos %q; want localhost, the pool, http/1.1",
			cfg.ServerName, cfg.RootCAs, cfg.NextProtos)
	}
	srv := &tls.Config{GetCertificate: pki.GetCertificate}
	if _, err := handshake(t, srv, cfg); err != nil {
		t.Errorf("handshake with GetCertificate: %v", err)
	}
}

func TestCertificate(t *testing.T) {
	pki := testpki.New(t, "example.test")
	leaf := pki.Certificate().Leaf
	if leaf.IsCA || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "example.test" || len(leaf.IPAddresses) != 0 {
		t.Errorf("leaf IsCA %v DNS %q IP %v, want a server certificate for example.test", leaf.IsCA, leaf.DNSNames, leaf.IPAddresses)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.test", Roots: pki.Pool()}); err != nil {
		t.Errorf("leaf does not verify against Pool: %v", err)
	}
	other := testpki.New(t, "example.test")
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.test", Roots: other.Pool()}); err == nil {
		t.Error("leaf verifies against another PKI's pool")
	}
}
