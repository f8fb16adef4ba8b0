package h1

import (
	"strings"
	"testing"

	"github.com/anx-gateway/anx/core/message"
)

// FuzzParseRequest checks, for any bytes, that the parser does not panic,
// that scanning in pieces finds the same head as scanning at once, that
// what it accepts is well-formed and reads the same after a round trip,
// and that net/http.ReadRequest accepts it too and reads it the same way
// (h1 may refuse more, never less, except for laxerThanGo).
func FuzzParseRequest(f *testing.F) {
	for _, c := range refusedRequests {
		if len(c.raw) < 4096 {
			f.Add(c.raw)
		}
	}
	for _, raw := range acceptedCorpus {
		f.Add(raw)
	}
	for _, c := range laxerThanGo {
		f.Add(c.raw)
	}
	lim := limits{maxHeadBytes: 4096, maxFields: 20}
	f.Fuzz(func(t *testing.T, raw string) {
		status, req, info, kind, length := parse(raw, lim)
		checkIncrementalScan(t, raw, lim)
		if status != 0 {
			return
		}
		checkWellFormed(t, req, info)
		checkRoundTrip(t, raw, req, lim)
		// ReadRequest does not skip empty lines before the request line
		// and decodes the path: feed it what h1 parsed.
		k, _ := skipEmptyLines([]byte(raw))
		if strings.Contains(req.Path, "%") || strings.Contains(req.RawQuery, "%") {
			return // escapes are the engine's to judge (laxerThanGo)
		}
		if diff := compareWithGo(raw[k:], req, info, kind, length); diff != "" {
			t.Errorf("%q: %s", raw, diff)
		}
	})
}

// checkIncrementalScan feeds raw to scanHead in growing prefixes, resuming
// where it said, and compares with a scan of the whole.
func checkIncrementalScan(t *testing.T, raw string, lim limits) {
	k, err := skipEmptyLines([]byte(raw))
	if err != nil {
		return
	}
	buf := []byte(raw[k:])
	buf = buf[:min(len(buf), lim.maxHeadBytes)]
	whole, _ := scanHead(buf, 0)
	got, from := 0, 0
	for i := 1; i <= len(buf) && got == 0; i += 1 + i/7 {
		got, from = scanHead(buf[:i], from)
	}
	if got == 0 && len(buf) > 0 {
		got, _ = scanHead(buf, from)
	}
	if got != whole {
		t.Errorf("%q: scanning in pieces found a head of %d bytes, at once %d", raw, got, whole)
	}
}

// checkWellFormed checks what parseHead promises about an accepted head.
func checkWellFormed(t *testing.T, req *message.Request, info *headInfo) {
	if !isToken(req.Method) {
		t.Errorf("method %q is not a token", req.Method)
	}
	if req.Path != "*" && !strings.HasPrefix(req.Path, "/") {
		t.Errorf("path %q", req.Path)
	}
	for _, s := range []string{req.Path, req.RawQuery} {
		for i := 0; i < len(s); i++ {
			if !isTargetByte(s[i]) {
				t.Errorf("target part %q holds %#x", s, s[i])
			}
		}
	}
	if !validHost(req.Host) {
		t.Errorf("host %q", req.Host)
	}
	for _, f := range req.Header.Fields() {
		if !isToken(f.Name) || !validFieldValue(f.Value) || trimOWS(f.Value) != f.Value {
			t.Errorf("field %q: %q", f.Name, f.Value)
		}
	}
	if req.ProtoMinor == 1 && info.hosts != 1 {
		t.Errorf("HTTP/1.1 request accepted with %d Host fields", info.hosts)
	}
}

// checkRoundTrip writes the parsed request back out as a canonical head
// and parses it again: it must read the same.
func checkRoundTrip(t *testing.T, raw string, req *message.Request, lim limits) {
	target := req.Path
	if req.RawQuery != "" || strings.Contains(raw, "?") && req.Path != "*" {
		target += "?" + req.RawQuery
	}
	var b strings.Builder
	b.WriteString(req.Method + " " + target + " HTTP/1." + string(rune('0'+req.ProtoMinor)) + "\r\n")
	for _, f := range req.Header.Fields() {
		b.WriteString(f.Name + ": " + f.Value + "\r\n")
	}
	b.WriteString("\r\n")
	status, again, _, _, _ := parse(b.String(), limits{maxHeadBytes: 2 * lim.maxHeadBytes, maxFields: lim.maxFields})
	if status != 0 {
		if strings.Contains(raw, "://") {
			return // absolute-form: Host came from the target
		}
		t.Fatalf("%q: reparsing %q: status %d", raw, b.String(), status)
	}
	if again.Method != req.Method || again.Path != req.Path || again.RawQuery != req.RawQuery ||
		!strings.Contains(raw, "://") && again.Host != req.Host ||
		!slicesEqual(again.Header.Fields(), req.Header.Fields()) {
		t.Errorf("%q: round trip through %q changed the request", raw, b.String())
	}
}

// slicesEqual compares field lists.
func slicesEqual(a, b []message.Field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
