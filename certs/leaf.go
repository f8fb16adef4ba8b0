package certs

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/caddyserver/certmagic"
)

// LeafLifetime is the validity of a leaf certificate (plus an hour of
// backdating). Caddy's internal issuer uses 12 hours because its leaves go
// to other machines through its ACME server, where a short life stands in
// for revocation. anx's leaves stay in its data directory, beside the
// intermediate key that could mint new ones, so a shorter life would buy no
// security. Seven days tolerates peers whose clocks are days off
// (suspended VMs, devices without NTP); renewal starts a third before.
const LeafLifetime = 7 * 24 * time.Hour

// InternalIssuerKey names the internal CA among certmagic issuers: its
// certificates are stored under <data>/certificates/anx-internal.
const InternalIssuerKey = "anx-internal"

// IssuerKey implements certmagic.Issuer.
func (c *CA) IssuerKey() string { return InternalIssuerKey }

// Issue implements certmagic.Issuer: it signs a leaf for the names and IP
// addresses of csr, with the intermediate, and returns the PEM chain leaf +
// intermediate. Wildcards, e-mail addresses and URIs are refused; which
// names may be served at all is the Manager's policy.
//
// Its errors are not retried by certmagic (ErrNoRetry): trying the same
// CSR again in a minute would fail the same way, and an on-demand
// handshake would wait for it.
func (c *CA) Issue(_ context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	issued, err := c.issue(csr)
	if err != nil {
		return nil, certmagic.ErrNoRetry{Err: err}
	}
	return issued, nil
}

// issue is Issue without the certmagic error wrapping.
func (c *CA) issue(csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certs: internal CA: CSR signature: %w", err)
	}
	tmpl, err := c.leafTemplate(csr)
	if err != nil {
		return nil, err
	}
	inter, interKey, err := c.intermediate()
	if err != nil {
		return nil, err
	}
	if tmpl.NotAfter.After(inter.NotAfter) {
		tmpl.NotAfter = inter.NotAfter
	}
	leaf, err := sign(tmpl, inter, csr.PublicKey, interKey)
	if err != nil {
		return nil, err
	}
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.Raw})...)
	return &certmagic.IssuedCertificate{Certificate: chain}, nil
}

// leafTemplate checks the identifiers a CSR asks for and returns the
// template of a server certificate for them.
func (c *CA) leafTemplate(csr *x509.CertificateRequest) (*x509.Certificate, error) {
	if len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		return nil, errors.New("certs: internal CA: only DNS names and IP addresses are issued")
	}
	if len(csr.DNSNames)+len(csr.IPAddresses) == 0 {
		return nil, errors.New("certs: internal CA: CSR names nothing")
	}
	now := c.now()
	tmpl := &x509.Certificate{
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(LeafLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range csr.DNSNames {
		name, isIP, err := canonicalName(n)
		if err != nil {
			return nil, fmt.Errorf("certs: internal CA: %w", err)
		}
		if isIP {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(name))
			continue
		}
		tmpl.DNSNames = append(tmpl.DNSNames, name)
	}
	for _, ip := range csr.IPAddresses {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	}
	// The CommonName repeats the first identifier; the CSR's own is not
	// trusted, since only the SANs were checked.
	first := ""
	if len(tmpl.DNSNames) > 0 {
		first = tmpl.DNSNames[0]
	} else {
		first = tmpl.IPAddresses[0].String()
	}
	if len(first) <= 64 { // the longest CommonName X.509 allows
		tmpl.Subject = pkix.Name{CommonName: first}
	}
	return tmpl, nil
}
