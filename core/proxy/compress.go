package proxy

import (
	"io"
	"strings"

	"github.com/anx-gateway/anx/core/encode"
	"github.com/anx-gateway/anx/core/message"
)

// On-the-fly compression of proxied responses. A response is compressed
// as it streams when compression is on for the route, the client accepts
// a coding the route offers (encode.Accept), the request is not HEAD,
// and the response can carry content and is worth it: not 206 and no
// Content-Range, no Content-Encoding from the upstream, a compressible
// Content-Type (never gRPC), a Content-Length, if any, of at least
// CompressMinSize, and no Cache-Control: no-transform (RFC 9110 section
// 7.7). Such a response loses its Content-Length, gains Content-Encoding
// and Vary: Accept-Encoding, and a strong ETag is made weak: the bytes
// differ from the upstream's, the content does not. Server-sent events
// are compressed too: the encoder is flushed after every read from the
// upstream, as the relay flushes the client, so each event still reaches
// the client when it comes. Both the blocking path (relay.go) and the
// event-loop path (loop.go) compress, on their own goroutine.

func (c *Config) compressMinSize() int64 {
	if c.CompressMinSize == 0 {
		return encode.DefaultMinSize
	}
	return c.CompressMinSize
}

// newEncoders returns the route's encoder pool, nil when it compresses
// nothing.
func newEncoders(cfg *Config) *encode.Pool {
	if cfg.Compress == 0 {
		return nil
	}
	return encode.NewPool(encode.Streaming)
}

// clientAccept is what a request's Accept-Encoding says, read before the
// request goes (the loop path keeps it past Serve).
type clientAccept struct {
	accept encode.Accept
	any    bool // the request has Accept-Encoding
}

// read parses r's Accept-Encoding when the route compresses.
func (ca *clientAccept) read(h *Handler, r *message.Request) {
	if h.encoders == nil {
		return
	}
	switch r.Header.Count("Accept-Encoding") {
	case 0:
		return
	case 1:
		ca.accept = encode.ParseAccept(r.Header.Get("Accept-Encoding"))
	default: // a list split over field lines: rare
		var values []string
		for v := range r.Header.Values("Accept-Encoding") {
			values = append(values, v)
		}
		ca.accept = encode.ParseAccept(strings.Join(values, ","))
	}
	ca.any = true
}

// compressible reports whether a response with this status and these
// fields may be compressed on the fly, whatever the client accepts.
func (h *Handler) compressible(status int, hdr *message.Header) bool {
	if h.encoders == nil || !message.BodyAllowed(status) || status == 206 ||
		hdr.Has("Content-Encoding") || hdr.Has("Content-Range") || !encode.Compressible(hdr.Get("Content-Type")) {
		return false
	}
	if cl := hdr.Get("Content-Length"); cl != "" && !atLeast(cl, h.cfg.compressMinSize()) {
		return false
	}
	for v := range hdr.Values("Cache-Control") {
		if containsToken(v, "no-transform") {
			return false
		}
	}
	return true
}

// startCompression decides whether the response whose fields are in hdr
// (as they go to the client, before WriteHeader) is compressed, and if
// so changes the fields and returns the encoder writing to w; it returns
// nil otherwise. A compressible response varies on Accept-Encoding
// either way.
func (h *Handler) startCompression(w message.ResponseWriter, ca *clientAccept, isHead bool, status int, hdr *message.Header) *encode.Writer {
	if !h.compressible(status, hdr) {
		return nil
	}
	addVary(hdr)
	if isHead || !ca.any {
		return nil
	}
	c := ca.accept.Choose(h.cfg.Compress)
	if c == encode.Identity {
		return nil
	}
	hdr.Del("Content-Length")
	hdr.Set("Content-Encoding", c.String())
	if etag := hdr.Get("ETag"); etag != "" && !strings.HasPrefix(etag, "W/") {
		hdr.Set("ETag", "W/"+etag)
	}
	return h.encoders.Get(c, w)
}

// addVary adds Accept-Encoding to Vary unless it is there, or "*" is.
func addVary(hdr *message.Header) {
	for v := range hdr.Values("Vary") {
		if containsToken(v, "accept-encoding") || containsToken(v, "*") {
			return
		}
	}
	hdr.Add("Vary", "Accept-Encoding")
}

// containsToken reports whether the comma-separated list holds token
// (lower case), ignoring case and parameters.
func containsToken(list, token string) bool {
	for name := range message.Directives(list) {
		if strings.EqualFold(name, token) {
			return true
		}
	}
	return false
}

// atLeast reports whether a Content-Length value is a number of at least
// n; a malformed one is not (the response is left alone).
func atLeast(contentLength string, n int64) bool {
	var v int64
	for i := 0; i < len(contentLength); i++ {
		c := contentLength[i]
		if c < '0' || c > '9' || v > 1<<50 {
			return false
		}
		v = v*10 + int64(c-'0')
	}
	return contentLength != "" && v >= n
}

// compressWriter is the client's writer as the blocking relay sees it
// while it compresses: body bytes go through the encoder, and Flush
// flushes the encoder, then the client.
type compressWriter struct {
	message.ResponseWriter
	enc     *encode.Writer
	flusher message.Flusher // the client's; nil when it has none
}

func (cw *compressWriter) Write(p []byte) (int, error) { return cw.enc.Write(p) }

// Flush sends what was written so far, decodable, to the client.
func (cw *compressWriter) Flush() error {
	if err := cw.enc.Flush(); err != nil {
		return err
	}
	if cw.flusher != nil {
		return cw.flusher.Flush()
	}
	return nil
}

// copyCompressed copies the upstream body to the client through enc, as
// copyBody does, and ends the coding's stream when the body is whole;
// enc goes back to the pool.
func (h *Handler) copyCompressed(w message.ResponseWriter, enc *encode.Writer, body io.Reader) error {
	defer h.encoders.Put(enc)
	flusher, _ := w.(message.Flusher)
	cw := &compressWriter{ResponseWriter: w, enc: enc, flusher: flusher}
	err := h.copyBody(cw, body)
	if err == nil {
		_ = enc.Close() // a client gone away is nothing to tell it
	}
	return err
}

// loopCompression is the encoder of a response compressed on the event
// loop (loopExchange); the zero value compresses nothing.
type loopCompression struct {
	enc *encode.Writer
}

// write passes body bytes to the client through the encoder.
func (lc *loopCompression) write(p []byte) error {
	_, err := lc.enc.Write(p)
	return err
}

// flush sends what the encoder holds, decodable, to the client's writer.
func (lc *loopCompression) flush() error {
	if lc.enc == nil {
		return nil
	}
	return lc.enc.Flush()
}

// close ends the coding's stream once the body is whole.
func (lc *loopCompression) close() error {
	if lc.enc == nil {
		return nil
	}
	return lc.enc.Close()
}

// release gives the encoder back to h's pool.
func (lc *loopCompression) release(h *Handler) {
	if lc.enc != nil {
		h.encoders.Put(lc.enc)
		lc.enc = nil
	}
}
