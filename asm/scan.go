package asm

// FieldValueEnd returns the index of the first byte of s that ends or
// invalidates an HTTP field value, or len(s) if there is none: a control
// byte other than HTAB (CR and LF among them) or DEL (RFC 9110 section
// 5.5: field-value is VCHAR, obs-text, SP and HTAB). One pass finds the end
// of a field line and validates its value.
func FieldValueEnd(s string) int { return fieldValueEndGeneric(s) }

// TokenEnd returns the index of the first byte of s that is not a token
// character, or len(s) if there is none (RFC 9110 section 5.6.2: tchar is
// "!#$%&'*+-.^_`|~", DIGIT and ALPHA). Field names and methods are tokens.
func TokenEnd(s string) int { return tokenEndGeneric(s) }

// CleanPathEnd returns the index of the first byte of a request-target
// outside the clean-path set, or len(s) if there is none: "%", "\", a
// control byte, SP, DEL, a byte of 0x80 or above, "?" or "#". A path with
// none of them needs no decoding and no further checks of its bytes.
func CleanPathEnd(s string) int { return cleanPathEndGeneric(s) }

// fieldValueEndGeneric is FieldValueEnd in Go: the reference.
func fieldValueEndGeneric(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return i
		}
	}
	return len(s)
}

// tchar masks: bit c of the 128-bit set (lo for c < 64, hi for 64 <= c <
// 128) is set when c is a token character.
const (
	tcharLo uint64 = 1<<'!' | 1<<'#' | 1<<'$' | 1<<'%' | 1<<'&' | 1<<'\'' |
		1<<'*' | 1<<'+' | 1<<'-' | 1<<'.' | (1<<('9'+1) - 1<<'0')
	tcharHi uint64 = (1<<('Z'+1-64) - 1<<('A'-64)) | (1<<('z'+1-64) - 1<<('a'-64)) |
		1<<('^'-64) | 1<<('_'-64) | 1<<('`'-64) | 1<<('|'-64) | 1<<('~'-64)
)

// tokenEndGeneric is TokenEnd in Go: the reference.
func tokenEndGeneric(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 64:
			if tcharLo>>c&1 == 0 {
				return i
			}
		case c < 128:
			if tcharHi>>(c-64)&1 == 0 {
				return i
			}
		default:
			return i
		}
	}
	return len(s)
}

// cleanPathEndGeneric is CleanPathEnd in Go: the reference.
func cleanPathEndGeneric(s string) int {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ', c >= 0x7f, c == '%', c == '\\', c == '?', c == '#':
			return i
		}
	}
	return len(s)
}
