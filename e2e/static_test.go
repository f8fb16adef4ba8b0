package e2e

import (
	"bytes"
	"errors"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

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
// answers as the case says (400); HTTP/2 and HTTP/3 reset the stream as a
// malformed request (statictest.Request.InvalidURI): a stream error of
// type PROTOCOL_ERROR (RFC 9113 section 8.1.1), resp. H3_MESSAGE_ERROR
// (RFC 9114 section 4.1.2), from the server.
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
		default:
			if want, ok := malformedReset(p, r.Err); !ok {
				t.Errorf("%s %s: error %v, want %s", p, c.Req.Target, r.Err, want)
			}
		}
	}
}

// malformedReset reports whether err is the server's reset of a malformed
// request's stream over p (HTTP/2 or HTTP/3), and names the reset wanted.
func malformedReset(p harness.Proto, err error) (want string, ok bool) {
	if p == harness.H2 {
		var se http2.StreamError
		return "an RST_STREAM with PROTOCOL_ERROR", errors.As(err, &se) && se.Code == http2.ErrCodeProtocol
	}
	var he *http3.Error
	var qe *quic.StreamError
	ok = errors.As(err, &he) && he.ErrorCode == http3.ErrCodeMessageError && he.Remote &&
		errors.As(err, &qe) && qe.Remote
	return "the stream reset by the server with H3_MESSAGE_ERROR", ok
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
