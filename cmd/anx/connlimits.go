package main

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"
	"github.com/anx-gateway/anx/core/connlimit"
	"github.com/anx-gateway/anx/core/route"
)

// connLimits applies the connection limits to every client connection of
// the process: [limits] max_conns and max_conns_per_ip when a TCP
// connection is accepted (h1.Server.Admitter, on the event loops) or a
// QUIC one's first packet arrives (h3.Server.Admitter), and a site's own
// max_conns_per_ip when the TLS ClientHello names the site (the TLS
// config's GetConfigForClient, before any key exchange). One Limiter
// counts TCP and QUIC alike; a reload changes the limits, never the
// counts. Its methods are safe from any goroutine.
type connLimits struct {
	limiter *connlimit.Limiter
	sites   atomic.Pointer[siteConnLimits] // replaced by apply on reload
	bySite  atomic.Uint64                  // handshakes refused by a site's max_conns_per_ip
}

// siteConnLimits are the sites' max_conns_per_ip (0: none) by host name;
// other is the limit of the "*" site, for names no site has (or no SNI).
type siteConnLimits struct {
	hosts route.Hosts[int]
	other int
}

// errSiteConnLimit ends a handshake refused by a site's max_conns_per_ip;
// crypto/tls sends the client an alert.
var errSiteConnLimit = errors.New("anx: the site's max_conns_per_ip is reached for this client address")

// limitConns sets up the connection limits of cfg on the gateway's
// servers, built by buildServers on tlsConfig.
func (gw *gateway) limitConns(cfg *config.Config, tlsConfig *tls.Config) {
	cl := &connLimits{limiter: connlimit.New(connlimit.Limits{})}
	cl.apply(cfg)
	gw.conns = cl
	gw.h1TLS.Admitter, gw.h1Plain.Admitter, gw.h3.Admitter = cl.limiter, cl.limiter, cl.limiter
	tlsConfig.GetConfigForClient = cl.checkSite
}

// apply takes the limits of cfg for the connections from now on.
func (cl *connLimits) apply(cfg *config.Config) {
	cl.limiter.SetLimits(connlimit.Limits{Max: cfg.Limits.MaxConns.N, PerIP: cfg.Limits.MaxConnsPerIP.N})
	sl := &siteConnLimits{}
	for _, s := range cfg.Sites { // every site's hosts, 0 too: "*" is only for names no site has
		for _, h := range config.SiteHosts(s, cfg.Sites) {
			if h == "*" {
				sl.other = s.MaxConnsPerIP.N
			} else {
				sl.hosts.Add(h, s.MaxConnsPerIP.N) // a duplicate host fails Validate first
			}
		}
	}
	cl.sites.Store(sl)
}

// checkSite is the TLS config's GetConfigForClient: it refuses the
// handshake when the ClientHello names a site with a max_conns_per_ip
// that the client's address already exceeds (the count holds this
// connection, admitted at accept); otherwise the config goes on unchanged.
func (cl *connLimits) checkSite(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	sl := cl.sites.Load()
	limit, ok := sl.hosts.Lookup(hello.ServerName)
	if !ok {
		limit = sl.other
	}
	if limit == 0 || hello.Conn == nil {
		return nil, nil
	}
	if cl.limiter.OpenFrom(remoteIP(hello.Conn.RemoteAddr())) > limit {
		cl.bySite.Add(1)
		return nil, errSiteConnLimit
	}
	return nil, nil
}

// remoteIP is the IP address of a TCP or UDP peer.
func remoteIP(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr()
	case *net.UDPAddr:
		return a.AddrPort().Addr()
	}
	return netip.Addr{}
}

// refused counts the connections refused, by the key that refused them,
// for the admin listener.
func (cl *connLimits) refused() map[string]uint64 {
	return map[string]uint64{
		"max_conns":             cl.limiter.Refused(connlimit.RefusedTotal),
		"max_conns_per_ip":      cl.limiter.Refused(connlimit.RefusedPerIP),
		"site_max_conns_per_ip": cl.bySite.Load(),
	}
}
