package main

import (
	"crypto/tls"
	"strings"

	"github.com/anx-gateway/anx/certs"
)

// certPolicy says which names of the config get certificates, from where,
// and where anx answers ACME's challenges (its plain-HTTP and HTTPS ports,
// 0 when not listening yet).
func certPolicy(c *config, httpPort, tlsPort int) certs.Policy {
	p := certs.Policy{
		DefaultName: defaultName(c),
		ACME: certs.ACME{
			CA:         c.ACMECA.URL,
			RootFile:   c.ACMECARoot,
			Email:      c.Email,
			Challenge:  c.ACMEChallenge.Type,
			HTTPPort:   httpPort,
			TLSPort:    tlsPort,
			ListenHost: challengeHost(c),
		},
		OnDemand: certs.OnDemand{
			Ask:          c.OnDemand.Ask.URL,
			AskTimeout:   c.OnDemand.AskTimeout.Duration,
			Rate:         c.OnDemand.Rate.N,
			RateInterval: c.OnDemand.RateInterval.Duration,
		},
		RenewInterval:      c.RenewInterval.Duration,
		RenewalWindowRatio: c.RenewalWindowRatio.F,
	}
	for _, s := range c.Sites {
		p.Sites = append(p.Sites, certs.Site{
			Names:    siteHosts(s, c.Sites),
			Issuer:   s.Issuer.Kind,
			OnDemand: s.OnDemand,
		})
	}
	return p
}

// defaultName is the name served to clients without SNI: the first exact
// host of the first site that has one.
func defaultName(c *config) string {
	for _, s := range c.Sites {
		for _, h := range s.Hosts {
			if !strings.HasPrefix(h, "*") {
				return h
			}
		}
	}
	return ""
}

// challengeHost is the host certmagic would listen on for a challenge if
// anx's own port were free (it is not: certmagic then finds it busy and
// leaves the challenge to anx). Both listeners must share it; otherwise
// every address.
func challengeHost(c *config) string {
	if h := hostOf(c.HTTP); h == hostOf(c.HTTPS) {
		return h
	}
	return ""
}

// closeACMEConn ends a connection that negotiated ALPN acme-tls/1: the
// handshake itself answered the TLS-ALPN-01 validation (RFC 8737).
func closeACMEConn(c *tls.Conn) { _ = c.Close() }
