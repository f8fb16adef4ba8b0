package encode

import "github.com/anx-gateway/anx/core/message"

// weight is a quality value times 1000, 0 through 1000 (RFC 9110 section
// 12.4.2); notListed marks a coding the field does not mention.
type weight int16

const notListed weight = -1

// Accept is what an Accept-Encoding field value says about the codings
// anx can produce. Its zero value is not meaningful: use ParseAccept.
type Accept struct {
	q    [codingCount]weight // the explicit weight of each coding
	star weight              // the weight of "*"
}

// ParseAccept reads an Accept-Encoding field value (RFC 9110 section
// 12.5.3); the values of several field lines are joined with commas
// before:
//
//	Accept-Encoding = #( codings [ weight ] )
//	codings         = content-coding / "identity" / "*"
//	weight          = OWS ";" OWS "q=" qvalue
//
// Codings are case-insensitive and "x-gzip" means "gzip" (section
// 8.4.1.3). A malformed element is skipped. When a coding is listed more
// than once its lowest weight counts, so that q=0 anywhere refuses it.
func ParseAccept(value string) Accept {
	a := Accept{star: notListed}
	for i := range a.q {
		a.q[i] = notListed
	}
	for rest := value; ; {
		rest = message.SkipListSeparators(rest)
		if rest == "" {
			return a
		}
		var element string
		element, rest = message.CutListElement(rest)
		token, q, ok := parseElement(element)
		if !ok {
			continue
		}
		if token == "*" {
			a.star = lower(a.star, q)
		} else if c, known := codingOfToken(token); known {
			a.q[c] = lower(a.q[c], q)
		}
	}
}

// Choose returns the coding to send among those offered: the one with
// the highest non-zero weight, ties going to the server's preference for
// compressing on the fly (zstd, br, gzip). Identity wins only when the
// field gives it a strictly higher weight; a field that does not mention
// identity leaves it acceptable at the lowest weight, so it is the
// fallback. When nothing is acceptable, not even identity
// ("identity;q=0" or "*;q=0"), Identity is returned all the same: section
// 12.5.3 lets a server send it rather than 406.
func (a *Accept) Choose(offered Set) Coding { return a.ChooseIn(preference[:], offered) }

// ChooseIn is Choose with ties going to order, most preferred first
// (core/static prefers a br sidecar, made once at brotli's highest
// level, to a zstd one).
func (a *Accept) ChooseIn(order []Coding, offered Set) Coding {
	best, bestQ := Identity, weight(0)
	for _, c := range order {
		if q := a.weight(c); offered.Has(c) && q > bestQ {
			best, bestQ = c, q
		}
	}
	if a.weight(Identity) > bestQ {
		return Identity
	}
	return best
}

// weight returns the weight the field gives c: its own, else that of
// "*", which covers every coding the field does not name, identity
// included; identity is acceptable by default (section 12.5.3).
func (a *Accept) weight(c Coding) weight {
	switch {
	case a.q[c] != notListed:
		return a.q[c]
	case a.star != notListed:
		return a.star
	case c == Identity:
		return 1
	}
	return 0
}

func lower(old, q weight) weight {
	if old == notListed || q < old {
		return q
	}
	return old
}

// parseElement parses `codings [ weight ]`.
func parseElement(element string) (token string, q weight, ok bool) {
	element = message.TrimOWS(element)
	end := 0
	for end < len(element) && message.IsTokenChar(element[end]) {
		end++
	}
	token, params := element[:end], message.TrimLeftOWS(element[end:])
	if token == "" {
		return "", 0, false
	}
	if params == "" {
		return token, 1000, true
	}
	if params[0] != ';' {
		return "", 0, false
	}
	params = message.TrimLeftOWS(params[1:])
	if len(params) < 2 || (params[0] != 'q' && params[0] != 'Q') || params[1] != '=' {
		return "", 0, false
	}
	q, ok = parseQValue(params[2:])
	return token, q, ok
}

// parseQValue parses `( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
func parseQValue(s string) (weight, bool) {
	if s == "" || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	q := weight(s[0]-'0') * 1000
	if len(s) == 1 {
		return q, true
	}
	if s[1] != '.' || len(s) > 5 {
		return 0, false
	}
	scale := weight(100)
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		q += weight(s[i]-'0') * scale
		scale /= 10
	}
	if q > 1000 {
		return 0, false
	}
	return q, true
}

// codingOfToken maps a content-coding token to a Coding.
func codingOfToken(token string) (Coding, bool) {
	switch {
	case equalFold(token, "zstd"):
		return Zstd, true
	case equalFold(token, "br"):
		return Brotli, true
	case equalFold(token, "gzip"), equalFold(token, "x-gzip"):
		return Gzip, true
	case equalFold(token, "identity"):
		return Identity, true
	}
	return 0, false
}

// equalFold compares an ASCII token with a lower-case one, ignoring case.
func equalFold(s, lowerCase string) bool {
	if len(s) != len(lowerCase) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lowerCase[i] {
			return false
		}
	}
	return true
}
