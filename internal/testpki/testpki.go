// Package testpki mints throwaway certificates for tests: a CA that lives
// only in memory and one server certificate it signs, with TLS
// configurations for both ends of a connection.
//
// The certificates are valid from an hour ago to an hour from now; keys
// are ECDSA P-256 (RSACertificate adds an RSA one). Nothing is written to
// disk but by CAFile.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a test CA and a server certificate it issued.
type PKI struct {
	serverName string
	names      []string
	ca         *x509.Certificate
	caKey      *ecdsa.PrivateKey
	cert       tls.Certificate
	pool       *x509.CertPool
}

// New creates a CA and a server certificate for names, each a DNS name
// or an IP address; the first is the ServerName of ClientConfig. It fails
// t if names is empty or a key or certificate cannot be made.
func New(t testing.TB, names ...string) *PKI {
	t.Helper()
	if len(names) == 0 {
		t.Fatal("testpki.New: no names")
	}
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "anx test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	ca := create(t, caTmpl, caTmpl, caKey, caKey)

	p := &PKI{serverName: names[0], names: names, ca: ca, caKey: caKey, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.cert = p.leaf(t, newKey(t), x509.KeyUsageDigitalSignature)
	return p
}

// leaf issues a server certificate for the PKI's names to key.
func (p *PKI) leaf(t testing.TB, key crypto.Signer, usage x509.KeyUsage) tls.Certificate {
	t.Helper()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: p.names[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     usage,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range p.names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	leaf := create(t, tmpl, p.ca, key, p.caKey)
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
}

// RSACertificate issues a second server certificate for the same names,
// with an RSA 2048 key and the key-encipherment usage, so that even an RSA
// key exchange could use it: a test of a policy that must refuse one then
// sees the policy refuse, not the certificate.
func (p *PKI) RSACertificate(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return p.leaf(t, key, x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment)
}

// CAFile writes the CA certificate as PEM into a temporary directory of t
// and returns its path, for tools such as openssl's -CAfile.
func (p *PKI) CAFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ca.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Certificate returns the server certificate with its private key. The
// result is shared: do not modify it.
func (p *PKI) Certificate() *tls.Certificate { return &p.cert }

// GetCertificate returns the server certificate whatever the client asks
// for; it fits tls.Config.GetCertificate.
func (p *PKI) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return &p.cert, nil
}

// Pool returns a pool holding only the CA, for a client's RootCAs.
func (p *PKI) Pool() *x509.CertPool { return p.pool }

// ServerConfig returns a new server configuration that presents the
// certificate and offers nextProtos by ALPN.
func (p *PKI) ServerConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.cert}, NextProtos: nextProtos}
}

// ClientConfig returns a new client configuration that trusts only the
// CA, names the first name given to New as ServerName and asks for
// nextProtos by ALPN.
func (p *PKI) ClientConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{RootCAs: p.pool, ServerName: p.serverName, NextProtos: nextProtos}
}

// newKey returns a new P-256 key.
func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// serial returns a random 128-bit serial number, so that no two
// certificates of a run share one.
func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// create signs tmpl, for key's public half, with parentKey and parses the
// result.
func create(t testing.TB, tmpl, parent *x509.Certificate, key, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
