package h1

import (
	"bytes"
	"strings"
	"testing"
)

// decodeAll decodes a whole chunked body, feeding the decoder step bytes
// at a time and reading into outs of outSize bytes. It returns the data,
// how many input bytes the body took, and the status of a refusal (0 if
// none, -1 if the body is incomplete).
func decodeAll(in string, step, outSize int) (data string, used int, status int) {
	var d chunkedDecoder
	d.reset(testLimits.maxHeadBytes, testLimits.maxFields)
	var got bytes.Buffer
	out := make([]byte, outSize)
	avail := 0
	for !d.done() {
		if used == avail {
			if avail == len(in) {
				return got.String(), used, -1
			}
			avail = min(avail+step, len(in))
		}
		nin, nout, err := d.decode([]byte(in[used:avail]), out)
		used += nin
		got.Write(out[:nout])
		if err != nil {
			return got.String(), used, statusOf(err)
		}
	}
	return got.String(), used, 0
}

func TestChunkedDecodesValidBodies(t *testing.T) {
	// RFC 9112 section 7.1.
	cases := []struct{ name, in, want string }{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"two chunks, hex sizes", "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n", "abc0123456789"},
		{"upper and lower hex", "a\r\n0123456789\r\nB\r\n0123456789a\r\n0\r\n\r\n", "01234567890123456789a"},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello"},
		{"extensions skipped (§7.1.1)", "5;name=value;quoted=\"a b\"\r\nhello\r\n0;last\r\n\r\n", "hello"},
		{"BWS before extension (§7.1.1)", "5 \t;ext\r\nhello\r\n0\r\n\r\n", "hello"},
		{"trailer section dropped (§7.1.2)", "5\r\nhello\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n", "hello"},
		{"empty body", "0\r\n\r\n", ""},
		{"data with CRLF inside", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n"},
	}
	for _, c := range cases {
		for _, step := range []int{1, 2, 7, len(c.in)} {
			for _, outSize := range []int{1, 3, 64} {
				got, used, status := decodeAll(c.in+"GET /next", step, outSize)
				if status != 0 || got != c.want || used != len(c.in) {
					t.Errorf("%s (step %d, out %d): data %q, used %d, status %d; want %q, %d, 0",
						c.name, step, outSize, got, used, status, c.want, len(c.in))
				}
			}
		}
	}
}

func TestChunkedRefusesMalformedBodies(t *testing.T) {
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
		{"extension too long", "5;" + strings.Repeat("a", maxChunkLine) + "\r\nhello\r\n0\r\n\r\n"},
		{"bare LF ends the body", "0\r\n\n"},
		{"bare LF in trailer", "0\r\nX: y\n\r\n"},
		{"obs-fold in trailer", "0\r\nX: y\r\n z\r\n\r\n"},
		{"space before colon in trailer", "0\r\nX : y\r\n\r\n"},
		{"NUL in trailer value", "0\r\nX: \x00\r\n\r\n"},
		{"trailer without colon", "0\r\nXy\r\n\r\n"},
		{"trailer section too large", "0\r\nX: " + strings.Repeat("y", defaultMaxHeaderBytes) + "\r\n\r\n"},
		{"too many trailer fields", "0\r\n" + strings.Repeat("X: y\r\n", defaultMaxHeaderCount+1) + "\r\n"},
	}
	for _, c := range cases {
		for _, step := range []int{1, len(c.in)} {
			if _, _, status := decodeAll(c.in, step, 64); status != 400 {
				t.Errorf("%s (step %d): %q: status %d, want 400", c.name, step, trimForLog(c.in), status)
			}
		}
	}
}

func TestChunkedBoundsFramingOverhead(t *testing.T) {
	// Many one-byte chunks with long extensions: the data is small, the
	// framing is not. Like net/http, the decoder gives up.
	ext := ";" + strings.Repeat("e", 1000)
	body := strings.Repeat("1"+ext+"\r\nx\r\n", 100) + "0\r\n\r\n"
	if _, _, status := decodeAll(body, len(body), 1<<20); status != 400 {
		t.Errorf("100 one-byte chunks with 1000-byte extensions: status %d, want 400", status)
	}
	// Ordinary small chunks pass: one byte of data per chunk is wasteful
	// but within the allowance.
	body = strings.Repeat("1\r\nx\r\n", 100000) + "0\r\n\r\n"
	if got, _, status := decodeAll(body, 4096, 4096); status != 0 || len(got) != 100000 {
		t.Errorf("100000 one-byte chunks: %d bytes, status %d; want 100000, 0", len(got), status)
	}
}

func TestChunkedDiscardCountsData(t *testing.T) {
	var d chunkedDecoder
	d.reset(1024, 10)
	in := []byte("5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\nNEXT")
	nin, nout, err := d.decode(in, nil)
	if err != nil || !d.done() || nout != 8 || string(in[nin:]) != "NEXT" {
		t.Errorf("discarding: nin %d nout %d done %v err %v; want rest NEXT, 8 data bytes", nin, nout, d.done(), err)
	}
}
