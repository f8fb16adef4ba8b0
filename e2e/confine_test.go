package e2e

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// escapePaths try to leave the root or reach hidden files, in the
// encodings a client would normally clean up.
var escapePaths = []string{
	"/../etc/passwd",
	"/../../../../../../../../etc/passwd",
	"/%2e%2e/%2e%2e/etc/passwd",
	"/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
	"/..%2fetc/passwd",
	"/.%2e/.%2e/etc/passwd",
	"/%252e%252e/etc/passwd",
	"/%c0%ae%c0%ae/etc/passwd",
	"/a%5c..%5c..",
	"/..%5c..%5cetc%5cpasswd",
	"/%00",
	"/hello.txt%00.html",
	"//etc/passwd",
	"/../outside/secret.txt",
	"/sub/../../outside/secret.txt",
	"/%2e%2e/outside/secret.txt",
	"/..%2foutside%2fsecret.txt",
	"/.env",
	"/%2eenv",
	"/.git/config",
	"/%2egit/config",
	"/sub/../.env",
	"/link-passwd",
	"/link-outside",
}

// secrets are bytes that must never appear in a response.
var secrets = [][]byte{
	[]byte(harness.SecretPasswd), []byte(harness.SecretOutside),
	[]byte(harness.SecretDotEnv), []byte(harness.SecretGit),
}

// TestConfinementH1 sends each escape path verbatim on its own TLS
// connection: 400 or 404, never a secret byte; a symlink inside the root is
// served.
func TestConfinementH1(t *testing.T) {
	t.Parallel()
	s := harness.Start(t, harness.Options{})
	for _, path := range escapePaths {
		res, raw := rawGet(t, s, path)
		if res == nil {
			continue
		}
		if res.Status != http.StatusBadRequest && res.Status != http.StatusNotFound {
			t.Errorf("h1 GET %s: status %d, want 400 or 404", path, res.Status)
		}
		noSecret(t, "h1 GET "+path, raw)
	}
	res, _ := rawGet(t, s, "/link-inside.txt")
	if res != nil && (res.Status != http.StatusOK || !bytes.Equal(res.Body, s.File("hello.txt"))) {
		t.Errorf("h1 GET /link-inside.txt: got %d %q, want 200 %q", res.Status, res.Body, s.File("hello.txt"))
	}
}

// rawGet writes one GET with the path as is and returns the parsed
// response and the raw bytes; it reports an error and returns nil if there
// is no whole response.
func rawGet(t *testing.T, s *harness.Server, path string) (*harness.Response, []byte) {
	t.Helper()
	c := s.DialTLS("http/1.1")
	defer c.Close()
	req := "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
	raw, _, err := harness.Exchange(c, []byte(req), harness.SafetyNet)
	res, _ := harness.ParseResponses(raw)
	if len(res) == 0 {
		t.Errorf("h1 GET %s: no response (err %v): %q", path, err, raw)
		return nil, raw
	}
	return &res[0], raw
}

// TestConfinementH2H3 sends the escape paths as raw :path values (URL.Opaque)
// over h2 and h3 with the Go clients: 400 or 404, never a secret byte.
func TestConfinementH2H3(t *testing.T) {
	t.Parallel()
	s := harness.Start(t, harness.Options{})
	clients := s.Clients()
	delete(clients, harness.H1)
	for _, path := range append(escapePaths, "/link-inside.txt") {
		res := s.DoAllWith(clients, harness.Request{Target: path})
		for p, r := range res {
			what := string(p) + " GET " + path
			if r.Err != nil {
				t.Errorf("%s: %v", what, r.Err)
				continue
			}
			noSecret(t, what, r.Body)
			if path == "/link-inside.txt" {
				if r.Status != http.StatusOK || !bytes.Equal(r.Body, s.File("hello.txt")) {
					t.Errorf("%s: got %d %q, want 200 %q", what, r.Status, r.Body, s.File("hello.txt"))
				}
				continue
			}
			if r.Status != http.StatusBadRequest && r.Status != http.StatusNotFound {
				t.Errorf("%s: status %d, want 400 or 404", what, r.Status)
			}
		}
	}
}

// noSecret fails t if b holds any of the secrets.
func noSecret(t *testing.T, what string, b []byte) {
	t.Helper()
	for _, sec := range secrets {
		if bytes.Contains(b, sec) {
			t.Errorf("%s: response contains %q:\n%q", what, sec, clip(b, bytes.Index(b, sec)))
		}
	}
}
