package netpoll

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// testCert returns a self-signed certificate for 127.0.0.1.
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "netpoll test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// tlsEcho is a Handler that terminates TLS on the loop and echoes the
// plaintext upper-cased.
type tlsEcho struct {
	cfg     *tls.Config
	mu      sync.Mutex
	results []error // handshake results
	plain   [16 << 10]byte
}

type tlsState struct {
	t     *TLSConn
	tc    *tls.Conn
	ready bool
}

func (h *tlsEcho) OnOpen(c *Conn) {
	st := &tlsState{t: NewTLSConn(c)}
	st.tc = tls.Server(st.t, h.cfg)
	c.SetContext(st)
	c.SetTimeout(safetyNet) // the handshake's deadline: a safety net
	st.t.Handshake(st.tc, func(err error) {
		h.mu.Lock()
		h.results = append(h.results, err)
		h.mu.Unlock()
		if err != nil {
			c.Close()
			return
		}
		st.ready = true
		c.SetTimeout(0)
		h.pump(c, st) // input that came with the client's last flight
	})
}

func (h *tlsEcho) OnRead(c *Conn, in []byte) int {
	st := c.Context().(*tlsState)
	st.t.SetInput(in)
	if st.ready {
		h.pump(c, st)
	}
	return st.t.Consumed()
}

// pump reads records until crypto/tls reports no more input.
func (h *tlsEcho) pump(c *Conn, st *tlsState) {
	for {
		n, err := st.tc.Read(h.plain[:])
		if n > 0 {
			st.tc.Write(bytes.ToUpper(h.plain[:n]))
		}
		if err == ErrNoInput {
			return
		}
		if err != nil {
			c.Close()
			return
		}
	}
}

func (h *tlsEcho) OnWritable(c *Conn) {}

func (h *tlsEcho) OnClose(c *Conn, err error) {
	c.Context().(*tlsState).t.CloseInput(err)
}

// dribbler writes every Write in small pieces with pauses, so that TLS
// records (and handshake flights) reach the server split. The pauses are
// the slow client under test, not a synchronisation: on a slower machine
// they are only longer.
type dribbler struct {
	net.Conn
	piece int
}

func (d dribbler) Write(p []byte) (int, error) {
	n := 0
	piece := d.piece
	if len(p) > 4096 {
		piece = 1024 // large records: still split, fewer pauses
	}
	for len(p) > 0 {
		k, err := d.Conn.Write(p[:min(piece, len(p))])
		n += k
		if err != nil {
			return n, err
		}
		p = p[k:]
		time.Sleep(200 * time.Microsecond)
	}
	return n, nil
}

func TestTLSOnLoop(t *testing.T) {
	cert, roots := testCert(t)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		h := &tlsEcho{cfg: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: version, MaxVersion: version}}
		s := &Server{Loops: 1, Handler: h}
		addr := start(t, s)
		raw := dial(t, addr)
		cc := tls.Client(dribbler{raw, 7}, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		cc.SetDeadline(time.Now().Add(safetyNet))
		if err := cc.Handshake(); err != nil {
			t.Fatalf("version %x: client handshake: %v", version, err)
		}
		// Several records, each arriving in 7-byte pieces, some of them
		// larger than one read of the loop.
		for i, size := range []int{1, 100, 5000, 17000, 3} {
			msg := bytes.Repeat([]byte{byte('a' + i)}, size)
			if _, err := cc.Write(msg); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, size)
			if _, err := io.ReadFull(cc, got); err != nil {
				t.Fatalf("version %x record %d: %v", version, i, err)
			}
			if !bytes.Equal(got, bytes.ToUpper(msg)) {
				t.Fatalf("version %x record %d: echo differs", version, i)
			}
		}
		cc.Close()
		h.mu.Lock()
		if len(h.results) != 1 || h.results[0] != nil {
			t.Fatalf("version %x: handshake results %v", version, h.results)
		}
		h.mu.Unlock()
	}
}

// TestTLSHandshakeTimeout: a client that never sends its hello is cut off
// by the loop's timer, which also ends the handshake goroutine.
func TestTLSHandshakeTimeout(t *testing.T) {
	cert, _ := testCert(t)
	h := &timeoutTLS{tlsEcho{cfg: &tls.Config{Certificates: []tls.Certificate{cert}}}}
	s := &Server{Loops: 1, Handler: h}
	raw := dial(t, start(t, s))
	raw.Write([]byte{0x16, 0x03, 0x01}) // the start of a record header, then nothing
	raw.SetReadDeadline(time.Now().Add(safetyNet))
	if _, err := raw.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read: %v, want EOF", err)
	}
	waitFor(t, func() bool { h.mu.Lock(); defer h.mu.Unlock(); return len(h.results) == 1 })
	if h.results[0] == nil {
		t.Fatal("handshake succeeded")
	}
}

type timeoutTLS struct{ tlsEcho }

func (h *timeoutTLS) OnOpen(c *Conn) {
	h.tlsEcho.OnOpen(c)
	c.SetTimeout(100 * time.Millisecond)
}

// TestTLSHandshakeIsNotResumable documents why the handshake runs off the
// loop: after one temporary error crypto/tls returns it for good.
func TestTLSHandshakeIsNotResumable(t *testing.T) {
	cert, _ := testCert(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	nb := &noInputConn{Conn: a}
	tc := tls.Server(nb, &tls.Config{Certificates: []tls.Certificate{cert}})
	err1 := tc.Handshake()
	nb.ready = true
	err2 := tc.Handshake()
	if err1 != ErrNoInput || !errors.Is(err2, ErrNoInput) {
		t.Fatalf("handshake errors %v, %v; want ErrNoInput twice", err1, err2)
	}
}

// noInputConn returns ErrNoInput from Read until ready.
type noInputConn struct {
	net.Conn
	ready bool
}

func (c *noInputConn) Read(p []byte) (int, error) {
	if !c.ready {
		return 0, ErrNoInput
	}
	return c.Conn.Read(p)
}
