package h1

import (
	"math"

	"github.com/anx-gateway/anx/asm"
)

// States of chunkedDecoder, one per position in the grammar of RFC 9112
// section 7.1:
//
//	chunked-body = *chunk last-chunk trailer-section CRLF
//	chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//	last-chunk   = 1*("0") [ chunk-ext ] CRLF
const (
	chunkSize         uint8 = iota // in chunk-size
	chunkSizeBWS                   // whitespace after chunk-size, before ";"
	chunkExt                       // in chunk-ext
	chunkSizeLF                    // CR seen after the size line
	chunkData                      // in chunk-data
	chunkDataCR                    // after chunk-data
	chunkDataLF                    // CR seen after chunk-data
	chunkTrailer                   // at the start of a trailer line
	chunkTrailerName               // in a trailer field name
	chunkTrailerValue              // in a trailer field value
	chunkTrailerLF                 // CR seen after a trailer line
	chunkEndLF                     // CR seen on the final empty line
	chunkDone                      // the body is complete
)

// Bounds on the framing bytes of a chunked body.
const (
	maxChunkLine   = 4096     // bytes of one chunk-size line, extensions included
	maxChunkDigits = 16       // hex digits of a chunk size
	maxChunkExcess = 16 << 10 // framing bytes beyond the allowance, see sizeLine
	chunkAllowance = 16       // framing bytes allowed per chunk for free
)

// chunkedDecoder decodes the chunked transfer coding incrementally: it is
// fed whatever bytes have arrived and keeps its place in the grammar
// between calls, so it never needs a whole line in memory. It is strict:
// every line ends in CRLF, chunk sizes are hexadecimal without sign or
// prefix, extensions are skipped but bounded, and trailer fields are
// checked like header fields, then dropped.
type chunkedDecoder struct {
	state    uint8
	size     int64 // chunk-size being read, then data bytes left in the chunk
	digits   int   // hex digits read of the size
	line     int   // bytes of the current size line
	excess   int64 // framing bytes beyond the allowance (see sizeLine)
	trailer  int   // bytes of the trailer section so far
	fields   int   // trailer fields so far
	maxBytes int   // bound on the trailer section
	maxField int   // bound on trailer fields
}

// reset readies d for a new body whose trailer section may hold maxBytes
// bytes in maxFields fields.
func (d *chunkedDecoder) reset(maxBytes, maxFields int) {
	*d = chunkedDecoder{maxBytes: maxBytes, maxField: maxFields}
}

// done reports whether the whole body, trailer section included, has been
// decoded.
func (d *chunkedDecoder) done() bool { return d.state == chunkDone }

// dataLeft returns how many chunk-data bytes can be read before the next
// framing byte, or 0 when the decoder is not inside chunk-data.
func (d *chunkedDecoder) dataLeft() int64 {
	if d.state != chunkData {
		return 0
	}
	return d.size
}

// consumed records that n bytes of chunk data were read past the decoder,
// straight into the caller's buffer; n must not exceed dataLeft.
func (d *chunkedDecoder) consumed(n int) {
	d.size -= int64(n)
	if d.size == 0 {
		d.state = chunkDataCR
	}
}

// decode consumes framing and data from in and copies the data into out.
// It returns how many bytes of in it used and how many data bytes it
// produced. With a nil out it discards the data instead, counting it in
// nout. It stops when out is full, when in is used up, or when the body
// is done (leaving the bytes after it in in). The error is a *StatusError.
func (d *chunkedDecoder) decode(in, out []byte) (nin, nout int, err error) {
	for nin < len(in) && d.state != chunkDone {
		if d.state == chunkData {
			k := int(min(d.size, int64(len(in)-nin)))
			if out != nil {
				if nout == len(out) {
					return nin, nout, nil
				}
				k = copy(out[nout:], in[nin:nin+k])
			}
			nin += k
			nout += k
			d.consumed(k)
			continue
		}
		if err := d.step(in[nin]); err != nil {
			return nin, nout, err
		}
		nin++
	}
	return nin, nout, nil
}

// step advances the decoder over one framing byte.
func (d *chunkedDecoder) step(c byte) error {
	switch d.state {
	case chunkSize, chunkSizeBWS, chunkExt:
		return d.sizeByte(c)
	case chunkSizeLF:
		if c != '\n' {
			return badChunk("chunk size line not ended by CRLF")
		}
		return d.sizeLine()
	case chunkDataCR:
		if c != '\r' {
			return badChunk("chunk data not followed by CRLF")
		}
		d.state = chunkDataLF
	case chunkDataLF:
		if c != '\n' {
			return badChunk("chunk data not followed by CRLF")
		}
		d.state, d.size, d.digits, d.line = chunkSize, 0, 0, 0
	default:
		return d.trailerByte(c)
	}
	return nil
}

// sizeByte advances over a byte of a chunk-size line:
// chunk-size [ BWS ";" chunk-ext ] CR.
func (d *chunkedDecoder) sizeByte(c byte) error {
	d.line++
	if d.line > maxChunkLine {
		return badChunk("chunk size line too long")
	}
	switch d.state {
	case chunkSize:
		if v := hexValue(c); v >= 0 {
			if d.digits == maxChunkDigits || d.size > math.MaxInt64>>4 {
				return badChunk("chunk size too large")
			}
			d.size = d.size<<4 | v
			d.digits++
			return nil
		}
		if d.digits == 0 {
			return badChunk("chunk size is not hexadecimal")
		}
	case chunkSizeBWS:
	case chunkExt:
		if c == '\r' {
			d.state = chunkSizeLF
			return nil
		}
		if !asm.IsFieldValueByte(c) {
			return badChunk("invalid byte in chunk extension")
		}
		return nil
	}
	switch c {
	case '\r':
		if d.state == chunkSizeBWS {
			return badChunk("whitespace after chunk size without extension")
		}
		d.state = chunkSizeLF
	case ';':
		d.state = chunkExt
	case ' ', '\t':
		d.state = chunkSizeBWS
	default:
		return badChunk("invalid byte after chunk size")
	}
	return nil
}

// sizeLine ends a chunk-size line. It bounds the framing overhead as
// net/http does: every chunk may spend chunkAllowance bytes plus twice its
// size on framing for free; beyond that, at most maxChunkExcess bytes
// overall, so that extensions and tiny chunks cannot turn a small body
// into an unbounded amount of work.
func (d *chunkedDecoder) sizeLine() error {
	d.excess += int64(d.line) + 1 - chunkAllowance - 2*min(d.size, math.MaxInt64/4)
	d.excess = max(d.excess, 0)
	if d.excess > maxChunkExcess {
		return badChunk("too much chunk framing for the data")
	}
	if d.size == 0 {
		d.state = chunkTrailer
	} else {
		d.state = chunkData
	}
	return nil
}

// trailerByte advances over a byte of the trailer section: field lines as
// in a head (RFC 9112 section 7.1.2), then CRLF. Fields are checked, then
// dropped.
func (d *chunkedDecoder) trailerByte(c byte) error {
	d.trailer++
	if d.trailer > d.maxBytes {
		return badChunk("trailer section too large")
	}
	switch d.state {
	case chunkTrailer:
		switch {
		case c == '\r':
			d.state = chunkEndLF
		case asm.IsTokenByte(c):
			d.fields++
			if d.fields > d.maxField {
				return badChunk("too many trailer fields")
			}
			d.state = chunkTrailerName
		default:
			return badChunk("invalid trailer field line")
		}
	case chunkTrailerName:
		switch {
		case c == ':':
			d.state = chunkTrailerValue
		case !asm.IsTokenByte(c):
			return badChunk("invalid trailer field name")
		}
	case chunkTrailerValue:
		switch {
		case c == '\r':
			d.state = chunkTrailerLF
		case !asm.IsFieldValueByte(c):
			return badChunk("invalid byte in trailer field value")
		}
	case chunkTrailerLF:
		if c != '\n' {
			return badChunk("trailer field not ended by CRLF")
		}
		d.state = chunkTrailer
	case chunkEndLF:
		if c != '\n' {
			return badChunk("chunked body not ended by CRLF")
		}
		d.state = chunkDone
	}
	return nil
}

// badChunk returns the 400 StatusError of malformed chunked framing.
func badChunk(reason string) *StatusError {
	return badRequest("malformed chunked body: " + reason)
}
