package message

import (
	"iter"
	"strings"
)

// The list and whitespace syntax of field values (RFC 9110 section 5.6),
// shared by the parsers of the fields anx reads.

// TrimOWS removes optional whitespace (SP and HTAB) from both ends of s.
func TrimOWS(s string) string {
	s = TrimLeftOWS(s)
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// TrimLeftOWS removes optional whitespace from the start of s.
func TrimLeftOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

// SkipListSeparators skips whitespace and the empty list elements that
// the list syntax allows (section 5.6.1): ", , a" reads as "a".
func SkipListSeparators(s string) string {
	for s != "" && (s[0] == ',' || s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

// CutListElement splits a list at its first comma: the element before
// it and the rest after it.
func CutListElement(s string) (element, rest string) {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// Directives yields the elements of a comma-separated list of
// "name[=value]" directives (Cache-Control, RFC 9111 section 5.2; Vary's
// plain names too), each trimmed of whitespace and cut at its first "=":
// the name as written and the value as written, quotes included.
func Directives(list string) iter.Seq2[string, string] {
	return func(yield func(name, value string) bool) {
		for rest := list; rest != ""; {
			var element string
			element, rest = CutListElement(rest)
			name, value, _ := strings.Cut(TrimOWS(element), "=")
			if !yield(name, value) {
				return
			}
		}
	}
}

// IsTokenChar reports whether c is a tchar, a byte of a token (section
// 5.6.2).
func IsTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
