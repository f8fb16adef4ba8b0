package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"syscall"
	"time"

	"github.com/anx-gateway/anx/asm"
	"github.com/anx-gateway/anx/core/chunked"
	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/pool"
)

// The request writer: checkOutRequest and appendRequestHead do no I/O;
// the h1Conn methods below them write through the connection.

// h1Framing is how a request's content is delimited on the wire.
type h1Framing uint8

const (
	h1FrameNone    h1Framing = iota // no content, no framing field
	h1FrameLength                   // Content-Length (possibly 0)
	h1FrameChunked                  // Transfer-Encoding: chunked
)

// requestFraming picks exactly one framing for req: Content-Length when
// the length is known (0 is written for the methods that usually carry
// content, and left out for the others when there is none), else chunked.
func requestFraming(req *outRequest) h1Framing {
	switch {
	case req.Body == nil || req.ContentLength == 0:
		if expectsContent(req.Method) {
			return h1FrameLength
		}
		return h1FrameNone
	case req.ContentLength > 0:
		return h1FrameLength
	}
	return h1FrameChunked
}

// expectsContent reports whether requests of method usually carry
// content, so that an empty one says "Content-Length: 0" (RFC 9110
// section 8.6).
func expectsContent(method string) bool {
	return method == "POST" || method == "PUT" || method == "PATCH"
}

// hasContent reports whether req has content bytes to send.
func hasContent(req *outRequest) bool {
	return req.Body != nil && req.ContentLength != 0
}

// transportFields are the fields the writer writes itself: one in
// req.Header would give the request a second framing or Host, the
// desync that request smuggling lives on.
var transportFields = [...]string{"Content-Length", "Transfer-Encoding", "Host", "Connection"}

// checkOutRequest refuses, before anything is written, a request whose
// method, target, Host, fields or trailer fields could not be written as
// one unambiguous HTTP/1.1 request: a name that is not a token, a value
// with CR, LF, NUL or another control byte, a field the transport writes
// itself. The handler filters these; this is the last line of defence.
// Its errors wrap errUnsafeRequest.
func checkOutRequest(req *outRequest) error {
	switch {
	case !h1IsToken(req.Method):
		return fmt.Errorf("%w: invalid method %q", errUnsafeRequest, req.Method)
	case !h1ValidTarget(req.Target):
		return fmt.Errorf("%w: invalid request target %q", errUnsafeRequest, req.Target)
	case !h1ValidHost(req.Host):
		return fmt.Errorf("%w: invalid Host %q", errUnsafeRequest, req.Host)
	case !h1ValidValue(req.Upgrade):
		return fmt.Errorf("%w: invalid Upgrade %q", errUnsafeRequest, req.Upgrade)
	case req.ContentLength > 0 && req.Body == nil:
		return fmt.Errorf("%w: Content-Length %d without a body", errUnsafeRequest, req.ContentLength)
	}
	if req.Header != nil {
		for _, f := range req.Header.Fields() {
			if err := checkOutField(f); err != nil {
				return err
			}
			for _, name := range transportFields {
				if message.EqualFold(f.Name, name) {
					return fmt.Errorf("%w: the request carries %s, which the transport writes", errUnsafeRequest, name)
				}
			}
		}
	}
	return nil
}

// checkOutField checks a field's name and value.
func checkOutField(f message.Field) error {
	if !h1IsToken(f.Name) {
		return fmt.Errorf("%w: invalid field name %q", errUnsafeRequest, f.Name)
	}
	if !h1ValidValue(f.Value) {
		return fmt.Errorf("%w: invalid value of field %s", errUnsafeRequest, f.Name)
	}
	return nil
}

// h1IsToken reports whether s is a non-empty token (RFC 9110 section
// 5.6.2).
func h1IsToken(s string) bool { return s != "" && asm.TokenEnd(s) == len(s) }

// h1ValidValue reports whether s may be a field value: no control byte
// but HTAB, so no CR, LF or NUL (RFC 9110 section 5.5).
func h1ValidValue(s string) bool { return asm.FieldValueEnd(s) == len(s) }

// h1ValidTarget reports whether s may be a request-target: not empty,
// no whitespace or control byte.
func h1ValidTarget(s string) bool { return s != "" && noSpaceOrControl(s) }

// h1ValidHost reports whether s may be a Host value: possibly empty, no
// whitespace or control byte.
func h1ValidHost(s string) bool { return noSpaceOrControl(s) }

// noSpaceOrControl reports whether s holds no byte that would end a word
// of a request line: no space, control byte or DEL.
func noSpaceOrControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// appendRequestHead appends req's head, framed as f, to dst: the request
// line, Host, req.Header's fields (any Upgrade among them left out: the
// Upgrade field comes from req.Upgrade, with "Connection: upgrade"), the
// framing field and the empty line. req must have passed
// checkOutRequest.
func appendRequestHead(dst []byte, req *outRequest, f h1Framing) []byte {
	dst = append(dst, req.Method...)
	dst = append(dst, ' ')
	dst = append(dst, req.Target...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, req.Host...)
	dst = append(dst, "\r\n"...)
	if req.Header != nil {
		for _, fl := range req.Header.Fields() {
			if message.EqualFold(fl.Name, "Upgrade") {
				continue
			}
			dst = appendFieldLine(dst, fl.Name, fl.Value)
		}
	}
	if req.Upgrade != "" {
		dst = append(dst, "Connection: upgrade\r\n"...)
		dst = appendFieldLine(dst, "Upgrade", req.Upgrade)
	}
	switch f {
	case h1FrameLength:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, max(req.ContentLength, 0), 10)
		dst = append(dst, "\r\n"...)
	case h1FrameChunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// appendFieldLine appends "name: value\r\n".
func appendFieldLine(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// appendTrailerSection appends the end of a chunked body: the last chunk,
// the trailer fields of tr (those RFC 9110 section 6.5.1 keeps out of
// trailers skipped) and the empty line. A field that cannot be written
// safely is an error wrapping errUnsafeRequest.
func appendTrailerSection(dst []byte, tr *message.Header) ([]byte, error) {
	dst = append(dst, "0\r\n"...)
	if tr != nil {
		for _, f := range tr.Fields() {
			if err := checkOutField(f); err != nil {
				return dst, err
			}
			if !chunked.IsForbiddenTrailer(f.Name) {
				dst = appendFieldLine(dst, f.Name, f.Value)
			}
		}
	}
	return append(dst, "\r\n"...), nil
}

// expectsContinue reports whether h asks for "100-continue".
func expectsContinue(h *message.Header) bool {
	if h == nil {
		return false
	}
	for v := range h.Values("Expect") {
		if message.EqualFold(h1TrimOWS(v), "100-continue") {
			return true
		}
	}
	return false
}

// writeRequest writes req's head and, unless the request waits for 100
// Continue, its content. The head and the first content bytes go out in
// one write.
func (c *h1Conn) writeRequest(ctx context.Context, req *outRequest) error {
	c.wbuf = pool.Get(h1WriteBufSize)
	framing := requestFraming(req)
	content := hasContent(req)
	if framing == h1FrameChunked && !expectsContent(req.Method) {
		var err error
		if content, err = c.probeContent(req); err != nil {
			return err
		}
		if !content {
			framing = h1FrameNone
		}
	}
	buf := appendRequestHead((*c.wbuf)[:0], req, framing)
	c.expects = content && expectsContinue(req.Header)
	if !content || c.expects {
		if err := c.flush(ctx, buf); err != nil {
			return err
		}
		if c.complete = !c.expects; c.complete {
			pool.Put(c.wbuf)
			c.wbuf = nil
		}
		return nil
	}
	return c.writeContent(ctx, req, buf)
}

// probeContent reads the first bytes of a body of unknown length whose
// method usually has none (a GET from an HTTP/2 or HTTP/3 client without
// content-length), before the head is written: a body at its end at
// once is sent as no content at all, without framing, rather than as an
// empty chunked body. The bytes read wait in c.probe for writeChunked.
func (c *h1Conn) probeContent(req *outRequest) (bool, error) {
	c.probe = pool.Get(pool.MinSize)
	for {
		c.bodyRead = true
		n, err := req.Body.Read(*c.probe)
		c.probeData = (*c.probe)[:n]
		switch {
		case n > 0:
			c.probeEOF = err == io.EOF
			return true, nil
		case err == io.EOF:
			c.bodyRead = false // nothing was consumed: the request can still be replayed
			c.releaseProbe()
			return false, nil
		case err != nil:
			c.releaseProbe()
			return false, fmt.Errorf("%w: %w", errRequestBody, err)
		}
	}
}

// readContent reads request content into p: the probed bytes first.
func (c *h1Conn) readContent(req *outRequest, p []byte) (int, error) {
	if c.probe == nil {
		c.bodyRead = true
		return req.Body.Read(p)
	}
	n := copy(p, c.probeData)
	c.probeData = c.probeData[n:]
	if len(c.probeData) > 0 {
		return n, nil
	}
	var err error
	if c.probeEOF {
		err = io.EOF
	}
	c.releaseProbe()
	return n, err
}

// releaseProbe gives back the probe's buffer.
func (c *h1Conn) releaseProbe() {
	if c.probe != nil {
		pool.Put(c.probe)
		c.probe, c.probeData, c.probeEOF = nil, nil, false
	}
}

// writeBody writes the content of a request whose head went out alone.
func (c *h1Conn) writeBody(ctx context.Context, req *outRequest) error {
	return c.writeContent(ctx, req, (*c.wbuf)[:0])
}

// writeContent writes buf with the first content bytes of req after it.
// When that was all the content, the request is complete and the write
// buffer given back; else sendRest goes on with the rest in a goroutine
// of its own (see h1Sender), so that an answer the upstream gives before
// the end can be read meanwhile.
func (c *h1Conn) writeContent(ctx context.Context, req *outRequest, buf []byte) error {
	var more bool
	var err error
	if requestFraming(req) == h1FrameChunked {
		more, err = c.writeChunked(ctx, req, buf, true)
	} else {
		c.remain = req.ContentLength
		more, err = c.writeLength(ctx, req, buf, true)
	}
	switch {
	case err != nil:
		return err
	case more:
		c.startSender(ctx, req)
		return nil
	}
	c.completed()
	return nil
}

// completed records that the whole request went out and gives back the
// write buffer.
func (c *h1Conn) completed() {
	c.complete = true
	pool.Put(c.wbuf)
	c.wbuf = nil
}

// writeLength writes the c.remain bytes of content left, one write per
// read of the body. With firstOnly it returns after the first write that
// carried content, reporting whether content remains. A body shorter or
// longer than its length is an error, and the connection is then not
// reused.
func (c *h1Conn) writeLength(ctx context.Context, req *outRequest, buf []byte, firstOnly bool) (more bool, err error) {
	eof := false
	for c.remain > 0 {
		if len(buf) == cap(buf) {
			if err := c.flush(ctx, buf); err != nil {
				return false, err
			}
			buf = buf[:0]
		}
		space := buf[len(buf):cap(buf)]
		space = space[:min(int64(len(space)), c.remain)]
		c.bodyRead = true
		n, err := req.Body.Read(space)
		buf, c.remain = buf[:len(buf)+n], c.remain-int64(n)
		switch {
		case err == io.EOF && c.remain > 0:
			return false, fmt.Errorf("%w: %d bytes shorter than its Content-Length: %w", errRequestBody, c.remain, io.ErrUnexpectedEOF)
		case err != nil && err != io.EOF:
			return false, fmt.Errorf("%w: %w", errRequestBody, err)
		}
		eof = err == io.EOF
		if n > 0 || c.remain == 0 {
			if err := c.flush(ctx, buf); err != nil {
				return false, err
			}
			buf = buf[:0]
			if firstOnly && c.remain > 0 {
				return true, nil
			}
		}
	}
	if !eof {
		return false, checkBodyEnded(req.Body, c.peekBuf[:])
	}
	return false, nil
}

// checkBodyEnded reads once more from a body whose declared length was
// sent: it must be at its end.
func checkBodyEnded(body io.Reader, scratch []byte) error {
	for {
		n, err := body.Read(scratch)
		switch {
		case n > 0:
			return fmt.Errorf("%w: longer than its Content-Length", errRequestBody)
		case err == io.EOF:
			return nil
		case err != nil:
			return fmt.Errorf("%w: %w", errRequestBody, err)
		}
	}
}

// chunkHeadRoom is the room kept before each chunk's data for its size
// line: 8 hex digits and CRLF cover any buffer below 4 GiB.
const chunkHeadRoom = 10

// writeChunked writes the content chunked, one chunk and one write per
// read of the body, then the last chunk and req.Trailer's fields, in the
// same write as the last data when they arrive together. With firstOnly
// it returns after the first write that carried content, reporting
// whether content remains.
func (c *h1Conn) writeChunked(ctx context.Context, req *outRequest, buf []byte, firstOnly bool) (more bool, err error) {
	for {
		if cap(buf)-len(buf) < chunkHeadRoom+2+512 {
			if err := c.flush(ctx, buf); err != nil {
				return false, err
			}
			buf = buf[:0]
		}
		start := len(buf)
		full := buf[:cap(buf)]
		n, err := c.readContent(req, full[start+chunkHeadRoom:cap(buf)-2])
		if err != nil && err != io.EOF {
			return false, fmt.Errorf("%w: %w", errRequestBody, err)
		}
		if n > 0 {
			var size [chunkHeadRoom]byte
			line := chunked.AppendSize(size[:0], n)
			copy(full[start+len(line):], full[start+chunkHeadRoom:start+chunkHeadRoom+n])
			copy(full[start:], line)
			buf = append(full[:start+len(line)+n], '\r', '\n')
		}
		if err == io.EOF {
			var terr error
			if buf, terr = appendTrailerSection(buf, req.Trailer); terr != nil {
				return false, terr
			}
			return false, c.flush(ctx, buf)
		}
		if n > 0 {
			if err := c.flush(ctx, buf); err != nil {
				return false, err
			}
			buf = buf[:0]
			if firstOnly {
				return true, nil
			}
		}
	}
}

// flush writes buf, within the read timeout, counting what went out.
func (c *h1Conn) flush(ctx context.Context, buf []byte) error {
	var deadline time.Time
	if wt := c.t.opts.readTimeout; wt > 0 {
		deadline = time.Now().Add(wt)
	}
	if c.sender != nil {
		if !c.sender.armWrite(c, deadline) {
			return errBodyStopped
		}
	} else {
		c.setWriteDeadline(deadline)
	}
	n, err := c.nc.Write(buf)
	c.written += int64(n)
	if err != nil {
		return c.writeError(ctx, err)
	}
	return nil
}

// writeError classifies a failed write: errNotSent when no byte of the
// request went out; errReusedConnClosed when a pooled connection was
// found closed or reset by the upstream after some did.
func (c *h1Conn) writeError(ctx context.Context, err error) error {
	switch {
	case c.aborted.Load() && ctx.Err() != nil:
		err = ctx.Err()
	case c.written > 0 && c.reused && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)):
		return fmt.Errorf("%w: %w", errReusedConnClosed, err)
	}
	if c.written == 0 {
		return fmt.Errorf("%w: writing the request: %w", errNotSent, err)
	}
	return fmt.Errorf("proxy: writing the request: %w", err)
}
