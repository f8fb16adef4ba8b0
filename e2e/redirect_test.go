package e2e

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// TestHTTPRedirect: in redirect mode the http port answers 308 with a
// Location on the https port keeping host, path and query.
func TestHTTPRedirect(t *testing.T) {
	t.Parallel()
	s := harness.Start(t, harness.Options{})
	cases := []struct{ host, target string }{
		{"localhost", "/a/b.txt?x=1&y=%20z"},
		{"localhost", "/"},
		{"127.0.0.1", "/hello.txt?q"},
	}
	for _, c := range cases {
		raw := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", c.target, c.host, s.HTTPPort)
		got, _, err := harness.Exchange(s.DialPlain(), []byte(raw), harness.SafetyNet)
		res, _ := harness.ParseResponses(got)
		want := fmt.Sprintf("https://%s:%d%s", c.host, s.HTTPSPort, c.target)
		if err != nil || len(res) != 1 {
			t.Errorf("GET %s (Host %s): err %v, got %q; want one 308", c.target, c.host, err, got)
			continue
		}
		if res[0].Status != http.StatusPermanentRedirect || res[0].Header.Get("Location") != want {
			t.Errorf("GET %s (Host %s): %d Location %q, want 308 Location %q", c.target, c.host,
				res[0].Status, res[0].Header.Get("Location"), want)
		}
	}
}

// TestHTTPServe: with --http-mode serve the http port serves the same bytes
// as the https port.
func TestHTTPServe(t *testing.T) {
	t.Parallel()
	s := harness.Start(t, harness.Options{HTTPMode: "serve"})
	for _, path := range []string{"/hello.txt", "/data.bin", "/"} {
		c := &http.Client{Timeout: harness.SafetyNet, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
		res, err := c.Get("http://" + s.HTTP + path)
		if err != nil {
			t.Errorf("plain GET %s: %v", path, err)
			continue
		}
		body := readAll(t, res)
		tls := s.Get(harness.H1, path)
		if res.StatusCode != http.StatusOK || tls.Status != http.StatusOK {
			t.Errorf("GET %s: plain %d, https %d; want 200 both", path, res.StatusCode, tls.Status)
		}
		sameBytes(t, "plain GET "+path+" vs https", body, tls.Body)
	}
}
