package proxy

import (
	"errors"
	"fmt"
	"io"
	"time"
	"unsafe"

	"github.com/anx-gateway/anx/core/chunked"
)

// errBodyClosed is what a response body's Read returns after Close.
var errBodyClosed = errors.New("proxy: read from a closed upstream response body")

// h1Body is an upstream response and the reader of its content; the
// inResponse that roundTrip returns is its resp, and resp.Body is the
// h1Body itself. The goroutine that called roundTrip owns it until it
// hands it back with h1Client.recycle.
type h1Body struct {
	resp inResponse
	info h1RespInfo
	// head holds the bytes of the response head, which the strings of
	// resp.Header point into; it is reused by the next response only after
	// recycle, when the caller is done with those strings.
	head []byte

	c      *h1Conn // the connection, nil once the body is closed
	kind   h1BodyKind
	remain int64 // h1BodyLength: content bytes not yet read
	dec    chunked.Decoder
	err    error // sticky: io.EOF at the end, or what went wrong
}

// keepHead copies a head into b and returns it as a string that stays
// valid until b is recycled.
func (b *h1Body) keepHead(raw []byte) string {
	b.head = append(b.head[:0], raw...)
	return unsafe.String(unsafe.SliceData(b.head), len(b.head))
}

// reset readies b for another response, keeping its memory.
func (b *h1Body) reset() {
	hdr, tr := b.resp.Header, b.resp.Trailer
	hdr.Reset()
	tr.Reset()
	b.resp = inResponse{Header: hdr, Trailer: tr}
	b.c, b.err, b.remain, b.kind = nil, nil, 0, h1BodyNone
}

// start readies b to read content framed as kind from c.
func (b *h1Body) start(c *h1Conn, kind h1BodyKind, length int64) {
	b.c, b.kind, b.err = c, kind, nil
	b.resp.Body = b
	b.resp.ContentLength = length
	switch kind {
	case h1BodyNone:
		b.err = io.EOF
	case h1BodyLength:
		b.remain = length
	case h1BodyChunked:
		b.dec.Reset(h1MaxHeadBytes, h1MaxFields, &b.resp.Trailer)
	}
}

// Read reads response content. It returns io.EOF exactly at the content's
// end, with the last bytes or on the next call; the trailer fields of a
// chunked body are in resp.Trailer by then. Malformed chunked framing
// gives an error wrapping errMalformed; a connection that ends early,
// io.ErrUnexpectedEOF; a read that outlasts the read timeout, one
// wrapping os.ErrDeadlineExceeded.
func (b *h1Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	switch b.kind {
	case h1BodyLength:
		n = b.readLength(p)
	case h1BodyChunked:
		n = b.readChunked(p)
	default:
		n = b.readUntilClose(p)
	}
	if n > 0 && b.err != nil && b.err != io.EOF {
		return n, nil // the error comes with the next call
	}
	return n, b.err
}

// readLength reads Content-Length content: what came with the head
// first, then straight from the connection into p.
func (b *h1Body) readLength(p []byte) int {
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
		if n, err = c.readBody(p); err != nil {
			b.fail(err)
		}
	}
	b.remain -= int64(n)
	if b.remain == 0 {
		b.err = io.EOF
	}
	return n
}

// readChunked reads chunked content, decoding what is buffered, and
// reading chunk data straight into p when the buffer is empty.
func (b *h1Body) readChunked(p []byte) int {
	c := b.c
	for {
		if c.r < c.w {
			nin, nout, err := b.dec.Decode((*c.rbuf)[c.r:c.w], p)
			c.r += nin
			switch {
			case err != nil:
				b.err = fmt.Errorf("%w: %w", errMalformed, err)
				return nout
			case b.dec.Done():
				b.err = io.EOF
				return nout
			case nout > 0:
				return nout
			}
		}
		if left := b.dec.DataLeft(); left > 0 {
			n, err := c.readBody(p[:min(int64(len(p)), left)])
			if err != nil {
				b.fail(err)
				return 0
			}
			b.dec.Consumed(n)
			return n
		}
		c.r, c.w = 0, 0
		n, err := c.readBody(*c.rbuf)
		if err != nil {
			b.fail(err)
			return 0
		}
		c.w = n
	}
}

// readUntilClose reads content that ends when the upstream closes.
func (b *h1Body) readUntilClose(p []byte) int {
	c := b.c
	if c.r < c.w {
		n := copy(p, (*c.rbuf)[c.r:c.w])
		c.r += n
		return n
	}
	n, err := c.readBody(p)
	switch {
	case err == io.EOF:
		b.err = io.EOF
	case err != nil:
		b.err = fmt.Errorf("proxy: reading the upstream's response body: %w", err)
	}
	return n
}

// fail records a failed read of delimited content: an early end of the
// connection is io.ErrUnexpectedEOF.
func (b *h1Body) fail(err error) {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	b.err = fmt.Errorf("proxy: reading the upstream's response body: %w", err)
}

// readBody reads from the connection into p within the read timeout. It
// returns n > 0 or an error.
func (c *h1Conn) readBody(p []byte) (int, error) {
	if rt := c.t.opts.readTimeout; rt > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(rt))
	}
	for {
		n, err := c.nc.Read(p)
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// Close ends the body. After io.EOF the connection goes back to the pool
// when it can carry another request (HTTP/1.1, no "Connection: close",
// content not delimited by the close, the whole request written, no
// bytes after the response); before io.EOF, or otherwise, it is closed.
// Close must not run concurrently with Read.
func (b *h1Body) Close() error {
	c := b.c
	if c == nil {
		return nil
	}
	b.c = nil
	if b.err == io.EOF {
		c.finish()
	} else {
		c.closeNet()
	}
	if b.err == nil {
		b.err = errBodyClosed
	}
	return nil
}
