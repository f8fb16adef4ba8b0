package static

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func FuzzDecodePath(f *testing.F) {
	for _, seed := range []string{
		"/", "/a.txt", "/dir/", "/%2e%2e/x", "/.%2E/", "/a%2Fb", "/a%5c", `/a\b`, "/a%00",
		"//x", "/a/./b", "/.git/config", "/%25%32%65", "/%zz", "/caf%C3%A9", "/a/..",
	} {
		f.Add(seed)
	}
	root := filepath.FromSlash("/srv/root")
	f.Fuzz(func(t *testing.T, raw string) {
		clean, status := decodePath(raw)
		switch status {
		case 400, 404:
			if clean != "" {
				t.Fatalf("decodePath(%q) = %q with status %d", raw, clean, status)
			}
			return
		case 0:
		default:
			t.Fatalf("decodePath(%q): status %d", raw, status)
		}
		if !strings.HasPrefix(clean, "/") {
			t.Fatalf("decodePath(%q) = %q, not absolute", raw, clean)
		}
		if strings.ContainsAny(clean, "\\\x00") {
			t.Fatalf("decodePath(%q) = %q holds a backslash or NUL", raw, clean)
		}
		segments := strings.Split(clean[1:], "/")
		for i, s := range segments {
			if (s == "" && i != len(segments)-1) || strings.HasPrefix(s, ".") {
				t.Fatalf("decodePath(%q) = %q has segment %q", raw, clean, s)
			}
		}
		joined := filepath.Join(root, filepath.FromSlash(clean))
		if rel, err := filepath.Rel(root, joined); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			t.Fatalf("decodePath(%q) = %q leads to %s, outside %s", raw, clean, joined, root)
		}
		if !strings.Contains(raw, "%") && clean != raw {
			t.Fatalf("decodePath(%q) = %q changed a path without escapes", raw, clean)
		}
	})
}

func FuzzParseRange(f *testing.F) {
	for _, seed := range []string{
		"bytes=0-0", "bytes=-1", "bytes=5-", "bytes=0-1,3-4", "bytes=5-2", "items=1-2",
		"bytes=99999999999999999999-", "bytes= 0-1 , -5", "BYTES=0-", "bytes=,,",
	} {
		f.Add(seed, int64(100))
	}
	f.Add("bytes=-5", int64(0))
	f.Fuzz(func(t *testing.T, spec string, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		ranges, verdict := parseRange(spec, size, nil)
		if verdict != rangePartial {
			if len(ranges) != 0 {
				t.Fatalf("parseRange(%q, %d): verdict %d with ranges %v", spec, size, verdict, ranges)
			}
			return
		}
		if len(ranges) == 0 || len(ranges) > maxRanges {
			t.Fatalf("parseRange(%q, %d): %d ranges", spec, size, len(ranges))
		}
		var total int64
		for _, r := range ranges {
			if r.start < 0 || r.length <= 0 || r.start > size-r.length {
				t.Fatalf("parseRange(%q, %d): range %+v out of bounds", spec, size, r)
			}
			total += r.length
		}
		if total > size {
			t.Fatalf("parseRange(%q, %d): %d bytes in all, more than the representation", spec, size, total)
		}
	})
}

func FuzzAcceptEncoding(f *testing.F) {
	for _, seed := range []string{
		"gzip", "br;q=0.5, gzip", "*;q=0", "identity;q=0, gzip;q=0.001", "x-gzip", "zstd;q=1.000", ",;q=",
	} {
		f.Add(seed, uint8(0xf))
	}
	f.Fuzz(func(t *testing.T, value string, mask uint8) {
		var available [codingCount]bool
		available[identity] = true
		for _, c := range precompressed {
			available[c] = mask&(1<<c) != 0
		}
		got := chooseCoding(value, &available)
		if !available[got] {
			t.Fatalf("Accept-Encoding %q: chose %s, which is not available", value, got.name())
		}
		lower := strings.ToLower(value)
		if got != identity && !strings.Contains(lower, got.name()) && !strings.Contains(lower, "*") {
			t.Fatalf("Accept-Encoding %q: chose %s, which it does not name", value, got.name())
		}
	})
}

func FuzzParseHTTPDate(f *testing.F) {
	for _, seed := range []string{
		"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
	} {
		f.Add(seed)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		seconds, ok := parseHTTPDate(s, now)
		if !ok {
			return
		}
		formatted := formatHTTPDate(time.Unix(seconds, 0))
		if again, ok := parseHTTPDate(formatted, now); !ok || again != seconds {
			t.Fatalf("parseHTTPDate(%q) = %d, whose IMF-fixdate %q parses to %d, %v", s, seconds, formatted, again, ok)
		}
	})
}

func FuzzMatchesAny(f *testing.F) {
	f.Add(`"a", W/"b"`, `"b"`)
	f.Fuzz(func(t *testing.T, list, etag string) {
		strong, weak := matchesAny(list, etag, true), matchesAny(list, etag, false)
		if strong && !weak {
			t.Fatalf("matchesAny(%q, %q): strong match without a weak one", list, etag)
		}
	})
}
