package asm

// FieldValueEnd returns the index of the first byte of s that ends or
// invalidates an HTTP field value, or len(s) if there is none: a control
// byte other than HTAB (CR and LF among them) or DEL (RFC 9110 section
// 5.5: field-value is VCHAR, obs-text, SP and HTAB). One pass finds the end
// of a field line and validates its value.
func FieldValueEnd(s string) int { return fieldValueEnd(s) }

// TokenEnd returns the index of the first byte of s that is not a token
// character, or len(s) if there is none (RFC 9110 section 5.6.2: tchar is
// "!#$%&'*+-.^_`|~", DIGIT and ALPHA). Field names and methods are tokens.
func TokenEnd(s string) int { return tokenEnd(s) }

// CleanPathEnd returns the index of the first byte of a request-target
// outside the clean-path set, or len(s) if there is none: "%", "\", a
// control byte, SP, DEL, a byte of 0x80 or above, "?" or "#". A path with
// none of them needs no decoding and no further checks of its bytes.
func CleanPathEnd(s string) int { return cleanPathEnd(s) }

// scanShort is the length below which the per-arch dispatchers
// (fieldValueEnd, tokenEnd, cleanPathEnd in scan_amd64.go, scan_arm64.go
// and scan_other.go) run the Go reference, inlined: under 8 bytes it is as
// fast as setting up the vector registers. From 8 bytes (the shortest
// string the kernels load as vectors: its first and last 8 bytes) the
// assembly wins, about 3 ns against 5-12 ns for 8-15 bytes. The exported
// functions are one call to the dispatcher, so that they inline into the
// parser. The assembly implementations take strings of any length.
const scanShort = 8

// The SIMD kernels classify a byte c by two 16-entry table lookups, one by
// each nibble ("vectorized classification", as in simdjson; PSHUFB on
// amd64, TBL on arm64):
//
//	class(c) = lo[c&15] & hi[c>>4]
//
// and stop at the first byte whose class is zero. A table string is lo
// (16 bytes) followed by hi (16 bytes). Each distinct row of the 16x16
// byte matrix (the set of low nibbles accepted under one high nibble) owns
// one bit: hi[h] is the bit of row h (zero if no byte c>>4 == h is
// accepted) and lo[l] has the bit of every row that accepts low nibble l.
// The classification is therefore exact whenever there are at most 8
// distinct non-empty rows. TestScanTables derives each table from its Go
// reference and checks all 256 bytes.
const (
	// scanFieldValueTab accepts what FieldValueEnd skips: rows are {HTAB}
	// (0x0_), all (0x2_-0x6_, 0x8_-0xf_) and all but DEL (0x7_).
	scanFieldValueTab = "" +
		"\x06\x06\x06\x06\x06\x06\x06\x06\x06\x07\x06\x06\x06\x06\x06\x02" +
		"\x01\x00\x02\x02\x02\x02\x02\x04\x02\x02\x02\x02\x02\x02\x02\x02"
	// scanTokenTab accepts tchar: one row each for 0x2_ to 0x7_.
	scanTokenTab = "" +
		"\x3a\x3f\x3e\x3f\x3f\x3f\x3f\x3f\x3e\x3e\x3d\x15\x34\x15\x3d\x1c" +
		"\x00\x00\x01\x02\x04\x08\x10\x20\x00\x00\x00\x00\x00\x00\x00\x00"
	// scanCleanPathTab accepts the clean-path bytes: rows are 0x2_ (no SP,
	// "#", "%"), 0x3_ and 0x7_ (no "?", no DEL), 0x4_ and 0x6_ (all) and
	// 0x5_ (no backslash).
	scanCleanPathTab = "" +
		"\x0e\x0f\x0f\x0e\x0f\x0e\x0f\x0f\x0f\x0f\x0f\x0f\x07\x0f\x0f\x0d" +
		"\x00\x00\x01\x02\x04\x08\x04\x02\x00\x00\x00\x00\x00\x00\x00\x00"
)

// scanImpl is one implementation of the three kernels, for the tests and
// benchmarks: scanImpls (per arch) lists those this CPU can run, the Go
// reference first.
type scanImpl struct {
	name                                  string
	fieldValueEnd, tokenEnd, cleanPathEnd func(string) int
}

// IsFieldValueByte reports whether c may appear in a field value: VCHAR,
// obs-text, SP or HTAB (RFC 9110 section 5.5). It is FieldValueEnd for one
// byte, for parsers that look at one byte at a time.
func IsFieldValueByte(c byte) bool {
	return c >= 0x20 && c != 0x7f || c == '\t'
}

// fieldValueEndGeneric is FieldValueEnd in Go: the reference.
func fieldValueEndGeneric(s string) int {
	for i := 0; i < len(s); i++ {
		if !IsFieldValueByte(s[i]) {
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

// IsTokenByte reports whether c is a token character (tchar, RFC 9110
// section 5.6.2). It is TokenEnd for one byte, for parsers that look at
// one byte at a time.
func IsTokenByte(c byte) bool {
	if c < 64 {
		return tcharLo>>c&1 != 0
	}
	return c < 128 && tcharHi>>(c-64)&1 != 0
}

// tokenEndGeneric is TokenEnd in Go: the reference.
func tokenEndGeneric(s string) int {
	for i := 0; i < len(s); i++ {
		if !IsTokenByte(s[i]) {
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
