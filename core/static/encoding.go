package static

import "github.com/anx-gateway/anx/core/message"

// coding is a content coding a representation can have (RFC 9110 section
// 8.4.1). The precompressed codings are listed in the server's order of
// preference, which breaks ties between equal qvalues.
type coding uint8

const (
	identity coding = iota
	brotli
	zstandard
	gzipCoding
	codingCount
)

// precompressed lists the codings served from sidecar files, most
// preferred first.
var precompressed = [...]coding{brotli, zstandard, gzipCoding}

// name is the content-coding token sent in Content-Encoding.
func (c coding) name() string {
	return [...]string{"identity", "br", "zstd", "gzip"}[c]
}

// fileSuffix is appended to a file's name to find its sidecar.
func (c coding) fileSuffix() string {
	return [...]string{"", ".br", ".zst", ".gz"}[c]
}

// etagSuffix distinguishes the entity-tag of a variant.
func (c coding) etagSuffix() string {
	return [...]string{"", "-br", "-zst", "-gz"}[c]
}

// qvalue is a quality value times 1000, 0 through 1000 (RFC 9110 section
// 12.4.2); notListed marks a coding the field does not mention.
type qvalue int16

const notListed qvalue = -1

// acceptEncoding is what an Accept-Encoding field value says about the
// codings anx can serve.
type acceptEncoding struct {
	q    [codingCount]qvalue // explicit weight of each coding
	star qvalue              // weight of "*"
}

// parseAcceptEncoding reads an Accept-Encoding field value (RFC 9110
// section 12.5.3):
//
//	Accept-Encoding = #( codings [ weight ] )
//	codings         = content-coding / "identity" / "*"
//	weight          = OWS ";" OWS "q=" qvalue
//
// Codings are case-insensitive and "x-gzip" means "gzip" (section
// 8.4.1.3). A malformed element is skipped. When a coding is listed more
// than once, its lowest weight counts, so that q=0 anywhere excludes it.
func parseAcceptEncoding(value string) acceptEncoding {
	a := acceptEncoding{star: notListed}
	for i := range a.q {
		a.q[i] = notListed
	}
	for rest := value; ; {
		rest = skipListSeparators(rest)
		if rest == "" {
			return a
		}
		var element string
		element, rest = cutListElement(rest)
		token, q, ok := parseCodingElement(element)
		if !ok {
			continue
		}
		if token == "*" {
			a.star = lowerWeight(a.star, q)
		} else if c, known := codingByToken(token); known {
			a.q[c] = lowerWeight(a.q[c], q)
		}
	}
}

// cutListElement splits s at its first comma.
func cutListElement(s string) (element, rest string) {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// parseCodingElement parses `codings [ weight ]`.
func parseCodingElement(element string) (token string, q qvalue, ok bool) {
	element = trimOWS(element)
	end := 0
	for end < len(element) && isTokenChar(element[end]) {
		end++
	}
	token, params := element[:end], trimLeftOWS(element[end:])
	if token == "" {
		return "", 0, false
	}
	if params == "" {
		return token, 1000, true
	}
	if params[0] != ';' {
		return "", 0, false
	}
	params = trimLeftOWS(params[1:])
	if len(params) < 2 || (params[0] != 'q' && params[0] != 'Q') || params[1] != '=' {
		return "", 0, false
	}
	q, ok = parseQValue(params[2:])
	return token, q, ok
}

// parseQValue parses `( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
func parseQValue(s string) (qvalue, bool) {
	if s == "" || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	q := qvalue(s[0]-'0') * 1000
	if len(s) == 1 {
		return q, true
	}
	if s[1] != '.' || len(s) > 5 {
		return 0, false
	}
	scale := qvalue(100)
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		q += qvalue(s[i]-'0') * scale
		scale /= 10
	}
	if q > 1000 {
		return 0, false
	}
	return q, true
}

func lowerWeight(old, q qvalue) qvalue {
	if old == notListed || q < old {
		return q
	}
	return old
}

// codingByToken maps a content-coding token to a coding anx can serve.
func codingByToken(token string) (coding, bool) {
	switch {
	case message.EqualFold(token, "br"):
		return brotli, true
	case message.EqualFold(token, "zstd"):
		return zstandard, true
	case message.EqualFold(token, "gzip"), message.EqualFold(token, "x-gzip"):
		return gzipCoding, true
	case message.EqualFold(token, "identity"):
		return identity, true
	}
	return 0, false
}

// weight returns the weight the field gives c; "*" covers every coding the
// field does not name, identity included (section 12.5.3).
func (a *acceptEncoding) weight(c coding) qvalue {
	if a.q[c] != notListed {
		return a.q[c]
	}
	return a.star
}

// choose selects the representation to send among the available ones.
// The precompressed variant with the highest non-zero weight wins, ties
// going to the server's order (br, zstd, gzip). Identity wins over them
// only when the field gives it a strictly higher weight; when the field
// does not mention identity it is acceptable by default, so it is the
// fallback. When nothing is acceptable, not even identity ("identity;q=0"
// or "*;q=0"), the field is disregarded and identity is sent, as section
// 12.4.1 allows in place of 406.
func (a *acceptEncoding) choose(available *[codingCount]bool) coding {
	best, bestQ := identity, qvalue(0)
	for _, c := range precompressed {
		if q := a.weight(c); available[c] && q > bestQ {
			best, bestQ = c, q
		}
	}
	if a.weight(identity) > bestQ {
		return identity
	}
	return best
}

// isTokenChar reports whether c is a tchar (RFC 9110 section 5.6.2).
func isTokenChar(c byte) bool {
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
