package proxy

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/anx-gateway/anx/asm"
	"github.com/anx-gateway/anx/core/message"
)

// The response head parser: scanResponseHead, parseResponseHead and
// responseFraming do no I/O and allocate nothing. They are as strict as
// h1's request parser, and stricter on line endings: an upstream's lines
// end in CRLF, never a bare LF.

// h1BodyKind is how a response's content is delimited (RFC 9112 section
// 6.3).
type h1BodyKind uint8

const (
	h1BodyNone    h1BodyKind = iota // no content
	h1BodyLength                    // Content-Length bytes
	h1BodyChunked                   // chunked transfer coding
	h1BodyClose                     // everything until the upstream closes
)

// h1RespInfo collects, while a response head is parsed, what frames the
// content and steers the connection.
type h1RespInfo struct {
	minor   int           // HTTP/1.minor
	lengths int           // Content-Length field lines
	length  string        // value of the first one
	codings int           // Transfer-Encoding field lines
	coding  string        // value of the first one
	close   bool          // Connection carries "close"
	idle    time.Duration // Keep-Alive's timeout parameter, or 0
}

// crlf2 ends a head.
var crlf2 = []byte("\r\n\r\n")

// scanResponseHead returns the length of the response head that starts
// buf, through the empty line, or 0 when it is not complete yet. The
// bytes before from were scanned already.
func scanResponseHead(buf []byte, from int) int {
	i := bytes.Index(buf[from:], crlf2)
	if i < 0 {
		return 0
	}
	return from + i + len(crlf2)
}

// parseResponseHead parses a complete response head, as delimited by
// scanResponseHead, into resp (Status and Header; the header is emptied
// first) and info. Every string it stores is a substring of head. Its
// errors wrap errMalformed.
func parseResponseHead(head string, resp *inResponse, info *h1RespInfo) error {
	*info = h1RespInfo{}
	resp.Header.Reset()
	line, rest, _ := strings.Cut(head, "\r\n")
	status, minor, err := parseStatusLine(line)
	if err != nil {
		return err
	}
	resp.Status, info.minor = status, minor
	for rest != "\r\n" {
		if resp.Header.Len() == h1MaxFields {
			return fmt.Errorf("%w: more than %d header fields", errMalformed, h1MaxFields)
		}
		if rest, err = parseResponseField(rest, resp, info); err != nil {
			return err
		}
	}
	return nil
}

// parseStatusLine parses "HTTP/1.x SP 3DIGIT SP reason-phrase" (RFC 9112
// section 4). The reason is checked and ignored; a line that ends right
// after the code is accepted, as most clients do.
func parseStatusLine(line string) (status, minor int, err error) {
	if len(line) < len("HTTP/1.1 200") || line[:7] != "HTTP/1." || !isDigitByte(line[7]) || line[8] != ' ' {
		return 0, 0, fmt.Errorf("%w: malformed status line", errMalformed)
	}
	minor = min(int(line[7]-'0'), 1)
	code := line[9:12]
	if code[0] < '1' || code[0] > '5' || !isDigitByte(code[1]) || !isDigitByte(code[2]) {
		return 0, 0, fmt.Errorf("%w: malformed status code", errMalformed)
	}
	status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if reason := line[12:]; reason != "" && (reason[0] != ' ' || !h1ValidValue(reason)) {
		return 0, 0, fmt.Errorf("%w: malformed status line", errMalformed)
	}
	return status, minor, nil
}

func isDigitByte(c byte) bool { return '0' <= c && c <= '9' }

// parseResponseField parses the field line "name: value" CRLF that
// starts s into resp.Header and info, and returns what follows it. The
// name is a token right before the colon; the value has no control byte
// but HTAB; the line ends in CRLF; a line starting with whitespace
// (obs-fold) is refused.
func parseResponseField(s string, resp *inResponse, info *h1RespInfo) (rest string, err error) {
	if s[0] == ' ' || s[0] == '\t' {
		return s, fmt.Errorf("%w: obsolete line folding", errMalformed)
	}
	n := asm.TokenEnd(s)
	if n == 0 || n == len(s) || s[n] != ':' {
		return s, fmt.Errorf("%w: invalid field name", errMalformed)
	}
	name, v := s[:n], s[n+1:]
	e := asm.FieldValueEnd(v)
	if !strings.HasPrefix(v[e:], "\r\n") {
		return s, fmt.Errorf("%w: invalid byte in the value of %s", errMalformed, name)
	}
	value := h1TrimOWS(v[:e])
	resp.Header.Add(name, value)
	info.note(name, value)
	return v[e+2:], nil
}

// note records the fields that frame the content or steer the
// connection.
func (info *h1RespInfo) note(name, value string) {
	switch {
	case message.EqualFold(name, "Content-Length"):
		if info.lengths == 0 {
			info.length = value
		}
		info.lengths++
	case message.EqualFold(name, "Transfer-Encoding"):
		if info.codings == 0 {
			info.coding = value
		}
		info.codings++
	case message.EqualFold(name, "Connection"):
		for value != "" {
			var opt string
			opt, value, _ = strings.Cut(value, ",")
			if message.EqualFold(h1TrimOWS(opt), "close") {
				info.close = true
			}
		}
	case message.EqualFold(name, "Keep-Alive"):
		info.idle = parseKeepAliveTimeout(value)
	}
}

// responseFraming decides how the content of a response to method with
// status is delimited (RFC 9112 section 6.3), and its declared length
// (-1 when none). It refuses, with errMalformed, what two readers could
// frame differently: Transfer-Encoding with Content-Length, more than one
// Content-Length (even equal, even as a list), a length that is not one
// decimal number, a transfer coding other than one "chunked", and
// Transfer-Encoding in HTTP/1.0.
func responseFraming(method string, status int, info *h1RespInfo) (kind h1BodyKind, length int64, err error) {
	length = -1
	switch {
	case info.codings > 0 && info.lengths > 0:
		return 0, 0, fmt.Errorf("%w: both Transfer-Encoding and Content-Length", errMalformed)
	case info.lengths > 1:
		return 0, 0, fmt.Errorf("%w: more than one Content-Length", errMalformed)
	case info.lengths == 1:
		n, ok := h1ParseDecimal(info.length, 18)
		if !ok {
			return 0, 0, fmt.Errorf("%w: invalid Content-Length %q", errMalformed, info.length)
		}
		length = n
	case info.codings > 1 || info.codings == 1 && (!message.EqualFold(info.coding, "chunked") || info.minor == 0):
		return 0, 0, fmt.Errorf("%w: transfer coding other than chunked", errMalformed)
	}
	switch {
	case method == "HEAD" || status < 200 || status == 204 || status == 304:
		return h1BodyNone, length, nil
	case info.codings == 1:
		return h1BodyChunked, -1, nil
	case length == 0:
		return h1BodyNone, 0, nil
	case length > 0:
		return h1BodyLength, length, nil
	}
	return h1BodyClose, -1, nil
}

// h1ParseDecimal parses a non-empty decimal number of at most maxDigits
// digits, nothing else.
func h1ParseDecimal(s string, maxDigits int) (int64, bool) {
	if s == "" || len(s) > maxDigits {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if !isDigitByte(s[i]) {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// h1TrimOWS removes optional whitespace (SP and HTAB) from both ends of
// s.
func h1TrimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
