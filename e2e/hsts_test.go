package e2e

import (
	"strings"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// TestHSTS: HTTPS responses carry Strict-Transport-Security for a public
// name by default, over h1, h2 and h3 (curl, trusting anx's local CA, which
// issues for the public name because the site says issuer = "internal"),
// and none for localhost or a site with hsts = "off"; plain HTTP never
// carries it (RFC 6797 section 7.2).
func TestHSTS(t *testing.T) {
	t.Parallel()
	curl, curlH3 := harness.Peer(t, "curl"), harness.Peer(t, "curl-h3")
	cfg := harness.Config{Site: []string{
		"[[site]]", `hosts = ["www.example.com"]`, `root = "{{.Root}}"`, `issuer = "internal"`,
		"[[site]]", `hosts = ["quiet.example.com"]`, `root = "{{.Root}}"`, `issuer = "internal"`, `hsts = "off"`,
	}}
	s := harness.Start(t, harness.Options{Config: cfg.TOML()})
	const want = "max-age=31536000"
	for _, c := range []struct{ curl, flag string }{{curl, "--http1.1"}, {curl, "--http2"}, {curlH3, "--http3-only"}} {
		if got := hstsHeader(t, s, c.curl, c.flag, "www.example.com", "https"); got != want {
			t.Errorf("%s https://www.example.com: Strict-Transport-Security %q, want %q", c.flag, got, want)
		}
		for _, name := range []string{"localhost", "quiet.example.com"} {
			if got := hstsHeader(t, s, c.curl, c.flag, name, "https"); got != "" {
				t.Errorf("%s https://%s: Strict-Transport-Security %q, want none", c.flag, name, got)
			}
		}
	}
	if got := hstsHeader(t, s, curl, "--http1.1", "www.example.com", "http"); got != "" {
		t.Errorf("plain http://www.example.com: Strict-Transport-Security %q, want none", got)
	}
}

// hstsHeader fetches /hello.txt from name (resolved to anx) with curl and
// returns its Strict-Transport-Security field, or "" when there is none.
func hstsHeader(t *testing.T, s *harness.Server, curl, flag, name, scheme string) string {
	t.Helper()
	r := s.CurlAs(t, curl, s.CAPath(), scheme, name, "/hello.txt", flag, "-o", "/dev/null", "-D", "-")
	if r.ExitCode != 0 {
		t.Fatalf("curl %s %s://%s: exit %d: %s", flag, scheme, name, r.ExitCode, r.Stderr)
	}
	for line := range strings.SplitSeq(r.Stdout, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(k, "strict-transport-security") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
