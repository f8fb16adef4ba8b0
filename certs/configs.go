package certs

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/caddyserver/certmagic"
)

// acmeTimeout bounds one whole ACME issuance (account, order, challenges,
// finalization); a failure is retried with backoff.
const acmeTimeout = 90 * time.Second

// buildConfigs makes the plan's certmagic configs, for the internal CA and
// the ACME CA, each managed and on demand, over cache and the Manager's
// storage. roots are the ACME CA's API roots, nil for the system's.
func (m *Manager) buildConfigs(pl *plan, cache *certmagic.Cache, roots *x509.CertPool) {
	pl.internal = m.newConfig(pl, cache, false)
	pl.internal.Issuers = []certmagic.Issuer{m.ca}
	pl.internalOnDemand = m.newConfig(pl, cache, true)
	pl.internalOnDemand.Issuers = []certmagic.Issuer{m.ca}
	pl.acme = m.newConfig(pl, cache, false)
	pl.acme.Issuers = []certmagic.Issuer{m.acmeIssuer(pl.acme, &pl.policy.ACME, roots)}
	pl.acmeOnDemand = m.newConfig(pl, cache, true)
	pl.acmeOnDemand.Issuers = []certmagic.Issuer{m.acmeIssuer(pl.acmeOnDemand, &pl.policy.ACME, roots)}
}

// acmeIssuer returns an ACME issuer of cfg for the policy's CA.
func (m *Manager) acmeIssuer(cfg *certmagic.Config, a *ACME, roots *x509.CertPool) *certmagic.ACMEIssuer {
	return certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
		CA:                        a.directory(),
		Email:                     a.Email,
		Agreed:                    true,
		DisableHTTPChallenge:      a.Challenge == ChallengeTLSALPN01,
		DisableTLSALPNChallenge:   a.Challenge == ChallengeHTTP01,
		DisableDistributedSolvers: true,
		ListenHost:                a.ListenHost,
		AltHTTPPort:               a.HTTPPort,
		AltTLSALPNPort:            a.TLSPort,
		TrustedRoots:              roots,
		CertObtainTimeout:         acmeTimeout,
		Logger:                    m.zlog,
	})
}

// newConfig returns a certmagic config with the settings all share; an
// on-demand one decides through the plan.
func (m *Manager) newConfig(pl *plan, cache *certmagic.Cache, onDemand bool) *certmagic.Config {
	cfg := certmagic.Config{
		Storage:            m.storage,
		RenewalWindowRatio: pl.policy.renewalWindowRatio(),
		Logger:             m.zlog,
		OnEvent:            m.onEvent,
		ShouldEmitFunc:     recorded,
	}
	if onDemand {
		cfg.OnDemand = &certmagic.OnDemandConfig{
			DecisionFunc: func(ctx context.Context, name string) error { return m.decide(ctx, pl, name) },
		}
	}
	return certmagic.New(cache, cfg)
}

// decide is certmagic's on-demand decision for a name with no certificate
// yet: only names matched by a wildcard of the policy qualify; an internal
// name without OnDemand is issued at once, anything else is asked first.
// Every issuance counts against the rate limit.
func (m *Manager) decide(ctx context.Context, pl *plan, name string) error {
	c, isIP, err := canonicalName(name)
	if err != nil {
		return err
	}
	cfg, r := pl.config(c, isIP)
	if r == nil || pl.exact[c] != nil {
		return fmt.Errorf("certs: %q is not an on-demand name", name)
	}
	if r.onDemand {
		if err := m.ask(ctx, &pl.policy.OnDemand, c); err != nil {
			// Debug: a refusal is the usual answer to a scanner's name,
			// and must not let one flood the log.
			m.log.Debug("on-demand certificate refused", "name", c, "err", err)
			return err
		}
	} else if cfg != pl.internalOnDemand {
		return fmt.Errorf("certs: %q needs on-demand TLS", name)
	}
	if m.storage.Exists(ctx, certmagic.StorageKeys.SiteCert(cfg.Issuers[0].IssuerKey(), c)) {
		return nil // a load from storage (after a restart or reload), not an issuance
	}
	if !pl.limiter.Allow() {
		m.log.Warn("on-demand certificate refused", "name", c, "err", "rate limit reached")
		return fmt.Errorf("certs: on-demand rate limit reached for %q", name)
	}
	return nil
}

// ask asks the policy's ask URL whether name may have a certificate: a 2xx
// answer within the timeout allows it; anything else, including no answer,
// refuses.
func (m *Manager) ask(ctx context.Context, o *OnDemand, name string) error {
	ctx, cancel := context.WithTimeout(ctx, o.askTimeout())
	defer cancel()
	u, err := url.Parse(o.Ask)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("domain", name)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("certs: ask %s: %w", o.Ask, err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("certs: ask %s refused %q: %s", o.Ask, name, resp.Status)
	}
	return nil
}

// recorded reports whether onEvent wants an event; the others (one per
// handshake among them) are not even built.
func recorded(event string) bool {
	return event == "cert_failed" || event == "cert_obtained"
}

// onEvent records certmagic's issuance outcomes: each failure is logged
// with the name and reason and kept for List; a success clears it.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_failed":
		err, _ := data["error"].(error)
		m.log.Error("certificate failed", "name", name, "renewal", renewal, "err", err)
		m.status.failed(name, err)
	case "cert_obtained":
		issuer, _ := data["issuer"].(string)
		m.log.Info("certificate obtained", "name", name, "issuer", issuer, "renewal", renewal)
		m.status.obtained(name)
	}
	return nil
}
