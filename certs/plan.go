package certs

import (
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/caddyserver/certmagic"
	"golang.org/x/time/rate"
)

// kind is where one name's certificate comes from.
type kind int

const (
	kindInternal kind = iota
	kindACME
)

// rule is what a policy says about the names one pattern matches.
type rule struct {
	issuer   Issuer
	onDemand bool
	pattern  string // as written, for messages
}

// kindOf resolves the issuer of a canonical name under this rule.
func (r *rule) kindOf(name string, isIP, explicitCA bool) kind {
	switch r.issuer {
	case IssuerACME:
		return kindACME
	case IssuerInternal:
		return kindInternal
	}
	if isIP || isLocalhost(name) {
		return kindInternal
	}
	if explicitCA || Public(name) {
		return kindACME
	}
	return kindInternal
}

// plan is a compiled Policy with the certmagic configs that serve it. It
// is immutable once built; Apply replaces it whole.
type plan struct {
	policy   Policy
	exact    map[string]*rule // canonical name or IP
	wildcard map[string]*rule // suffix of "*.suffix"
	any      *rule            // "*", or nil
	deflt    string           // canonical DefaultName, or ""

	// The certmagic configs: exact names are managed (obtained at Apply,
	// renewed in the background); names matched by a wildcard are
	// obtained at their first handshake, after the on-demand decision.
	// certmagic cannot do both in one config.
	internal, internalOnDemand *certmagic.Config
	acme, acmeOnDemand         *certmagic.Config

	limiter *rate.Limiter // on-demand issuances; set by Apply, shared with the next plan if unchanged
}

// compilePolicy checks a policy and indexes its names.
func compilePolicy(p *Policy) (*plan, error) {
	pl := &plan{policy: *p, exact: map[string]*rule{}, wildcard: map[string]*rule{}}
	onDemand := false
	for i := range p.Sites {
		s := &p.Sites[i]
		if err := pl.addSite(s); err != nil {
			return nil, err
		}
		onDemand = onDemand || s.OnDemand
	}
	if err := p.ACME.validate(); err != nil {
		return nil, err
	}
	if err := p.OnDemand.validate(onDemand); err != nil {
		return nil, err
	}
	if !(p.RenewalWindowRatio >= 0 && p.RenewalWindowRatio < 1) { // NaN too
		return nil, fmt.Errorf("certs: renewal window ratio %v: want 0 (the default) or a fraction less than 1", p.RenewalWindowRatio)
	}
	if p.DefaultName != "" {
		c, _, err := canonicalName(p.DefaultName)
		if err != nil {
			return nil, fmt.Errorf("certs: default name: %w", err)
		}
		if pl.exact[c] == nil {
			return nil, fmt.Errorf("certs: default name %q is not one of the sites' names", p.DefaultName)
		}
		pl.deflt = c
	}
	return pl, nil
}

// addSite indexes one site's names.
func (pl *plan) addSite(s *Site) error {
	switch s.Issuer {
	case IssuerAuto, IssuerACME, IssuerInternal:
	default:
		return fmt.Errorf("certs: issuer %q: want %q or %q", s.Issuer, IssuerACME, IssuerInternal)
	}
	for _, n := range s.Names {
		r := &rule{issuer: s.Issuer, onDemand: s.OnDemand, pattern: n}
		if err := pl.addName(n, r); err != nil {
			return err
		}
	}
	return nil
}

// addName indexes one pattern.
func (pl *plan) addName(n string, r *rule) error {
	if n == "*" {
		if pl.any != nil {
			return fmt.Errorf("certs: %q is in two sites", n)
		}
		if !r.onDemand && r.issuer != IssuerInternal {
			return fmt.Errorf("certs: %q matches any name: it needs on-demand TLS (or the internal issuer)", n)
		}
		pl.any = r
		return nil
	}
	if suffix, ok := strings.CutPrefix(n, "*."); ok {
		s, isIP, err := canonicalName(suffix)
		if err != nil || isIP {
			return fmt.Errorf("certs: invalid wildcard %q", n)
		}
		if pl.wildcard[s] != nil {
			return fmt.Errorf("certs: %q is in two sites", n)
		}
		if !r.onDemand && r.kindOf("x."+s, false, pl.policy.ACME.explicitCA()) == kindACME {
			return fmt.Errorf("certs: %q: an ACME CA issues per name only with on-demand TLS (anx has no DNS-01 for wildcard certificates)", n)
		}
		pl.wildcard[s] = r
		return nil
	}
	c, _, err := canonicalName(n)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if pl.exact[c] != nil {
		return fmt.Errorf("certs: %q is in two sites", n)
	}
	pl.exact[c] = r
	return nil
}

// match returns the rule for a canonical name, or nil.
func (pl *plan) match(name string, isIP bool) *rule {
	if r := pl.exact[name]; r != nil {
		return r
	}
	if !isIP {
		if _, parent, ok := strings.Cut(name, "."); ok {
			if r := pl.wildcard[parent]; r != nil {
				return r
			}
		}
	}
	return pl.any
}

// config returns the certmagic config that serves a canonical name.
func (pl *plan) config(name string, isIP bool) (*certmagic.Config, *rule) {
	r := pl.match(name, isIP)
	if r == nil {
		return nil, nil
	}
	acme := r.kindOf(name, isIP, pl.policy.ACME.explicitCA()) == kindACME
	switch exact := pl.exact[name] != nil; {
	case exact && acme:
		return pl.acme, r
	case exact:
		return pl.internal, r
	case acme:
		return pl.acmeOnDemand, r
	default:
		return pl.internalOnDemand, r
	}
}

// exactNames returns the exact names of the plan by issuer kind.
func (pl *plan) exactNames() (internal, acme []string) {
	explicit := pl.policy.ACME.explicitCA()
	for name, r := range pl.exact {
		_, isIP, _ := canonicalName(name)
		if r.kindOf(name, isIP, explicit) == kindACME {
			acme = append(acme, name)
		} else {
			internal = append(internal, name)
		}
	}
	return internal, acme
}

// serverName picks the name to serve a ClientHello: its SNI; without SNI
// the local IP address if the plan has it, else the default name.
func (pl *plan) serverName(hello *tls.ClientHelloInfo) (name string, isIP bool, err error) {
	if hello.ServerName != "" {
		name, isIP, err = canonicalName(hello.ServerName)
		if err != nil {
			return "", false, fmt.Errorf("%w: %w", ErrNotAllowed, err)
		}
		return name, isIP, nil
	}
	if addr, ok := localIP(hello.Conn); ok {
		if ip := addr.String(); pl.exact[ip] != nil {
			return ip, true, nil
		}
	}
	if pl.deflt != "" {
		_, isIP, _ = canonicalName(pl.deflt)
		return pl.deflt, isIP, nil
	}
	return "", false, fmt.Errorf("%w: no SNI and no default name", ErrNotAllowed)
}
