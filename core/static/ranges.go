package static

import (
	"math"

	"github.com/anx-gateway/anx/core/message"
)

// maxRanges bounds the range-specs of one Range field; a field with more is
// ignored (RFC 9110 sections 14.2 and 17.15).
const maxRanges = 100

// byteRange is a satisfiable part of a representation: length bytes from
// start.
type byteRange struct {
	start, length int64
}

// rangeVerdict is what a Range field asks of a representation.
type rangeVerdict uint8

const (
	// rangeIgnore: send the whole representation with 200.
	rangeIgnore rangeVerdict = iota
	// rangePartial: send the ranges with 206.
	rangePartial
	// rangeUnsatisfiable: answer 416.
	rangeUnsatisfiable
)

// parseRange evaluates a Range field value against a representation of
// size bytes (RFC 9110 section 14). It appends the satisfiable ranges, in
// the order requested, to dst.
//
// The field is ignored when its unit is not "bytes" (which section 14.2
// requires), when it is not valid syntax or holds an invalid int-range
// (section 14.1.1; section 14.2 allows ignoring it), when it holds more
// than maxRanges range-specs, when the satisfiable ranges add up to more
// than the representation (so they overlap: the denial of service of
// section 17.15), and when the representation is empty but the set is
// satisfiable (only a suffix-range can be, and section 14.2 allows ignoring
// Range on an empty representation). A valid set with no satisfiable
// range is unsatisfiable (section 14.1.2).
func parseRange(value string, size int64, dst []byteRange) ([]byteRange, rangeVerdict) {
	value = message.TrimOWS(value)
	eq := 0
	for eq < len(value) && value[eq] != '=' {
		eq++
	}
	if eq == len(value) || !message.EqualFold(value[:eq], "bytes") {
		return dst, rangeIgnore
	}
	specs, total := 0, int64(0)
	for rest := value[eq+1:]; ; {
		rest = message.SkipListSeparators(rest)
		if rest == "" {
			break
		}
		var element string
		element, rest = message.CutListElement(rest)
		r, satisfiable, ok := parseRangeSpec(message.TrimOWS(element), size)
		if !ok {
			return dst[:0], rangeIgnore
		}
		if specs++; specs > maxRanges {
			return dst[:0], rangeIgnore
		}
		if satisfiable {
			dst = append(dst, r)
			total += r.length
		}
	}
	switch {
	case specs == 0, total > size:
		return dst[:0], rangeIgnore
	case len(dst) == 0:
		return dst, rangeUnsatisfiable
	case size == 0:
		return dst[:0], rangeIgnore
	}
	return dst, rangePartial
}

// parseRangeSpec parses one bytes range-spec (RFC 9110 section 14.1):
//
//	int-range    = first-pos "-" [ last-pos ]
//	suffix-range = "-" suffix-length
//
// and resolves it against size. ok is false when the spec is not valid.
// Numbers too large for int64 saturate, as section 14.1.2 asks recipients
// to anticipate them.
func parseRangeSpec(spec string, size int64) (r byteRange, satisfiable, ok bool) {
	dash := 0
	for dash < len(spec) && spec[dash] != '-' {
		dash++
	}
	if dash == len(spec) {
		return byteRange{}, false, false
	}
	firstText, lastText := spec[:dash], spec[dash+1:]
	if firstText == "" {
		suffix, ok := parseCount(lastText)
		if !ok {
			return byteRange{}, false, false
		}
		// A suffix-range is satisfiable when its length is not zero,
		// even on an empty representation (section 14.1.2).
		length := min(suffix, size)
		return byteRange{start: size - length, length: length}, suffix > 0, true
	}
	first, ok := parseCount(firstText)
	if !ok {
		return byteRange{}, false, false
	}
	last := int64(math.MaxInt64)
	if lastText != "" {
		if last, ok = parseCount(lastText); !ok || last < first {
			return byteRange{}, false, false
		}
	}
	if first >= size {
		return byteRange{}, false, true
	}
	last = min(last, size-1)
	return byteRange{start: first, length: last - first + 1}, true, true
}

// parseCount parses 1*DIGIT, saturating at math.MaxInt64.
func parseCount(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + d
	}
	return n, true
}
