package h1

import (
	"errors"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/anx-gateway/anx/core/chunked"
	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/pool"
)

// response is the handler's message.ResponseWriter and message.FileWriter.
// It writes the head when the handler first calls WriteHeader, Write or
// WriteFile, and frames the body: with the Content-Length the handler
// set, else chunked for HTTP/1.1, else by closing the connection. The
// handler writes from one goroutine at a time; it may read the request
// body from another meanwhile (see body.Read).
type response struct {
	c       *conn
	header  message.Header // the handler's fields; reused
	trailer message.Header // the handler's trailer fields (Trailer); reused

	// mu orders the start of the response against a "100 Continue" that
	// a body read in another goroutine may send: it guards committed's
	// change to true, body.expect, continued, and interim writes.
	// Everything else is the writing goroutine's.
	mu sync.Mutex

	isHead bool // the request is HEAD
	minor  int  // the request's HTTP minor version
	keep   bool // the request allows the connection to persist

	committed  bool  // the head is written
	status     int   // the final status
	declared   int64 // the Content-Length sent, or -1
	written    int64 // body bytes accepted
	chunked    bool  // the body is chunked
	noBody     bool  // body bytes are dropped (HEAD, 1xx, 204, 304)
	closeAfter bool  // the connection closes after this response
	continued  bool  // a "100 Continue" went out (guarded by mu)
	aborted    bool  // Abort: end the response as broken
	upgraded   bool  // Upgrade handed the connection to the handler
	deferred   bool  // Defer: the handler finishes the response after Serve (deferred.go)

	events message.LoopEvents // where a deferred response's client events go
}

// headerInfo is what commit learns from the handler's fields.
type headerInfo struct {
	length             int64 // a valid Content-Length, or -1
	close              bool  // Connection: close
	date, server, alts bool  // Date, Server, Alt-Svc set by the handler
}

var (
	_ message.ResponseWriter = (*response)(nil)
	_ message.FileWriter     = (*response)(nil)
	_ message.Flusher        = (*response)(nil)
	_ message.TrailerWriter  = (*response)(nil)
	_ message.InterimWriter  = (*response)(nil)
	_ message.Upgrader       = (*response)(nil)
	_ message.Aborter        = (*response)(nil)
	_ io.StringWriter        = (*response)(nil)
)

// Errors of WriteInterim.
var (
	errInterimStatus  = errors.New("h1: interim status must be 1xx other than 101")
	errInterimTooLate = errors.New("h1: interim response after the final one")
)

// start readies the response writer for a new request.
func (r *response) start(isHead bool, minor int, keep bool) {
	r.header.Reset()
	r.trailer.Reset()
	r.isHead, r.minor, r.keep = isHead, minor, keep
	r.committed, r.status, r.declared, r.written = false, 0, -1, 0
	r.chunked, r.noBody, r.closeAfter = false, false, false
	r.continued, r.aborted, r.upgraded = false, false, false
	r.deferred, r.events = false, nil
}

// Header returns the response header fields.
func (r *response) Header() *message.Header { return &r.header }

// WriteHeader sends the status line and the header fields; only the first
// call with a final status counts. 1xx statuses other than 100 and 101 are
// sent at once as interim responses (103 Early Hints) to HTTP/1.1 clients,
// with the fields set so far; 100 is h1's own business (see body.Read, or
// WriteInterim to forward one) and 101 is Upgrade's. An invalid status
// becomes 500.
func (r *response) WriteHeader(status int) {
	if r.committed {
		return
	}
	if status < 100 || status > 999 {
		r.c.srv.logError("h1: handler wrote an invalid status", "status", status)
		status = 500
	}
	if status < 200 {
		r.interim(status)
		return
	}
	r.commit(status, false)
}

// interim sends a 1xx response with the fields set so far.
func (r *response) interim(status int) {
	if status == 100 || status == 101 {
		return
	}
	r.WriteInterim(status, &r.header)
}

// WriteInterim sends an informational response (message.InterimWriter):
// the status line, fields (filtered as a final response's: no framing or
// connection fields, nothing invalid) and the empty line, flushed at
// once. It refuses 101 (see Upgrade) and statuses outside 1xx, and fails
// once the final response has started. An HTTP/1.0 client gets nothing
// and no error (RFC 9110 section 15.2: a server must not send it a 1xx).
// A 100 goes out at most once per request: if the body reader has sent
// one for Expect: 100-continue, a forwarded 100 is not repeated, and
// after a forwarded one the reader sends none.
func (r *response) WriteInterim(status int, fields *message.Header) error {
	if status < 100 || status > 199 || status == 101 {
		return errInterimStatus
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.committed {
		return errInterimTooLate
	}
	if r.minor == 0 || status == 100 && r.continued {
		return nil
	}
	if status == 100 {
		r.continued = true
		r.c.body.expect = false
	}
	o := &r.c.out
	o.write(statusLine(o.scratch[:0], status))
	if fields != nil {
		r.writeFieldsOf(fields, hopField)
	}
	o.writeString("\r\n")
	return o.flush()
}

// Write sends body bytes, writing the head first if needed. Bytes beyond a
// declared Content-Length are dropped with ErrContentLength.
func (r *response) Write(p []byte) (int, error) {
	if !r.committed {
		r.commit(200, false)
	}
	if r.noBody {
		return len(p), nil
	}
	o := &r.c.out
	if o.err != nil {
		return 0, o.err
	}
	n, over := r.allow(int64(len(p)))
	p = p[:n]
	if len(p) > 0 {
		if r.chunked {
			o.writeChunk(p)
		} else {
			o.write(p)
		}
		r.written += int64(len(p))
	}
	if o.err != nil {
		return 0, o.err
	}
	if over {
		return len(p), ErrContentLength
	}
	return len(p), nil
}

// WriteString is Write for a string, so that io.WriteString does not
// copy it into a new slice first.
func (r *response) WriteString(s string) (int, error) {
	if !r.committed {
		r.commit(200, false)
	}
	if r.noBody {
		return len(s), nil
	}
	o := &r.c.out
	if o.err != nil {
		return 0, o.err
	}
	n, over := r.allow(int64(len(s)))
	s = s[:n]
	if len(s) > 0 {
		if r.chunked {
			o.write(strconv.AppendUint(o.scratch[:0], uint64(len(s)), 16))
			o.writeString("\r\n")
			o.writeString(s)
			o.writeString("\r\n")
		} else {
			o.writeString(s)
		}
		r.written += int64(len(s))
	}
	if o.err != nil {
		return 0, o.err
	}
	return len(s), overErr(over)
}

// allow clips a write of n bytes to the declared Content-Length; over
// reports a clip, after which the connection closes.
func (r *response) allow(n int64) (int64, bool) {
	if r.declared < 0 || n <= r.declared-r.written {
		return n, false
	}
	r.closeAfter = true
	return r.declared - r.written, true
}

// WriteFile sends length bytes of f from offset as body bytes: on a plain
// TCP connection by sendfile(2), without f's offset moving; over TLS, or
// where sendfile is not available, by copying through a pooled buffer.
// Small regions go out in one write with the head. A file shorter than
// asked breaks the framing: the connection closes after the response.
func (r *response) WriteFile(f *os.File, offset, length int64) (int64, error) {
	if offset < 0 || length < 0 {
		return 0, errors.New("h1: WriteFile with a negative offset or length")
	}
	if !r.committed {
		r.commit(200, false)
	}
	if r.noBody {
		return length, nil
	}
	o := &r.c.out
	if o.err != nil {
		return 0, o.err
	}
	n, over := r.allow(length)
	if n == 0 {
		return 0, overErr(over)
	}
	if r.chunked {
		o.write(strconv.AppendUint(o.scratch[:0], uint64(n), 16))
		o.writeString("\r\n")
	}
	sent, err := r.c.sendFile(f, offset, n)
	r.written += sent
	if r.chunked {
		o.writeString("\r\n")
	}
	if err != nil {
		r.closeAfter = true
		return sent, err
	}
	return sent, overErr(over)
}

// overErr returns ErrContentLength when over is set.
func overErr(over bool) error {
	if over {
		return ErrContentLength
	}
	return nil
}

// sendFile sends n bytes of f from offset after the buffered output.
func (c *conn) sendFile(f *os.File, offset, n int64) (int64, error) {
	if c.loop != nil {
		return c.loop.sendFile(c, f, offset, n)
	}
	o := &c.out
	if free := o.space(); n <= int64(len(free)) {
		k, err := f.ReadAt(free[:n], offset)
		o.n += k
		if k < int(n) {
			return int64(k), shortFile(err)
		}
		return n, nil
	}
	if c.tcp != nil {
		if err := o.flush(); err != nil {
			return 0, err
		}
		sent, handled, err := sendFile(c.tcp, f, offset, n, o.timeout)
		if handled {
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				o.fail(err)
			}
			return sent, err
		}
	}
	return c.copyFile(f, offset, n)
}

// copyFile sends n bytes of f from offset through a pooled buffer, reading
// with ReadAt so that f's offset does not move.
func (c *conn) copyFile(f *os.File, offset, n int64) (int64, error) {
	buf := pool.Get(fileCopySize)
	defer pool.Put(buf)
	var sent int64
	for sent < n {
		k, err := f.ReadAt((*buf)[:min(int64(len(*buf)), n-sent)], offset+sent)
		if k > 0 {
			c.out.write((*buf)[:k])
			if c.out.err != nil {
				return sent, c.out.err
			}
			sent += int64(k)
		}
		if sent < n && err != nil {
			return sent, shortFile(err)
		}
	}
	return sent, nil
}

// shortFile turns the EOF of a file shorter than promised into
// io.ErrUnexpectedEOF.
func shortFile(err error) error {
	if err == nil || err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// sendContinue sends "100 Continue", unless the final response has
// started. It runs in the goroutine reading the body; until the response
// is committed the output is not used by anyone else.
func (r *response) sendContinue() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.c.body.expect {
		return
	}
	r.c.body.expect = false
	if r.committed || r.continued {
		return
	}
	r.continued = true
	r.c.out.writeString("HTTP/1.1 100 Continue\r\n\r\n")
	r.c.out.flush()
}

// Flush sends what is buffered of the response, writing the head first if
// needed (message.Flusher): streaming handlers (server-sent events, a
// proxied stream) call it after each piece. A chunk written so far goes
// out whole; the last chunk waits for the handler to return.
func (r *response) Flush() error {
	if !r.committed {
		r.commit(200, false)
	}
	return r.c.out.flush()
}

// commit writes the status line and the header fields, and decides the
// framing (RFC 9112 section 6.3) and the connection's fate. final is set
// when the handler returned without writing: the body is then empty.
func (r *response) commit(status int, final bool) {
	r.mu.Lock()
	r.committed, r.status = true, status
	expecting := r.c.body.expect // the client still waits for a 100 it will not get
	r.mu.Unlock()
	c := r.c
	h := r.scanHeader()
	bodyAllowed := message.BodyAllowed(status)
	r.noBody = r.isHead || !bodyAllowed
	keep := r.keep && !h.close && !c.srv.shutdown.Load() && !expecting
	switch {
	case status == 204:
		// No Content-Length in a 204 (RFC 9110 section 8.6).
	case r.noBody:
		// A HEAD or 304 response may carry the Content-Length of the
		// representation it stands for (RFC 9110 section 8.6).
		r.declared = h.length
	case h.length >= 0:
		r.declared = h.length
	case final:
		r.declared = 0
	case r.minor == 1:
		r.chunked = true
	default:
		keep = false // HTTP/1.0 without a length: the close delimits the body
	}
	r.closeAfter = !keep

	o := &c.out
	o.write(statusLine(o.scratch[:0], status))
	if !h.date {
		o.writeString(c.srv.dates.Line(time.Now()))
	}
	if !h.server {
		o.writeString("Server: anx\r\n")
	}
	r.writeFields()
	if r.declared >= 0 {
		o.writeString("Content-Length: ")
		o.writeInt(r.declared)
		o.writeString("\r\n")
	}
	if r.chunked {
		o.writeString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case !keep:
		o.writeString("Connection: close\r\n")
	case r.minor == 0:
		o.writeString("Connection: keep-alive\r\n")
	}
	if alt := c.srv.AltSvc; alt != "" && !h.alts {
		o.writeField("Alt-Svc", alt)
	}
	o.writeString("\r\n")
}

// scanHeader reads the fields that h1 acts on from the handler's header.
// Several Content-Length fields that disagree, or one that is not a
// number, count as none (the body is then chunked or close-delimited).
func (r *response) scanHeader() headerInfo {
	h := headerInfo{length: -1}
	bad := false
	for _, f := range r.header.Fields() {
		switch name := f.Name; len(name) {
		case len("Content-Length"):
			if message.EqualFold(name, "Content-Length") {
				n, ok := parseContentLength(f.Value)
				bad = bad || !ok || h.length >= 0 && n != h.length
				h.length = n
			}
		case len("Connection"):
			if message.EqualFold(name, "Connection") {
				var info headInfo
				info.noteConnection(f.Value)
				h.close = h.close || info.close
			}
		case len("Date"):
			h.date = h.date || message.EqualFold(name, "Date")
		case len("Server"):
			h.server = h.server || message.EqualFold(name, "Server")
		case len("Alt-Svc"):
			h.alts = h.alts || message.EqualFold(name, "Alt-Svc")
		}
	}
	if bad {
		r.c.srv.logError("h1: handler set an invalid Content-Length; ignored")
		h.length = -1
	}
	return h
}

// writeFields writes the handler's fields, leaving out those h1 writes
// itself (framing and connection management) and any whose name or value
// could not be sent safely: a CR or LF would let a handler that copies
// user input split the response.
func (r *response) writeFields() { r.writeFieldsOf(&r.header, hopField) }

// writeTrailer writes the handler's trailer fields as writeFields does
// its header fields, leaving out as well those that must not be sent in
// a trailer section (RFC 9110 section 6.5.1).
func (r *response) writeTrailer() { r.writeFieldsOf(&r.trailer, forbiddenTrailer) }

// forbiddenTrailer reports whether h1 leaves a trailer field out.
func forbiddenTrailer(name string) bool { return hopField(name) || chunked.IsForbiddenTrailer(name) }

// writeFieldsOf writes fields as writeFields does the handler's header,
// leaving out those for which skip reports true.
func (r *response) writeFieldsOf(fields *message.Header, skip func(name string) bool) {
	o := &r.c.out
	for _, f := range fields.Fields() {
		if skip(f.Name) {
			continue
		}
		if !isToken(f.Name) || !validFieldValue(f.Value) {
			r.c.srv.logError("h1: handler set an invalid header field; dropped", "name", f.Name)
			continue
		}
		o.writeField(f.Name, f.Value)
	}
}

// hopField reports whether name is a field h1 manages itself.
func hopField(name string) bool {
	switch len(name) {
	case len("Connection"): // also len("Keep-Alive")
		return message.EqualFold(name, "Connection") || message.EqualFold(name, "Keep-Alive")
	case len("Content-Length"):
		return message.EqualFold(name, "Content-Length")
	case len("Transfer-Encoding"):
		return message.EqualFold(name, "Transfer-Encoding")
	}
	return false
}

// Trailer returns the trailer fields to send after the body
// (message.TrailerWriter). They go out after the last chunk of a chunked
// response, checked as header fields are, without those RFC 9110 section
// 6.5.1 keeps out of trailers (chunked.IsForbiddenTrailer); a response
// framed by Content-Length, to HTTP/1.0 or without a body drops them.
func (r *response) Trailer() *message.Header { return &r.trailer }

// Abort marks the response broken (message.Aborter): when the handler
// returns, the connection closes without the last chunk, or short of the
// Content-Length, or, when nothing was sent, without a response, so that
// the client cannot take what it got for the whole response.
func (r *response) Abort() { r.aborted = true }

// finish completes the response after the handler returns: it writes the
// head if the handler did not (413, 400 or 408 if the body failed, 500 if
// the handler panicked, else an empty 200), ends a chunked body, and
// decides whether the connection closes.
func (r *response) finish(panicked bool) {
	c := r.c
	if r.upgraded {
		return // the connection is the handler's
	}
	if r.aborted && !r.committed {
		r.mu.Lock()
		r.committed, r.closeAfter = true, true
		r.mu.Unlock()
		return
	}
	if !r.committed {
		status := c.body.failStatus()
		if panicked {
			status = 500
		}
		if status != 0 {
			r.mu.Lock()
			r.committed, r.closeAfter, r.status = true, true, status
			r.mu.Unlock()
			c.writeError(status, r.isHead)
			return
		}
		r.commit(200, true)
	}
	switch {
	case panicked || r.aborted:
		r.closeAfter = true // the body may be cut short: do not end it cleanly
	case r.chunked:
		c.out.writeString("0\r\n")
		r.writeTrailer()
		c.out.writeString("\r\n")
	case !r.noBody && r.written < r.declared:
		r.closeAfter = true // the client sees a short body, then EOF
	}
	if c.body.err != nil && c.body.err != io.EOF {
		r.closeAfter = true // the body failed: its end on the wire is unknown
	}
}
