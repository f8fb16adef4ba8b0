package certs

import (
	"crypto/tls"
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPublic(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"example.com", true},
		{"www.example.com", true},
		{"a.b.c.example.org", true},
		{"xn--bcher-kva.de", true},
		{"arpa.example.com", true},
		{"a.test", false},
		{"test", false},
		{"x.example", false},
		{"example", false},
		{"a.invalid", false},
		{"localhost", false},
		{"a.localhost", false},
		{"printer.local", false},
		{"db.internal", false},
		{"a.b.internal", false},
		{"home.arpa", false},
		{"nas.home.arpa", false},
		{"myhome.arpa", true}, // not under home.arpa
		{"test.com", true},    // "test" as a label, not the TLD
		{"internal.example.com", true},
		{"single", false},
		{"com", false},
		{"127.0.0.1", false},
		{"::1", false},
		{"2001:db8::1", false},
		{"::ffff:10.0.0.1", false},
		{"", false},
		{"bad name.com", false},
		{"*.example.com", false},
		{"a..com", false},
	}
	for _, tt := range tests {
		if got := Public(tt.name); got != tt.want {
			t.Errorf("Public(%q) got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestIsLocalhost(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"localhost", true},
		{"a.localhost", true},
		{"a.b.localhost", true},
		{"mylocalhost", false},
		{"localhost.example.com", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isLocalhost(tt.name); got != tt.want {
			t.Errorf("isLocalhost(%q) got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// onDemandAsk is an OnDemand with a syntactically valid ask URL; nothing
// listens there, policies are only compiled.
var onDemandAsk = OnDemand{Ask: "http://127.0.0.1:9/ask"}

func TestCompilePolicyErrors(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want string // in the error
	}{
		{"duplicate exact name across sites", Policy{Sites: []Site{{Names: []string{"a.test"}}, {Names: []string{"A.Test."}}}}, "two sites"},
		{"duplicate exact name in a site", Policy{Sites: []Site{{Names: []string{"a.test", "a.test"}}}}, "two sites"},
		{"duplicate IP across sites", Policy{Sites: []Site{{Names: []string{"::ffff:127.0.0.1"}}, {Names: []string{"127.0.0.1"}}}}, "two sites"},
		{"duplicate wildcard across sites", Policy{Sites: []Site{{Names: []string{"*.svc.internal"}}, {Names: []string{"*.SVC.internal."}}}}, "two sites"},
		{"duplicate any", Policy{Sites: []Site{{Names: []string{"*"}, Issuer: IssuerInternal}, {Names: []string{"*"}, Issuer: IssuerInternal}}}, "two sites"},
		{"any without on-demand", Policy{Sites: []Site{{Names: []string{"*"}}}}, "needs on-demand"},
		{"any, ACME, without on-demand", Policy{Sites: []Site{{Names: []string{"*"}, Issuer: IssuerACME}}}, "needs on-demand"},
		{"ACME wildcard without on-demand", Policy{Sites: []Site{{Names: []string{"*.example.com"}}}}, "on-demand"},
		{"explicit ACME wildcard without on-demand", Policy{Sites: []Site{{Names: []string{"*.svc.internal"}, Issuer: IssuerACME}}}, "on-demand"},
		{"reserved wildcard with explicit CA without on-demand", Policy{
			Sites: []Site{{Names: []string{"*.test"}}},
			ACME:  ACME{CA: "https://ca.internal/dir"},
		}, "on-demand"},
		{"bad issuer", Policy{Sites: []Site{{Names: []string{"a.test"}, Issuer: "letsencrypt"}}}, `issuer "letsencrypt"`},
		{"bad challenge", Policy{Sites: []Site{{Names: []string{"a.test"}}}, ACME: ACME{Challenge: "dns-01"}}, `challenge "dns-01"`},
		{"acme_ca not a URL", Policy{ACME: ACME{CA: "not a url"}}, "acme_ca"},
		{"acme_ca ftp", Policy{ACME: ACME{CA: "ftp://x"}}, "acme_ca"},
		{"acme_ca without host", Policy{ACME: ACME{CA: "https://"}}, "acme_ca"},
		{"acme_ca relative", Policy{ACME: ACME{CA: "/directory"}}, "acme_ca"},
		{"acme_ca bad escape", Policy{ACME: ACME{CA: "https://ca.example/%zz"}}, "acme_ca"},
		{"email without @", Policy{ACME: ACME{Email: "admin"}}, "email"},
		{"on-demand without ask", Policy{Sites: []Site{{Names: []string{"*.example.com"}, OnDemand: true}}}, "ask URL"},
		{"ask not a URL", Policy{
			Sites:    []Site{{Names: []string{"*.example.com"}, OnDemand: true}},
			OnDemand: OnDemand{Ask: "localhost:9/ask"},
		}, "ask"},
		{"negative ask timeout", Policy{
			Sites:    []Site{{Names: []string{"*.example.com"}, OnDemand: true}},
			OnDemand: OnDemand{Ask: onDemandAsk.Ask, AskTimeout: -time.Second},
		}, "negative"},
		{"negative rate", Policy{
			Sites:    []Site{{Names: []string{"*.example.com"}, OnDemand: true}},
			OnDemand: OnDemand{Ask: onDemandAsk.Ask, Rate: -1},
		}, "negative"},
		{"negative rate interval", Policy{
			Sites:    []Site{{Names: []string{"*.example.com"}, OnDemand: true}},
			OnDemand: OnDemand{Ask: onDemandAsk.Ask, RateInterval: -time.Minute},
		}, "negative"},
		// Without an on-demand site the rate still reaches the
		// limiter in Apply (for internal wildcard names), where a
		// negative one panics: see TestApplyNegativeRate.
		{"negative rate without on-demand site", Policy{
			Sites:    []Site{{Names: []string{"*.svc.internal"}}},
			OnDemand: OnDemand{Rate: -1},
		}, "negative"},
		{"default name not among the names", Policy{Sites: []Site{{Names: []string{"localhost"}}}, DefaultName: "other.internal"}, "default name"},
		{"default name only under a wildcard", Policy{Sites: []Site{{Names: []string{"*.svc.internal"}}}, DefaultName: "a.svc.internal"}, "default name"},
		{"default name invalid", Policy{Sites: []Site{{Names: []string{"localhost"}}}, DefaultName: "-x"}, "default name"},
		{"default name without sites", Policy{DefaultName: "localhost"}, "default name"},
		{"renewal ratio negative", Policy{RenewalWindowRatio: -0.1}, "renewal window ratio"},
		{"renewal ratio 1", Policy{RenewalWindowRatio: 1}, "renewal window ratio"},
		{"renewal ratio above 1", Policy{RenewalWindowRatio: 1.5}, "renewal window ratio"},
		{"renewal ratio NaN", Policy{RenewalWindowRatio: math.NaN()}, "renewal window ratio"},
		{"renewal ratio +Inf", Policy{RenewalWindowRatio: math.Inf(1)}, "renewal window ratio"},
		{"invalid name", Policy{Sites: []Site{{Names: []string{"bad name"}}}}, "invalid name"},
		{"empty name", Policy{Sites: []Site{{Names: []string{""}}}}, "invalid name"},
		{"name with zone", Policy{Sites: []Site{{Names: []string{"fe80::1%eth0"}}}}, "invalid name"},
		{"wildcard of an IP", Policy{Sites: []Site{{Names: []string{"*.10.0.0.1"}, Issuer: IssuerInternal}}}, "invalid wildcard"},
		{"inner wildcard", Policy{Sites: []Site{{Names: []string{"a.*.internal"}}}}, "invalid name"},
		{"double wildcard", Policy{Sites: []Site{{Names: []string{"*.*.internal"}}}}, "invalid wildcard"},
		{"wildcard without suffix", Policy{Sites: []Site{{Names: []string{"*."}}}}, "invalid wildcard"},
		{"partial wildcard", Policy{Sites: []Site{{Names: []string{"a*.internal"}}}}, "invalid name"},
		{"bad name in a later site", Policy{Sites: []Site{{Names: []string{"localhost"}}, {Names: []string{"ok.test", "a..b"}}}}, "invalid name"},
		// roots are read by Apply, not Validate: see TestApplyBadRootFile.
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := compilePolicy(&tt.p)
			if err == nil {
				t.Fatalf("compilePolicy got a plan (%d exact names), want an error containing %q", len(pl.exact), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "certs: ") {
				t.Errorf("error got %q, want one starting \"certs: \" containing %q", err, tt.want)
			}
			if verr := tt.p.Validate(); verr == nil || verr.Error() != err.Error() {
				t.Errorf("Validate got %v, want the same error as compilePolicy", verr)
			}
		})
	}
}

func TestCompilePolicyValid(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
	}{
		{"zero", Policy{}},
		{"no sites, only settings", Policy{ACME: ACME{CA: "https://acme.example/dir", Email: "a@b.example", Challenge: ChallengeHTTP01}}},
		{"mixed names", Policy{Sites: []Site{{Names: []string{"localhost", "127.0.0.1", "::1", "example.com", "*.svc.internal"}}}, DefaultName: "LOCALHOST."}},
		{"IP default name", Policy{Sites: []Site{{Names: []string{"::ffff:10.0.0.1"}}}, DefaultName: "10.0.0.1"}},
		{"internal any", Policy{Sites: []Site{{Names: []string{"*"}, Issuer: IssuerInternal}}}},
		{"on-demand any", Policy{Sites: []Site{{Names: []string{"*"}, OnDemand: true}}, OnDemand: onDemandAsk}},
		{"on-demand ACME wildcard", Policy{Sites: []Site{{Names: []string{"*.example.com"}, OnDemand: true}}, OnDemand: onDemandAsk}},
		{"localhost wildcard", Policy{Sites: []Site{{Names: []string{"*.localhost"}}}}},
		{"internal wildcard of a public suffix", Policy{Sites: []Site{{Names: []string{"*.example.com"}, Issuer: IssuerInternal}}}},
		{"tls-alpn-01", Policy{ACME: ACME{Challenge: ChallengeTLSALPN01}}},
		{"renewal ratio", Policy{RenewalWindowRatio: 0.5}},
		{"ask settings", Policy{OnDemand: OnDemand{Ask: "https://auth.example/ask?x=1", AskTimeout: time.Second, Rate: 1, RateInterval: time.Hour}}},
		{"ask without on-demand site", Policy{OnDemand: onDemandAsk}},
		{"same name as exact and under wildcard", Policy{Sites: []Site{{Names: []string{"a.svc.internal"}}, {Names: []string{"*.svc.internal"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// TestCompilePolicyCopies checks that the plan does not share the caller's
// policy: Apply keeps a plan while the caller may reuse its Policy.
func TestCompilePolicyCopies(t *testing.T) {
	p := Policy{Sites: []Site{{Names: []string{"a.test"}}}, DefaultName: "a.test"}
	pl, err := compilePolicy(&p)
	if err != nil {
		t.Fatal(err)
	}
	p.DefaultName = "changed"
	p.ACME.CA = "https://changed.example/"
	if pl.policy.DefaultName != "a.test" || pl.policy.ACME.CA != "" {
		t.Errorf("plan's policy changed with the caller's: %+v", pl.policy)
	}
}

// matchPolicy is the policy of TestPlanMatch.
var matchPolicy = Policy{
	Sites: []Site{
		{Names: []string{"localhost", "API.Internal.", "127.0.0.1", "::1", "10.0.0.1"}},
		{Names: []string{"*.svc.internal", "*.Local"}},
		{Names: []string{"a.svc.internal"}, Issuer: IssuerInternal},
		{Names: []string{"default.internal"}},
	},
	DefaultName: "default.internal",
}

func TestPlanMatch(t *testing.T) {
	pl, err := compilePolicy(&matchPolicy)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pattern string // of the rule matched; "" for none
	}{
		{"localhost", "localhost"},
		{"LOCALHOST.", "localhost"},
		{"api.internal", "API.Internal."},
		{"other.internal", ""},
		{"127.0.0.1", "127.0.0.1"},
		{"127.0.0.2", ""},
		{"::1", "::1"},
		{"0:0:0:0:0:0:0:1", "::1"},
		{"::ffff:127.0.0.1", "127.0.0.1"},
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"b.svc.internal", "*.svc.internal"},
		{"B.SVC.internal.", "*.svc.internal"},
		{"a.svc.internal", "a.svc.internal"}, // the exact name wins
		{"svc.internal", ""},
		{"a.b.svc.internal", ""},
		{"x.local", "*.Local"},
		{"local", ""},
		{"default.internal", "default.internal"},
		{"evil.example", ""},
	}
	for _, tt := range tests {
		c, isIP, err := canonicalName(tt.name)
		if err != nil {
			t.Fatalf("canonicalName(%q): %v", tt.name, err)
		}
		r := pl.match(c, isIP)
		got := ""
		if r != nil {
			got = r.pattern
		}
		if got != tt.pattern {
			t.Errorf("match(%q) got rule %q, want %q", tt.name, got, tt.pattern)
		}
	}
}

// TestPlanMatchAny checks "*": any name and any IP address, after exact
// names and wildcards.
func TestPlanMatchAny(t *testing.T) {
	p := Policy{Sites: []Site{
		{Names: []string{"localhost", "*.svc.internal"}},
		{Names: []string{"*"}, Issuer: IssuerInternal},
	}}
	pl, err := compilePolicy(&p)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, pattern string }{
		{"localhost", "localhost"},
		{"a.svc.internal", "*.svc.internal"},
		{"anything.example", "*"},
		{"single", "*"},
		{"a.b.svc.internal", "*"},
		{"10.1.2.3", "*"},
		{"2001:db8::1", "*"},
	}
	for _, tt := range tests {
		c, isIP, _ := canonicalName(tt.name)
		if r := pl.match(c, isIP); r == nil || r.pattern != tt.pattern {
			t.Errorf("match(%q) got %+v, want rule %q", tt.name, r, tt.pattern)
		}
	}
}

// kindName names a kind in messages.
func kindName(k kind) string {
	switch k {
	case kindInternal:
		return "internal"
	case kindACME:
		return "acme"
	}
	return "?"
}

// kindFor returns the issuer kind a plan picks for name, or "none".
func kindFor(t *testing.T, pl *plan, name string) string {
	t.Helper()
	c, isIP, err := canonicalName(name)
	if err != nil {
		t.Fatalf("canonicalName(%q): %v", name, err)
	}
	r := pl.match(c, isIP)
	if r == nil {
		return "none"
	}
	return kindName(r.kindOf(c, isIP, pl.policy.ACME.explicitCA()))
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		issuer     Issuer
		name       string
		explicitCA bool
		want       kind
	}{
		{IssuerAuto, "example.com", false, kindACME},
		{IssuerAuto, "www.example.com", false, kindACME},
		{IssuerAuto, "localhost", false, kindInternal},
		{IssuerAuto, "app.localhost", false, kindInternal},
		{IssuerAuto, "127.0.0.1", false, kindInternal},
		{IssuerAuto, "::1", false, kindInternal},
		{IssuerAuto, "db.internal", false, kindInternal},
		{IssuerAuto, "a.test", false, kindInternal},
		{IssuerAuto, "nas.home.arpa", false, kindInternal},
		{IssuerAuto, "printer.local", false, kindInternal},
		{IssuerAuto, "single", false, kindInternal},
		// An explicit CA takes the reserved names, never localhost or IPs.
		{IssuerAuto, "example.com", true, kindACME},
		{IssuerAuto, "db.internal", true, kindACME},
		{IssuerAuto, "a.test", true, kindACME},
		{IssuerAuto, "single", true, kindACME},
		{IssuerAuto, "localhost", true, kindInternal},
		{IssuerAuto, "app.localhost", true, kindInternal},
		{IssuerAuto, "10.0.0.1", true, kindInternal},
		{IssuerAuto, "2001:db8::1", true, kindInternal},
		// A site's issuer overrides everything.
		{IssuerACME, "localhost", false, kindACME},
		{IssuerACME, "10.0.0.1", false, kindACME},
		{IssuerACME, "db.internal", false, kindACME},
		{IssuerInternal, "example.com", false, kindInternal},
		{IssuerInternal, "example.com", true, kindInternal},
	}
	for _, tt := range tests {
		c, isIP, err := canonicalName(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		r := &rule{issuer: tt.issuer}
		if got := r.kindOf(c, isIP, tt.explicitCA); got != tt.want {
			t.Errorf("issuer %q, name %q, explicit CA %v: got %s, want %s", tt.issuer, tt.name, tt.explicitCA, kindName(got), kindName(tt.want))
		}
	}
}

// TestPlanIssuerPerSite checks the issuer chosen for names through a whole
// policy, with per-site overrides, with and without an explicit ACME CA.
func TestPlanIssuerPerSite(t *testing.T) {
	sites := []Site{
		{Names: []string{"example.com", "db.internal", "localhost", "10.0.0.1"}},
		{Names: []string{"intranet.example.com"}, Issuer: IssuerInternal},
		{Names: []string{"public.internal"}, Issuer: IssuerACME},
		{Names: []string{"*.od.example.com"}, OnDemand: true},
		{Names: []string{"*.svc.internal"}, OnDemand: true},
		{Names: []string{"*.lab.example.com"}, Issuer: IssuerInternal},
	}
	tests := []struct {
		name     string
		implicit string // issuer kind with the default CA
		explicit string // with an explicit ACME CA
	}{
		{"example.com", "acme", "acme"},
		{"db.internal", "internal", "acme"},
		{"localhost", "internal", "internal"},
		{"10.0.0.1", "internal", "internal"},
		{"intranet.example.com", "internal", "internal"},
		{"public.internal", "acme", "acme"},
		{"a.od.example.com", "acme", "acme"},
		{"a.svc.internal", "internal", "acme"},
		{"a.lab.example.com", "internal", "internal"},
		{"other.example.com", "none", "none"},
	}
	implicit, err := compilePolicy(&Policy{Sites: sites, OnDemand: onDemandAsk})
	if err != nil {
		t.Fatal(err)
	}
	explicit, err := compilePolicy(&Policy{Sites: sites, OnDemand: onDemandAsk, ACME: ACME{CA: "https://ca.internal/acme/directory"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if got := kindFor(t, implicit, tt.name); got != tt.implicit {
			t.Errorf("default CA: %q got %s, want %s", tt.name, got, tt.implicit)
		}
		if got := kindFor(t, explicit, tt.name); got != tt.explicit {
			t.Errorf("explicit CA: %q got %s, want %s", tt.name, got, tt.explicit)
		}
	}

	internal, acme := implicit.exactNames()
	slices.Sort(internal)
	slices.Sort(acme)
	if want := []string{"10.0.0.1", "db.internal", "intranet.example.com", "localhost"}; !slices.Equal(internal, want) {
		t.Errorf("exactNames internal got %q, want %q", internal, want)
	}
	if want := []string{"example.com", "public.internal"}; !slices.Equal(acme, want) {
		t.Errorf("exactNames acme got %q, want %q", acme, want)
	}
	internal, acme = explicit.exactNames()
	slices.Sort(internal)
	slices.Sort(acme)
	if want := []string{"10.0.0.1", "intranet.example.com", "localhost"}; !slices.Equal(internal, want) {
		t.Errorf("explicit CA: exactNames internal got %q, want %q", internal, want)
	}
	if want := []string{"db.internal", "example.com", "public.internal"}; !slices.Equal(acme, want) {
		t.Errorf("explicit CA: exactNames acme got %q, want %q", acme, want)
	}
}

// fakeConn is a net.Conn with only a local address.
type fakeConn struct {
	net.Conn
	local net.Addr
}

func (c fakeConn) LocalAddr() net.Addr { return c.local }

func TestPlanServerName(t *testing.T) {
	withDefault, err := compilePolicy(&Policy{Sites: []Site{{Names: []string{"127.0.0.1", "::1", "localhost"}}}, DefaultName: "LocalHost."})
	if err != nil {
		t.Fatal(err)
	}
	noDefault, err := compilePolicy(&Policy{Sites: []Site{{Names: []string{"127.0.0.1", "localhost"}}}})
	if err != nil {
		t.Fatal(err)
	}
	ipDefault, err := compilePolicy(&Policy{Sites: []Site{{Names: []string{"10.0.0.1"}}}, DefaultName: "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	tcp := func(ip string) net.Conn {
		return fakeConn{local: &net.TCPAddr{IP: net.ParseIP(ip), Port: 443}}
	}
	tests := []struct {
		name   string
		pl     *plan
		hello  tls.ClientHelloInfo
		want   string // "" for ErrNotAllowed
		wantIP bool
	}{
		{"SNI", noDefault, tls.ClientHelloInfo{ServerName: "LocalHost.", Conn: tcp("127.0.0.1")}, "localhost", false},
		{"SNI not in policy is still the name", noDefault, tls.ClientHelloInfo{ServerName: "other.test"}, "other.test", false},
		{"invalid SNI", noDefault, tls.ClientHelloInfo{ServerName: "bad name"}, "", false},
		{"no SNI, local IPv4", noDefault, tls.ClientHelloInfo{Conn: tcp("127.0.0.1")}, "127.0.0.1", true},
		{"no SNI, local mapped IPv4", noDefault, tls.ClientHelloInfo{Conn: tcp("::ffff:127.0.0.1")}, "127.0.0.1", true},
		{"no SNI, local IPv6", withDefault, tls.ClientHelloInfo{Conn: tcp("::1")}, "::1", true},
		{"no SNI, local IPv6 with zone", withDefault, tls.ClientHelloInfo{Conn: fakeConn{local: &net.TCPAddr{IP: net.ParseIP("::1"), Zone: "lo"}}}, "::1", true},
		{"no SNI, UDP local IP", noDefault, tls.ClientHelloInfo{Conn: fakeConn{local: &net.UDPAddr{IP: net.ParseIP("127.0.0.1")}}}, "127.0.0.1", true},
		{"no SNI, other local IP, default", withDefault, tls.ClientHelloInfo{Conn: tcp("192.0.2.1")}, "localhost", false},
		{"no SNI, no conn (QUIC), default", withDefault, tls.ClientHelloInfo{}, "localhost", false},
		{"no SNI, unix conn, default", withDefault, tls.ClientHelloInfo{Conn: fakeConn{local: &net.UnixAddr{Name: "/s", Net: "unix"}}}, "localhost", false},
		{"no SNI, IP default", ipDefault, tls.ClientHelloInfo{Conn: tcp("192.0.2.1")}, "10.0.0.1", true},
		{"no SNI, other local IP, no default", noDefault, tls.ClientHelloInfo{Conn: tcp("192.0.2.1")}, "", false},
		{"no SNI, no conn, no default", noDefault, tls.ClientHelloInfo{}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, isIP, err := tt.pl.serverName(&tt.hello)
			if tt.want == "" {
				if !errors.Is(err, ErrNotAllowed) {
					t.Errorf("serverName got %q %v %v, want ErrNotAllowed", name, isIP, err)
				}
				return
			}
			if err != nil || name != tt.want || isIP != tt.wantIP {
				t.Errorf("serverName got %q %v %v, want %q %v", name, isIP, err, tt.want, tt.wantIP)
			}
		})
	}
}

func TestPolicyDefaults(t *testing.T) {
	var p Policy
	if got := p.renewInterval(); got != DefaultRenewInterval {
		t.Errorf("renewInterval got %v, want %v", got, DefaultRenewInterval)
	}
	if got := p.renewalWindowRatio(); got != DefaultRenewalWindowRatio {
		t.Errorf("renewalWindowRatio got %v, want %v", got, DefaultRenewalWindowRatio)
	}
	if got := p.OnDemand.askTimeout(); got != DefaultAskTimeout {
		t.Errorf("askTimeout got %v, want %v", got, DefaultAskTimeout)
	}
	if n, every := p.OnDemand.rate(); n != DefaultOnDemandRate || every != DefaultOnDemandInterval {
		t.Errorf("rate got %d/%v, want %d/%v", n, every, DefaultOnDemandRate, DefaultOnDemandInterval)
	}
	if got := p.ACME.directory(); got != LetsEncrypt || p.ACME.explicitCA() {
		t.Errorf("directory got %q explicit %v, want %q false", got, p.ACME.explicitCA(), LetsEncrypt)
	}

	p = Policy{
		RenewInterval:      time.Minute,
		RenewalWindowRatio: 0.5,
		OnDemand:           OnDemand{AskTimeout: time.Second, Rate: 3, RateInterval: time.Hour},
		ACME:               ACME{CA: "https://ca.example/dir"},
	}
	if got := p.renewInterval(); got != time.Minute {
		t.Errorf("renewInterval got %v, want 1m", got)
	}
	if got := p.renewalWindowRatio(); got != 0.5 {
		t.Errorf("renewalWindowRatio got %v, want 0.5", got)
	}
	if got := p.OnDemand.askTimeout(); got != time.Second {
		t.Errorf("askTimeout got %v, want 1s", got)
	}
	if n, every := p.OnDemand.rate(); n != 3 || every != time.Hour {
		t.Errorf("rate got %d/%v, want 3/1h", n, every)
	}
	if got := p.ACME.directory(); got != "https://ca.example/dir" || !p.ACME.explicitCA() {
		t.Errorf("directory got %q explicit %v", got, p.ACME.explicitCA())
	}
}

func TestACMERoots(t *testing.T) {
	dir := t.TempDir()
	ca, _ := openTestCA(t)
	notPEM := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(notPEM, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    string
		wantNil bool
		wantErr string
	}{
		{"system roots", "", true, ""},
		{"a root", ca.RootPath(), false, ""},
		{"missing file", filepath.Join(dir, "missing.pem"), false, "acme_ca_root"},
		{"not PEM", notPEM, false, "no PEM certificate"},
	}
	for _, tt := range tests {
		a := ACME{RootFile: tt.file}
		pool, err := a.roots()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: roots error got %v, want one containing %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || (pool == nil) != tt.wantNil {
			t.Errorf("%s: roots got %v %v, want nil pool %v", tt.name, pool, err, tt.wantNil)
		}
	}
}
