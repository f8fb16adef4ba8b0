package message

import (
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer: its own address", "192.0.2.1:1", []string{"198.51.100.9"}, "192.0.2.1"},
		{"trusted peer without the field", "10.1.1.1:1", nil, "10.1.1.1"},
		{"trusted peer names the client", "10.1.1.1:1", []string{"198.51.100.9"}, "198.51.100.9"},
		{"trusted hops are skipped", "10.1.1.1:1", []string{"203.0.113.5, 198.51.100.9, 10.2.2.2"}, "198.51.100.9"},
		{"several fields read as one list", "[::1]:1", []string{"203.0.113.5", "198.51.100.9, 10.2.2.2", "10.3.3.3"}, "198.51.100.9"},
		{"all hops trusted: the farthest", "10.1.1.1:1", []string{"10.9.9.9, 10.2.2.2"}, "10.9.9.9"},
		{"garbage ends the walk", "10.1.1.1:1", []string{"198.51.100.9, nonsense, 10.2.2.2"}, "10.2.2.2"},
		{"an address with a port", "10.1.1.1:1", []string{"198.51.100.9:4711"}, "198.51.100.9"},
		{"IPv6", "10.1.1.1:1", []string{"2001:db8::1"}, "2001:db8::1"},
		{"mapped IPv4 peer", "[::ffff:10.1.1.1]:1", []string{"198.51.100.9"}, "198.51.100.9"},
	}
	for _, c := range cases {
		r := &Request{RemoteAddr: netip.MustParseAddrPort(c.peer)}
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := ClientAddr(r, trusted).String(); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestIsTrusted(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	for _, c := range []struct {
		addr string
		want bool
	}{{"10.1.2.3", true}, {"11.0.0.1", false}, {"2001:db8::5", true}, {"::1", false}} {
		if got := IsTrusted(netip.MustParseAddr(c.addr), trusted); got != c.want {
			t.Errorf("IsTrusted(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
	if IsTrusted(netip.MustParseAddr("10.1.2.3"), nil) {
		t.Error("no trusted prefix: an address is trusted")
	}
}

func TestClientAddrAllocatesNothing(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	r := &Request{RemoteAddr: netip.MustParseAddrPort("10.1.1.1:1")}
	r.Header.Add("X-Forwarded-For", "198.51.100.9, 10.2.2.2")
	if n := testing.AllocsPerRun(100, func() { _ = ClientAddr(r, trusted) }); n != 0 {
		t.Errorf("ClientAddr allocates %v times per call, want 0", n)
	}
}
