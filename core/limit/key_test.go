package limit

import (
	"net/netip"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

func TestParseRate(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Rate
	}{
		{"100/s", Rate{100, time.Second}},
		{"30/m", Rate{30, time.Minute}},
		{"1/h", Rate{1, time.Hour}},
		{"1000000/s", Rate{MaxRateN, time.Second}},
	} {
		got, err := ParseRate(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
		if got.String() != c.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), c.in)
		}
	}
	for _, in := range []string{"", "100", "100/fortnight", "100/S", "0/s", "-1/s", "+1/s", "1.5/s", "1000001/s", "/s", "100r/s", "100/s/s"} {
		if r, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", in, r)
		}
	}
}

func TestParseKey(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Key
	}{
		{"client_ip", Key{Kind: ClientIP}},
		{"path", Key{Kind: PathKey}},
		{"global", Key{Kind: Global}},
		{"header:X-Api-Key", Key{Kind: HeaderKey, Header: "X-Api-Key"}},
	} {
		got, err := ParseKey(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseKey(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
		if got.String() != c.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), c.in)
		}
	}
	for _, in := range []string{"", "ip", "cookie:a", "header:", "header:a b", "header:a:b", "Client_IP"} {
		if k, err := ParseKey(in); err == nil {
			t.Errorf("ParseKey(%q) = %v, want an error", in, k)
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"100/s", "30/m", "1/h", "100/fortnight", "0/s", "99999999999999999999/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if (Config{Rate: r}).Validate() != nil {
			t.Fatalf("ParseRate(%q) = %v, which Validate refuses", s, r)
		}
		if back, err := ParseRate(r.String()); err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %v, whose String %q reads back as %v, %v", s, r, r.String(), back, err)
		}
	})
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"client_ip", "header:X-Key", "path", "global", "header:", "header:a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		if k.String() != s {
			t.Fatalf("ParseKey(%q).String() = %q", s, k.String())
		}
	})
}

func TestKeyOf(t *testing.T) {
	l := mustNew(t, Config{Rate: Rate{1, time.Second}})
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	req := func(peer, xff, apiKey, path string) *message.Request {
		r := &message.Request{RemoteAddr: netip.MustParseAddrPort(peer), Path: path}
		if xff != "" {
			r.Header.Add("X-Forwarded-For", xff)
		}
		if apiKey != "" {
			r.Header.Add("X-Api-Key", apiKey)
		}
		return r
	}
	ip := Key{Kind: ClientIP}
	hdr := Key{Kind: HeaderKey, Header: "x-api-key"}
	same := func(k Key, a, b *message.Request) bool {
		ka, oka := k.of(l, a, trusted)
		kb, okb := k.of(l, b, trusted)
		return oka && okb && ka == kb
	}
	if !same(ip, req("192.0.2.1:1", "", "", "/"), req("192.0.2.1:2", "", "", "/x")) {
		t.Error("client_ip: two ports of one address have different keys")
	}
	if !same(ip, req("10.1.1.1:1", "192.0.2.1", "", "/"), req("[::ffff:192.0.2.1]:3", "", "", "/")) {
		t.Error("client_ip: the client a trusted proxy names is not keyed as itself")
	}
	if same(ip, req("192.0.2.9:1", "192.0.2.1", "", "/"), req("192.0.2.1:1", "", "", "/")) {
		t.Error("client_ip: an untrusted peer's X-Forwarded-For was believed")
	}
	if !same(hdr, req("192.0.2.1:1", "", "k1", "/"), req("192.0.2.2:1", "", "k1", "/")) || same(hdr, req("192.0.2.1:1", "", "k1", "/"), req("192.0.2.1:1", "", "k2", "/")) {
		t.Error("header: the key is not the field's value")
	}
	if _, ok := hdr.of(l, req("192.0.2.1:1", "", "", "/"), trusted); ok {
		t.Error("header: a request without the field has a key (nginx does not account an empty key)")
	}
	if !same(Key{Kind: PathKey}, req("192.0.2.1:1", "", "", "/a"), req("192.0.2.2:1", "", "", "/a")) || same(Key{Kind: PathKey}, req("192.0.2.1:1", "", "", "/a"), req("192.0.2.1:1", "", "", "/b")) {
		t.Error("path: the key is not the path")
	}
	if !same(Key{Kind: Global}, req("192.0.2.1:1", "", "a", "/a"), req("192.0.2.2:1", "", "b", "/b")) {
		t.Error("global: two requests have different keys")
	}
}
