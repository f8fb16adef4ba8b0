package harness

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"strings"
)

// CompareHeaders are the response headers that must not differ between
// protocols for the same request.
var CompareHeaders = []string{
	"Content-Type", "Content-Length", "Content-Range", "Content-Encoding", "Accept-Ranges",
	"ETag", "Last-Modified", "Location", "Allow", "Vary", "Cache-Control", "X-Content-Type-Options",
}

// Diff lists how the responses for the same request differ across
// protocols, comparing each to H1: error or not, status, the CompareHeaders
// and the body. Multipart boundaries are normalised first.
func Diff(res map[Proto]Response) []string {
	base, ok := res[H1]
	if !ok {
		return []string{"no h1 response"}
	}
	base = normalise(base)
	var out []string
	for _, p := range Protos[1:] {
		r, ok := res[p]
		if !ok {
			continue
		}
		r = normalise(r)
		if (r.Err == nil) != (base.Err == nil) {
			out = append(out, fmt.Sprintf("%s error %v, h1 error %v", p, r.Err, base.Err))
			continue
		}
		if r.Status != base.Status {
			out = append(out, fmt.Sprintf("status: %s %d, h1 %d", p, r.Status, base.Status))
		}
		for _, h := range CompareHeaders {
			if a, b := r.Header.Values(h), base.Header.Values(h); strings.Join(a, ", ") != strings.Join(b, ", ") {
				out = append(out, fmt.Sprintf("%s: %s %q, h1 %q", h, p, a, b))
			}
		}
		if !bytes.Equal(r.Body, base.Body) {
			out = append(out, fmt.Sprintf("body: %s %d bytes %q…, h1 %d bytes %q…",
				p, len(r.Body), head(r.Body), len(base.Body), head(base.Body)))
		}
	}
	return out
}

// normalise replaces a multipart boundary by a fixed one in header and body.
func normalise(r Response) Response {
	ct := r.Header.Get("Content-Type")
	_, params, err := mime.ParseMediaType(ct)
	if err != nil || params["boundary"] == "" {
		return r
	}
	b := params["boundary"]
	r.Header = r.Header.Clone()
	r.Header.Set("Content-Type", strings.ReplaceAll(ct, b, "BOUNDARY"))
	r.Body = bytes.ReplaceAll(r.Body, []byte(b), []byte("BOUNDARY"))
	return r
}

// head returns the first 40 bytes of b.
func head(b []byte) []byte { return b[:min(len(b), 40)] }

// Clients returns one client per protocol, to reuse connections across requests.
func (s *Server) Clients() map[Proto]*http.Client {
	m := map[Proto]*http.Client{}
	for _, p := range Protos {
		m[p] = s.Client(p)
	}
	return m
}
