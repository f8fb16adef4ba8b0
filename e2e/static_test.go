package e2e

import (
	"bytes"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/anx-gateway/anx/core/static/statictest"
	"github.com/anx-gateway/anx/e2e/harness"
)

// TestStaticTable runs core/static's own table (statictest.Cases) over
// h1, h2 and h3 against the binary serving statictest's fixture: each
// answer must pass the case's Verify, and the three answers must be
// identical (status, body, harness.CompareHeaders).
func TestStaticTable(t *testing.T) {
	t.Parallel()
	s := harness.Start(t, harness.Options{Site: writeStatictestSite})
	clients := s.Clients()
	for _, c := range statictest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			req := tableRequest(c.Req)
			res := s.DoAllWith(clients, req)
			if c.Req.InvalidURI {
				verifyInvalidURI(t, c, res)
				return
			}
			for _, d := range harness.Diff(res) {
				t.Errorf("%s %s: protocols differ: %s", c.Req.Method, c.Req.Target, d)
			}
			for _, p := range harness.Protos {
				r := res[p]
				if r.Err != nil {
					t.Errorf("%s %s %s: %v", p, c.Req.Method, c.Req.Target, r.Err)
					continue
				}
				if err := c.Verify(r.Status, r.Header.Values, r.Body); err != nil {
					t.Errorf("%s %s %s:\n%v", p, c.Req.Method, c.Req.Target, err)
				}
				if bytes.Contains(r.Body, []byte(statictest.SecretText)) {
					t.Errorf("%s %s %s: the response holds the secret from outside the root", p, c.Req.Method, c.Req.Target)
				}
			}
		})
	}
}

// verifyInvalidURI checks a target that is not a valid URI: HTTP/1.1
// answers as the case says (400), HTTP/2 and HTTP/3 reset the stream
// (statictest.Request.InvalidURI).
func verifyInvalidURI(t *testing.T, c statictest.Case, res map[harness.Proto]harness.Response) {
	t.Helper()
	for _, p := range harness.Protos {
		r := res[p]
		switch {
		case p == harness.H1 && r.Err != nil:
			t.Errorf("%s %s: %v", p, c.Req.Target, r.Err)
		case p == harness.H1:
			if err := c.Verify(r.Status, r.Header.Values, r.Body); err != nil {
				t.Errorf("%s %s:\n%v", p, c.Req.Target, err)
			}
		case r.Err == nil:
			t.Errorf("%s %s: got status %d, want the stream reset as a malformed request", p, c.Req.Target, r.Status)
		}
	}
}

// writeStatictestSite is a harness.Options.Site writing statictest's
// fixture: its tree goes to <dir>/site, which is root.
func writeStatictestSite(t testing.TB, root string) {
	t.Helper()
	got, err := statictest.WriteSite(filepath.Dir(root))
	if err != nil {
		t.Fatal(err)
	}
	if got != root {
		t.Fatalf("statictest.WriteSite wrote the site at %s, want %s", got, root)
	}
}

// tableRequest converts a statictest request to a harness one.
func tableRequest(r statictest.Request) harness.Request {
	h := http.Header{}
	for _, f := range r.Header {
		h.Add(f.Name, f.Value)
	}
	return harness.Request{Method: r.Method, Target: r.Target, Header: h, Raw: r.Raw}
}
