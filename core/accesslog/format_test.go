package accesslog

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/anx-gateway/anx/core/message"
)

// hostile are strings a client may send that a line must survive: quotes,
// backslashes, control characters, invalid UTF-8, JavaScript's line
// separators.
var hostileStrings = []string{
	"",
	"plain",
	`quote " and backslash \ and both \"`,
	"new\nline\rcarriage\ttab\x00nul\x1fus\x7fdel",
	"invalid \xff\xfe utf-8 \xc3 cut \xe2\x82",
	"line sep \u2028 para sep \u2029",
	"emoji 🎉 and é",
	`{"injected":"field"}`,
	"\"}\n{\"forged\":\"line",
}

// testRequest is a request as a front end fills it.
func testRequest(method, host, path, query string) *message.Request {
	r := &message.Request{
		Method: method, Host: host, Path: path, RawQuery: query,
		Proto: message.HTTP2, RemoteAddr: netip.MustParseAddrPort("192.0.2.7:50000"),
		TLS: true, TLSVersion: 0x0304, ServerName: "example.com",
	}
	r.Header.Add("User-Agent", "curl/8.14")
	r.Header.Add("Referer", "https://example.com/from")
	return r
}

// testOutcome is an exchange that took 1.5 ms.
func testOutcome(status int) *message.Outcome {
	start := time.Date(2026, 12, 6, 7, 30, 0, 123_000_000, time.UTC)
	return &message.Outcome{Status: status, Sent: 1024, Start: start, End: start.Add(1500 * time.Microsecond)}
}

// formatLine formats the line of r and o as Observe does.
func formatLine(f Format, r *message.Request, o *message.Outcome, trusted []netip.Prefix) string {
	var buf [lineBytes]byte
	e := newEntry(r, o, trusted, f, &clockText{})
	return string(appendLine(buf[:0], f, &e))
}

// decodeLine parses a JSON line, failing the test when it is not one
// object on one line.
func decodeLine(t *testing.T, line string) map[string]any {
	t.Helper()
	if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("line %q: want exactly one newline, at the end", line)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("line %q: not JSON: %v", line, err)
	}
	return m
}

// asJSONDecodes is what encoding/json gives back for s after marshalling
// it: s itself when s is valid UTF-8.
func asJSONDecodes(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestJSONLineRoundTripsHostileInput(t *testing.T) {
	for _, s := range hostileStrings[1:] { // "" would mean no id and no upstream
		r := testRequest(s, s, "/p"+s, s)
		r.ServerName = s
		r.Trace.ID = s
		r.Trace.Route = &message.RouteInfo{Site: s, Path: s}
		r.Trace.Upstream, r.Trace.UpstreamStatus, r.Trace.UpstreamTime = s, 502, 2*time.Millisecond
		m := decodeLine(t, formatLine(JSON, r, testOutcome(200), nil))
		want := asJSONDecodes(t, s)
		for key, v := range map[string]string{
			"method": want, "host": want, "sni": want, "request_id": want, "site": want, "route": want,
			"upstream": want, "uri": asJSONDecodes(t, "/p"+s+"?"+s),
		} {
			if m[key] != v {
				t.Errorf("input %q: %s = %q, want %q", s, key, m[key], v)
			}
		}
		if utf8.ValidString(s) && want != s {
			t.Errorf("valid UTF-8 %q came back as %q", s, want)
		}
	}
}

func TestJSONLineFields(t *testing.T) {
	r := testRequest("GET", "example.com:8443", "/a/b", "x=1&y=2")
	r.Trace.Route = &message.RouteInfo{Site: "example.com", Path: "/a/*"}
	r.Trace.ID = "abc"
	r.Trace.Upstream, r.Trace.UpstreamStatus, r.Trace.UpstreamTime = "http://127.0.0.1:9000", 201, 1250*time.Microsecond
	m := decodeLine(t, formatLine(JSON, r, testOutcome(201), nil))
	want := map[string]any{
		"time": "2026-12-06T07:30:00.124Z", "remote": "192.0.2.7", "method": "GET", "host": "example.com:8443",
		"uri": "/a/b?x=1&y=2", "proto": "HTTP/2", "status": 201.0, "bytes_sent": 1024.0, "duration_ms": 1.5,
		"tls": "TLSv1.3", "sni": "example.com", "site": "example.com", "route": "/a/*", "request_id": "abc",
		"upstream": "http://127.0.0.1:9000", "upstream_status": 201.0, "upstream_ms": 1.25,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v (%T), want %v", k, m[k], m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("the line has %d keys, want %d: %v", len(m), len(want), m)
	}
}

func TestJSONLineWithoutUpstreamOrTLS(t *testing.T) {
	r := testRequest("HEAD", "h", "/", "")
	r.Proto, r.ProtoMinor, r.TLS, r.TLSVersion, r.ServerName = message.HTTP1, 0, false, 0, ""
	o := testOutcome(0)
	o.Cut = true
	m := decodeLine(t, formatLine(JSON, r, o, nil))
	for _, key := range []string{"upstream", "upstream_status", "upstream_ms"} {
		if _, ok := m[key]; ok {
			t.Errorf("a request that was not proxied has %s", key)
		}
	}
	if m["proto"] != "HTTP/1.0" || m["tls"] != "" || m["status"] != 0.0 || m["cut"] != true {
		t.Errorf("proto %v tls %q status %v cut %v, want HTTP/1.0, \"\", 0, true", m["proto"], m["tls"], m["status"], m["cut"])
	}
	if id, _ := m["request_id"].(string); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Errorf("request_id %q: want a made id of 32 hex digits", id)
	}
}

func TestTimeFormatsMatchTimePackage(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("", -8*3600), time.FixedZone("", -(3*3600 + 30*60))}
	for _, when := range []time.Time{
		time.Date(2026, 12, 6, 7, 30, 0, 123_456_789, time.UTC), time.Date(1999, 1, 2, 3, 4, 5, 999_999_999, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC), time.Date(10, 10, 10, 0, 0, 0, 1_000_000, time.UTC),
	} {
		for _, loc := range zones {
			at := when.In(loc)
			var clock clockText
			if got, want := string(appendRFC3339Millis(nil, clock.second(at), at)), at.UTC().Format("2006-01-02T15:04:05.000Z07:00"); got != want {
				t.Errorf("RFC 3339 of %v: got %s, want %s", at, got, want)
			}
			if got, want := string(clock.second(at).local), at.Format("02/Jan/2006:15:04:05 -0700"); got != want {
				t.Errorf("time_local of %v: got %s, want %s", at, got, want)
			}
		}
	}
}

func TestAppendMillis(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0.000", 999 * time.Nanosecond: "0.000", 1500 * time.Microsecond: "1.500", 12*time.Second + 3*time.Microsecond: "12000.003",
		-time.Second: "0.000", 999_999 * time.Microsecond: "999.999",
	} {
		if got := string(appendMillis(nil, d)); got != want {
			t.Errorf("%v: got %s, want %s", d, got, want)
		}
	}
}

// combinedLine is nginx's combined format with the request id after it.
var combinedLine = regexp.MustCompile(`^(\S+) - - \[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "([^"\\]|\\x[0-9A-F]{2})*" (\d{3}) (\d+) "([^"\\]|\\x[0-9A-F]{2})*" "([^"\\]|\\x[0-9A-F]{2})*" "([^"\\]|\\x[0-9A-F]{2})*"\n$`)

func TestCombinedLine(t *testing.T) {
	r := testRequest("GET", "example.com", "/a b", "q=1")
	r.Proto, r.ProtoMinor = message.HTTP1, 1
	r.Trace.ID = "id-1"
	o := testOutcome(404)
	o.End = time.Date(2026, 12, 6, 7, 30, 0, 0, time.FixedZone("", 3600))
	got := formatLine(Combined, r, o, nil)
	want := `192.0.2.7 - - [06/Dec/2026:07:30:00 +0100] "GET /a b?q=1 HTTP/1.1" 404 1024 "https://example.com/from" "curl/8.14" "id-1"` + "\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if !combinedLine.MatchString(got) {
		t.Errorf("%q does not match the combined format", got)
	}
}

func TestCombinedLineEscapesHostileInput(t *testing.T) {
	for _, s := range hostileStrings {
		r := testRequest("GET", "h", "/"+s, s)
		r.Header.Set("User-Agent", s)
		r.Header.Set("Referer", s)
		r.Trace.ID = s
		line := formatLine(Combined, r, testOutcome(0), nil)
		if !combinedLine.MatchString(line) {
			t.Errorf("input %q: line %q does not match the combined format", s, line)
		}
		if m := combinedLine.FindStringSubmatch(line); m != nil && m[4] != "499" {
			t.Errorf("a request cut before any status logs %s, want 499", m[4])
		}
	}
}

func TestRequestIDFromTrustedProxyOnly(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, c := range []struct {
		peer     string
		fromPeer bool
	}{{"10.0.0.1:1", true}, {"192.0.2.1:1", false}} {
		r := &message.Request{RemoteAddr: netip.MustParseAddrPort(c.peer)}
		r.Header.Add("X-Request-ID", "from-the-peer")
		got := requestID(r, message.IsTrusted(r.RemoteAddr.Addr(), trusted))
		switch {
		case c.fromPeer && got != "from-the-peer":
			t.Errorf("peer %s (trusted): id %q, want the peer's", c.peer, got)
		case !c.fromPeer && !hex32.MatchString(got):
			t.Errorf("peer %s (untrusted): id %q, want a made one", c.peer, got)
		case r.Trace.ID != got:
			t.Errorf("peer %s: the Trace has id %q, the line %q", c.peer, r.Trace.ID, got)
		}
	}
}

// FuzzJSONText checks that any string becomes a valid JSON string that
// decodes to the input when the input is valid UTF-8.
func FuzzJSONText(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONString(nil, s)
		if !json.Valid(out) {
			t.Fatalf("%q gave invalid JSON %q", s, out)
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("%q came back as %q", s, back)
		}
		if !utf8.ValidString(s) && back != asJSONDecodes(t, s) {
			t.Fatalf("invalid UTF-8 %q came back as %q, encoding/json gives %q", s, back, asJSONDecodes(t, s))
		}
	})
}

// combinedReference is appendCombinedText byte by byte, without the
// 8-byte fast path.
func combinedReference(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\x%02X`, c)
		}
	}
	return b.String()
}

// FuzzCombinedText checks the combined escaper against the byte-by-byte
// reference.
func FuzzCombinedText(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s)
	}
	f.Add("exactly8exactly8\x7fafter sixteen bytes \"q\" \\ and é")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendCombinedText(nil, s)), combinedReference(s); got != want {
			t.Fatalf("%q: got %q, want %q", s, got, want)
		}
	})
}

func TestJSONTextEveryByteAtEveryOffset(t *testing.T) {
	for c := range 256 {
		for off := range 17 {
			s := strings.Repeat("a", off) + string([]byte{byte(c)}) + strings.Repeat("b", 16-off)
			out := appendJSONString(nil, s)
			var back string
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatalf("byte %#x at %d: %q is not JSON: %v", c, off, out, err)
			}
			if back != asJSONDecodes(t, s) {
				t.Fatalf("byte %#x at %d: came back as %q, want %q", c, off, back, asJSONDecodes(t, s))
			}
		}
	}
}

// TestClockTextCachesOneSecond: lines of one second share its text; the
// next second, or another zone, gets its own, with the right digits.
func TestClockTextCachesOneSecond(t *testing.T) {
	var clock clockText
	at := time.Date(2026, 12, 6, 7, 30, 59, 100_000_000, time.UTC)
	first := clock.second(at)
	if clock.second(at.Add(800*time.Millisecond)) != first {
		t.Error("two times of one second got two texts")
	}
	next := clock.second(at.Add(900 * time.Millisecond))
	if next == first || string(next.utc) != "2026-12-06T07:31:00" {
		t.Errorf("the next second: %q (shared: %v), want 2026-12-06T07:31:00", next.utc, next == first)
	}
	zoned := at.Add(900 * time.Millisecond).In(time.FixedZone("", 3600))
	if got := clock.second(zoned); got == next || string(got.local) != "06/Dec/2026:08:31:00 +0100" {
		t.Errorf("another zone: %q, want 06/Dec/2026:08:31:00 +0100", got.local)
	}
}
