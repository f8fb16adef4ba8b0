package static

import (
	"math/rand/v2"
	"strconv"

	"github.com/anx-gateway/anx/core/message"
)

// allowedMethods is the Allow field value (RFC 9110 section 10.2.1).
const allowedMethods = "GET, HEAD, OPTIONS"

// serveEntry answers a GET or HEAD for an existing file: it selects the
// representation (section 12.5.3), evaluates the preconditions (section
// 13.2.2), then the Range (section 14.2).
func (h *Handler) serveEntry(w message.ResponseWriter, r *message.Request, e *entry, clk *clock) {
	var rf requestFields
	rf.read(&r.Header)
	c := identity
	if e.hasVariants && rf.acceptEncoding.lines > 0 {
		c = chooseCoding(rf.acceptEncoding.value, &e.available)
	}
	rep := &e.reps[c]
	if c == identity && e.fly != nil && rf.acceptEncoding.lines > 0 && rf.rangeSpec.lines == 0 {
		c, rep = h.compressedVariant(e, rf.acceptEncoding.value, rep)
	}
	switch evaluatePreconditions(r.Method, &rf, rep, clk) {
	case notModified:
		h.setValidators(w.Header(), e, rep)
		w.WriteHeader(304)
		return
	case preconditionFailed:
		setVary(w.Header(), e)
		writeStatus(w, r, 412)
		return
	}
	if r.Method == "GET" && rf.rangeSpec.lines == 1 && ifRangeHolds(&rf, rep, clk) {
		// After a true If-Range the client holds the representation's
		// metadata already (section 15.3.7).
		parts := partial{rangeSpec: rf.rangeSpec.value, sparse: rf.ifRange.lines > 0}
		if h.serveRanges(w, e, c, rep, parts) {
			return
		}
	}
	h.serveWhole(w, r, e, c, rep)
}

// serveWhole sends the whole representation with 200.
func (h *Handler) serveWhole(w message.ResponseWriter, r *message.Request, e *entry, c coding, rep *representation) {
	hdr := w.Header()
	h.setRepresentation(hdr, e, c, rep, false)
	hdr.Set("Content-Length", rep.contentLength)
	w.WriteHeader(200)
	if r.Method == "HEAD" || rep.size == 0 {
		return
	}
	_ = rep.send(w, 0, rep.size) // too late for a status: the front end sees the short body
}

// partial describes a range request.
type partial struct {
	rangeSpec string // the Range field value
	// sparse is set when an If-Range held: the client already has the
	// representation's metadata, so a 206 SHOULD NOT repeat it (RFC
	// 9110 section 15.3.7).
	sparse bool
}

// serveRanges answers a Range request with 206 or 416 and reports true,
// or reports false when the Range is to be ignored (see parseRange). A
// request for several ranges of a precompressed variant is ignored too:
// a multipart body cannot carry the variant's Content-Encoding, which
// would apply to the multipart framing itself.
func (h *Handler) serveRanges(w message.ResponseWriter, e *entry, c coding, rep *representation, p partial) bool {
	var buf [4]byteRange
	ranges, verdict := parseRange(p.rangeSpec, rep.size, buf[:0])
	switch {
	case verdict == rangeUnsatisfiable:
		hdr := w.Header()
		setVary(hdr, e)
		hdr.Set("Content-Range", "bytes */"+rep.contentLength)
		writeStatusBody(w, 416, true)
	case verdict == rangeIgnore, len(ranges) > 1 && c != identity:
		return false
	case len(ranges) == 1:
		h.serveSingleRange(w, e, c, rep, ranges[0], p.sparse)
	default:
		h.serveMultipart(w, e, rep, ranges, p.sparse)
	}
	return true
}

// serveSingleRange sends one range with 206 and Content-Range (section
// 15.3.7.1).
func (h *Handler) serveSingleRange(w message.ResponseWriter, e *entry, c coding, rep *representation, rg byteRange, sparse bool) {
	hdr := w.Header()
	h.setRepresentation(hdr, e, c, rep, sparse)
	hdr.Set("Content-Range", string(appendContentRange(nil, rg, rep.size)))
	hdr.Set("Content-Length", strconv.FormatInt(rg.length, 10))
	w.WriteHeader(206)
	_ = rep.send(w, rg.start, rg.length)
}

// serveMultipart sends several ranges as multipart/byteranges (sections
// 14.6 and 15.3.7.2), in the order requested, each part with the
// representation's Content-Type and its Content-Range. The header has no
// Content-Range, and Content-Length is computed in advance.
func (h *Handler) serveMultipart(w message.ResponseWriter, e *entry, rep *representation, ranges []byteRange, sparse bool) {
	body := layOutMultipart(ranges, e.contentType, rep.size)
	hdr := w.Header()
	h.setRepresentation(hdr, e, identity, rep, sparse)
	hdr.Set("Content-Type", "multipart/byteranges; boundary="+body.boundary)
	hdr.Set("Content-Length", strconv.FormatInt(body.length, 10))
	w.WriteHeader(206)
	start := 0
	for i, rg := range ranges {
		if _, err := w.Write(body.heads[start:body.headEnds[i]]); err != nil {
			return
		}
		start = body.headEnds[i]
		if err := rep.send(w, rg.start, rg.length); err != nil {
			return
		}
	}
	_, _ = w.Write(body.trailer)
}

// multipartBody is the framing of a multipart/byteranges body: the head
// of every part, concatenated, and the closing delimiter.
type multipartBody struct {
	boundary string
	heads    []byte
	headEnds []int // end of each part's head in heads
	trailer  []byte
	length   int64 // of the whole body, parts included
}

func layOutMultipart(ranges []byteRange, contentType string, size int64) multipartBody {
	m := multipartBody{boundary: newBoundary(), headEnds: make([]int, len(ranges))}
	for i, rg := range ranges {
		if i > 0 {
			m.heads = append(m.heads, "\r\n"...)
		}
		m.heads = append(m.heads, "--"...)
		m.heads = append(m.heads, m.boundary...)
		m.heads = append(m.heads, "\r\nContent-Type: "...)
		m.heads = append(m.heads, contentType...)
		m.heads = append(m.heads, "\r\nContent-Range: "...)
		m.heads = appendContentRange(m.heads, rg, size)
		m.heads = append(m.heads, "\r\n\r\n"...)
		m.headEnds[i] = len(m.heads)
		m.length += rg.length
	}
	m.trailer = append(m.trailer, "\r\n--"...)
	m.trailer = append(m.trailer, m.boundary...)
	m.trailer = append(m.trailer, "--\r\n"...)
	m.length += int64(len(m.heads) + len(m.trailer))
	return m
}

// newBoundary returns a random multipart boundary (RFC 2046 section
// 5.1.1); at 128 bits it will not occur in the content.
func newBoundary() string {
	b := make([]byte, 0, 32)
	for range 2 {
		x := rand.Uint64()
		for i := 60; i >= 0; i -= 4 {
			b = append(b, "0123456789abcdef"[x>>uint(i)&0xf])
		}
	}
	return string(b)
}

// appendContentRange appends "bytes first-last/complete" (section 14.4).
func appendContentRange(b []byte, rg byteRange, size int64) []byte {
	b = append(b, "bytes "...)
	b = strconv.AppendInt(b, rg.start, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, rg.start+rg.length-1, 10)
	b = append(b, '/')
	return strconv.AppendInt(b, size, 10)
}

// setRepresentation sets the fields of a 200 or 206 response that
// describe the representation. sparse leaves out the representation
// metadata that section 15.3.7 does not require (Content-Type,
// Content-Encoding, Last-Modified), for a 206 answering an If-Range that
// held: the client has them already, from the response whose strong
// validator it sent.
func (h *Handler) setRepresentation(hdr *message.Header, e *entry, c coding, rep *representation, sparse bool) {
	if !sparse {
		hdr.Set("Content-Type", e.contentType)
		if c != identity {
			hdr.Set("Content-Encoding", c.name())
		}
		hdr.Set("Last-Modified", rep.lastModified)
	}
	h.setValidators(hdr, e, rep)
	hdr.Set("Accept-Ranges", "bytes")
	hdr.Set("X-Content-Type-Options", "nosniff")
}

// setValidators sets what a 304 must repeat from the 200 (section
// 15.4.5): ETag, Vary and Cache-Control. It sets no other representation
// metadata, which a 304 SHOULD NOT carry when it has an ETag.
func (h *Handler) setValidators(hdr *message.Header, e *entry, rep *representation) {
	hdr.Set("ETag", rep.etag)
	setVary(hdr, e)
	if h.cacheControl != "" {
		hdr.Set("Cache-Control", h.cacheControl)
	}
}

// setVary marks a response as chosen by Accept-Encoding when the resource
// has precompressed variants (section 12.5.5). Vary is a list, so a value
// set before (say by a CORS layer) is kept and this one added.
func setVary(hdr *message.Header, e *entry) {
	if e.hasVariants {
		hdr.Add("Vary", "Accept-Encoding")
	}
}

// serveOptions answers OPTIONS with the methods allowed (section 9.3.7).
// A 204 has no Content-Length (section 8.6) and no content.
func serveOptions(w message.ResponseWriter) {
	w.Header().Set("Allow", allowedMethods)
	w.WriteHeader(204)
}

// redirectToDirectory answers a directory named without its trailing
// slash with 301 to the same path, slash added, query kept (section
// 15.4.2). The path is sent as received, so its encoding is kept; it
// cannot start with "//", which decodePath refuses.
func redirectToDirectory(w message.ResponseWriter, r *message.Request) {
	location := r.Path + "/"
	if r.RawQuery != "" {
		location += "?" + r.RawQuery
	}
	w.Header().Set("Location", location)
	writeStatus(w, r, 301)
}

// writeStatus sends status with a short plain-text body naming it; HEAD
// gets the same header and no body.
func writeStatus(w message.ResponseWriter, r *message.Request, status int) {
	writeStatusBody(w, status, r.Method != "HEAD")
}

func writeStatusBody(w message.ResponseWriter, status int, withBody bool) {
	body := statusBody(status)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if withBody {
		_, _ = w.Write([]byte(body))
	}
}

// statusBody is the content of a response that has no file to send.
func statusBody(status int) string {
	switch status {
	case 301:
		return "301 Moved Permanently\n"
	case 400:
		return "400 Bad Request\n"
	case 403:
		return "403 Forbidden\n"
	case 404:
		return "404 Not Found\n"
	case 405:
		return "405 Method Not Allowed\n"
	case 412:
		return "412 Precondition Failed\n"
	case 416:
		return "416 Range Not Satisfiable\n"
	case 503:
		return "503 Service Unavailable\n"
	}
	return "500 Internal Server Error\n"
}
