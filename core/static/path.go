package static

import "github.com/anx-gateway/anx/asm"

// decodePath turns the percent-encoded request path into the cleaned,
// decoded path it names, starting with "/". It returns status 400 for a path
// that is malformed or that hides a separator (RFC 9110 section 15.5.1), and
// 404 for a path that is well formed but can never name a served file: one
// with an empty, "." or ".." segment or a segment starting with "." (dot
// files), so that no spelling of ".." reaches the file system.
//
// The result is a substring of raw when raw has no percent sign, so the
// common case does not allocate.
func decodePath(raw string) (clean string, status int) {
	if raw == "" || raw[0] != '/' {
		return "", 400
	}
	if asm.CleanPathEnd(raw) == len(raw) {
		// No "%", "\", control, space or non-ASCII byte: nothing to
		// decode or refuse byte by byte.
		if !segmentsServable(raw) {
			return "", 404
		}
		return raw, 0
	}
	escaped := false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '%':
			escaped = true
		case c == '\\' || isControl(c):
			return "", 400
		}
	}
	clean = raw
	if escaped {
		var ok bool
		if clean, ok = unescape(raw); !ok {
			return "", 400
		}
	}
	if !segmentsServable(clean) {
		return "", 404
	}
	return clean, 0
}

// unescape decodes every %XX of s. It fails on a malformed escape and on
// an escape that yields a separator ("/" or "\"), a NUL or another control
// byte: those have no business in a file name and would let a path say
// something else after decoding than before.
func unescape(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		c = hi<<4 | lo
		if c == '/' || c == '\\' || isControl(c) {
			return "", false
		}
		b = append(b, c)
		i += 2
	}
	return string(b), true
}

// segmentsServable reports whether every segment of the decoded path p
// (which starts with "/") is a plain name: not empty, except for a final
// empty segment after a trailing slash, and not starting with ".". This
// excludes ".", "..", ".git", ".env" and "//" alike.
func segmentsServable(p string) bool {
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		segment := p[start:i]
		last := i == len(p)
		if segment == "" && !last {
			return false
		}
		if segment != "" && segment[0] == '.' {
			return false
		}
		start = i + 1
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// isControl reports whether c is an ASCII control byte (CTL in RFC 5234).
func isControl(c byte) bool { return c < 0x20 || c == 0x7f }
