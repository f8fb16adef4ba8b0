package static

import (
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// fieldLines is one request field as the handler reads it: the values of
// all its lines, combined into one list as RFC 9110 section 5.3 allows,
// and how many lines there were.
type fieldLines struct {
	value string
	lines int
}

func (f *fieldLines) add(v string) {
	if f.lines == 0 {
		f.value = v
	} else {
		f.value = f.value + ", " + v // rare: a list split over lines
	}
	f.lines++
}

// single returns the value of a field that must not be a list, and false
// when the field is absent or appears on more than one line.
func (f *fieldLines) single() (string, bool) {
	return message.TrimOWS(f.value), f.lines == 1
}

// requestFields holds the request fields that static evaluates, read in one
// pass over the header.
type requestFields struct {
	ifMatch, ifNoneMatch               fieldLines
	ifModifiedSince, ifUnmodifiedSince fieldLines
	ifRange, rangeSpec                 fieldLines
	acceptEncoding                     fieldLines
}

func (rf *requestFields) read(h *message.Header) {
	for _, f := range h.Fields() {
		if target := rf.fieldNamed(f.Name); target != nil {
			target.add(f.Value)
		}
	}
}

func (rf *requestFields) fieldNamed(name string) *fieldLines {
	switch len(name) {
	case len("Range"):
		if message.EqualFold(name, "Range") {
			return &rf.rangeSpec
		}
	case len("If-Match"): // also len("If-Range")
		switch {
		case message.EqualFold(name, "If-Match"):
			return &rf.ifMatch
		case message.EqualFold(name, "If-Range"):
			return &rf.ifRange
		}
	case len("If-None-Match"):
		if message.EqualFold(name, "If-None-Match") {
			return &rf.ifNoneMatch
		}
	case len("Accept-Encoding"):
		if message.EqualFold(name, "Accept-Encoding") {
			return &rf.acceptEncoding
		}
	case len("If-Modified-Since"):
		if message.EqualFold(name, "If-Modified-Since") {
			return &rf.ifModifiedSince
		}
	case len("If-Unmodified-Since"):
		if message.EqualFold(name, "If-Unmodified-Since") {
			return &rf.ifUnmodifiedSince
		}
	}
	return nil
}

// precondition is the outcome of evaluating the preconditions.
type precondition uint8

const (
	preconditionsHold  precondition = iota // perform the method
	notModified                            // answer 304
	preconditionFailed                     // answer 412
)

// evaluatePreconditions applies RFC 9110 section 13.2.2, steps 1 to 4, in
// that order, to the selected representation rep. The handler calls it
// only when the resource exists and the response would otherwise be 2xx,
// as section 13.2.1 requires. Step 5, If-Range, belongs to range
// handling (ifRangeHolds).
func evaluatePreconditions(method string, rf *requestFields, rep *representation, clk *clock) precondition {
	// Step 1: If-Match, strong comparison (section 13.1.1).
	if rf.ifMatch.lines > 0 {
		if !matchesAny(rf.ifMatch.value, rep.etag, true) {
			return preconditionFailed
		}
	} else if date, ok := validDate(&rf.ifUnmodifiedSince, clk); ok {
		// Step 2: If-Unmodified-Since, only without If-Match
		// (section 13.1.4): true when the representation was last
		// modified at or before the date.
		if rep.modSeconds > date {
			return preconditionFailed
		}
	}
	safe := method == "GET" || method == "HEAD"
	// Step 3: If-None-Match, weak comparison (section 13.1.2).
	if rf.ifNoneMatch.lines > 0 {
		if matchesAny(rf.ifNoneMatch.value, rep.etag, false) {
			if safe {
				return notModified
			}
			return preconditionFailed
		}
	} else if date, ok := validDate(&rf.ifModifiedSince, clk); ok && safe {
		// Step 4: If-Modified-Since, only for GET and HEAD without
		// If-None-Match (section 13.1.3): false, so 304, when the
		// representation was last modified at or before the date.
		if rep.modSeconds <= date {
			return notModified
		}
	}
	return preconditionsHold
}

// validDate returns the date of an If-Modified-Since or
// If-Unmodified-Since field, and false when the field must be ignored: it
// is absent, has more than one member or line, or is not a valid HTTP-date
// (sections 13.1.3 and 13.1.4).
func validDate(f *fieldLines, clk *clock) (int64, bool) {
	value, ok := f.single()
	if !ok {
		return 0, false
	}
	return parseHTTPDate(value, clk.now())
}

// ifRangeHolds evaluates If-Range (RFC 9110 sections 13.1.5 and 13.2.2
// step 5) for a request that has a Range field; without If-Range the Range
// applies. A value whose first three characters hold a DQUOTE is an
// entity-tag, compared with the strong function, so a weak tag never
// matches. Otherwise it is an HTTP-date, which must equal the
// representation's Last-Modified exactly and be a strong validator: see
// lastModifiedIsStrong. An invalid value, or one on several lines, is
// false: the whole representation is sent.
func ifRangeHolds(rf *requestFields, rep *representation, clk *clock) bool {
	if rf.ifRange.lines == 0 {
		return true
	}
	value, ok := rf.ifRange.single()
	if !ok {
		return false
	}
	if looksLikeEntityTag(value) {
		weak, opaque, rest, ok := cutEntityTag(value)
		return ok && rest == "" && !weak && opaque == rep.etag
	}
	date, ok := parseHTTPDate(value, clk.now())
	return ok && date == rep.modSeconds && lastModifiedIsStrong(rep, clk.now())
}

// looksLikeEntityTag applies the rule of RFC 9110 section 13.1.5: a valid
// entity-tag has a DQUOTE among its first three characters.
func looksLikeEntityTag(v string) bool {
	for i := 0; i < len(v) && i < 3; i++ {
		if v[i] == '"' {
			return true
		}
	}
	return false
}

// lastModifiedIsStrong reports whether a date equal to rep's Last-Modified
// can be taken as a strong validator (RFC 9110 section 8.8.2.2): the origin
// server must know the file did not change twice within that second. A
// file system gives no such guarantee; the handler takes it as known once
// the file has stayed unchanged for a full second after its modification
// time, and refuses the date (sending the whole representation) for a file
// modified less than a second ago.
func lastModifiedIsStrong(rep *representation, now time.Time) bool {
	return now.Sub(rep.modTime) >= time.Second
}
