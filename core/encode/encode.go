// Package encode is anx's content-coding layer for compressing responses
// on the fly (RFC 9110 section 8.4): it reads Accept-Encoding and picks
// the coding to send (section 12.5.3), tells which media types are worth
// compressing, and keeps pools of encoders for zstd, br and gzip, which
// are costly to make (github.com/klauspost/compress and
// github.com/andybalholm/brotli). core/static and core/proxy use it.
package encode

import "fmt"

// Coding is a content coding anx can produce.
type Coding uint8

// The codings, Identity (no coding) first. Their order here is the
// server's preference among codings a client weighs equally: zstd, then
// br, then gzip (zstd decodes fastest and compresses about as well as br
// at the levels used on the fly).
const (
	Identity Coding = iota
	Zstd
	Brotli
	Gzip
	codingCount
)

// preference lists the compressing codings, most preferred first.
var preference = [...]Coding{Zstd, Brotli, Gzip}

// String returns the content-coding token sent in Content-Encoding.
func (c Coding) String() string {
	switch c {
	case Zstd:
		return "zstd"
	case Brotli:
		return "br"
	case Gzip:
		return "gzip"
	}
	return "identity"
}

// ETagSuffix returns what is added inside the quotes of an entity-tag to
// name the representation in coding c, so that every coding of a resource
// has its own tag (RFC 9110 section 8.8.3); "" for Identity.
func (c Coding) ETagSuffix() string {
	switch c {
	case Zstd:
		return "-zstd"
	case Brotli:
		return "-br"
	case Gzip:
		return "-gzip"
	}
	return ""
}

// Parse returns the coding a configuration names: "zstd", "br" or "gzip".
func Parse(name string) (Coding, error) {
	switch name {
	case "zstd":
		return Zstd, nil
	case "br":
		return Brotli, nil
	case "gzip":
		return Gzip, nil
	}
	return Identity, fmt.Errorf("encode: unknown coding %q: want \"zstd\", \"br\" or \"gzip\"", name)
}

// Set is a set of compressing codings: those a site offers. The zero Set
// offers none, so compression is off.
type Set uint8

// DefaultSet offers every coding anx has.
const DefaultSet = Set(1<<Zstd | 1<<Brotli | 1<<Gzip)

// Has reports whether c is in s.
func (s Set) Has(c Coding) bool { return c != Identity && s&(1<<c) != 0 }

// With returns s with c added.
func (s Set) With(c Coding) Set {
	if c == Identity {
		return s
	}
	return s | 1<<c
}

// ParseSet returns the set of the codings names lists, each checked by
// Parse; an empty list is the empty set.
func ParseSet(names []string) (Set, error) {
	var s Set
	for _, name := range names {
		c, err := Parse(name)
		if err != nil {
			return 0, err
		}
		s = s.With(c)
	}
	return s, nil
}

// DefaultMinSize is the smallest body compressed when a site does not
// set its own, as Caddy's encode (512 bytes): below it the coding's
// framing and the CPU cost outweigh what is saved. nginx's
// gzip_min_length is 20 bytes, which costs more CPU for small gains.
const DefaultMinSize = 512
