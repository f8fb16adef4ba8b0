package static

import (
	"strconv"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// makeETag returns the strong entity-tag of a file's bytes: the hex of its
// modification time in nanoseconds and of its size, and, for a
// precompressed variant, the coding's suffix, so every representation of a
// resource has its own tag (RFC 9110 section 8.8.3).
func makeETag(modTime time.Time, size int64, suffix string) string {
	b := make([]byte, 0, 2+16+1+16+len(suffix))
	b = append(b, '"')
	b = strconv.AppendUint(b, uint64(modTime.UnixNano()), 16)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(size), 16)
	b = append(b, suffix...)
	b = append(b, '"')
	return string(b)
}

// matchesAny evaluates an If-Match or If-None-Match field value against
// etag, the strong tag of the selected representation (RFC 9110 sections
// 13.1.1 and 13.1.2). "*" matches any current representation. Otherwise
// the value is a list of entity-tags, any of which may match; strong
// selects the strong comparison function (If-Match) rather than the weak
// one (If-None-Match), see section 8.8.3.2. A value that is not valid
// syntax, including "*" mixed into a list, matches nothing.
func matchesAny(list, etag string, strong bool) bool {
	if message.TrimOWS(list) == "*" {
		return true
	}
	matched := false
	for rest := list; ; {
		rest = message.SkipListSeparators(rest)
		if rest == "" {
			return matched
		}
		weak, opaque, tail, ok := cutEntityTag(rest)
		if !ok {
			return false
		}
		if opaque == etag && !(strong && weak) {
			matched = true
		}
		rest = message.TrimLeftOWS(tail)
		if rest != "" && rest[0] != ',' {
			return false
		}
	}
}

// cutEntityTag parses one entity-tag at the start of s:
//
//	entity-tag = [ weak ] opaque-tag
//	weak       = %s"W/"
//	opaque-tag = DQUOTE *etagc DQUOTE
//	etagc      = %x21 / %x23-7E / obs-text
//
// opaque is returned with its quotes, as the ETag field value of a strong
// tag is spelled.
func cutEntityTag(s string) (weak bool, opaque, rest string, ok bool) {
	if len(s) >= 2 && s[0] == 'W' && s[1] == '/' {
		weak = true
		s = s[2:]
	}
	if s == "" || s[0] != '"' {
		return false, "", "", false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return weak, s[:i+1], s[i+1:], true
		case c == 0x21 || (0x23 <= c && c <= 0x7e) || c >= 0x80:
		default:
			return false, "", "", false
		}
	}
	return false, "", "", false
}
