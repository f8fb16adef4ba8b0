package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The files of the benchmark site.
const (
	smallFile = "1k.bin"  // 1 KiB
	largeFile = "10m.bin" // 10 MiB
	indexFile = "index.html"

	smallSize = 1 << 10
	largeSize = 10 << 20
)

// files holds the paths of the generated site and certificate.
type files struct {
	site string // the site root (world-readable: nginx and h2o workers drop to nobody)
	cert string // PEM leaf for localhost, 127.0.0.1 and ::1, then the CA
	key  string // PEM key of the leaf
}

// writeSite writes the site and a throwaway CA + leaf (ECDSA P-256, as anx's
// own local CA issues) under dir, for nginx, h2o and Caddy. anx serves its
// own leaf from its internal CA.
func writeSite(dir string) (files, error) {
	f := files{
		site: filepath.Join(dir, "site"),
		cert: filepath.Join(dir, "cert.pem"),
		key:  filepath.Join(dir, "key.pem"),
	}
	if err := os.MkdirAll(f.site, 0o755); err != nil {
		return f, err
	}
	rng := mrand.NewChaCha8([32]byte{'a', 'n', 'x'})
	noise := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rng.Read(b)
		return b
	}
	index := "<!doctype html><title>anx bench</title><p>" + smallFile + " " + largeFile + "</p>\n"
	for name, body := range map[string][]byte{
		smallFile: noise(smallSize),
		largeFile: noise(largeSize),
		indexFile: []byte(index),
	} {
		if err := os.WriteFile(filepath.Join(f.site, name), body, 0o644); err != nil {
			return f, err
		}
	}
	certPEM, keyPEM, err := newCert()
	if err != nil {
		return f, fmt.Errorf("bench: certificate: %w", err)
	}
	if err := os.WriteFile(f.cert, certPEM, 0o644); err != nil {
		return f, err
	}
	return f, os.WriteFile(f.key, keyPEM, 0o600)
}

// newCert makes a CA and a leaf for localhost signed by it, and returns the
// chain (leaf, CA) and the leaf's key as PEM.
func newCert() (chain, key []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "anx bench throwaway CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return nil, nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		return nil, nil, err
	}
	var b bytes.Buffer
	_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return b.Bytes(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
