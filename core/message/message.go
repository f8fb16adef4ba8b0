// Package message defines the protocol-neutral HTTP exchange that anx's
// engine serves: a Request, a ResponseWriter and a Handler. The HTTP/1.1,
// HTTP/2 and HTTP/3 front ends translate their wire format into these types,
// so core/route, core/static and core/proxy never see a protocol or a
// net/http type.
package message

import (
	"io"
	"net/netip"
	"os"
)

// Proto names the HTTP version a request arrived on.
type Proto uint8

// The protocols anx speaks.
const (
	HTTP1 Proto = iota + 1 // HTTP/1.1 (or 1.0), plain or over TLS
	HTTP2                  // HTTP/2 over TLS (h2) or cleartext (h2c)
	HTTP3                  // HTTP/3 over QUIC
)

// String returns the protocol as it appears in logs: "HTTP/1.1", "HTTP/2"
// or "HTTP/3".
func (p Proto) String() string {
	switch p {
	case HTTP1:
		return "HTTP/1.1"
	case HTTP2:
		return "HTTP/2"
	case HTTP3:
		return "HTTP/3"
	}
	return "HTTP/?"
}

// Request is one HTTP request as the engine sees it, whatever its protocol.
// Front ends fill it; handlers must not keep it, or anything it refers to,
// after Serve returns: the front end may reuse it for the next request.
type Request struct {
	// Method is the request method, case-sensitive ("GET", "HEAD", ...).
	Method string
	// Path is the path of the request-target exactly as received: still
	// percent-encoded, without the query. It starts with "/" for
	// origin-form targets and is "*" for a server-wide OPTIONS.
	Path string
	// RawQuery is the query without its leading "?", still encoded.
	RawQuery string
	// Host is the authority the client asked for (Host header or
	// :authority), as received; it may carry a port.
	Host string
	// Header holds the request's header fields in the order received.
	// Connection-specific fields of HTTP/1.1 are still present.
	Header Header
	// Proto is the protocol the request arrived on.
	Proto Proto
	// ProtoMinor is the minor version of an HTTP/1.x request (0 or 1);
	// it is 0 for HTTP/2 and HTTP/3.
	ProtoMinor int
	// Body streams the request content. It is never nil: a request
	// without content reads io.EOF at once.
	Body io.Reader
	// ContentLength is the length of the content, or -1 when it is not
	// known in advance (chunked, or an HTTP/2 or HTTP/3 stream without
	// content-length).
	ContentLength int64
	// RemoteAddr is the client's address.
	RemoteAddr netip.AddrPort
	// TLS reports whether the request arrived over TLS or QUIC.
	TLS bool
	// ServerName is the TLS SNI name the client sent, if any.
	ServerName string
	// TLSVersion is the TLS version of the connection (tls.VersionTLS13,
	// ...); 0 for plain HTTP.
	TLSVersion uint16
	// Protocol is the protocol an HTTP/2 or HTTP/3 extended CONNECT asks
	// to tunnel (its :protocol field, RFC 8441 and RFC 9220), such as
	// "websocket"; Method is then "CONNECT" and Path the target's path.
	// It is empty for every other request.
	Protocol string
	// Trace is what the engine says about how it served the request, for
	// the Observers (the access log, the metrics); front ends reset it.
	Trace Trace
	// Trailer holds the trailer fields that followed the content
	// (RFC 9110 section 6.5); the front end fills it once Body has
	// returned io.EOF, and it is empty before then.
	Trailer Header
}

// ResponseWriter is how a handler answers. Header fields must be set before
// the first call to WriteHeader or Write. A handler that sets
// "Content-Length" promises exactly that many body bytes; without it the
// front end frames the body itself (chunked, DATA frames, or close).
type ResponseWriter interface {
	// Header returns the response header fields, to change before
	// WriteHeader.
	Header() *Header
	// WriteHeader sends the status line and the header fields. Only the
	// first call counts; Write calls it with 200 when it has not been.
	WriteHeader(status int)
	// Write sends body bytes. For a HEAD request, or a status that has no
	// content (1xx, 204, 304), the front end drops them.
	Write(p []byte) (int, error)
}

// FileWriter is implemented by response writers that can send a region of
// an open file themselves, without copying it through user space
// (sendfile on plain HTTP/1.1). Handlers check for it with a type
// assertion and fall back to Write.
type FileWriter interface {
	// WriteFile sends length bytes of f starting at offset, after the
	// header, and returns how many bytes were sent. It reads at the given
	// offset and never moves f's own offset: an open file may be shared
	// by concurrent requests (core/static caches them).
	WriteFile(f *os.File, offset, length int64) (int64, error)
}

// Handler answers requests.
type Handler interface {
	// Serve writes the response to r into w. It must not use w or r after
	// it returns.
	Serve(w ResponseWriter, r *Request)
}

// NonBlocking is implemented by handlers that never wait while they
// serve: not for the network, not for another request, not for a disk
// read (they hand file bodies to FileWriter, which a front end on an event
// loop sends without waiting, and they do not read request content: front
// ends call them only when the whole content is at hand). Such a front
// end may run them on its loop goroutine instead of one of their own;
// every other handler gets a goroutine. Opening and stat-ing a file count
// as not waiting, as they do for nginx's event loop.
type NonBlocking interface {
	Handler
	// NonBlocking reports whether Serve never waits. A wrapper answers
	// for what it wraps.
	NonBlocking() bool
}

// IsNonBlocking reports whether h is a NonBlocking handler that says it
// never waits.
func IsNonBlocking(h Handler) bool {
	nb, ok := h.(NonBlocking)
	return ok && nb.NonBlocking()
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(w ResponseWriter, r *Request)

// Serve calls f(w, r).
func (f HandlerFunc) Serve(w ResponseWriter, r *Request) { f(w, r) }

// BodyAllowed reports whether a response with the given status may carry
// content (RFC 9110 sections 15.2, 15.3.5 and 15.4.5).
func BodyAllowed(status int) bool {
	return status >= 200 && status != 204 && status != 304
}
