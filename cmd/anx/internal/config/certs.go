package config

import (
	"net"
	"slices"
	"strings"

	"github.com/anx-gateway/anx/certs"
)

// CertPolicy says which names of the config get certificates, from where,
// and where anx answers ACME's challenges (its plain-HTTP and HTTPS ports,
// 0 when not listening yet).
func (c *Config) CertPolicy(httpPort, tlsPort int) certs.Policy {
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
			Names:    SiteHosts(s, c.Sites),
			Issuer:   s.Issuer.Kind,
			OnDemand: s.OnDemand,
		})
	}
	return p
}

// defaultName is the name served to clients without SNI: the first exact
// host of the first site that has one.
func defaultName(c *Config) string {
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
func challengeHost(c *Config) string {
	if h := hostOf(c.HTTP); h == hostOf(c.HTTPS) {
		return h
	}
	return ""
}

// hostOf returns the host part of a host:port address.
func hostOf(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	return host
}

// SiteHosts returns a site's hosts; "localhost" brings the loopback
// addresses along unless another site of all claims them.
func SiteHosts(s Site, all []Site) []string {
	hosts := slices.Clone(s.Hosts)
	if !slices.Contains(hosts, "localhost") {
		return hosts
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		if !claimed(ip, all) {
			hosts = append(hosts, ip)
		}
	}
	return hosts
}

func claimed(host string, sites []Site) bool {
	for _, s := range sites {
		if slices.Contains(s.Hosts, host) {
			return true
		}
	}
	return false
}
