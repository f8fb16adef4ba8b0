package h1

import (
	"math"

	"github.com/anx-gateway/anx/core/message"
)

// bodyKind says how a request's content is delimited (RFC 9112 section 6.3).
type bodyKind uint8

// The ways a request body can be framed.
const (
	bodyNone    bodyKind = iota // no content
	bodyLength                  // Content-Length bytes
	bodyChunked                 // chunked transfer coding
)

// framing decides, from the fields parseHead noted, how the request body is
// delimited (RFC 9112 section 6). Anything another parser could read
// differently is refused with 400, and the caller then closes the
// connection:
//
//   - Transfer-Encoding in HTTP/1.0 (section 6.1: the framing is faulty);
//   - Transfer-Encoding together with Content-Length (section 6.1 allows
//     refusing; it is the classic smuggling vector);
//   - Transfer-Encoding other than one field whose value is exactly
//     "chunked": we implement no other coding, and a list, even
//     "chunked, chunked", is refused (400 rather than 501, by choice);
//   - Content-Length that is not one field holding 1*DIGIT that fits in
//     an int64: signs, spaces inside, lists ("5, 5", which section 6.3
//     lets a recipient accept) and repeated fields are all refused.
func (info *headInfo) framing(minor int) (bodyKind, int64, error) {
	if info.codings > 0 {
		switch {
		case minor == 0:
			return 0, 0, badRequest("Transfer-Encoding in an HTTP/1.0 request")
		case info.lengths > 0:
			return 0, 0, badRequest("both Transfer-Encoding and Content-Length")
		case info.codings > 1 || !message.EqualFold(info.coding, "chunked"):
			return 0, 0, badRequest("transfer coding other than chunked")
		}
		return bodyChunked, -1, nil
	}
	if info.lengths == 0 {
		return bodyNone, 0, nil
	}
	if info.lengths > 1 {
		return 0, 0, badRequest("more than one Content-Length field")
	}
	n, ok := parseContentLength(info.length)
	if !ok {
		return 0, 0, badRequest("invalid Content-Length")
	}
	if n == 0 {
		return bodyNone, 0, nil
	}
	return bodyLength, n, nil
}

// persistent reports whether the connection may carry another request
// after this one (RFC 9112 section 9.3): HTTP/1.1 unless "close", HTTP/1.0
// only with "keep-alive".
func (info *headInfo) persistent(minor int) bool {
	if info.close {
		return false
	}
	return minor == 1 || info.keepAlive
}

// parseContentLength parses Content-Length = 1*DIGIT (RFC 9110 section
// 8.6), refusing anything that does not fit in an int64.
func parseContentLength(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
