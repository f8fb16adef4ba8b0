package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
)

func TestPolicyAllowed(t *testing.T) {
	ca, _ := openTestCA(t)
	m, err := NewManager(ca, Policy{
		Names:       []string{"localhost", "API.Internal.", "127.0.0.1", "::1", "*.svc.internal", "*.Local"},
		DefaultName: "default.internal",
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want bool
	}{
		{"localhost", true},
		{"LOCALHOST.", true},
		{"api.internal", true},
		{"other.internal", false},
		{"127.0.0.1", true},
		{"127.0.0.2", false},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"a.svc.internal", true},
		{"A.SVC.internal.", true},
		{"svc.internal", false},
		{"a.b.svc.internal", false},
		{"x.local", true},
		{"default.internal", true},
		{"evil.example", false},
		{"*.svc.internal", false},
		{"", false},
		{"a..svc.internal", false},
	}
	for _, tt := range tests {
		if got := m.Allowed(tt.name); got != tt.want {
			t.Errorf("Allowed(%q) got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		p  Policy
		ok bool
	}{
		{Policy{}, true},
		{Policy{Names: []string{"localhost", "*.internal", "10.0.0.1"}, DefaultName: "localhost"}, true},
		{Policy{Names: []string{"bad name"}}, false},
		{Policy{Names: []string{"*.10.0.0.1"}}, false},
		{Policy{Names: []string{"a.*.internal"}}, false},
		{Policy{Names: []string{"*"}}, false},
		{Policy{DefaultName: "-x"}, false},
	}
	for _, tt := range tests {
		if err := tt.p.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) got %v, want ok %v", tt.p, err, tt.ok)
		}
	}
}

// handshake serves one TLS handshake with m on a 127.0.0.1 socket and
// returns the client's result. serverName "" sends no SNI.
func handshake(t *testing.T, m *Manager, serverName string) (*x509.Certificate, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		tc := tls.Server(conn, &tls.Config{GetCertificate: m.GetCertificate})
		tc.Handshake()
	})
	// The client checks nothing here; the tests verify the certificate.
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: serverName, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func TestManagerHandshake(t *testing.T) {
	ca, _ := openTestCA(t)
	tests := []struct {
		name    string
		policy  Policy
		sni     string
		wantDNS string // "" when the handshake must fail
		wantIP  string
	}{
		{"allowed SNI", Policy{Names: []string{"localhost"}}, "localhost", "localhost", ""},
		{"SNI case and dot", Policy{Names: []string{"localhost"}}, "LocalHost.", "localhost", ""},
		{"wildcard SNI", Policy{Names: []string{"*.internal"}}, "db.internal", "db.internal", ""},
		{"unknown SNI", Policy{Names: []string{"localhost"}, DefaultName: "localhost"}, "evil.example", "", ""},
		{"no SNI, local IP allowed", Policy{Names: []string{"127.0.0.1"}, DefaultName: "localhost"}, "", "", "127.0.0.1"},
		{"no SNI, default name", Policy{Names: []string{"::1"}, DefaultName: "localhost"}, "", "localhost", ""},
		{"no SNI, nothing", Policy{Names: []string{"localhost"}}, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewManager(ca, tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := handshake(t, m, tt.sni)
			if tt.wantDNS == "" && tt.wantIP == "" {
				if err == nil {
					t.Fatalf("handshake got a certificate for %v %v, want a failure", leaf.DNSNames, leaf.IPAddresses)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			var got string
			switch {
			case len(leaf.DNSNames) == 1:
				got = leaf.DNSNames[0]
			case len(leaf.IPAddresses) == 1:
				got = leaf.IPAddresses[0].String()
			}
			if want := tt.wantDNS + tt.wantIP; got != want {
				t.Errorf("certificate for %q, want %q", got, want)
			}
		})
	}
}

// TestManagerVerifiedHandshake is a client that trusts only the root and
// connects to 127.0.0.1 without SNI, then with SNI localhost.
func TestManagerVerifiedHandshake(t *testing.T) {
	ca, _ := openTestCA(t)
	m, err := NewManager(ca, Policy{Names: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: m.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root())
	for _, serverName := range []string{"", "localhost"} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: serverName})
		if err != nil {
			t.Errorf("ServerName %q: %v", serverName, err)
			continue
		}
		conn.Close()
	}
	ln.Close()
}

func TestManagerRefusesWithoutIssuing(t *testing.T) {
	ca, _ := openTestCA(t)
	m, err := NewManager(ca, Policy{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, sni := range []string{"evil.example", "bad name", "127.0.0.1"} {
		_, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
		if !errors.Is(err, ErrNotAllowed) || !strings.HasPrefix(err.Error(), "certs: ") {
			t.Errorf("GetCertificate(%q) error got %v, want ErrNotAllowed", sni, err)
		}
	}
	if len(ca.leaves) != 0 {
		t.Errorf("cache holds %d certificates after refusals, want 0", len(ca.leaves))
	}
}

// TestManagerParallel runs many GetCertificate calls for one name at once,
// as a burst of handshakes would, and checks that one certificate was
// issued.
func TestManagerParallel(t *testing.T) {
	ca, _ := openTestCA(t)
	m, err := NewManager(ca, Policy{Names: []string{"*.internal"}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	got := make([]*tls.Certificate, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "burst.internal"})
			if err != nil {
				t.Error(err)
			}
			got[i] = c
		})
	}
	close(start)
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("call %d got another certificate: issued more than once", i)
		}
	}
	if len(ca.leaves) != 1 {
		t.Errorf("cache holds %d certificates, want 1", len(ca.leaves))
	}
}

func TestNewManagerNilCA(t *testing.T) {
	if _, err := NewManager(nil, Policy{}); err == nil {
		t.Error("NewManager(nil) got no error")
	}
}
