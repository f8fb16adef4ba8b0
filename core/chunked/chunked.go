// Package chunked decodes HTTP/1.1's chunked transfer coding (RFC 9112
// section 7.1) incrementally and strictly, for every HTTP/1.1 reader in
// anx: h1 reads request content with it, core/proxy upstream response
// content. It does no I/O: a Decoder is fed whatever bytes have arrived
// and keeps its place in the grammar between calls, so it never needs a
// whole line in memory and can run on an event loop.
//
// Strictness: every line ends in CRLF (a bare CR or LF is an error);
// chunk sizes are hexadecimal without sign, prefix or inner whitespace, at
// most 16 digits and below 2^63; extensions are checked byte by byte and
// skipped, within a bound on framing overhead; trailer field lines are
// checked like header field lines (a token name, a colon with no
// whitespace before it, a value without control bytes, no obs-fold) and
// bounded in bytes and count.
//
// Trailer fields are collected into a message.Header when the caller asks
// for them, except those that RFC 9110 section 6.5.1 says a sender must
// not put in a trailer section and a recipient must not merge into the
// header (framing, routing, request modifiers, authentication, response
// control data, content processing: see IsForbiddenTrailer). Those are
// validated like the others, then dropped: they never reach the Header,
// so nothing downstream can forward them.
package chunked

import (
	"errors"
	"math"

	"github.com/anx-gateway/anx/asm"
	"github.com/anx-gateway/anx/core/message"
)

// States of Decoder, one per position in the grammar of RFC 9112 section
// 7.1:
//
//	chunked-body = *chunk last-chunk trailer-section CRLF
//	chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//	last-chunk   = 1*("0") [ chunk-ext ] CRLF
const (
	stateSize         uint8 = iota // in chunk-size
	stateSizeBWS                   // whitespace after chunk-size, before ";"
	stateExt                       // in chunk-ext
	stateSizeLF                    // CR seen after the size line
	stateData                      // in chunk-data
	stateDataCR                    // after chunk-data
	stateDataLF                    // CR seen after chunk-data
	stateTrailer                   // at the start of a trailer line
	stateTrailerName               // in a trailer field name
	stateTrailerValue              // in a trailer field value
	stateTrailerLF                 // CR seen after a trailer line
	stateEndLF                     // CR seen on the final empty line
	stateDone                      // the body is complete
)

// Bounds on the framing bytes of a chunked body.
const (
	// MaxLine bounds the bytes of one chunk-size line, extensions
	// included.
	MaxLine        = 4096
	maxDigits      = 16       // hex digits of a chunk size
	maxExcess      = 16 << 10 // framing bytes beyond the allowance, see sizeLine
	chunkAllowance = 16       // framing bytes allowed per chunk for free
)

// ErrMalformed is wrapped by every error a Decoder returns: the body broke
// the chunked grammar or one of its bounds.
var ErrMalformed = errors.New("chunked: malformed chunked body")

// Error is a Decoder's error: what was wrong with the body.
type Error struct {
	// Reason says what was wrong, for logs ("chunk size is not
	// hexadecimal").
	Reason string
}

// Error returns "chunked: malformed chunked body: " and the reason.
func (e *Error) Error() string { return ErrMalformed.Error() + ": " + e.Reason }

// Is reports whether target is ErrMalformed, which every Error is.
func (e *Error) Is(target error) bool { return target == ErrMalformed }

// fieldSpan locates one trailer field in Decoder.tbuf.
type fieldSpan struct{ nameEnd, valueEnd int }

// Decoder decodes one chunked body at a time. Its zero value is not ready:
// call Reset before each body. It is owned by one goroutine.
type Decoder struct {
	state    uint8
	size     int64 // chunk-size being read, then data bytes left in the chunk
	digits   int   // hex digits read of the size
	line     int   // bytes of the current size line
	excess   int64 // framing bytes beyond the allowance (see sizeLine)
	trailer  int   // bytes of the trailer section so far
	fields   int   // trailer fields so far
	maxBytes int   // bound on the trailer section
	maxField int   // bound on trailer fields

	dst   *message.Header // where trailer fields go, or nil to drop them
	tbuf  []byte          // name and value bytes of the trailer fields, kept between bodies
	spans []fieldSpan     // where each field of tbuf ends, kept between bodies
}

// Reset readies d for a new body whose trailer section may hold maxBytes
// bytes in maxFields field lines. When trailer is not nil, the body's
// trailer fields are added to it once the body is done (see
// IsForbiddenTrailer for those that are dropped instead); when it is nil
// they are checked and dropped. The strings added share one allocation
// per trailer section; a body without trailer fields allocates nothing.
func (d *Decoder) Reset(maxBytes, maxFields int, trailer *message.Header) {
	tbuf, spans := d.tbuf[:0], d.spans[:0]
	*d = Decoder{maxBytes: maxBytes, maxField: maxFields, dst: trailer, tbuf: tbuf, spans: spans}
}

// Done reports whether the whole body, trailer section included, has been
// decoded.
func (d *Decoder) Done() bool { return d.state == stateDone }

// DataLeft returns how many chunk-data bytes can be read before the next
// framing byte, or 0 when the decoder is not inside chunk-data. A reader
// may read that many bytes straight into its destination and report them
// with Consumed.
func (d *Decoder) DataLeft() int64 {
	if d.state != stateData {
		return 0
	}
	return d.size
}

// Consumed records that n bytes of chunk data were read past the decoder,
// straight into the caller's buffer; n must not exceed DataLeft.
func (d *Decoder) Consumed(n int) {
	d.size -= int64(n)
	if d.size == 0 {
		d.state = stateDataCR
	}
}

// Decode consumes framing and data from in and copies the data into out.
// It returns how many bytes of in it used and how many data bytes it
// produced. With a nil out it discards the data instead, counting it in
// nout. It stops when out is full, when in is used up, or when the body is
// done (leaving the bytes after it in in). Its error is an *Error.
func (d *Decoder) Decode(in, out []byte) (nin, nout int, err error) {
	for nin < len(in) && d.state != stateDone {
		if d.state == stateData {
			k := int(min(d.size, int64(len(in)-nin)))
			if out != nil {
				if nout == len(out) {
					return nin, nout, nil
				}
				k = copy(out[nout:], in[nin:nin+k])
			}
			nin += k
			nout += k
			d.Consumed(k)
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
func (d *Decoder) step(c byte) error {
	switch d.state {
	case stateSize, stateSizeBWS, stateExt:
		return d.sizeByte(c)
	case stateSizeLF:
		if c != '\n' {
			return malformed("chunk size line not ended by CRLF")
		}
		return d.sizeLine()
	case stateDataCR:
		if c != '\r' {
			return malformed("chunk data not followed by CRLF")
		}
		d.state = stateDataLF
	case stateDataLF:
		if c != '\n' {
			return malformed("chunk data not followed by CRLF")
		}
		d.state, d.size, d.digits, d.line = stateSize, 0, 0, 0
	default:
		return d.trailerByte(c)
	}
	return nil
}

// sizeByte advances over a byte of a chunk-size line:
// chunk-size [ BWS ";" chunk-ext ] CR.
func (d *Decoder) sizeByte(c byte) error {
	d.line++
	if d.line > MaxLine {
		return malformed("chunk size line too long")
	}
	switch d.state {
	case stateSize:
		if v := hexValue(c); v >= 0 {
			if d.digits == maxDigits || d.size > math.MaxInt64>>4 {
				return malformed("chunk size too large")
			}
			d.size = d.size<<4 | v
			d.digits++
			return nil
		}
		if d.digits == 0 {
			return malformed("chunk size is not hexadecimal")
		}
	case stateSizeBWS:
	case stateExt:
		if c == '\r' {
			d.state = stateSizeLF
			return nil
		}
		if !asm.IsFieldValueByte(c) {
			return malformed("invalid byte in chunk extension")
		}
		return nil
	}
	switch c {
	case '\r':
		if d.state == stateSizeBWS {
			return malformed("whitespace after chunk size without extension")
		}
		d.state = stateSizeLF
	case ';':
		d.state = stateExt
	case ' ', '\t':
		d.state = stateSizeBWS
	default:
		return malformed("invalid byte after chunk size")
	}
	return nil
}

// sizeLine ends a chunk-size line. It bounds the framing overhead as
// net/http does: every chunk may spend chunkAllowance bytes plus twice its
// size on framing for free; beyond that, at most maxExcess bytes overall,
// so that extensions and tiny chunks cannot turn a small body into an
// unbounded amount of work.
func (d *Decoder) sizeLine() error {
	d.excess += int64(d.line) + 1 - chunkAllowance - 2*min(d.size, math.MaxInt64/4)
	d.excess = max(d.excess, 0)
	if d.excess > maxExcess {
		return malformed("too much chunk framing for the data")
	}
	if d.size == 0 {
		d.state = stateTrailer
	} else {
		d.state = stateData
	}
	return nil
}

// trailerByte advances over a byte of the trailer section: field lines as
// in a head (RFC 9112 section 7.1.2), then CRLF.
func (d *Decoder) trailerByte(c byte) error {
	d.trailer++
	if d.trailer > d.maxBytes {
		return malformed("trailer section too large")
	}
	switch d.state {
	case stateTrailer:
		switch {
		case c == '\r':
			d.state = stateEndLF
		case asm.IsTokenByte(c):
			d.fields++
			if d.fields > d.maxField {
				return malformed("too many trailer fields")
			}
			d.state = stateTrailerName
			d.keep(c)
		default:
			return malformed("invalid trailer field line")
		}
	case stateTrailerName:
		switch {
		case c == ':':
			d.state = stateTrailerValue
			d.endName()
		case !asm.IsTokenByte(c):
			return malformed("invalid trailer field name")
		default:
			d.keep(c)
		}
	case stateTrailerValue:
		switch {
		case c == '\r':
			d.state = stateTrailerLF
			d.endValue()
		case !asm.IsFieldValueByte(c):
			return malformed("invalid byte in trailer field value")
		default:
			d.keep(c)
		}
	case stateTrailerLF:
		if c != '\n' {
			return malformed("trailer field not ended by CRLF")
		}
		d.state = stateTrailer
	case stateEndLF:
		if c != '\n' {
			return malformed("chunked body not ended by CRLF")
		}
		d.state = stateDone
		d.deliverTrailer()
	}
	return nil
}

// keep records a byte of a trailer field's name or value, when the
// trailer fields are collected.
func (d *Decoder) keep(c byte) {
	if d.dst != nil {
		d.tbuf = append(d.tbuf, c)
	}
}

// endName marks the end of a trailer field's name.
func (d *Decoder) endName() {
	if d.dst != nil {
		d.spans = append(d.spans, fieldSpan{nameEnd: len(d.tbuf)})
	}
}

// endValue marks the end of a trailer field's value.
func (d *Decoder) endValue() {
	if d.dst != nil {
		d.spans[len(d.spans)-1].valueEnd = len(d.tbuf)
	}
}

// deliverTrailer adds the collected trailer fields to d.dst, values
// without their surrounding whitespace, forbidden names left out. All
// strings share one allocation.
func (d *Decoder) deliverTrailer() {
	if d.dst == nil || len(d.spans) == 0 {
		return
	}
	all := string(d.tbuf)
	start := 0
	for _, f := range d.spans {
		name, value := all[start:f.nameEnd], message.TrimOWS(all[f.nameEnd:f.valueEnd])
		start = f.valueEnd
		if !IsForbiddenTrailer(name) {
			d.dst.Add(name, value)
		}
	}
}

// forbiddenTrailers lists the fields RFC 9110 section 6.5.1 keeps out of
// trailers, in lower case: message framing (Content-Length,
// Transfer-Encoding, Trailer, and the connection's own fields), routing
// (Host), request modifiers (section 7.6 and the controls and
// conditionals of section 13), authentication (section 11, and the
// cookies that carry it), response control data (section 10.2) and what
// decides how the content is processed (Content-Encoding, Content-Type,
// Content-Range).
var forbiddenTrailers = [...]string{
	"content-length", "transfer-encoding", "trailer", "te", "connection",
	"keep-alive", "proxy-connection", "upgrade",
	"host",
	"cache-control", "expect", "max-forwards", "pragma", "range",
	"if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range",
	"authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate",
	"authentication-info", "proxy-authentication-info", "cookie", "set-cookie",
	"age", "expires", "date", "location", "retry-after", "vary",
	"content-encoding", "content-type", "content-range",
}

// IsForbiddenTrailer reports whether a field called name must not be sent
// as a trailer, nor taken from one (RFC 9110 section 6.5.1); a Decoder
// drops such fields, and a writer of trailers should skip them.
func IsForbiddenTrailer(name string) bool {
	for _, f := range forbiddenTrailers {
		if message.EqualFold(name, f) {
			return true
		}
	}
	return false
}

// AppendSize appends the chunk-size line of a chunk of n bytes, "%x\r\n",
// to dst. n must be above zero: the last chunk is "0\r\n" followed by the
// trailer section and CRLF.
func AppendSize(dst []byte, n int) []byte {
	const hex = "0123456789abcdef"
	var digits [16]byte
	i := len(digits)
	for {
		i--
		digits[i] = hex[n&0xf]
		n >>= 4
		if n == 0 {
			break
		}
	}
	dst = append(dst, digits[i:]...)
	return append(dst, '\r', '\n')
}

// hexValue returns the value of the hexadecimal digit c, or -1.
func hexValue(c byte) int64 {
	switch {
	case '0' <= c && c <= '9':
		return int64(c - '0')
	case 'a' <= c && c <= 'f':
		return int64(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int64(c-'A') + 10
	}
	return -1
}

// malformed returns the Error for reason.
func malformed(reason string) *Error { return &Error{Reason: reason} }
