package h2

import (
	"errors"
	"io"
	"sync"

	"golang.org/x/net/http2"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/pool"
)

// errBodyTooLarge is what Request.Body returns once the content goes past
// Server.MaxBodyBytes; the stream is reset.
var errBodyTooLarge = errors.New("h2: request body too large")

// onData takes request content: it counts against the windows, then goes
// to the handler reading it, or is dropped (and its window given back) when
// nobody reads it.
func (c *conn) onData(f frameHeader, payload []byte) error {
	if f.streamID == 0 {
		return connError{http2.ErrCodeProtocol, "DATA on stream 0"}
	}
	data, ok := unpad(f, payload)
	if !ok {
		return connError{http2.ErrCodeProtocol, "DATA padding too long"}
	}
	if int64(f.length) > c.recvWindow {
		return connError{http2.ErrCodeFlowControl, "DATA beyond the connection window"}
	}
	c.recvWindow -= int64(f.length)
	c.lastContent = c.c.Net().Now()
	s := c.stream(f.streamID)
	if s == nil || s.in.remoteDone {
		return c.dataOnClosed(f, s)
	}
	if int64(f.length) > s.in.recvWindow {
		c.windowUpdate(nil, int64(f.length))
		return c.streamError(s, http2.ErrCodeFlowControl)
	}
	s.in.recvWindow -= int64(f.length)
	if pad := int64(f.length) - int64(len(data)); pad > 0 {
		c.windowUpdate(s, pad) // padding is nobody's to read
	}
	if len(data) == 0 && !f.has(flagEndStream) {
		if err := c.abuse.empty(c); err != nil {
			return err
		}
	}
	s.in.received += int64(len(data))
	if s.in.contentLength >= 0 && s.in.received > s.in.contentLength {
		return c.streamError(s, http2.ErrCodeProtocol)
	}
	c.deliver(s, data)
	if f.has(flagEndStream) {
		s.in.remoteDone = true
		return s.endContent(c)
	}
	return nil
}

// dataOnClosed handles DATA for a stream that is not open for it: after
// our RST_STREAM it is ignored, on an idle stream it is a connection
// error, else a stream error STREAM_CLOSED (RFC 9113 section 5.1).
func (c *conn) dataOnClosed(f frameHeader, s *stream) error {
	c.windowUpdate(nil, int64(f.length))
	switch {
	case c.idle(f.streamID):
		return connError{http2.ErrCodeProtocol, "DATA on an idle stream"}
	case s == nil && c.recentlyReset(f.streamID):
		return nil
	case s != nil && s.send.reset && !s.send.peerReset:
		return nil
	case s != nil:
		return c.streamError(s, http2.ErrCodeStreamClosed)
	}
	return connError{http2.ErrCodeStreamClosed, "DATA on a closed stream"}
}

// deliver hands content to the stream's reader, or drops it.
func (c *conn) deliver(s *stream, data []byte) {
	limit := c.srv.MaxBodyBytes
	if s.req.Protocol != "" {
		limit = 0 // a tunnel's bytes are no request content
	}
	if s.body == nil || s.body.put(data, limit > 0 && s.in.received > limit) != nil {
		c.windowUpdate(s, int64(len(data)))
	}
}

// body is the content of a request whose handler runs off the loop: the
// loop puts what arrives, the handler reads it, and what it has read goes
// back to the client as window.
type body struct {
	s    *stream // on the loop only, while not released
	c    *conn
	mu   sync.Mutex
	cond sync.Cond

	buf      *[]byte // (*buf)[off:] is unread; nil when empty
	off      int
	eof      bool
	trailer  message.Header // the trailer fields, until the reader reaches EOF
	handed   bool           // the trailer fields are in Request.Trailer
	err      error
	read     int64 // bytes read and not yet given back as window
	updating bool  // a window update is scheduled on the loop
	released bool  // the stream is done; giveBack has nothing to do
	expect   bool  // the client waits for 100 Continue before it sends the content
	updateFn func()
}

// newBody makes the reader of s's content.
func newBody(s *stream, expectContinue bool) *body {
	b := &body{s: s, c: s.c, expect: expectContinue}
	b.cond.L = &b.mu
	b.updateFn = b.giveBack
	return b
}

// put adds content (on the loop); it returns an error when the reader is
// gone or the content is over the limit, and the bytes are dropped.
func (b *body) put(p []byte, overLimit bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if overLimit && b.err == nil {
		b.err = errBodyTooLarge
		b.cond.Broadcast()
	}
	if b.err != nil {
		return b.err
	}
	if len(p) == 0 {
		return nil
	}
	if b.buf == nil {
		b.buf = pool.Get(streamWindow)
		*b.buf = (*b.buf)[:0]
		b.off = 0
	}
	if len(*b.buf)+len(p) > cap(*b.buf) {
		n := copy(*b.buf, (*b.buf)[b.off:])
		*b.buf, b.off = (*b.buf)[:n], 0
	}
	*b.buf = append(*b.buf, p...)
	b.cond.Broadcast()
	return nil
}

// end marks the end of the content, with the trailer fields (on the loop).
func (b *body) end(trailer *message.Header) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range trailer.Fields() {
		b.trailer.Add(f.Name, f.Value)
	}
	b.eof = true
	b.cond.Broadcast()
}

// fail ends the reader with err (the stream was reset or closed).
func (b *body) fail(err error) {
	b.mu.Lock()
	if b.err == nil && !b.eof {
		b.err = err
	}
	b.cond.Broadcast()
	b.mu.Unlock()
}

// Read reads content, waiting for it to arrive.
func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.unread() == 0 {
		switch {
		case b.err != nil:
			return 0, b.err
		case b.eof:
			b.handTrailer()
			return 0, io.EOF
		case b.expect:
			// The handler wants the content the client holds back for a
			// 100 (Continue), as net/http's servers send it.
			b.expect = false
			b.mu.Unlock()
			b.s.w.continue100()
			b.mu.Lock()
			continue
		}
		b.cond.Wait()
	}
	n := copy(p, (*b.buf)[b.off:])
	b.off += n
	if b.off == len(*b.buf) {
		pool.Put(b.buf)
		b.buf = nil
	}
	b.read += int64(n)
	if b.read >= streamWindow/4 && !b.updating && !b.eof {
		b.updating = true
		b.c.c.Net().Submit(b.updateFn)
	}
	return n, nil
}

// handTrailer puts the trailer fields into the request once its reader
// has reached the end (message.Request.Trailer's contract); it runs on the
// reader's goroutine.
func (b *body) handTrailer() {
	if b.handed {
		return
	}
	b.handed = true
	for _, f := range b.trailer.Fields() {
		b.s.req.Trailer.Add(f.Name, f.Value)
	}
}

func (b *body) unread() int {
	if b.buf == nil {
		return 0
	}
	return len(*b.buf) - b.off
}

// giveBack runs on the loop: it returns what the handler read as window.
func (b *body) giveBack() {
	b.mu.Lock()
	n, released := b.read, b.released
	b.read, b.updating = 0, false
	b.mu.Unlock()
	if released || b.c.c.Net().Closed() {
		return
	}
	b.c.windowUpdate(b.s, n)
	b.c.flush()
}

// release gives the buffer back (the stream is done).
func (b *body) release() {
	b.mu.Lock()
	if b.buf != nil {
		pool.Put(b.buf)
		b.buf = nil
	}
	if b.err == nil {
		b.err = errConnClosed
	}
	b.released = true
	b.mu.Unlock()
}
