package h1

import "github.com/anx-gateway/anx/asm"

// The byte class of RFC 3986's host, as a 128-bit mask split in two
// constant words, so that no table is package state. Token and field-value
// bytes are asm's (asm.IsTokenByte, asm.IsFieldValueByte), beside the SIMD
// kernels that scan whole strings of them.

// Characters of a reg-name or IPv4 address in a host: unreserved,
// sub-delims and "%" of pct-encoded (RFC 3986 section 3.2.2).
const (
	hostLo uint64 = 1<<'!' | 1<<'$' | 1<<'%' | 1<<'&' | 1<<'\'' | 1<<'(' | 1<<')' |
		1<<'*' | 1<<'+' | 1<<',' | 1<<'-' | 1<<'.' | 1<<';' | 1<<'=' | (1<<('9'+1) - 1<<'0')
	hostHi uint64 = (1<<('Z'+1-64) - 1<<('A'-64)) | (1<<('z'+1-64) - 1<<('a'-64)) |
		1<<('_'-64) | 1<<('~'-64)
)

// inMask reports whether c is in the class given by its two mask words.
func inMask(c byte, lo, hi uint64) bool {
	if c < 64 {
		return lo>>c&1 != 0
	}
	if c < 128 {
		return hi>>(c-64)&1 != 0
	}
	return false
}

// isToken reports whether s is a non-empty token.
func isToken(s string) bool { return s != "" && asm.TokenEnd(s) == len(s) }

// validFieldValue reports whether every byte of s may appear in a field
// value.
func validFieldValue(s string) bool { return asm.FieldValueEnd(s) == len(s) }

// isTargetByte reports whether c may appear in a request-target. It admits
// every visible ASCII character but "#" (a fragment is never sent, RFC 9112
// section 3.2) and, as nginx and net/http do, bytes above 0x7f; the engine
// decodes and judges the path.
func isTargetByte(c byte) bool {
	return c > 0x20 && c != 0x7f && c != '#'
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

// trimOWS removes optional whitespace (SP and HTAB) from both ends of s.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
