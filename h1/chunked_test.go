package h1

import (
	"bytes"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/core/chunked"
)

// decodeAll decodes a whole chunked body as a request body does, with
// core/chunked's Decoder (whose own tests cover the grammar), feeding it
// step bytes at a time and reading into outs of outSize bytes. It returns
// the data, how many input bytes the body took, and the status h1 gives
// a refusal (0 if none, -1 if the body is incomplete).
func decodeAll(in string, step, outSize int) (data string, used int, status int) {
	var d chunked.Decoder
	d.Reset(testLimits.maxHeadBytes, testLimits.maxFields, nil)
	var got bytes.Buffer
	out := make([]byte, outSize)
	avail := 0
	for !d.Done() {
		if used == avail {
			if avail == len(in) {
				return got.String(), used, -1
			}
			avail = min(avail+step, len(in))
		}
		nin, nout, err := d.Decode([]byte(in[used:avail]), out)
		used += nin
		got.Write(out[:nout])
		if err != nil {
			return got.String(), used, statusOf(malformedChunks(err))
		}
	}
	return got.String(), used, 0
}

func TestChunkedRefusalsAre400(t *testing.T) {
	// RFC 9112 section 7.1: whatever the decoder refuses, including the
	// bounds h1 gives it (its head limits for the trailer section), is a
	// 400 for the client.
	for _, in := range []string{
		"5\nhello\r\n0\r\n\r\n",
		"0x5\r\nhello\r\n0\r\n\r\n",
		"0\r\nX : y\r\n\r\n",
		"0\r\nX: " + strings.Repeat("y", defaultMaxHeaderBytes) + "\r\n\r\n",
		"0\r\n" + strings.Repeat("X: y\r\n", defaultMaxHeaderCount+1) + "\r\n",
	} {
		if _, _, status := decodeAll(in, len(in), 64); status != 400 {
			t.Errorf("%q: status %d, want 400", trimForLog(in), status)
		}
	}
	if got, used, status := decodeAll("5\r\nhello\r\n0\r\n\r\nGET", 3, 2); got != "hello" || used != 15 || status != 0 {
		t.Errorf("valid body: %q, used %d, status %d", got, used, status)
	}
}
