package h1

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/asm"
	"github.com/anx-gateway/anx/core/message"
)

// testLimits are the default limits.
var testLimits = limits{maxHeadBytes: defaultMaxHeaderBytes, maxFields: defaultMaxHeaderCount}

// parse runs the parser the way a connection does: skip empty lines, find
// the end of the head, parse it, decide the framing. It returns the status
// a refused request gets (0 when accepted) and the request.
func parse(raw string, lim limits) (status int, req *message.Request, info *headInfo, kind bodyKind, length int64) {
	req, info = new(message.Request), new(headInfo)
	buf := []byte(raw)
	k, err := skipEmptyLines(buf)
	if err != nil {
		return statusOf(err), req, info, 0, 0
	}
	buf = buf[k:]
	n, _ := scanHead(buf[:min(len(buf), lim.maxHeadBytes)], 0)
	if n == 0 {
		if len(buf) >= lim.maxHeadBytes {
			return int(headTooLarge(buf[:lim.maxHeadBytes]).Status), req, info, 0, 0
		}
		return -1, req, info, 0, 0 // incomplete
	}
	if err := parseHead(string(buf[:n]), req, info, lim); err != nil {
		return statusOf(err), req, info, 0, 0
	}
	kind, length, err = info.framing(req.ProtoMinor)
	if err != nil {
		return statusOf(err), req, info, 0, 0
	}
	return 0, req, info, kind, length
}

// statusOf returns the status of a *StatusError, or 999.
func statusOf(err error) int {
	if se, ok := err.(*StatusError); ok {
		return se.Status
	}
	return 999
}

func TestTcharMaskMatchesRFC9110(t *testing.T) {
	// RFC 9110 section 5.6.2.
	const tchars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for c := 0; c < 256; c++ {
		want := strings.IndexByte(tchars, byte(c)) >= 0
		if got := asm.IsTokenByte(byte(c)); got != want {
			t.Errorf("asm.IsTokenByte(%#x) = %v, want %v", c, got, want)
		}
	}
	// RFC 3986 sections 2.2, 2.3 and 3.2.2: unreserved, sub-delims, "%".
	const hostChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%"
	for c := 0; c < 256; c++ {
		want := strings.IndexByte(hostChars, byte(c)) >= 0
		if got := inMask(byte(c), hostLo, hostHi); got != want {
			t.Errorf("host class(%#x) = %v, want %v", c, got, want)
		}
	}
}

func TestScanHeadFindsTheEndIncrementally(t *testing.T) {
	cases := []struct {
		in   string
		want int // head length, 0 if incomplete
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET", 27},
		{"GET / HTTP/1.1\nHost: a\n\n", 24},     // bare LF lines (RFC 9112 section 2.2)
		{"GET / HTTP/1.1\r\nHost: a\n\r\n", 26}, // mixed
		{"GET / HTTP/1.1\r\n\r\n", 18},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", 0},
		{"GET / HTTP/1.1\r\nHost: a\r\n", 0},
		{"GET / HTTP/1.1\r\nHost: a\r\r\n", 0}, // "a\r\r" is not an empty line
		{"GET / HTTP/1.1", 0},
	}
	for _, c := range cases {
		if got, _ := scanHead([]byte(c.in), 0); got != c.want {
			t.Errorf("scanHead(%q) = %d, want %d", c.in, got, c.want)
		}
		// Fed a byte at a time, resuming where it said, it must agree.
		from, got := 0, 0
		for i := 1; i <= len(c.in) && got == 0; i++ {
			got, from = scanHead([]byte(c.in[:i]), from)
		}
		if got != c.want {
			t.Errorf("scanHead(%q) byte by byte = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestParseAcceptedRequests(t *testing.T) {
	cases := []struct {
		name, raw                 string
		method, path, query, host string
		minor                     int
		fields                    []message.Field
		kind                      bodyKind
		length                    int64
	}{
		{
			name:   "origin-form, RFC 9112 section 3.2.1",
			raw:    "GET /where?q=now&x=%20 HTTP/1.1\r\nHost: www.example.org\r\n\r\n",
			method: "GET", path: "/where", query: "q=now&x=%20", host: "www.example.org", minor: 1,
			fields: []message.Field{{Name: "Host", Value: "www.example.org"}},
		},
		{
			name:   "absolute-form overrides Host, RFC 9112 section 3.2.2",
			raw:    "GET http://www.example.org:8080/pub/WWW/?x HTTP/1.1\r\nHost: other\r\n\r\n",
			method: "GET", path: "/pub/WWW/", query: "x", host: "www.example.org:8080", minor: 1,
			fields: []message.Field{{Name: "Host", Value: "other"}},
		},
		{
			name:   "absolute-form without path",
			raw:    "GET HTTPS://example.org?a=b HTTP/1.1\r\nHost: example.org\r\n\r\n",
			method: "GET", path: "/", query: "a=b", host: "example.org", minor: 1,
			fields: []message.Field{{Name: "Host", Value: "example.org"}},
		},
		{
			name:   "asterisk-form for OPTIONS, RFC 9112 section 3.2.4",
			raw:    "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
			method: "OPTIONS", path: "*", host: "a", minor: 1,
			fields: []message.Field{{Name: "Host", Value: "a"}},
		},
		{
			name:   "HTTP/1.0 needs no Host, RFC 9112 section 3.2",
			raw:    "GET / HTTP/1.0\r\n\r\n",
			method: "GET", path: "/", minor: 0,
		},
		{
			name:   "HTTP/1.2 is served as 1.1, RFC 9110 section 2.5",
			raw:    "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
			method: "GET", path: "/", host: "a", minor: 1,
			fields: []message.Field{{Name: "Host", Value: "a"}},
		},
		{
			name:   "OWS trimmed, empty value, obs-text kept, RFC 9112 section 5.1",
			raw:    "GET / HTTP/1.1\r\nHost:a\r\nX-Empty:\r\nX-Tab:\t v \t\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
			method: "GET", path: "/", host: "a", minor: 1,
			fields: []message.Field{{Name: "Host", Value: "a"}, {Name: "X-Empty", Value: ""}, {Name: "X-Tab", Value: "v"}, {Name: "X-Obs", Value: "caf\xc3\xa9"}},
		},
		{
			name:   "leading empty lines ignored, RFC 9112 section 2.2",
			raw:    "\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
			method: "GET", path: "/", host: "a", minor: 1,
			fields: []message.Field{{Name: "Host", Value: "a"}},
		},
		{
			name:   "bare LF line endings, RFC 9112 section 2.2",
			raw:    "GET / HTTP/1.1\nHost: a\n\n",
			method: "GET", path: "/", host: "a", minor: 1,
			fields: []message.Field{{Name: "Host", Value: "a"}},
		},
		{
			name:   "Content-Length, RFC 9112 section 6.2",
			raw:    "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0042\r\n\r\n",
			method: "POST", path: "/x", host: "a", minor: 1,
			fields: []message.Field{{Name: "Host", Value: "a"}, {Name: "Content-Length", Value: "0042"}},
			kind:   bodyLength, length: 42,
		},
		{
			name:   "chunked, any case, RFC 9112 section 6.1",
			raw:    "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
			method: "POST", path: "/x", host: "a", minor: 1,
			fields: []message.Field{{Name: "Host", Value: "a"}, {Name: "Transfer-Encoding", Value: "Chunked"}},
			kind:   bodyChunked, length: -1,
		},
		{
			name:   "IPv6 literal Host with port",
			raw:    "GET / HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n",
			method: "GET", path: "/", host: "[2001:db8::1]:8443", minor: 1,
			fields: []message.Field{{Name: "Host", Value: "[2001:db8::1]:8443"}},
		},
		{
			name:   "empty Host, RFC 9112 section 3.2",
			raw:    "GET / HTTP/1.1\r\nHost:\r\n\r\n",
			method: "GET", path: "/", host: "", minor: 1,
			fields: []message.Field{{Name: "Host", Value: ""}},
		},
		{
			name:   "extension method",
			raw:    "PROPFIND /dav HTTP/1.1\r\nHost: a\r\n\r\n",
			method: "PROPFIND", path: "/dav", host: "a", minor: 1,
			fields: []message.Field{{Name: "Host", Value: "a"}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, req, _, kind, length := parse(c.raw, testLimits)
			if status != 0 {
				t.Fatalf("refused with %d, want accepted", status)
			}
			got := fmt.Sprintf("%s %q %q host=%q 1.%d kind=%d len=%d", req.Method, req.Path, req.RawQuery, req.Host, req.ProtoMinor, kind, length)
			want := fmt.Sprintf("%s %q %q host=%q 1.%d kind=%d len=%d", c.method, c.path, c.query, c.host, c.minor, c.kind, c.length)
			if got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			if !slices.Equal(req.Header.Fields(), c.fields) {
				t.Errorf("fields %q, want %q", req.Header.Fields(), c.fields)
			}
		})
	}
}

// refusedRequests are heads the parser must refuse, with the status they
// earn and the rule that says so. The wire tests send each of them too.
var refusedRequests = []struct {
	name, raw string
	status    int
}{
	// Request line, RFC 9112 section 3.
	{"empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"two spaces after method (§3)", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"two spaces before version (§3)", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"tab as separator (§3)", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"trailing space after version (§3)", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
	{"no version (HTTP/0.9 style)", "GET /\r\nHost: a\r\n\r\n", 400},
	{"lower-case version, §2.3 case-sensitive", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
	{"two-digit minor (§2.3)", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
	{"method with a slash", "GE/T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"control byte in target", "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"DEL in target", "GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"fragment in target (§3.2)", "GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"bare CR in request line (§2.2)", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400},
	{"bare CR before request line (§2.2)", "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"asterisk-form outside OPTIONS (§3.2.4)", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"authority-form outside CONNECT (§3.2.3)", "GET example.org:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"CONNECT with origin-form (§3.2.3)", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"CONNECT is not implemented (RFC 9110 §9.3.6)", "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n", 501},
	{"unknown scheme in absolute-form", "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"userinfo in absolute-form (RFC 9110 §4.2.4)", "GET http://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"empty authority in absolute-form", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"HTTP/2.0 (RFC 9110 §15.6.6)", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
	{"HTTP/0.9 in 1.x syntax", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505},
	{"h2 preface (RFC 9113 §3.4)", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},

	// Field lines, RFC 9112 section 5.
	{"space before colon (§5.1)", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
	{"tab before colon (§5.1)", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400},
	{"obs-fold (§5.2)", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", 400},
	{"whitespace before first field (§2.2)", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
	{"NUL in value (RFC 9110 §5.5)", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400},
	{"bare CR in value (§2.2)", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400},
	{"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", 400},
	{"escape in value", "GET / HTTP/1.1\r\nHost: a\r\nX: \x1b[31m\r\n\r\n", 400},
	{"no colon", "GET / HTTP/1.1\r\nHost: a\r\nJunk\r\n\r\n", 400},
	{"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", 400},
	{"non-token name", "GET / HTTP/1.1\r\nHost: a\r\nX(y): v\r\n\r\n", 400},

	// Host, RFC 9112 section 3.2.
	{"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400},
	{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
	{"two Hosts in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400},
	{"Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
	{"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
	{"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
	{"Host list", "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400},
	{"Host port not numeric", "GET / HTTP/1.1\r\nHost: a:http\r\n\r\n", 400},
	{"Host port too large", "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", 400},
	{"Host IPv6 with zone", "GET / HTTP/1.1\r\nHost: [fe80::1%eth0]\r\n\r\n", 400},
	{"Host unbracketed IPv6", "GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", 400},

	// Framing, RFC 9112 section 6: the smuggling vectors.
	{"CL and TE (§6.1, §11.2)", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
	{"TE and CL (§6.1, §11.2)", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
	{"TE gzip (§6.1)", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
	{"TE gzip, chunked (§6.1: only chunked is supported)", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400},
	{"TE chunked, gzip (§6.3: chunked not final)", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
	{"TE chunked twice in a list (§7: MUST NOT apply twice)", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
	{"TE in two fields", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
	{"TE identity (obsolete)", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400},
	{"TE with parameter", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 400},
	{"TE obfuscated with vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n", 400},
	{"TE name with trailing space (§5.1)", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
	{"TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400},
	{"TE in HTTP/1.0 (§6.1)", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
	{"CL twice, same value (§6.3 item 5; refused by choice)", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400},
	{"CL twice, different values (§6.3 item 5)", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
	{"CL list of equal values (§6.3 item 5; refused by choice)", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400},
	{"CL with plus sign (RFC 9110 §8.6)", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400},
	{"CL negative (RFC 9110 §8.6)", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
	{"CL empty (RFC 9110 §8.6)", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400},
	{"CL hex (RFC 9110 §8.6)", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400},
	{"CL with inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n", 400},
	{"CL overflowing int64", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", 400},
	{"CL 2^64 wraps to 0 in naive parsers", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", 400},

	// Limits.
	{"too many fields (RFC 6585 §5)", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", 100) + "\r\n", 431},
	{"head too large (RFC 6585 §5)", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 40<<10) + "\r\n\r\n", 431},
	{"request line too long (RFC 9112 §3)", "GET /" + strings.Repeat("a", 40<<10) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
}

func TestParseRefusedRequests(t *testing.T) {
	for _, c := range refusedRequests {
		if status, _, _, _, _ := parse(c.raw, testLimits); status != c.status {
			t.Errorf("%s: %q: status %d, want %d", c.name, trimForLog(c.raw), status, c.status)
		}
	}
}

// trimForLog shortens long test inputs in messages.
func trimForLog(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

func TestPersistence(t *testing.T) {
	// RFC 9112 section 9.3.
	cases := []struct {
		raw  string
		want bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false},
		{"GET / HTTP/1.0\r\n\r\n", false},
		{"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
		{"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
	}
	for _, c := range cases {
		status, req, info, _, _ := parse(c.raw, testLimits)
		if status != 0 {
			t.Fatalf("%q refused with %d", c.raw, status)
		}
		if got := info.persistent(req.ProtoMinor); got != c.want {
			t.Errorf("%q: persistent = %v, want %v", c.raw, got, c.want)
		}
	}
}

func TestValidHost(t *testing.T) {
	for host, want := range map[string]bool{
		"": true, "a": true, "example.com": true, "example.com:8080": true, "example.com:": true,
		"127.0.0.1": true, "127.0.0.1:80": true, "[::1]": true, "[::1]:443": true, "[v1.fe]": true,
		"xn--bcher-kva.example": true, "a%41b": true, "a_b~c": true,
		"a%4": false, "a%zz": false, ":80": false, "[::1": false, "[::1]x": false, "[1.2.3.4]": false,
		"a:b:c": false, "a:123456": false, "a b": false, "a/b": false, "a?b": false, "a#b": false,
		"u@a": false, "[fe80::1%25eth0]": false, "a\x00": false, "\xc3\xa9": false,
	} {
		if got := validHost(host); got != want {
			t.Errorf("validHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestParseLimitsAreExact(t *testing.T) {
	lim := limits{maxHeadBytes: 64, maxFields: 2}
	head := "GET / HTTP/1.1\r\nHost: a\r\nX: " // 29 bytes
	fits := head + strings.Repeat("y", 64-len(head)-4) + "\r\n\r\n"
	if len(fits) != 64 {
		t.Fatalf("test head is %d bytes", len(fits))
	}
	if status, _, _, _, _ := parse(fits, lim); status != 0 {
		t.Errorf("a head of exactly MaxHeaderBytes: status %d, want accepted", status)
	}
	if status, _, _, _, _ := parse(head+strings.Repeat("y", 64-len(head)-3)+"\r\n\r\n", lim); status != 431 {
		t.Errorf("a head one byte over MaxHeaderBytes: status %d, want 431", status)
	}
	if status, _, _, _, _ := parse("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n", lim); status != 431 {
		t.Errorf("three fields over a limit of two: status %d, want 431", status)
	}
}

func TestParseHeadDoesNotAllocate(t *testing.T) {
	head := browserRequest
	var req message.Request
	var info headInfo
	allocs := testing.AllocsPerRun(200, func() {
		req.Header.Reset()
		if err := parseHead(head, &req, &info, testLimits); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("parseHead allocates %v times per request, want 0", allocs)
	}
}

// browserRequest is a realistic request head of a current browser.
const browserRequest = "GET /static/js/app.3f9a1c.js?v=20240101 HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"Connection: keep-alive\r\n" +
	"sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n" +
	"sec-ch-ua-mobile: ?0\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n" +
	"sec-ch-ua-platform: \"Linux\"\r\n" +
	"Accept: */*\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"Sec-Fetch-Mode: no-cors\r\n" +
	"Sec-Fetch-Dest: script\r\n" +
	"Referer: https://www.example.com/products/widgets?page=2\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark\r\n" +
	"\r\n"
