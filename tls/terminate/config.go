// Package terminate terminates TLS for anx: it builds the tls.Config that
// carries anx's protocol policy (versions, cipher suites, key exchanges,
// ALPN), and its Server completes handshakes off the accept loop and hands
// each established connection to the handler of its negotiated ALPN
// protocol (http/1.1, h2, acme-tls/1, ...).
//
// Certificates are not chosen here: the caller passes a GetCertificate
// function (e.g. certs.Manager.GetCertificate), so that this package does
// not depend on how certificates are obtained.
package terminate

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
)

// Config is the TLS policy of a listener. Its zero value works, offering
// h2 and http/1.1; a server also needs GetCertificate.
type Config struct {
	// GetCertificate returns the certificate for a ClientHello. It is
	// called on the connection's goroutine, concurrently for many
	// connections; hello.Context() ends when the handshake times out or
	// the server shuts down.
	GetCertificate func(hello *tls.ClientHelloInfo) (*tls.Certificate, error)

	// NextProtos are the ALPN protocols offered, in order of preference;
	// empty means "h2", "http/1.1". []string{"http/1.1"} turns HTTP/2
	// off. A client offering only protocols not listed fails the
	// handshake, except that an "http/1.1" client of a server offering "h2"
	// is let in without ALPN (crypto/tls's fallback).
	NextProtos []string
}

// cipherSuites are the TLS 1.2 suites allowed: ECDHE key exchange (forward
// secrecy) with an AEAD (AES-GCM, ChaCha20-Poly1305). CBC suites, RSA key
// exchange, 3DES and RC4 are left out. TLS 1.3 suites are all AEAD and are
// not configurable in crypto/tls. crypto/tls ignores the order of this list
// and orders the suites itself, in TLS 1.2 and 1.3 alike: AES-GCM first
// when the server has AES hardware and the client lists an AES-GCM suite
// first (as a client with AES hardware does), ChaCha20-Poly1305 first
// otherwise (see suites_test.go).
func cipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// curves are the key exchanges allowed, in order of preference: the
// post-quantum hybrid X25519MLKEM768 (TLS 1.3 only; Go's default first
// choice), then X25519 and P-256. P-384, P-521 and the other hybrids are
// left out: no common client needs them.
func curves() []tls.CurveID {
	return []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}
}

// nextProtos returns a copy of the ALPN protocols to offer.
func (c *Config) nextProtos() []string {
	if len(c.NextProtos) == 0 {
		return []string{"h2", "http/1.1"}
	}
	return slices.Clone(c.NextProtos)
}

// Validate reports a Config that cannot serve: no GetCertificate, or an
// ALPN protocol that is empty, longer than 255 bytes or listed twice.
func (c *Config) Validate() error {
	var errs []error
	if c.GetCertificate == nil {
		errs = append(errs, errors.New("terminate: no GetCertificate"))
	}
	for i, p := range c.NextProtos {
		switch {
		case p == "" || len(p) > 255:
			errs = append(errs, fmt.Errorf("terminate: ALPN protocol %q must be 1 to 255 bytes", p))
		case slices.Contains(c.NextProtos[:i], p):
			errs = append(errs, fmt.Errorf("terminate: ALPN protocol %q listed twice", p))
		}
	}
	return errors.Join(errs...)
}

// TLSConfig returns a new tls.Config for TCP listeners: TLS 1.2 and 1.3
// (1.3 is chosen whenever the client has it), the cipher suites and key
// exchanges above, the ALPN protocols and GetCertificate.
//
// Session tickets are on, with crypto/tls's automatic keys, rotated every
// 24 hours and accepted for 7 days. The keys belong to the returned
// tls.Config: call TLSConfig once and share the result between listeners,
// or resumption will not work across them (nor across processes; shared
// ticket keys are a later step).
func (c *Config) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CipherSuites:     cipherSuites(),
		CurvePreferences: curves(),
		NextProtos:       c.nextProtos(),
		GetCertificate:   c.GetCertificate,
	}
}
