package proxy

import (
	"net/netip"
	"regexp"
	"testing"
)

// madeID is the form of an id anx makes (message.Trace.MakeID).
var madeID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRequestIDGoesUpstream(t *testing.T) {
	up, _ := echoUpstream(t, "a")
	trusted := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	cases := []struct {
		name     string
		trusted  []netip.Prefix
		incoming []string
		want     string // "" for a made id
	}{
		{"none sent: made", nil, nil, ""},
		{"an untrusted client's is replaced", nil, []string{"X-Request-ID", "forged"}, ""},
		{"a trusted proxy's is kept", trusted, []string{"X-Request-ID", "edge-1"}, "edge-1"},
		{"a trusted proxy that sent none: made", trusted, nil, ""},
	}
	for _, c := range cases {
		h := newHandler(t, Config{Upstreams: []Upstream{{URL: up.URL}}, TrustedProxies: c.trusted})
		r := request("GET", "/", "", c.incoming...)
		e := decode(t, serve(h, r))
		got := e.Header.Values("X-Request-ID")
		switch {
		case len(got) != 1:
			t.Errorf("%s: the upstream got X-Request-ID %q, want one", c.name, got)
		case c.want != "" && got[0] != c.want:
			t.Errorf("%s: the upstream got %q, want %q", c.name, got[0], c.want)
		case c.want == "" && !madeID.MatchString(got[0]):
			t.Errorf("%s: the upstream got %q, want a made id", c.name, got[0])
		case r.Trace.ID != got[0]:
			t.Errorf("%s: the Trace says %q, the upstream got %q", c.name, r.Trace.ID, got[0])
		}
	}
}
