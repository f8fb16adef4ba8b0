// Package nethttp is the edge adapter between net/http's server types and
// core/message. The HTTP/3 front end (quic-go/http3) hands each request
// over as an *http.Request and an http.ResponseWriter (as would any server
// built on net/http's types: x/net/http2's, which HTTP/2 used before it
// moved onto the event loops); Handler turns them into a message.Request
// and a message.ResponseWriter and calls the engine.
//
// What the adapter guarantees, whatever net/http would do by itself:
//
//   - Request.Path and Request.RawQuery are the request-target exactly as
//     the client sent it (r.RequestURI), never re-encoded from r.URL, so
//     "%2F" and "%2e%2e" reach the engine untouched.
//   - The response carries no Content-Type unless the handler set one: the
//     body is never sniffed.
//   - A body written with a status that carries none (1xx, 204, 304) is
//     dropped instead of failing; for HEAD, net/http drops it after
//     counting it toward Content-Length, as it does for its own handlers.
//   - Over HTTP/2 and HTTP/3, connection-specific fields (Connection,
//     Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade), which make
//     the response malformed, are not sent.
//
// The response writer implements message.Flusher, message.TrailerWriter
// (trailer fields go out through net/http's http.TrailerPrefix
// convention, which x/net/http2 and quic-go turn into a trailing HEADERS
// frame), message.InterimWriter and message.Aborter; Request.Trailer is
// filled when the request body has returned io.EOF. For an extended
// CONNECT (RFC 8441 over HTTP/2, RFC 9220 over HTTP/3: method CONNECT with
// a :protocol, such as a WebSocket) it fills Request.Protocol, and the
// writer implements message.Upgrader: a 200, then the request stream as a
// net.Conn, when the server can hand it over (Handler.TakeStream).
// Malformed ones (an extended CONNECT without :scheme, :path or
// :authority, a :protocol on another method) never reach it over HTTP/3:
// quic-go resets their streams with H3_MESSAGE_ERROR.
//
// What it cannot keep: net/http stores header fields in a map, so the
// order of fields with different names is lost both ways. Request fields
// are handed to the engine sorted by name (values of one name keep their
// order); x/net/http2 sends response fields sorted by name, quic-go in map
// order.
package nethttp

import (
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// ErrBodyTooLarge is returned by Request.Body once the request content
// goes past Handler.MaxBodyBytes. The engine may answer 413 itself; if it
// returns without having written anything, the adapter does.
var ErrBodyTooLarge = errors.New("nethttp: request body too large")

// errLengthMismatch is returned by Request.Body when the content goes
// past the request's content-length.
var errLengthMismatch = errors.New("nethttp: request content longer than its content-length")

// Errors of the response writer's optional methods.
var (
	// errFlushUnsupported is returned by Flush when the underlying
	// http.ResponseWriter cannot flush.
	errFlushUnsupported = errors.New("nethttp: response writer cannot flush")
	// errInterimStatus is WriteInterim's for a status that is not 1xx,
	// or is 101.
	errInterimStatus = errors.New("nethttp: interim status must be 1xx other than 101")
	// errInterimTooLate is WriteInterim's once the final status is out.
	errInterimTooLate = errors.New("nethttp: interim response after the final one")
)

var (
	_ message.Flusher       = (*responseWriter)(nil)
	_ message.TrailerWriter = (*responseWriter)(nil)
	_ message.InterimWriter = (*responseWriter)(nil)
	_ message.Aborter       = (*responseWriter)(nil)
	_ message.Upgrader      = (*responseWriter)(nil)
)

// Handler serves net/http requests with a message.Handler. Its fields are
// read-only once it serves; one Handler serves any number of requests
// concurrently. Apart from a pool of per-request storage it keeps no
// state between requests. It must not be copied after first use.
type Handler struct {
	// Handler is the engine that answers. It must not be nil.
	Handler message.Handler
	// AltSvc, when not empty, is sent as the Alt-Svc field of every
	// response that does not set one (e.g. h3=":443"; ma=2592000).
	AltSvc string
	// Proto is reported as Request.Proto. Zero means: from the request's
	// major version (1, 2 or 3).
	Proto message.Proto
	// MaxBodyBytes limits the request content; zero or negative means no
	// limit. A request that declares a larger Content-Length is answered
	// 413 without calling Handler; one that streams more makes Body.Read
	// return ErrBodyTooLarge.
	MaxBodyBytes int64
	// Observer, when not nil, sees every exchange once the engine has
	// answered it (see message.Observer).
	Observer message.Observer
	// TakeStream, when not nil, takes the request stream of an extended
	// CONNECT over from the server, once the writer's Upgrade has set the
	// 200 (which TakeStream sends), so that the tunnel reads and writes
	// it directly and can end its own side while the client still sends;
	// after the handler returns the server leaves the stream alone. h3
	// sets it (quic-go's http3.HTTPStreamer). Without it Upgrade fails.
	TakeStream func(http.ResponseWriter) (Stream, error)

	// pool recycles exchanges, so that the header storage of one request
	// serves the next: BenchmarkServeHTTP goes from 10 allocations to 1.
	// It makes Handler unsafe to copy once used.
	pool sync.Pool
}

// exchange holds everything the adapter needs for one request. Exchanges
// are recycled through Handler.pool: nothing may refer to one after
// ServeHTTP returns, which message.Handler's contract already demands of
// the engine.
type exchange struct {
	req  message.Request
	body requestBody
	w    responseWriter

	start   time.Time       // when the engine got the request (with an Observer)
	outcome message.Outcome // what observe reports
}

// ServeHTTP adapts r and w and calls h.Handler. It runs on the goroutine
// net/http (or x/net/http2, or quic-go) started for the request; the
// message.Request and message.ResponseWriter it creates die with it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := h.get()
	defer h.put(x)
	x.w.init(w, r, h)
	x.fillRequest(r, h)
	x.start = h.now()
	if h.MaxBodyBytes > 0 && r.ContentLength > h.MaxBodyBytes {
		x.w.tooLarge()
		h.observe(x)
		return
	}
	h.Handler.Serve(&x.w, &x.req)
	if x.w.tunnel != nil {
		<-x.w.tunnel.done // the stream is the handler's until it closes the tunnel
	}
	if x.w.aborted {
		h.observe(x)
		// net/http, x/net/http2 and quic-go end the response as broken
		// (a closed connection, RST_STREAM, a cancelled stream) and log
		// nothing for this value.
		panic(http.ErrAbortHandler)
	}
	x.finish()
	h.observe(x)
}

// now is the time an Outcome records: the clock, when the handler has an
// Observer; the zero time, which costs nothing, when it has none.
func (h *Handler) now() time.Time {
	if h.Observer == nil {
		return time.Time{}
	}
	return time.Now()
}

// observe reports the exchange to the Observer, once the engine has
// answered: cut when it aborted the response or a write to the client
// failed.
func (h *Handler) observe(x *exchange) {
	if h.Observer == nil {
		return
	}
	sent, received, failed := x.w.tunnelOutcome()
	x.outcome = message.Outcome{
		Status:   x.w.status,
		Sent:     x.w.written + sent,
		Received: x.body.read + received,
		Start:    x.start,
		End:      time.Now(),
		Cut:      x.w.aborted || x.w.failed || failed,
	}
	h.Observer.Observe(&x.req, &x.outcome)
}

// get returns an empty exchange, reusing a pooled one when it can.
func (h *Handler) get() *exchange {
	if x, ok := h.pool.Get().(*exchange); ok {
		return x
	}
	return new(exchange)
}

// put empties x, keeping the storage of its four headers, and pools it.
func (h *Handler) put(x *exchange) {
	reqHeader, reqTrailer := x.req.Header, x.req.Trailer
	respHeader, respTrailer := x.w.header, x.w.trailer
	reqHeader.Reset()
	reqTrailer.Reset()
	respHeader.Reset()
	respTrailer.Reset()
	*x = exchange{}
	x.req.Header, x.req.Trailer = reqHeader, reqTrailer
	x.w.header, x.w.trailer = respHeader, respTrailer
	h.pool.Put(x)
}

// fillRequest translates r into x.req.
func (x *exchange) fillRequest(r *http.Request, h *Handler) {
	q := &x.req
	q.Method = r.Method
	q.Path, q.RawQuery = target(r)
	q.Host = r.Host
	q.Proto = h.Proto
	if q.Proto == 0 {
		q.Proto = protoOf(r.ProtoMajor)
	}
	if r.ProtoMajor == 1 {
		q.ProtoMinor = r.ProtoMinor
	}
	copyRequestHeader(&q.Header, r.Header)
	q.ContentLength = r.ContentLength
	q.Body = x.bodyOf(r, h.MaxBodyBytes)
	if q.Protocol = protocolOf(r); q.Protocol != "" {
		// An extended CONNECT's stream is the tunnel, read through
		// Upgrade, not content: no body limit applies.
		q.ContentLength = 0
		q.Body = emptyBody{}
		x.w.protocol = q.Protocol
	}
	q.RemoteAddr = remoteAddr(r.RemoteAddr)
	if r.TLS != nil {
		q.TLS = true
		q.ServerName = r.TLS.ServerName
		q.TLSVersion = r.TLS.Version
	}
}

// bodyOf returns the reader the engine sees as Request.Body: r.Body,
// bounded by limit when it is positive, that copies r.Trailer into
// x.req.Trailer when it ends.
func (x *exchange) bodyOf(r *http.Request, limit int64) io.Reader {
	var b io.Reader = r.Body
	if b == nil {
		b = http.NoBody
	}
	x.body = requestBody{r: b, src: r, dst: &x.req.Trailer, limited: limit > 0, left: limit, declared: r.ContentLength}
	return &x.body
}

// finish completes the response after the engine returned: headers the
// engine set but never sent go out with a 200, or with a 413 when the
// engine stopped at an oversized body without answering; then the
// trailer fields, if any.
func (x *exchange) finish() {
	switch {
	case x.w.status != 0:
	case errors.Is(x.body.err, ErrBodyTooLarge):
		x.w.tooLarge()
		return
	case x.body.err != nil && x.body.err != io.EOF:
		// The content failed (a content-length the DATA disagreed with,
		// a reset): the engine could not answer, so the request was bad.
		x.w.WriteHeader(http.StatusBadRequest)
	default:
		x.w.WriteHeader(http.StatusOK)
	}
	x.w.sendTrailer()
}

// target returns the path and the query of the request-target as received.
// r.RequestURI holds the target verbatim on the server side (HTTP/1.1
// request line, HTTP/2 and HTTP/3 :path); r.URL is only a fallback for
// requests built in process, since re-encoding it can turn "%2e" into ".".
func target(r *http.Request) (path, query string) {
	uri := r.RequestURI
	if uri == "" {
		if r.URL == nil {
			return "/", ""
		}
		return r.URL.EscapedPath(), r.URL.RawQuery
	}
	if r.Method == http.MethodConnect && !strings.HasPrefix(uri, "/") {
		return "", "" // authority-form: Host carries the target
	}
	path, query, _ = strings.Cut(uri, "?")
	if path == "*" || strings.HasPrefix(path, "/") {
		return path, query
	}
	return absolutePath(path), query
}

// absolutePath returns the path of an absolute-form target
// ("http://host/p" gives "/p"; "http://host" gives "/").
func absolutePath(uri string) string {
	_, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return uri
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[i:]
	}
	return "/"
}

// protoOf maps an HTTP major version to a message.Proto.
func protoOf(major int) message.Proto {
	switch major {
	case 2:
		return message.HTTP2
	case 3:
		return message.HTTP3
	}
	return message.HTTP1
}

// remoteAddr parses net/http's "host:port" client address; IPv4-mapped
// IPv6 addresses are unmapped. An address that does not parse (a Unix
// socket, a test request) gives the zero AddrPort.
func remoteAddr(s string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// keysOnStack is how many field names copyRequestHeader sorts without
// allocating.
const keysOnStack = 32

// copyRequestHeader appends src's fields to dst, names sorted, values of
// one name in order, skipping pseudo-header fields.
func copyRequestHeader(dst *message.Header, src http.Header) {
	var stack [keysOnStack]string
	keys := stack[:0]
	for k := range src {
		if !strings.HasPrefix(k, ":") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range src[k] {
			dst.Add(k, v)
		}
	}
}

// requestBody is Request.Body: the request content, which stops after a
// number of bytes when a limit is set (like http.MaxBytesReader, but it
// reports ErrBodyTooLarge and needs no http.ResponseWriter), and which
// copies the request's trailer fields into Request.Trailer once it has
// reached io.EOF (net/http, x/net/http2 and quic-go fill
// http.Request.Trailer by then). Owned by the goroutine reading the body.
type requestBody struct {
	r       io.Reader
	src     *http.Request   // whose Trailer to copy at EOF
	dst     *message.Header // Request.Trailer
	limited bool            // left applies
	left    int64           // bytes still allowed
	// declared is the request's content-length, or -1; read counts the
	// content so far. Content that goes past declared is an error
	// (errLengthMismatch): RFC 9113 section 8.1.1 and RFC 9114 section
	// 4.1.2 call such a request malformed, and x/net/http2 checks it
	// but quic-go does not.
	declared, read int64
	err            error // sticky: io.EOF once the trailer is copied, ErrBodyTooLarge, or the stream's error
}

// Read reads the content, at most the remaining allowance when there is
// a limit. It asks for one byte more than allowed, so that content of
// exactly the limit ends cleanly and anything longer fails.
func (b *requestBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.limited && int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	if b.limited && int64(n) > b.left {
		n = int(b.left)
		b.left = 0
		b.err = ErrBodyTooLarge
		return n, b.err
	}
	b.left -= int64(n)
	b.read += int64(n)
	if b.declared >= 0 && err == nil && b.read >= b.declared {
		n, err = b.checkEnd(n)
	}
	switch {
	case err == io.EOF:
		b.end()
	case err != nil:
		b.err = err // the client reset the stream, or sent less or more than it declared
	}
	return n, err
}

// checkEnd runs once the declared length has been read (n bytes by this
// call): the content must end there. It waits for the end of the stream,
// which a client sends with or right after its last DATA frame.
func (b *requestBody) checkEnd(n int) (int, error) {
	if b.read > b.declared {
		return n, errLengthMismatch
	}
	var one [1]byte
	for {
		k, err := b.r.Read(one[:])
		switch {
		case k > 0:
			return n, errLengthMismatch
		case err != nil:
			return n, err
		}
	}
}

// end records the end of the content and copies the trailer fields.
func (b *requestBody) end() {
	b.err = io.EOF
	copyRequestHeader(b.dst, b.src.Trailer)
}

// responseWriter is the message.ResponseWriter over an http.ResponseWriter.
// It belongs to the request's goroutine, like the http.ResponseWriter.
type responseWriter struct {
	w       http.ResponseWriter
	header  message.Header
	trailer message.Header // sent after the content by sendTrailer
	altSvc  string
	proto   message.Proto
	status  int   // final status once sent; 0 before
	drop    bool  // the final status carries no content: drop writes
	aborted bool  // Abort was called
	written int64 // content bytes the client's stream took
	failed  bool  // a write to the client failed: it went away

	req        *http.Request                             // whose stream an Upgrade hands over
	protocol   string                                    // the extended CONNECT's :protocol, or ""
	takeStream func(http.ResponseWriter) (Stream, error) // Handler.TakeStream
	tunnel     *tunnel                                   // set by Upgrade
}

// init binds rw to one request.
func (rw *responseWriter) init(w http.ResponseWriter, r *http.Request, h *Handler) {
	rw.w = w
	rw.req = r
	rw.takeStream = h.TakeStream
	rw.altSvc = h.AltSvc
	rw.proto = h.Proto
	if rw.proto == 0 {
		rw.proto = protoOf(r.ProtoMajor)
	}
}

// tunnelOutcome returns the bytes sent to and received from the client
// through the tunnel, if the request was upgraded, and whether a write
// to the client failed.
func (rw *responseWriter) tunnelOutcome() (sent, received int64, failed bool) {
	if rw.tunnel == nil {
		return 0, 0, false
	}
	return rw.tunnel.sent.Load(), rw.tunnel.received.Load(), rw.tunnel.failed.Load()
}

// Header returns the fields to send; they are copied into net/http's
// header map when the status is written.
func (rw *responseWriter) Header() *message.Header { return &rw.header }

// WriteHeader sends the status and the header fields. An informational
// status (1xx other than 101) is sent as an interim response and does not
// count as the final one. 101 cannot be served through net/http's
// HTTP/2 or HTTP/3 (and there is no way to take over the connection), so
// it and any status outside 100-999 become 500.
func (rw *responseWriter) WriteHeader(status int) {
	if rw.status != 0 {
		return
	}
	if status < 100 || status > 999 || status == http.StatusSwitchingProtocols {
		status = http.StatusInternalServerError
	}
	rw.copyHeader(status)
	rw.w.WriteHeader(status)
	if status < 200 {
		return
	}
	rw.status = status
	rw.drop = !message.BodyAllowed(status)
}

// Write sends body bytes, after a 200 if no status was written. Bytes for
// a status without content are dropped and reported as written.
func (rw *responseWriter) Write(p []byte) (int, error) {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.drop {
		return len(p), nil
	}
	n, err := rw.w.Write(p)
	rw.written += int64(n)
	if err != nil {
		rw.failed = true
	}
	return n, err
}

// Flush sends what is buffered so far (after a 200 if no status was
// written): message.Flusher, for streaming handlers (proxied event
// streams). Without it net/http's HTTP/2 server keeps up to 4 KiB
// buffered until the handler returns.
func (rw *responseWriter) Flush() error {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	switch f := rw.w.(type) {
	case interface{ FlushError() error }:
		return f.FlushError()
	case http.Flusher:
		f.Flush()
		return nil
	}
	return errFlushUnsupported
}

// Trailer returns the trailer fields to send after the content
// (message.TrailerWriter). Those set when the engine returns are sent:
// over HTTP/2 and HTTP/3 in a trailing HEADERS frame, over HTTP/1.1 (net/http's
// server, in tests) after a chunked body.
func (rw *responseWriter) Trailer() *message.Header { return &rw.trailer }

// sendTrailer hands the trailer fields to net/http under
// http.TrailerPrefix, which x/net/http2, quic-go and net/http send after
// the content when the handler returns; they drop names not allowed in a
// trailer (httpguts.ValidTrailerHeader). Connection-specific fields are
// left out here too.
func (rw *responseWriter) sendTrailer() {
	fields := rw.trailer.Fields()
	if len(fields) == 0 {
		return
	}
	dst := rw.w.Header()
	for _, f := range fields {
		if message.ConnectionSpecific(f.Name) || strings.HasPrefix(f.Name, ":") {
			continue
		}
		k := http.TrailerPrefix + http.CanonicalHeaderKey(f.Name)
		dst[k] = append(dst[k], f.Value)
	}
}

// Abort marks the response broken (message.Aborter): when the engine
// returns, ServeHTTP panics with http.ErrAbortHandler, which HTTP/2 and
// HTTP/3 turn into a reset stream (HTTP/1.1 into a closed connection),
// so that the client cannot take a truncated body for a whole one.
func (rw *responseWriter) Abort() { rw.aborted = true }

// WriteInterim sends an informational response with the given fields
// (message.InterimWriter): 100 to 199 but 101, before the final status.
// The fields go into net/http's header map for this one call, which
// sends what the map holds, and are taken out again; connection-specific
// and framing fields are left out, as in a final response.
func (rw *responseWriter) WriteInterim(status int, fields *message.Header) error {
	if status < 100 || status > 199 || status == http.StatusSwitchingProtocols {
		return errInterimStatus
	}
	if rw.status != 0 {
		return errInterimTooLate
	}
	dst := rw.w.Header()
	clear(dst)
	if fields != nil {
		for _, f := range fields.Fields() {
			if message.ConnectionSpecific(f.Name) || framingField(f.Name) {
				continue
			}
			k := http.CanonicalHeaderKey(f.Name)
			dst[k] = append(dst[k], f.Value)
		}
	}
	rw.w.WriteHeader(status)
	clear(dst)
	return nil
}

// framingField reports whether name frames a message's content, which an
// informational response has none of.
func framingField(name string) bool {
	return strings.EqualFold(name, "Content-Length") || strings.EqualFold(name, "Transfer-Encoding")
}

// tooLarge answers 413 with no content.
func (rw *responseWriter) tooLarge() {
	rw.header.Reset()
	rw.header.Set("Content-Length", "0")
	rw.WriteHeader(http.StatusRequestEntityTooLarge)
}

// copyHeader replaces net/http's header map with rw.header. It runs for
// every interim status too, so each response carries the fields set at
// the time it was written.
func (rw *responseWriter) copyHeader(status int) {
	dst := rw.w.Header()
	clear(dst)
	fields := rw.header.Fields()
	// One backing array for every value, Alt-Svc included. It is not
	// recycled: quic-go reads the map after ServeHTTP has returned.
	values := make([]string, len(fields)+1)
	for i, f := range fields {
		if rw.proto != message.HTTP1 && message.ConnectionSpecific(f.Name) {
			continue
		}
		k := http.CanonicalHeaderKey(f.Name)
		if vv, ok := dst[k]; ok {
			dst[k] = append(vv, f.Value)
			continue
		}
		values[i] = f.Value
		dst[k] = values[i : i+1 : i+1]
	}
	if status < 200 {
		return
	}
	if rw.altSvc != "" && !rw.header.Has("Alt-Svc") {
		values[len(fields)] = rw.altSvc
		dst["Alt-Svc"] = values[len(fields):]
	}
	if _, ok := dst["Content-Type"]; !ok {
		dst["Content-Type"] = nil // present but empty: net/http does not sniff
	}
}
