package chunked

import (
	"bytes"
	"errors"
	"io"
	"net/http/httputil"
	"regexp"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/core/message"
)

// Limits the tests give the trailer section, as h1's defaults.
const (
	testMaxBytes  = 32 << 10
	testMaxFields = 100
)

// decodeAll decodes a whole chunked body, feeding the decoder step bytes
// at a time and reading into outs of outSize bytes. It returns the data,
// how many input bytes the body took, and the error (errIncomplete when
// the input ended first).
func decodeAll(in string, step, outSize int, trailer *message.Header) (data string, used int, err error) {
	var d Decoder
	d.Reset(testMaxBytes, testMaxFields, trailer)
	var got bytes.Buffer
	out := make([]byte, outSize)
	avail := 0
	for !d.Done() {
		if used == avail {
			if avail == len(in) {
				return got.String(), used, errIncomplete
			}
			avail = min(avail+step, len(in))
		}
		nin, nout, err := d.Decode([]byte(in[used:avail]), out)
		used += nin
		got.Write(out[:nout])
		if err != nil {
			return got.String(), used, err
		}
	}
	return got.String(), used, nil
}

var errIncomplete = errors.New("incomplete")

func TestDecodesValidBodies(t *testing.T) {
	// RFC 9112 section 7.1.
	cases := []struct{ name, in, want string }{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"two chunks, hex sizes", "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n", "abc0123456789"},
		{"upper and lower hex", "a\r\n0123456789\r\nB\r\n0123456789a\r\n0\r\n\r\n", "01234567890123456789a"},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello"},
		{"extensions skipped (§7.1.1)", "5;name=value;quoted=\"a b\"\r\nhello\r\n0;last\r\n\r\n", "hello"},
		{"BWS before extension (§7.1.1)", "5 \t;ext\r\nhello\r\n0\r\n\r\n", "hello"},
		{"trailer section (§7.1.2)", "5\r\nhello\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n", "hello"},
		{"empty body", "0\r\n\r\n", ""},
		{"data with CRLF inside", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n"},
	}
	for _, c := range cases {
		for _, step := range []int{1, 2, 7, len(c.in)} {
			for _, outSize := range []int{1, 3, 64} {
				got, used, err := decodeAll(c.in+"GET /next", step, outSize, nil)
				if err != nil || got != c.want || used != len(c.in) {
					t.Errorf("%s (step %d, out %d): data %q, used %d, err %v; want %q, %d, nil",
						c.name, step, outSize, got, used, err, c.want, len(c.in))
				}
			}
		}
	}
}

func TestRefusesMalformedBodies(t *testing.T) {
	// RFC 9112 section 7.1; every line ends in CRLF, nothing else.
	cases := []struct{ name, in string }{
		{"bare LF after size", "5\nhello\r\n0\r\n\r\n"},
		{"bare CR after size", "5\rhello\r\n0\r\n\r\n"},
		{"bare LF after data", "5\r\nhello\n0\r\n\r\n"},
		{"data longer than size", "5\r\nhello!\r\n0\r\n\r\n"},
		{"no CRLF after data", "5\r\nhelloX0\r\n\r\n"},
		{"empty size", "\r\nhello\r\n0\r\n\r\n"},
		{"negative size", "-5\r\nhello\r\n0\r\n\r\n"},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"},
		{"plus sign", "+5\r\nhello\r\n0\r\n\r\n"},
		{"leading space", " 5\r\nhello\r\n0\r\n\r\n"},
		{"trailing space without extension", "5 \r\nhello\r\n0\r\n\r\n"},
		{"garbage after size", "5x\r\nhello\r\n0\r\n\r\n"},
		{"size overflows int64", "8000000000000000\r\n"},
		{"17 hex digits", "00000000000000001\r\nx\r\n0\r\n\r\n"},
		{"size 2^64 wraps", "10000000000000000\r\n"},
		{"NUL in extension", "5;a=\x00\r\nhello\r\n0\r\n\r\n"},
		{"bare LF in extension", "5;a\nb\r\nhello\r\n0\r\n\r\n"},
		{"extension too long", "5;" + strings.Repeat("a", MaxLine) + "\r\nhello\r\n0\r\n\r\n"},
		{"bare LF ends the body", "0\r\n\n"},
		{"bare LF in trailer", "0\r\nX: y\n\r\n"},
		{"obs-fold in trailer", "0\r\nX: y\r\n z\r\n\r\n"},
		{"space before colon in trailer", "0\r\nX : y\r\n\r\n"},
		{"NUL in trailer value", "0\r\nX: \x00\r\n\r\n"},
		{"CR in trailer value", "0\r\nX: a\rb\r\n\r\n"},
		{"trailer without colon", "0\r\nXy\r\n\r\n"},
		{"trailer with empty name", "0\r\n: y\r\n\r\n"},
		{"trailer section too large", "0\r\nX: " + strings.Repeat("y", testMaxBytes) + "\r\n\r\n"},
		{"too many trailer fields", "0\r\n" + strings.Repeat("X: y\r\n", testMaxFields+1) + "\r\n"},
	}
	for _, c := range cases {
		for _, step := range []int{1, len(c.in)} {
			for _, collect := range []bool{false, true} {
				var tr *message.Header
				if collect {
					tr = new(message.Header)
				}
				_, _, err := decodeAll(c.in, step, 64, tr)
				var e *Error
				if !errors.Is(err, ErrMalformed) || !errors.As(err, &e) || e.Reason == "" {
					t.Errorf("%s (step %d, collect %v): %q: err %v, want an *Error wrapping ErrMalformed", c.name, step, collect, trimForLog(c.in), err)
				}
				if tr != nil && tr.Len() != 0 {
					t.Errorf("%s: a refused body delivered trailer fields %v", c.name, tr.Fields())
				}
			}
		}
	}
}

func TestCollectsTrailerFields(t *testing.T) {
	// RFC 9110 section 6.5: trailer fields are field lines after the last
	// chunk; values lose their surrounding whitespace (section 5.5); the
	// fields of section 6.5.1 never reach the header.
	in := "5\r\nhello\r\n0\r\n" +
		"Grpc-Status: 0\r\n" +
		"grpc-message:  all  good \t\r\n" +
		"Content-Length: 5\r\n" +
		"Transfer-Encoding: chunked\r\n" +
		"Host: evil\r\n" +
		"X-Empty:\r\n" +
		"Authorization: Basic x\r\n" +
		"Set-Cookie: a=b\r\n" +
		"X-Checksum: abc\r\n\r\n"
	want := []message.Field{
		{Name: "Grpc-Status", Value: "0"},
		{Name: "grpc-message", Value: "all  good"},
		{Name: "X-Empty", Value: ""},
		{Name: "X-Checksum", Value: "abc"},
	}
	for _, step := range []int{1, 3, len(in)} {
		var tr message.Header
		data, used, err := decodeAll(in, step, 2, &tr)
		if err != nil || data != "hello" || used != len(in) {
			t.Fatalf("step %d: data %q used %d err %v", step, data, used, err)
		}
		if got := tr.Fields(); !equalFields(got, want) {
			t.Errorf("step %d: trailer %q, want %q", step, got, want)
		}
	}
}

func TestTrailerNotCollectedUntilDone(t *testing.T) {
	// Fields arrive only with the final CRLF: a body cut inside its
	// trailer section delivers none.
	var tr message.Header
	_, _, err := decodeAll("0\r\nX-A: 1\r\n", 4, 8, &tr)
	if err != errIncomplete || tr.Len() != 0 {
		t.Errorf("cut trailer: err %v, fields %v; want incomplete and none", err, tr.Fields())
	}
}

func TestResetKeepsNoTrailerOfTheLastBody(t *testing.T) {
	var d Decoder
	var a, b message.Header
	d.Reset(1024, 10, &a)
	if _, _, err := d.Decode([]byte("0\r\nX-A: 1\r\n\r\n"), nil); err != nil || !d.Done() {
		t.Fatalf("first body: %v done %v", err, d.Done())
	}
	d.Reset(1024, 10, &b)
	if _, _, err := d.Decode([]byte("0\r\nX-B: 2\r\n\r\n"), nil); err != nil || !d.Done() {
		t.Fatalf("second body: %v done %v", err, d.Done())
	}
	if a.Get("X-A") != "1" || a.Len() != 1 || b.Get("X-B") != "2" || b.Len() != 1 {
		t.Errorf("trailers %v and %v; want X-A: 1 and X-B: 2 alone", a.Fields(), b.Fields())
	}
}

func TestForbiddenTrailerNames(t *testing.T) {
	for _, name := range []string{"Content-Length", "TRANSFER-ENCODING", "host", "Authorization", "Trailer", "Content-Type", "If-Match", "Connection"} {
		if !IsForbiddenTrailer(name) {
			t.Errorf("IsForbiddenTrailer(%q) = false", name)
		}
	}
	for _, name := range []string{"grpc-status", "Server-Timing", "X-Checksum", "Digest"} {
		if IsForbiddenTrailer(name) {
			t.Errorf("IsForbiddenTrailer(%q) = true", name)
		}
	}
}

func TestBoundsFramingOverhead(t *testing.T) {
	// Many one-byte chunks with long extensions: the data is small, the
	// framing is not. Like net/http, the decoder gives up.
	ext := ";" + strings.Repeat("e", 1000)
	body := strings.Repeat("1"+ext+"\r\nx\r\n", 100) + "0\r\n\r\n"
	if _, _, err := decodeAll(body, len(body), 1<<20, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("100 one-byte chunks with 1000-byte extensions: err %v, want ErrMalformed", err)
	}
	// Ordinary small chunks pass: one byte of data per chunk is wasteful
	// but within the allowance.
	body = strings.Repeat("1\r\nx\r\n", 100000) + "0\r\n\r\n"
	if got, _, err := decodeAll(body, 4096, 4096, nil); err != nil || len(got) != 100000 {
		t.Errorf("100000 one-byte chunks: %d bytes, err %v; want 100000, nil", len(got), err)
	}
}

func TestDiscardCountsData(t *testing.T) {
	var d Decoder
	d.Reset(1024, 10, nil)
	in := []byte("5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\nNEXT")
	nin, nout, err := d.Decode(in, nil)
	if err != nil || !d.Done() || nout != 8 || string(in[nin:]) != "NEXT" {
		t.Errorf("discarding: nin %d nout %d done %v err %v; want rest NEXT, 8 data bytes", nin, nout, d.Done(), err)
	}
}

func TestDataLeftAndConsumed(t *testing.T) {
	// A reader copies chunk data past the decoder, as h1 and core/proxy
	// do when their buffer is empty.
	var d Decoder
	d.Reset(1024, 10, nil)
	nin, nout, err := d.Decode([]byte("a\r\n"), make([]byte, 8))
	if err != nil || nin != 3 || nout != 0 || d.DataLeft() != 10 {
		t.Fatalf("size line: nin %d nout %d err %v left %d", nin, nout, err, d.DataLeft())
	}
	d.Consumed(4)
	d.Consumed(6)
	if d.DataLeft() != 0 {
		t.Fatalf("after the chunk: left %d", d.DataLeft())
	}
	if _, _, err := d.Decode([]byte("\r\n0\r\n\r\n"), nil); err != nil || !d.Done() {
		t.Errorf("end: err %v done %v", err, d.Done())
	}
}

func TestAppendSize(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{1, "1\r\n"}, {15, "f\r\n"}, {16, "10\r\n"}, {4096, "1000\r\n"}, {1<<31 - 1, "7fffffff\r\n"}} {
		if got := string(AppendSize([]byte("x"), c.n)); got != "x"+c.want {
			t.Errorf("AppendSize(%d) = %q, want %q", c.n, got, "x"+c.want)
		}
	}
}

func TestDecodeAllocatesNothingWithoutTrailer(t *testing.T) {
	var d Decoder
	var tr message.Header
	in := []byte("5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n")
	out := make([]byte, 64)
	allocs := testing.AllocsPerRun(100, func() {
		tr.Reset()
		d.Reset(1024, 10, &tr)
		if _, _, err := d.Decode(in, out); err != nil || !d.Done() {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per body without trailer fields, want 0", allocs)
	}
	in = []byte("0\r\nA: 1\r\nB: 2\r\n\r\n")
	allocs = testing.AllocsPerRun(100, func() {
		tr.Reset()
		d.Reset(1024, 10, &tr)
		if _, _, err := d.Decode(in, out); err != nil || tr.Len() != 2 {
			t.Fatal(err, tr.Len())
		}
	})
	if allocs > 1 {
		t.Errorf("%v allocations per body with two trailer fields, want at most 1", allocs)
	}
}

// FuzzDecoder checks that decoding in pieces, into small buffers, agrees
// with decoding at once (trailer fields included), and that whatever the
// decoder accepts net/http/httputil's chunked reader reads to the same
// data.
func FuzzDecoder(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n", "3;a=b\r\nabc\r\n0\r\nX: y\r\n\r\n", "0\r\n\r\n",
		"A\r\n0123456789\r\n1 ;x\r\nz\r\n0\r\n\r\nGET", "5\nhello\r\n0\r\n\r\n", "fffffffffffffffff\r\n",
		"0\r\nHost: a\r\nX-A:  b \r\n\r\n",
	} {
		f.Add(s, 3, 5)
	}
	f.Fuzz(func(t *testing.T, in string, step, outSize int) {
		step, outSize = 1+abs(step)%64, 1+abs(outSize)%64
		var trWhole, trPieces message.Header
		whole, usedWhole, errWhole := decodeAll(in, len(in)+1, 1<<16, &trWhole)
		pieces, usedPieces, errPieces := decodeAll(in, step, outSize, &trPieces)
		if whole != pieces || usedWhole != usedPieces || errString(errWhole) != errString(errPieces) {
			t.Fatalf("%q: at once %q/%d/%v, in pieces of %d into %d: %q/%d/%v",
				in, whole, usedWhole, errWhole, step, outSize, pieces, usedPieces, errPieces)
		}
		if !equalFields(trWhole.Fields(), trPieces.Fields()) {
			t.Fatalf("%q: trailers %q at once, %q in pieces", in, trWhole.Fields(), trPieces.Fields())
		}
		for _, fld := range trWhole.Fields() {
			if IsForbiddenTrailer(fld.Name) || strings.ContainsAny(fld.Value, "\r\n\x00") {
				t.Fatalf("%q: delivered trailer field %q", in, fld)
			}
		}
		if errWhole != nil {
			return
		}
		// httputil's reader stops at the last chunk and leaves the
		// trailer section to its caller; compare bodies without one.
		if !strings.HasSuffix(in[:usedWhole], "\r\n0\r\n\r\n") && in[:usedWhole] != "0\r\n\r\n" {
			return
		}
		// httputil refuses whitespace between chunk-size and ";", which
		// RFC 9112 section 7.1.1 allows (BWS) and the decoder accepts.
		if bwsBeforeExt.MatchString(in[:usedWhole]) {
			return
		}
		got, err := io.ReadAll(httputil.NewChunkedReader(strings.NewReader(in[:usedWhole])))
		if err != nil {
			t.Fatalf("%q: decoded %q, httputil fails: %v", in, whole, err)
		}
		if !bytes.Equal(got, []byte(whole)) {
			t.Fatalf("%q: decoded %q, httputil %q", in, whole, got)
		}
	})
}

// bwsBeforeExt matches whitespace after a chunk size, before ";".
var bwsBeforeExt = regexp.MustCompile(`[0-9a-fA-F][ \t]+;`)

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func equalFields(a, b []message.Field) bool {
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

// abs returns |n|, and 0 for the smallest int.
func abs(n int) int {
	if n < 0 {
		n = -n
	}
	return max(n, 0)
}

// trimForLog shortens long test inputs in failure messages.
func trimForLog(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
