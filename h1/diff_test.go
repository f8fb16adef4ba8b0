package h1

import (
	"bufio"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/core/message"
)

// stricterThanGo documents every request of refusedRequests that
// net/http.ReadRequest accepts, and why h1 refuses it. Several are refused
// by net/http's server after ReadRequest; ReadRequest alone is the parser.
var stricterThanGo = map[string]string{
	"fragment in target (§3.2)":                             "Go splits off the fragment; a fragment is never sent (RFC 9112 §3.2), so '#' is garbage or a path-matching trick",
	"asterisk-form outside OPTIONS (§3.2.4)":                "RFC 9112 §3.2.4: asterisk-form is only for OPTIONS",
	"authority-form outside CONNECT (§3.2.3)":               "RFC 9112 §3.2.3: authority-form is only for CONNECT",
	"CONNECT with origin-form (§3.2.3)":                     "RFC 9112 §3.2.3: CONNECT takes authority-form only",
	"CONNECT is not implemented (RFC 9110 §9.3.6)":          "a parse, not a refusal, in Go; anx does not tunnel over HTTP/1.1 and answers 501",
	"unknown scheme in absolute-form":                       "only http and https targets make sense to an origin server or gateway",
	"userinfo in absolute-form (RFC 9110 §4.2.4)":           "RFC 9110 §4.2.4: a recipient SHOULD treat userinfo as an error",
	"empty authority in absolute-form":                      "an http URI must have a non-empty host (RFC 9110 §4.2.1)",
	"HTTP/2.0 (RFC 9110 §15.6.6)":                           "ReadRequest parses any version; Go's server answers 505 too",
	"HTTP/0.9 in 1.x syntax":                                "ReadRequest parses any version; Go's server answers 505 too",
	"h2 preface (RFC 9113 §3.4)":                            "Go's server hands the preface to h2c; here h2c is dispatched before h1, so it is 505",
	"space before colon (§5.1)":                             "RFC 9112 §5.1: MUST reject whitespace between name and colon; Go keeps a field named 'Host '",
	"obs-fold (§5.2)":                                       "RFC 9112 §5.2 allows rejecting; Go unfolds, which another hop may not",
	"HTTP/1.1 without Host":                                 "RFC 9112 §3.2 MUST; Go's server answers 400 too",
	"Host with path":                                        "RFC 9112 §3.2: invalid Host is 400; Go's server checks it more loosely",
	"Host with userinfo":                                    "as above; userinfo is not part of Host",
	"Host with space":                                       "as above; Go's server refuses it too",
	"Host list":                                             "as above; a list is not a host",
	"Host port not numeric":                                 "port = *DIGIT (RFC 3986 §3.2.3)",
	"Host port too large":                                   "no port above 65535 exists",
	"Host IPv6 with zone":                                   "zones are local to the client; RFC 6874 writes them as %25, and no server can use one",
	"Host unbracketed IPv6":                                 "IPv6 in a host must be bracketed (RFC 3986 §3.2.2)",
	"CL and TE (§6.1, §11.2)":                               "RFC 9112 §6.1 allows refusing; Go drops Content-Length and closes after, which is safe only if every hop agrees",
	"TE and CL (§6.1, §11.2)":                               "as above",
	"TE name with trailing space (§5.1)":                    "RFC 9112 §5.1: MUST reject; Go ignores the field, and reads the body as having none",
	"TE in HTTP/1.0 (§6.1)":                                 "RFC 9112 §6.1: the framing is faulty; Go ignores Transfer-Encoding in 1.0",
	"CL twice, same value (§6.3 item 5; refused by choice)": "RFC 9112 §6.3 allows accepting identical values; refusing all repeats is simplest and nginx does too",
	"too many fields (RFC 6585 §5)":                         "ReadRequest has no field count limit",
	"head too large (RFC 6585 §5)":                          "ReadRequest has no size limit; Go's server allows 1 MiB",
	"request line too long (RFC 9112 §3)":                   "as above",
}

// laxerThanGo are requests h1 accepts and net/http.ReadRequest refuses.
var laxerThanGo = []struct{ name, raw, why string }{
	{"empty line before the request line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"RFC 9112 §2.2: a server SHOULD ignore at least one; Go's server skips them only after a POST"},
	{"invalid percent-encoding in the path", "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n",
		"h1 does not decode the target (message.Request.Path is raw); the engine decodes and refuses it"},
}

// acceptedCorpus are requests both parsers accept and must read alike.
var acceptedCorpus = []string{
	browserRequest,
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a/b?c=d&e HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
	"GET /a%2Fb?x=%20 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /caf\xc3\xa9|{x} HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://example.org/p?q HTTP/1.1\r\nHost: ignored\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\nX:  spaced  \n\n",
	"POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n",
	"POST /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: [::1]:80\r\nX-Obs: caf\xc3\xa9\r\nX-Tab:\tv\t\r\nX-Empty:\r\n\r\n",
	"PATCH /x HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
}

// goRead parses raw with net/http.ReadRequest.
func goRead(raw string) (*http.Request, error) {
	return http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
}

func TestDifferentialRefusals(t *testing.T) {
	for _, c := range refusedRequests {
		_, goErr := goRead(c.raw)
		why, documented := stricterThanGo[c.name]
		switch {
		case goErr == nil && !documented:
			t.Errorf("%s: refused with %d, but ReadRequest accepts it, and stricterThanGo does not say why", c.name, c.status)
		case goErr != nil && documented:
			t.Errorf("%s: ReadRequest refuses it too (%v): drop the note %q", c.name, goErr, why)
		}
	}
	for name := range stricterThanGo {
		if !slices.ContainsFunc(refusedRequests, func(c struct {
			name, raw string
			status    int
		}) bool {
			return c.name == name
		}) {
			t.Errorf("stricterThanGo has a note for %q, which is not in refusedRequests", name)
		}
	}
	for _, c := range laxerThanGo {
		if status, _, _, _, _ := parse(c.raw, testLimits); status != 0 {
			t.Errorf("%s: refused with %d; laxerThanGo says h1 accepts it", c.name, status)
		}
		if _, err := goRead(c.raw); err == nil {
			t.Errorf("%s: ReadRequest accepts it now: drop it from laxerThanGo", c.name)
		}
	}
}

func TestDifferentialAgreement(t *testing.T) {
	for _, raw := range acceptedCorpus {
		status, req, info, kind, length := parse(raw, testLimits)
		if status != 0 {
			t.Errorf("%q: refused with %d", trimForLog(raw), status)
			continue
		}
		if diff := compareWithGo(raw, req, info, kind, length); diff != "" {
			t.Errorf("%q: %s", trimForLog(raw), diff)
		}
	}
}

// compareWithGo parses raw with ReadRequest and reports how it reads the
// request differently from h1, or "" if it does not.
func compareWithGo(raw string, req *message.Request, info *headInfo, kind bodyKind, length int64) string {
	g, err := goRead(raw)
	if err != nil {
		return "ReadRequest refuses what h1 accepts: " + err.Error()
	}
	var diffs []string
	check := func(what, ours, theirs string) {
		if ours != theirs {
			diffs = append(diffs, what+": h1 "+strconvQuote(ours)+", Go "+strconvQuote(theirs))
		}
	}
	check("method", req.Method, g.Method)
	goPath := g.URL.Path
	if goPath == "" && g.URL.Host != "" {
		goPath = "/"
	}
	if req.Path == "*" {
		goPath = g.RequestURI
	}
	ourPath, err := url.PathUnescape(req.Path)
	if err != nil {
		ourPath = req.Path
	}
	check("path", ourPath, goPath)
	check("query", req.RawQuery, g.URL.RawQuery)
	check("host", req.Host, g.Host)
	// HTTP/1.x above 1.1 is served as 1.1 (RFC 9110 §2.5).
	check("minor", string(rune('0'+req.ProtoMinor)), string(rune('0'+min(g.ProtoMinor, 1))))
	// Go moves Host into req.Host and framing fields into ContentLength
	// and TransferEncoding; compare the rest, names canonicalized.
	ours := http.Header{}
	for _, f := range req.Header.Fields() {
		switch name := textproto.CanonicalMIMEHeaderKey(f.Name); name {
		case "Host", "Transfer-Encoding":
		default:
			ours[name] = append(ours[name], f.Value)
		}
	}
	theirs := g.Header.Clone()
	delete(theirs, "Transfer-Encoding")
	if len(ours) != len(theirs) {
		diffs = append(diffs, "field count differs")
	}
	for name, vs := range ours {
		if !slices.Equal(vs, theirs[name]) {
			diffs = append(diffs, "field "+name+": h1 "+strings.Join(vs, "|")+", Go "+strings.Join(theirs[name], "|"))
		}
	}
	goKind := bodyNone
	switch {
	case len(g.TransferEncoding) > 0:
		goKind = bodyChunked
	case g.ContentLength > 0:
		goKind = bodyLength
	}
	if kind != goKind || kind == bodyLength && length != g.ContentLength {
		diffs = append(diffs, "framing differs")
	}
	return strings.Join(diffs, "; ")
}

// strconvQuote quotes s for messages.
func strconvQuote(s string) string { return "\"" + strings.ReplaceAll(s, "\"", "\\\"") + "\"" }
