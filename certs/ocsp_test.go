package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"golang.org/x/crypto/ocsp"
)

// TestOCSPStapled: a stored certificate that names an OCSP responder is
// served with the responder's answer stapled to the handshake.
func TestOCSPStapled(t *testing.T) {
	const name = "ocsp.internal"
	dir := t.TempDir()
	m, _ := openManager(t, dir)
	inter, interKey, err := m.CA().intermediate()
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		now := time.Now()
		resp, err := ocsp.CreateResponse(inter, inter, ocsp.Response{
			Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour),
		}, interKey)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	}))
	defer responder.Close()
	storeLeafWithOCSP(t, m, name, responder.URL, inter, interKey)

	apply(t, m, Policy{Sites: []Site{{Names: []string{name}, Issuer: IssuerInternal}}})
	cs, err := dial(listen(t, m), name, rootPool(m))
	if err != nil {
		t.Fatal(err)
	}
	if asked.Load() == 0 || len(cs.OCSPResponse) == 0 {
		t.Fatalf("responder asked %d times, stapled %d bytes; want a staple", asked.Load(), len(cs.OCSPResponse))
	}
	resp, err := ocsp.ParseResponseForCert(cs.OCSPResponse, cs.PeerCertificates[0], inter)
	if err != nil || resp.Status != ocsp.Good {
		t.Errorf("stapled response: %v, status %v; want Good", err, resp)
	}
}

// storeLeafWithOCSP puts into m's storage, as certmagic keeps it, a leaf
// for name signed by the intermediate that names ocspURL as its responder.
func storeLeafWithOCSP(t *testing.T, m *Manager, name, ocspURL string, inter *x509.Certificate, interKey crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(LeafLifetime),
		DNSNames:    []string{name},
		OCSPServer:  []string{ocspURL},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leaf, err := sign(tmpl, inter, key.Public(), interKey)
	if err != nil {
		t.Fatal(err)
	}
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.Raw})...)
	keyPEM, err := certmagic.PEMEncodePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for k, v := range map[string][]byte{
		certmagic.StorageKeys.SiteCert(InternalIssuerKey, name):       chain,
		certmagic.StorageKeys.SitePrivateKey(InternalIssuerKey, name): keyPEM,
		certmagic.StorageKeys.SiteMeta(InternalIssuerKey, name):       []byte(`{"sans":["` + name + `"],"issuer_data":null}`),
	} {
		if err := m.storage.Store(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
}
