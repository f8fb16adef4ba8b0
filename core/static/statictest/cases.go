// Package statictest holds the fixture site and the table of requests and
// expected responses that specify core/static, as data: the unit tests run
// the table through static.Handler directly, and the end-to-end tests run
// the same table over HTTP/1.1, HTTP/2 and HTTP/3 against the anx binary
// serving WriteSite's tree with the default static configuration.
//
// Expectations are protocol-neutral: they name no connection-specific
// field, compare field names case-insensitively, and leave out Date,
// Server and the like. An HTTP client running the table must send
// exactly the given header fields and must not decode content codings
// (Go: Transport.DisableCompression, no automatic Accept-Encoding).
package statictest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
)

// Field is a header field.
type Field struct {
	Name, Value string
}

// Request is what a case sends.
type Request struct {
	Method string
	// Target is the origin-form request-target, path and optional
	// "?query", byte for byte as sent.
	Target string
	// Header holds the fields to send, in order; a name given twice is
	// sent on two field lines.
	Header []Field
	// Raw marks a target that clients and intermediaries normalize or
	// refuse ("..", ".", "//", "\"): it must reach the server unchanged
	// (curl --path-as-is, a hand-written HTTP/1.1 request line, :path
	// set directly). A front end that rejects such a target itself may
	// answer 400 where the case expects the handler's 404.
	Raw bool
	// InvalidURI marks a target that is not a valid URI (RFC 3986), such
	// as a malformed percent-encoding. The engine answers it 400, and so
	// does HTTP/1.1; HTTP/2 and HTTP/3 treat such a :path as a malformed
	// request (RFC 9113 section 8.1.1, RFC 9114 section 4.1.2) and reset
	// the stream before any handler runs.
	InvalidURI bool
}

// Want is what a case expects.
type Want struct {
	Status int
	// Header lists fields that must each be present once with exactly
	// this value.
	Header []Field
	// Absent lists fields that must not be present.
	Absent []string
	// Body is the exact content expected, unless Check is set.
	Body string
	// Check, when set, verifies the response in place of Body.
	Check func(header func(name string) []string, body []byte) error
}

// Case is one request and its expected response. Its name cites the
// section of RFC 9110 that decides the expectation.
type Case struct {
	Name string
	Req  Request
	Want Want
}

// Verify compares a response with the case's expectations and returns an
// error listing every difference as got/want. header returns the values
// of a response field by case-insensitive name (http.Header.Values fits).
// Beyond the expectations it checks that a Content-Length, where the
// response has content, matches the content received.
func (c *Case) Verify(status int, header func(name string) []string, body []byte) error {
	var problems []string
	report := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	if status != c.Want.Status {
		report("status: got %d, want %d", status, c.Want.Status)
	}
	for _, f := range c.Want.Header {
		if got := header(f.Name); len(got) != 1 || got[0] != f.Value {
			report("%s: got %q, want [%q]", f.Name, got, f.Value)
		}
	}
	for _, name := range c.Want.Absent {
		if got := header(name); len(got) > 0 {
			report("%s: got %q, want absent", name, got)
		}
	}
	if cl := header("Content-Length"); len(cl) == 1 && c.Req.Method != "HEAD" && status != 304 && cl[0] != strconv.Itoa(len(body)) {
		report("Content-Length %s but %d bytes of content", cl[0], len(body))
	}
	if c.Want.Check != nil {
		if err := c.Want.Check(header, body); err != nil {
			report("content: %v", err)
		}
	} else if string(body) != c.Want.Body {
		report("content: got %s, want %s", quoteShort(body), quoteShort([]byte(c.Want.Body)))
	}
	if problems == nil {
		return nil
	}
	return errors.New(strings.Join(problems, "\n"))
}

// quoteShort quotes b, or summarizes it when it is long.
func quoteShort(b []byte) string {
	if len(b) <= 80 {
		return strconv.Quote(string(b))
	}
	return fmt.Sprintf("%d bytes starting %q", len(b), b[:40])
}

// The ETag of a fixture file, spelled here independently of static:
// "<hex mtime nanoseconds>-<hex size><variant suffix>".
func etag(sidecar bool, size int, suffix string) string {
	mtime := ModTime()
	if sidecar {
		mtime = SidecarModTime()
	}
	return fmt.Sprintf("%q", fmt.Sprintf("%x-%x%s", mtime.UnixNano(), size, suffix))
}

// The Last-Modified values of the fixture, spelled out.
const (
	lastModified        = "Tue, 02 Jan 2024 03:04:05 GMT"
	sidecarLastModified = "Tue, 02 Jan 2024 04:04:05 GMT"
)

// HelloETag is the ETag of hello.txt, spelled out: it pins the format.
const HelloETag = `"17a668b7375cff15-d"`

// Content types the table expects.
const (
	textPlain = "text/plain; charset=utf-8"
	textHTML  = "text/html; charset=utf-8"
	textCSS   = "text/css; charset=utf-8"
	textJS    = "text/javascript; charset=utf-8"
	octets    = "application/octet-stream"
)

const allow = "GET, HEAD, OPTIONS"

func h(name, value string) Field { return Field{name, value} }

func get(target string, header ...Field) Request {
	return Request{Method: "GET", Target: target, Header: header}
}

func head(target string, header ...Field) Request {
	return Request{Method: "HEAD", Target: target, Header: header}
}

func invalidURI(target string) Request {
	return Request{Method: "GET", Target: target, Raw: true, InvalidURI: true}
}

func raw(method, target string) Request {
	return Request{Method: method, Target: target, Raw: true}
}

// file describes the 200 response for a fixture file.
type fileWant struct {
	contentType, body, etag, lastModified string
	coding                                string // Content-Encoding, "" for none
	varies                                bool   // the resource has sidecars
}

func plainFile(contentType, body string) fileWant {
	return fileWant{contentType: contentType, body: body, etag: etag(false, len(body), ""), lastModified: lastModified}
}

func (f fileWant) ok() Want {
	w := Want{Status: 200, Body: f.body, Header: f.fields(len(f.body))}
	w.Header = append(w.Header, h("Accept-Ranges", "bytes"))
	if f.coding == "" {
		w.Absent = append(w.Absent, "Content-Encoding")
	}
	if !f.varies {
		w.Absent = append(w.Absent, "Vary")
	}
	return w
}

// headOK is ok without the content.
func (f fileWant) headOK() Want {
	w := f.ok()
	w.Body = ""
	return w
}

// fields are the representation fields of a 200 or 206.
func (f fileWant) fields(contentLength int) []Field {
	fields := []Field{
		h("Content-Type", f.contentType),
		h("Content-Length", strconv.Itoa(contentLength)),
		h("ETag", f.etag),
		h("Last-Modified", f.lastModified),
		h("X-Content-Type-Options", "nosniff"),
	}
	if f.coding != "" {
		fields = append(fields, h("Content-Encoding", f.coding))
	}
	if f.varies {
		fields = append(fields, h("Vary", "Accept-Encoding"))
	}
	return fields
}

// notModified is the 304 for f: validators and Vary, nothing else of
// the representation (section 15.4.5).
func (f fileWant) notModified() Want {
	w := Want{Status: 304, Header: []Field{h("ETag", f.etag)},
		Absent: []string{"Content-Length", "Content-Type", "Last-Modified", "Content-Encoding", "Content-Range"}}
	if f.varies {
		w.Header = append(w.Header, h("Vary", "Accept-Encoding"))
	} else {
		w.Absent = append(w.Absent, "Vary")
	}
	return w
}

// partial is the single-part 206 for bytes first..last of f.
func (f fileWant) partial(first, last int) Want {
	w := Want{Status: 206, Body: f.body[first : last+1], Header: f.fields(last - first + 1)}
	w.Header = append(w.Header, h("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, len(f.body))))
	return w
}

// sparsePartial is the 206 after a true If-Range: no representation
// metadata beyond what section 15.3.7 requires.
func (f fileWant) sparsePartial(first, last int) Want {
	w := Want{Status: 206, Body: f.body[first : last+1], Header: []Field{
		h("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, len(f.body))),
		h("Content-Length", strconv.Itoa(last-first+1)),
		h("ETag", f.etag),
	}, Absent: []string{"Content-Type", "Last-Modified", "Content-Encoding"}}
	return w
}

// multipart is the multipart/byteranges 206 for the given [first, last]
// pairs of f, in order.
func (f fileWant) multipart(ranges ...[2]int) Want {
	w := Want{Status: 206, Header: []Field{h("ETag", f.etag), h("Last-Modified", f.lastModified)},
		Absent: []string{"Content-Range", "Content-Encoding"}}
	var parts []part
	for _, r := range ranges {
		parts = append(parts, part{
			contentRange: fmt.Sprintf("bytes %d-%d/%d", r[0], r[1], len(f.body)),
			body:         f.body[r[0] : r[1]+1],
		})
	}
	w.Check = checkMultipart(f.contentType, parts)
	return w
}

// status is a response without a file: a short text body naming it.
func status(code int, text string, extra ...Field) Want {
	body := strconv.Itoa(code) + " " + text + "\n"
	return Want{Status: code, Body: body, Header: append([]Field{
		h("Content-Type", textPlain),
		h("Content-Length", strconv.Itoa(len(body))),
		h("X-Content-Type-Options", "nosniff"),
	}, extra...), Absent: []string{"ETag", "Last-Modified", "Accept-Ranges"}}
}

func notFound() Want   { return status(404, "Not Found") }
func badRequest() Want { return status(400, "Bad Request") }

// part is one expected body part of a multipart/byteranges response.
type part struct {
	contentRange, body string
}

// checkMultipart parses a multipart/byteranges body (RFC 9110 section
// 14.6) with the standard library and compares its parts.
func checkMultipart(contentType string, want []part) func(func(string) []string, []byte) error {
	return func(header func(string) []string, body []byte) error {
		ct := header("Content-Type")
		if len(ct) != 1 {
			return fmt.Errorf("Content-Type: got %q", ct)
		}
		mediaType, params, err := mime.ParseMediaType(ct[0])
		if err != nil || mediaType != "multipart/byteranges" || params["boundary"] == "" {
			return fmt.Errorf("Content-Type: got %q, want multipart/byteranges with a boundary", ct[0])
		}
		if !bytes.HasSuffix(body, []byte("\r\n--"+params["boundary"]+"--\r\n")) {
			return errors.New("body does not end with the closing delimiter")
		}
		reader := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for i := 0; ; i++ {
			p, err := reader.NextRawPart()
			if err == io.EOF {
				if i != len(want) {
					return fmt.Errorf("got %d parts, want %d", i, len(want))
				}
				return nil
			}
			if err != nil {
				return fmt.Errorf("part %d: %v", i, err)
			}
			if i >= len(want) {
				return fmt.Errorf("more than the %d parts wanted", len(want))
			}
			content, err := io.ReadAll(p)
			if err != nil {
				return fmt.Errorf("part %d: %v", i, err)
			}
			got := part{contentRange: p.Header.Get("Content-Range"), body: string(content)}
			if p.Header.Get("Content-Type") != contentType || got != want[i] {
				return fmt.Errorf("part %d: got %q %+v, want %q %+v", i, p.Header.Get("Content-Type"), got, contentType, want[i])
			}
		}
	}
}
