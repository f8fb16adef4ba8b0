package main

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"
	"github.com/anx-gateway/anx/core/connlimit"
)

// helloConn is the connection of a ClientHello: only its peer's address
// is read.
type helloConn struct {
	net.Conn
	remote net.Addr
}

func (c helloConn) RemoteAddr() net.Addr { return c.remote }

// TestCheckSite: a site's max_conns_per_ip refuses a ClientHello naming
// one of its hosts (exact, wildcard, or any other name for a "*" site)
// once the address holds more connections than that, and counts the
// refusal; another site, another address, and a reload lifting the limit
// are let through.
func TestCheckSite(t *testing.T) {
	cfg := config.Config{Sites: []config.Site{
		{Hosts: []string{"a.test", "*.b.test"}, MaxConnsPerIP: config.ConnLimit{N: 2}},
		{Hosts: []string{"free.test"}},
		{Hosts: []string{"*"}, MaxConnsPerIP: config.ConnLimit{N: 1}},
	}}
	cl := &connLimits{limiter: connlimit.New(connlimit.Limits{})}
	cl.apply(&cfg)
	busy, quiet := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for range 3 { // three connections open from busy, one from quiet
		cl.limiter.Admit(busy)
	}
	cl.limiter.Admit(quiet)
	hello := func(name string, from netip.Addr) error {
		_, err := cl.checkSite(&tls.ClientHelloInfo{ServerName: name,
			Conn: helloConn{remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 4000))}})
		return err
	}
	cases := []struct {
		name    string
		from    netip.Addr
		refused bool
	}{
		{"a.test", busy, true},
		{"x.b.test", busy, true},
		{"free.test", busy, false},
		{"other.test", busy, true}, // the "*" site
		{"", busy, true},           // no SNI: the "*" site
		{"a.test", quiet, false},
		{"other.test", quiet, false}, // 1 open, limit 1
	}
	for _, c := range cases {
		err := hello(c.name, c.from)
		if got := errors.Is(err, errSiteConnLimit); got != c.refused {
			t.Errorf("%q from %v: refused %v (%v), want %v", c.name, c.from, got, err, c.refused)
		}
	}
	if got := cl.refused()["site_max_conns_per_ip"]; got != 4 {
		t.Errorf("refusals counted: %d, want 4", got)
	}
	cfg.Sites[0].MaxConnsPerIP.N, cfg.Sites[2].MaxConnsPerIP.N = 0, 0
	cl.apply(&cfg)
	if err := hello("a.test", busy); err != nil {
		t.Errorf("after the reload lifted the limit: %v", err)
	}
}
