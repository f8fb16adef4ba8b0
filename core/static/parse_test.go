package static

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDecodePath(t *testing.T) {
	for _, tc := range []struct {
		raw, clean string
		status     int
	}{
		{"/", "/", 0},
		{"/a.txt", "/a.txt", 0},
		{"/dir/", "/dir/", 0},
		{"/with%20space", "/with space", 0},
		{"/%41%62", "/Ab", 0},
		{"/caf%C3%A9", "/café", 0},
		{"/%25", "/%", 0},
		{"", "", 400},               // not origin-form
		{"*", "", 400},              // asterisk-form
		{"http://x/a", "", 400},     // absolute-form reaches no file
		{"/a%2Fb", "", 400},         // 15.5.1: encoded separator
		{"/a%2fb", "", 400},         // lower case too
		{"/a%5Cb", "", 400},         // encoded backslash
		{`/a\b`, "", 400},           // raw backslash
		{"/a%00", "", 400},          // NUL
		{"/a%0d%0aX:1", "", 400},    // CR LF: header injection through Location
		{"/a\x7f", "", 400},         // raw DEL
		{"/a%", "", 400},            // truncated escape
		{"/a%4", "", 400},           // truncated escape
		{"/a%g0", "", 400},          // not hex
		{"/..", "", 404},            // RFC 3986 5.2.4 dot segments
		{"/../x", "", 404},          //
		{"/a/../b", "", 404},        //
		{"/%2e%2e/x", "", 404},      // encoded
		{"/.%2E/x", "", 404},        // half encoded
		{"/%2E./x", "", 404},        //
		{"/./a", "", 404},           // dot segment
		{"/.env", "", 404},          // dot file
		{"/a/.git/config", "", 404}, // dot directory
		{"/%2egit/config", "", 404}, // encoded dot directory
		{"//a", "", 404},            // empty segment
		{"/a//b", "", 404},          //
		{"/a/b//", "", 404},         //
		{"/a..b", "/a..b", 0},       // dots inside a name are fine
		{"/a./b", "/a./b", 0},       //
		{"/a%2e/b", "/a./b", 0},     //
		{"/a/..%2f", "", 400},       // separator beats dot-dot
		{"/" + strings.Repeat("a/", 100), "/" + strings.Repeat("a/", 100), 0},
	} {
		clean, status := decodePath(tc.raw)
		if clean != tc.clean || status != tc.status {
			t.Errorf("decodePath(%q) = %q, %d; want %q, %d", tc.raw, clean, status, tc.clean, tc.status)
		}
	}
}

func TestDecodePathDoesNotAllocateWithoutEscapes(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() { decodePath("/assets/app.3f2a.js") })
	if allocs != 0 {
		t.Errorf("decodePath allocates %v times for a path without escapes, want 0", allocs)
	}
}

func TestParseHTTPDate(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	nov1994 := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC).Unix()
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		// RFC 9110 section 5.6.7, its three examples.
		{"Sun, 06 Nov 1994 08:49:37 GMT", nov1994, true},
		{"Sunday, 06-Nov-94 08:49:37 GMT", nov1994, true},
		{"Sun Nov  6 08:49:37 1994", nov1994, true},
		{"Sun Nov 06 08:49:37 1994", nov1994, true}, // date3 allows 2DIGIT
		// Two-digit years: more than 50 years ahead means the past.
		{"Thursday, 01-Jan-76 00:00:00 GMT", time.Date(2076, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), true},
		{"Friday, 01-Jan-77 00:00:00 GMT", time.Date(1977, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), true},
		{"Tuesday, 02-Jan-24 03:04:05 GMT", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).Unix(), true},
		// Leap second, as the grammar allows.
		{"Sat, 31 Dec 2016 23:59:60 GMT", time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), true},
		{"sun, 06 Nov 1994 08:49:37 GMT", 0, false},  // case-sensitive
		{"Sun, 06 nov 1994 08:49:37 GMT", 0, false},  //
		{"Sun, 06 Nov 1994 08:49:37 gmt", 0, false},  //
		{"Sun, 06 Nov 1994 08:49:37 UTC", 0, false},  // only GMT
		{"Sun, 6 Nov 1994 08:49:37 GMT", 0, false},   // day is 2DIGIT
		{"Sun,  06 Nov 1994 08:49:37 GMT", 0, false}, // no extra space
		{"Sun, 31 Apr 1994 08:49:37 GMT", 0, false},  // no such day
		{"Sun, 00 Nov 1994 08:49:37 GMT", 0, false},  //
		{"Sun, 06 Nov 1994 24:00:00 GMT", 0, false},  //
		{"Sun, 06 Nov 1994 08:60:00 GMT", 0, false},  //
		{"Sun, 06 Nov 1994 08:49:61 GMT", 0, false},  //
		{"Sun, 06 Nov 1994 08-49-37 GMT", 0, false},  //
		{"Xyz, 06 Nov 1994 08:49:37 GMT", 0, false},  //
		{"Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT", 0, false},
		{"Sunday, 06-Nov-1994 08:49:37 GMT", 0, false},
		{"Sun Nov 6 08:49:37 1994", 0, false},
		{"Funday, 06-Nov-94 08:49:37 GMT", 0, false},
		{"", 0, false},
		{"1994-11-06T08:49:37Z", 0, false},
	} {
		got, ok := parseHTTPDate(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseHTTPDate(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFormatHTTPDate(t *testing.T) {
	got := formatHTTPDate(time.Date(1994, 11, 6, 8, 49, 37, 999999999, time.FixedZone("X", 3600)))
	if want := "Sun, 06 Nov 1994 07:49:37 GMT"; got != want {
		t.Errorf("formatHTTPDate = %q, want %q", got, want)
	}
}

func TestMatchesAny(t *testing.T) {
	const etag = `"abc"`
	for _, tc := range []struct {
		list         string
		strong, weak bool // results of the strong and the weak comparison
	}{
		{`"abc"`, true, true},
		{`W/"abc"`, false, true}, // section 8.8.3.2, table 3
		{`"xyz"`, false, false},
		{`*`, true, true},
		{` * `, true, true},
		{`"x", "abc"`, true, true},
		{`"x",W/"abc"`, false, true},
		{`, ,"abc",`, true, true}, // empty list elements (5.6.1)
		{`"x" , "y"`, false, false},
		{`abc`, false, false},       // unquoted: invalid
		{`"abc`, false, false},      // unterminated
		{`w/"abc"`, false, false},   // W/ is case-sensitive
		{`*, "abc"`, false, false},  // * mixed with tags: invalid
		{`"abc" "x"`, false, false}, // missing comma: invalid
		{`"ab c"`, false, false},    // space is not etagc
		{`"x", junk, "abc"`, false, false},
		{``, false, false},
	} {
		if got := matchesAny(tc.list, etag, true); got != tc.strong {
			t.Errorf("strong matchesAny(%q) = %v, want %v", tc.list, got, tc.strong)
		}
		if got := matchesAny(tc.list, etag, false); got != tc.weak {
			t.Errorf("weak matchesAny(%q) = %v, want %v", tc.list, got, tc.weak)
		}
	}
}

func TestMakeETag(t *testing.T) {
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC)
	if got, want := makeETag(mtime, 13, ""), `"17a668b7375cff15-d"`; got != want {
		t.Errorf("makeETag = %s, want %s", got, want)
	}
	if got, want := makeETag(mtime, 13, "-br"), `"17a668b7375cff15-d-br"`; got != want {
		t.Errorf("makeETag with suffix = %s, want %s", got, want)
	}
}

func TestChooseCoding(t *testing.T) {
	all := [codingCount]bool{true, true, true, true}
	onlyGzip := [codingCount]bool{identity: true, gzipCoding: true}
	for _, tc := range []struct {
		accept    string
		available [codingCount]bool
		want      coding
	}{
		{"gzip", all, gzipCoding},
		{"x-gzip", all, gzipCoding},
		{"GZip", all, gzipCoding},
		{"br", all, brotli},
		{"zstd", all, zstandard},
		{"gzip, br, zstd", all, brotli},
		{"gzip, zstd", all, zstandard},
		{"gzip;q=0.9, br;q=0.8", all, gzipCoding},
		{"gzip;q=0.9, br;Q=1", all, brotli},
		{"gzip ; q=0.5 , zstd;q=0.4", all, gzipCoding},
		{"br;q=0", all, identity},
		{"br;q=0.000", all, identity},
		{"br;q=0.001", all, brotli},
		{"br;q=1.000", all, brotli},
		{"br;q=1.001", all, identity}, // invalid qvalue drops the element
		{"br;q=.5", all, identity},
		{"br;q=0.5555", all, identity},
		{"br;level=1", all, identity}, // not a weight
		{"*", all, brotli},
		{"*;q=0", all, identity}, // nothing acceptable: disregarded (12.4.1)
		{"*, br;q=0", all, zstandard},
		{"*;q=0.2, gzip;q=0.3", all, gzipCoding},
		{"identity", all, identity},
		{"identity, gzip", all, gzipCoding}, // equal weights: server order
		{"identity;q=1, gzip;q=0.9", all, identity},
		{"identity;q=0", all, identity},
		{"identity;q=0, gzip;q=0.001", all, gzipCoding},
		{"gzip;q=0.001", all, gzipCoding}, // identity unlisted: fallback
		{"gzip, gzip;q=0", all, identity}, // listed twice: the lower weight
		{"x-gzip;q=0, gzip", all, identity},
		{"", all, identity},
		{",,", all, identity},
		{"deflate, compress", all, identity},
		{"br", onlyGzip, identity},
		{"br, gzip", onlyGzip, gzipCoding},
		{"*", onlyGzip, gzipCoding},
	} {
		if got := chooseCoding(tc.accept, &tc.available); got != tc.want {
			t.Errorf("Accept-Encoding %q over %v: got %s, want %s", tc.accept, tc.available, got.name(), tc.want.name())
		}
	}
}

func TestParseRange(t *testing.T) {
	type r = byteRange
	for _, tc := range []struct {
		spec    string
		size    int64
		verdict rangeVerdict
		ranges  []byteRange
	}{
		{"bytes=0-499", 10000, rangePartial, []r{{0, 500}}},
		{"bytes=500-999", 10000, rangePartial, []r{{500, 500}}},
		{"bytes=-500", 10000, rangePartial, []r{{9500, 500}}},
		{"bytes=9500-", 10000, rangePartial, []r{{9500, 500}}},
		{"bytes=0-0,-1", 10000, rangePartial, []r{{0, 1}, {9999, 1}}},
		{"bytes= 0-999, 4500-5499, -1000", 10000, rangePartial, []r{{0, 1000}, {4500, 1000}, {9000, 1000}}},
		{"bytes=500-600,601-999", 10000, rangePartial, []r{{500, 101}, {601, 399}}},
		{"bytes=500-700,601-999", 10000, rangePartial, []r{{500, 201}, {601, 399}}}, // 14.1.2 example: overlap, still under the size
		{"Bytes=0-0", 10, rangePartial, []r{{0, 1}}},
		{"bytes=0-", 10, rangePartial, []r{{0, 10}}},
		{"bytes=-20", 10, rangePartial, []r{{0, 10}}},
		{"bytes=5-100", 10, rangePartial, []r{{5, 5}}},
		{"bytes=0-1,20-30", 10, rangePartial, []r{{0, 2}}},
		{"bytes=,0-1,", 10, rangePartial, []r{{0, 2}}},
		{"bytes=10-", 10, rangeUnsatisfiable, nil},
		{"bytes=-0", 10, rangeUnsatisfiable, nil},
		{"bytes=10-20,30-", 10, rangeUnsatisfiable, nil},
		{"bytes=0-", 0, rangeUnsatisfiable, nil},
		{"bytes=-1", 0, rangeIgnore, nil}, // satisfiable on an empty representation, ignored
		{"bytes=9223372036854775807-", 10, rangeUnsatisfiable, nil},
		{"bytes=99999999999999999999-", 10, rangeUnsatisfiable, nil},
		{"bytes=0-99999999999999999999", 10, rangePartial, []r{{0, 10}}},
		{"bytes=-99999999999999999999", 10, rangePartial, []r{{0, 10}}},
		{"bytes=5-4", 10, rangeIgnore, nil},
		{"bytes=0-1,5-4", 10, rangeIgnore, nil},
		{"bytes=", 10, rangeIgnore, nil},
		{"bytes", 10, rangeIgnore, nil},
		{"bytes 0-1", 10, rangeIgnore, nil},
		{"bytes = 0-1", 10, rangeIgnore, nil},
		{"bytes=0 - 1", 10, rangeIgnore, nil},
		{"bytes=a-b", 10, rangeIgnore, nil},
		{"bytes=--1", 10, rangeIgnore, nil},
		{"bytes=1", 10, rangeIgnore, nil},
		{"bytes=+1-2", 10, rangeIgnore, nil},
		{"items=0-1", 10, rangeIgnore, nil},
		{"bytes=0-9,0-9", 10, rangeIgnore, nil},                  // 17.15: overlaps past the size
		{"bytes=0-4,0-4", 10, rangePartial, []r{{0, 5}, {0, 5}}}, // within the size
		{"bytes=" + strings.Repeat("0-0,", 100), 1000, rangePartial, slices.Repeat([]r{{0, 1}}, 100)},
		{"bytes=" + strings.Repeat("0-0,", 101), 1000, rangeIgnore, nil},
	} {
		ranges, verdict := parseRange(tc.spec, tc.size, nil)
		if verdict != tc.verdict || !slices.Equal(ranges, tc.ranges) {
			t.Errorf("parseRange(%q, %d) = %v, %d; want %v, %d", tc.spec, tc.size, ranges, verdict, tc.ranges, tc.verdict)
		}
	}
}

func TestContentTypeOf(t *testing.T) {
	for name, want := range map[string]string{
		"index.html":        "text/html; charset=utf-8",
		"a/b/APP.JS":        "text/javascript; charset=utf-8",
		"m.mjs":             "text/javascript; charset=utf-8",
		"x.woff2":           "font/woff2",
		"x.wasm":            "application/wasm",
		"photo.JPeG":        "image/jpeg",
		"archive.tar.gz":    "application/gzip",
		"README":            defaultContentType,
		"dir.d/README":      defaultContentType,
		"x.anx-no-such-ext": defaultContentType,
	} {
		if got := contentTypeOf(name); got != want {
			t.Errorf("contentTypeOf(%q) = %q, want %q", name, got, want)
		}
	}
}
