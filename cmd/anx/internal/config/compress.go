package config

import "github.com/anx-gateway/anx/core/encode"

// Encoding is one content coding of a site's compress list.
type Encoding struct{ Coding encode.Coding }

// UnmarshalText accepts "zstd", "br" or "gzip".
func (e *Encoding) UnmarshalText(b []byte) error {
	c, err := encode.Parse(string(b))
	if err != nil {
		return valueError(b, "want \"zstd\", \"br\" or \"gzip\", got %q", b)
	}
	e.Coding = c
	return nil
}

// CompressSet returns the codings the site compresses responses in on
// the fly: those of its compress list, every one when it has none, none
// for an empty list.
func (s *Site) CompressSet() encode.Set {
	if s.Compress == nil {
		return encode.DefaultSet
	}
	var set encode.Set
	for _, e := range *s.Compress {
		set = set.With(e.Coding)
	}
	return set
}

// CompressMinBytes returns the smallest response the site compresses:
// its compress_min_size, else encode.DefaultMinSize.
func (s *Site) CompressMinBytes() int64 {
	if s.CompressMinSize == nil {
		return encode.DefaultMinSize
	}
	return max(s.CompressMinSize.Bytes, 1) // 0 would mean the default below
}
