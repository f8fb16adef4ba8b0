package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Issuer says where a site's certificates come from.
type Issuer string

// The issuers a site may name.
const (
	// IssuerAuto picks per name: the ACME CA for public names, the
	// internal CA for localhost, IP addresses and reserved names (see
	// Public), and the ACME CA for reserved names too once an ACME CA is
	// set explicitly.
	IssuerAuto Issuer = ""
	// IssuerACME takes every name of the site from the ACME CA.
	IssuerACME Issuer = "acme"
	// IssuerInternal takes every name of the site from the internal CA.
	IssuerInternal Issuer = "internal"
)

// Challenge types of ACME that anx answers.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// LetsEncrypt is the ACME directory used when none is set.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// Defaults of the policy's durations and limits.
const (
	DefaultAskTimeout         = 3 * time.Second
	DefaultOnDemandRate       = 10
	DefaultOnDemandInterval   = time.Minute
	DefaultRenewInterval      = 10 * time.Minute
	DefaultRenewalWindowRatio = 1.0 / 3
)

// Policy says which names get certificates and from where. Its zero value
// with some Sites is valid: Let's Encrypt for public names, the internal CA
// for the others, no on-demand issuance.
type Policy struct {
	// Sites are the groups of names, each with its issuer.
	Sites []Site

	// DefaultName, if set, is served to a ClientHello without SNI whose
	// local address is not an allowed IP, e.g. a client that connected to
	// an IP address. It must be one of the sites' exact names.
	DefaultName string

	// ACME is the ACME CA and how to reach it.
	ACME ACME

	// OnDemand guards the issuance of certificates at handshake time for
	// names of sites with OnDemand set.
	OnDemand OnDemand

	// RenewInterval is how often certificates are checked for renewal
	// (and OCSP staples refreshed, at least hourly); 0 means
	// DefaultRenewInterval.
	RenewInterval time.Duration

	// RenewalWindowRatio: a certificate is renewed when less than this
	// fraction of its lifetime remains (unless the CA's renewal
	// information says otherwise); 0 means DefaultRenewalWindowRatio.
	RenewalWindowRatio float64
}

// Site is a group of names that share an issuer.
type Site struct {
	// Names are exact DNS names ("example.com", "localhost"), IP
	// addresses, wildcards "*.suffix" (any name with exactly one more
	// label) and "*" (any name). Case and a trailing dot are ignored.
	// A certificate for an exact name is obtained at start; one for a
	// name matched by a wildcard is obtained at its first handshake, which
	// for an ACME name needs OnDemand.
	Names []string
	// Issuer picks the CA; IssuerAuto by default.
	Issuer Issuer
	// OnDemand allows certificates at handshake time for names matched by
	// the wildcards, each approved by the Policy's OnDemand.Ask.
	OnDemand bool
}

// ACME says which ACME CA to use and how to answer its challenges.
type ACME struct {
	// CA is the ACME directory URL; empty means LetsEncrypt. Setting it
	// makes reserved names (*.test, *.internal, ...) ACME names too.
	CA string
	// RootFile is a PEM file of root certificates to trust for the CA's
	// API instead of the system's, for a private CA.
	RootFile string
	// Email is the contact address of the ACME account; optional.
	Email string
	// Challenge pins one challenge type (ChallengeHTTP01 or
	// ChallengeTLSALPN01); empty tries both, each after the other fails.
	Challenge string
	// HTTPPort and TLSPort are the ports on which anx answers HTTP-01 and
	// TLS-ALPN-01 (its plain-HTTP and HTTPS ports), and ListenHost the
	// host they listen on ("" for all).
	HTTPPort, TLSPort int
	ListenHost        string
}

// OnDemand is the guard of on-demand issuance.
type OnDemand struct {
	// Ask is the URL asked before a certificate is obtained for a name:
	// anx GETs Ask with the query parameter domain=<name> and issues only
	// on a 2xx answer. Required when a site has OnDemand.
	Ask string
	// AskTimeout bounds one question; no answer in time is a refusal.
	AskTimeout time.Duration
	// Rate and RateInterval limit issuances over all on-demand names, as
	// a token bucket: up to Rate at once, then Rate per RateInterval.
	// Loading a certificate stored earlier does not count.
	Rate         int
	RateInterval time.Duration
}

// Validate checks the policy without touching the network.
func (p *Policy) Validate() error {
	_, err := compilePolicy(p)
	return err
}

// explicitCA reports whether an ACME CA was set rather than defaulted.
func (a *ACME) explicitCA() bool { return a.CA != "" }

// directory returns the ACME directory URL.
func (a *ACME) directory() string {
	if a.CA == "" {
		return LetsEncrypt
	}
	return a.CA
}

// validate checks the ACME settings.
func (a *ACME) validate() error {
	if a.CA != "" {
		if err := CheckURL(a.CA); err != nil {
			return fmt.Errorf("certs: acme_ca: %w", err)
		}
	}
	switch a.Challenge {
	case "", ChallengeHTTP01, ChallengeTLSALPN01:
	default:
		return fmt.Errorf("certs: challenge %q: want %q or %q", a.Challenge, ChallengeHTTP01, ChallengeTLSALPN01)
	}
	if a.Email != "" && !strings.Contains(a.Email, "@") {
		return fmt.Errorf("certs: email %q is not an e-mail address", a.Email)
	}
	return nil
}

// roots reads RootFile, or returns nil for the system's roots.
func (a *ACME) roots() (*x509.CertPool, error) {
	if a.RootFile == "" {
		return nil, nil
	}
	pemBytes, err := os.ReadFile(a.RootFile)
	if err != nil {
		return nil, fmt.Errorf("certs: acme_ca_root: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("certs: acme_ca_root %s: no PEM certificate in it", a.RootFile)
	}
	return pool, nil
}

// validate checks the on-demand guard; needed says whether a site uses it.
func (o *OnDemand) validate(needed bool) error {
	if o.AskTimeout < 0 || o.Rate < 0 || o.RateInterval < 0 {
		return errors.New("certs: on-demand timeout and rate must not be negative")
	}
	if o.Ask == "" {
		if needed {
			return errors.New("certs: on-demand TLS needs an ask URL: anx asks it before issuing for a name")
		}
		return nil
	}
	if err := CheckURL(o.Ask); err != nil {
		return fmt.Errorf("certs: ask: %w", err)
	}
	return nil
}

// askTimeout returns AskTimeout or its default.
func (o *OnDemand) askTimeout() time.Duration {
	if o.AskTimeout == 0 {
		return DefaultAskTimeout
	}
	return o.AskTimeout
}

// rate returns the on-demand rate limit, or its defaults.
func (o *OnDemand) rate() (int, time.Duration) {
	n, every := o.Rate, o.RateInterval
	if n == 0 {
		n = DefaultOnDemandRate
	}
	if every == 0 {
		every = DefaultOnDemandInterval
	}
	return n, every
}

// renewInterval returns RenewInterval or its default.
func (p *Policy) renewInterval() time.Duration {
	if p.RenewInterval <= 0 {
		return DefaultRenewInterval
	}
	return p.RenewInterval
}

// renewalWindowRatio returns RenewalWindowRatio or its default.
func (p *Policy) renewalWindowRatio() float64 {
	if p.RenewalWindowRatio <= 0 {
		return DefaultRenewalWindowRatio
	}
	return p.RenewalWindowRatio
}

// CheckURL accepts what an ACME directory or an ask endpoint may be: an
// absolute https:// or http:// URL with a host.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("want an absolute https:// (or http://) URL, got %q", s)
	}
	return nil
}
