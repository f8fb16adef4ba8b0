package h1

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/anx-gateway/anx/core/chunked"
)

// body is a request's content as the handler reads it (Request.Body). It
// reads the bytes that came in with the head from the read buffer, then
// from the connection; Content-Length bodies and chunk data are read
// straight into the caller's slice once the buffer is empty. It never
// reads past the end of its request. Owned by the connection goroutine.
type body struct {
	c      *conn
	kind   bodyKind
	remain int64 // bodyLength: bytes not yet read
	dec    chunked.Decoder
	n      int64 // content bytes handed to the handler (or drained)
	max    int64 // bound on n, or -1
	err    error // sticky: io.EOF at the end, or what went wrong
	expect bool  // the client waits for 100 Continue, not yet sent; guarded by resp.mu
}

// start readies the body of a new request.
func (b *body) start(kind bodyKind, length int64, expect bool) {
	b.kind, b.remain, b.n, b.expect, b.err = kind, length, 0, expect, nil
	b.max = b.c.srv.maxBodyBytes()
	switch kind {
	case bodyNone:
		b.err = io.EOF
	case bodyChunked:
		lim := b.c.srv.limits()
		b.dec.Reset(lim.maxHeadBytes, lim.maxFields, &b.c.req.Trailer)
	}
}

// unread reports whether the client may still be sending content the
// server has not read.
func (b *body) unread() bool {
	return b.kind != bodyNone && b.err != io.EOF && !errors.Is(b.err, io.ErrUnexpectedEOF)
}

// failStatus returns the status the client earned by how its body failed,
// or 0 when it did not fail or the client went away.
func (b *body) failStatus() int {
	var se *StatusError
	switch {
	case b.err == nil || b.err == io.EOF:
		return 0
	case errors.As(b.err, &se):
		return se.Status
	case isTimeout(b.err):
		return 408
	}
	return 0
}

// Read reads request content. The first call sends "100 Continue" when the
// client asked for it (RFC 9110 section 10.1.1) and the response has not
// started. Read may run in another goroutine than the one writing the
// response, at the same time (full duplex, as a proxy streams): it never
// touches the output but for the 100, which response.mu orders. Past Server.MaxBodyBytes it returns ErrBodyTooLarge; on
// malformed chunked framing a *StatusError with status 400; after either,
// or a network error, the connection closes after the response.
func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.expect {
		b.c.resp.sendContinue()
	}
	if b.max >= 0 && int64(len(p)) > b.max-b.n {
		p = p[:b.max-b.n+1] // one byte more than allowed shows an overflow
	}
	var n int
	if b.kind == bodyLength {
		n = b.readLength(p)
	} else {
		n = b.readChunked(p)
	}
	if b.max >= 0 && b.n+int64(n) > b.max {
		n = int(b.max - b.n)
		b.err = ErrBodyTooLarge
	}
	b.n += int64(n)
	if n > 0 && b.err != nil && b.err != io.EOF {
		return n, nil // the error comes with the next call
	}
	return n, b.err
}

// readLength reads Content-Length content.
func (b *body) readLength(p []byte) int {
	c := b.c
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	var n int
	if c.r < c.w {
		n = copy(p, (*c.rbuf)[c.r:c.w])
		c.r += n
	} else {
		var err error
		n, err = c.readDirect(p, b.deadline())
		if err != nil {
			b.err = fmt.Errorf("h1: reading request body: %w", err)
			return 0
		}
	}
	b.remain -= int64(n)
	if b.remain == 0 {
		b.err = io.EOF
	}
	return n
}

// readChunked reads chunked content.
func (b *body) readChunked(p []byte) int {
	c := b.c
	for {
		if c.r < c.w {
			nin, nout, err := b.dec.Decode((*c.rbuf)[c.r:c.w], p)
			c.r += nin
			switch {
			case err != nil:
				b.err = malformedChunks(err)
				return nout
			case b.dec.Done():
				b.err = io.EOF
				return nout
			case nout > 0:
				return nout
			}
		}
		if left := b.dec.DataLeft(); left > 0 {
			n, err := c.readDirect(p[:min(int64(len(p)), left)], b.deadline())
			if err != nil {
				b.err = fmt.Errorf("h1: reading request body: %w", err)
				return 0
			}
			b.dec.Consumed(n)
			return n
		}
		if err := c.fillBody(b.deadline()); err != nil {
			b.err = fmt.Errorf("h1: reading request body: %w", err)
			return 0
		}
	}
}

// malformedChunks returns the 400 StatusError of chunked framing that
// the decoder refused (a *chunked.Error).
func malformedChunks(err error) *StatusError {
	return badRequest(err.Error())
}

// deadline returns the read deadline of the next body read.
func (b *body) deadline() time.Time {
	return deadlineAfter(time.Now(), b.c.srv.bodyReadTimeout())
}

// drain reads and drops what the handler left of the body, so that the
// connection can carry the next request. It reports false, and the
// connection closes, when that would take more than drainBytes or
// drainTimeout, when the body failed, or when the client still waits for
// a 100 Continue it never got.
func (b *body) drain() bool {
	if b.err == io.EOF {
		return true
	}
	if b.err != nil || b.expect {
		return false
	}
	c := b.c
	if c.out.flush() != nil { // the response first: the client may wait for it
		return false
	}
	deadline := time.Now().Add(drainTimeout)
	budget := int64(drainBytes)
	if b.kind == bodyLength {
		if b.remain > budget {
			return false
		}
		for b.remain > 0 {
			if c.r == c.w && c.fillBody(deadline) != nil {
				return false
			}
			k := min(b.remain, int64(c.w-c.r))
			c.r += int(k)
			b.remain -= k
		}
		b.err = io.EOF
		return true
	}
	for !b.dec.Done() {
		if c.r == c.w && c.fillBody(deadline) != nil {
			return false
		}
		nin, nout, err := b.dec.Decode((*c.rbuf)[c.r:c.w], nil)
		c.r += nin
		budget -= int64(nin)
		b.n += int64(nout)
		if err != nil || budget < 0 || b.max >= 0 && b.n > b.max {
			return false
		}
	}
	b.err = io.EOF
	return true
}
