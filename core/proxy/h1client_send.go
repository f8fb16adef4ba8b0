package proxy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// A request whose content does not fit the write that carries its head
// is full duplex while that content streams: sendRest writes the rest on
// a goroutine of its own while the caller's goroutine reads response
// heads (receiveWhileSending), so that an upstream that answers before it
// has read the whole request (a 413 or a 401 to a large upload) has its
// answer passed on at once. RFC 9112 section 9.5: a client sending
// content monitors the connection for an error response and ceases
// sending when the server does not want the content. A request whose
// content goes out in its first write pays for none of this.

// errBodyStopped is what sendRest ends with when the reader stopped the
// request's content because a final response came first; it never
// reaches roundTrip's caller.
var errBodyStopped = errors.New("proxy: request content stopped: the upstream answered first")

// h1Sender coordinates sendRest's goroutine with the reader's: which of
// them may still set the connection's deadlines. It lives for one
// streamed request; h1Conn.sender points to it from startSender until
// joinSender.
type h1Sender struct {
	mu       sync.Mutex
	stopping bool // guarded by mu: the reader wants the content stopped
	ended    bool // guarded by mu: sendRest no longer writes
	// done carries sendRest's result, once; after sending it sendRest
	// touches nothing of the connection.
	done chan error
}

// startSender starts sendRest for the content of req that the first write
// did not carry. From here until joinSender, sendRest's goroutine owns the
// write side of c (wbuf, the probe, remain, written, bodyRead, complete,
// the write deadline and writes to c.nc) and the caller's goroutine the
// read side.
func (c *h1Conn) startSender(ctx context.Context, req *outRequest) {
	c.sender = &h1Sender{done: make(chan error, 1)}
	go c.sendRest(ctx, req)
}

// sendRest writes the rest of req's content, then wakes the reader (see
// h1Sender.end) and reports its result. It ends when the content is
// sent, fails, or is stopped by the reader, whose stop also breaks a
// blocked write.
func (c *h1Conn) sendRest(ctx context.Context, req *outRequest) {
	buf := (*c.wbuf)[:0]
	var err error
	if requestFraming(req) == h1FrameChunked {
		_, err = c.writeChunked(ctx, req, buf, false)
	} else {
		_, err = c.writeLength(ctx, req, buf, false)
	}
	if err == nil {
		c.completed()
	}
	s := c.sender
	s.end(c)
	s.done <- err
}

// end marks sendRest ended and wakes the reader, whose head read returns
// with a deadline error; it then joins the sender and goes on by the
// sender's result. A reader not in a read is kept from sleeping by armRead.
func (s *h1Sender) end(c *h1Conn) {
	s.mu.Lock()
	s.ended = true
	_ = c.nc.SetReadDeadline(aLongTimeAgo)
	s.mu.Unlock()
}

// hasEnded reports whether sendRest ended.
func (s *h1Sender) hasEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// armRead sets the read deadline for the reader's next wait, unless
// sendRest ended (whose wake-up must stay): false then.
func (s *h1Sender) armRead(c *h1Conn, deadline time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	c.setReadDeadline(deadline)
	return true
}

// armWrite sets the write deadline for sendRest's next write, unless the
// reader stopped the content: false then.
func (s *h1Sender) armWrite(c *h1Conn, deadline time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	c.setWriteDeadline(deadline)
	return true
}

// stop asks sendRest to send no more: a write in progress fails at once,
// and the next one is not made. A read of the request body in progress
// is waited for: nothing can interrupt it.
func (s *h1Sender) stop(c *h1Conn) {
	s.mu.Lock()
	s.stopping = true
	_ = c.nc.SetWriteDeadline(aLongTimeAgo)
	s.mu.Unlock()
}

// joinSender waits for sendRest to end and returns its result; the
// caller's goroutine owns all of c again.
func (c *h1Conn) joinSender() error {
	err := <-c.sender.done
	c.sender = nil
	return err
}

// stopSender stops and joins sendRest, returning its result.
func (c *h1Conn) stopSender() error {
	c.sender.stop(c)
	return c.joinSender()
}

// receiveWhileSending reads response heads while sendRest sends the
// content, passing informational responses on. The response header
// timeout does not run while the content is being sent, only the
// context's deadline; once sendRest has sent it all, readFinalHead goes
// on as for any request. A final response that comes first is returned:
// a 3xx, 4xx or 5xx stops the content at once (the upstream does not
// want it, and the connection is then not reused), a 1xx or 2xx waits for
// the content to be sent as before (an upstream may answer early and
// still read, full duplex). A failure of the content after a final
// response only keeps the connection from being reused.
func (c *h1Conn) receiveWhileSending(ctx context.Context, req *outRequest, b *h1Body) error {
	deadline, _ := ctx.Deadline()
	for interims := 0; ; {
		if !c.sender.armRead(c, deadline) {
			return c.afterSent(ctx, req, b)
		}
		status, err := c.readHeadArmed(ctx, req, b)
		switch {
		case err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !c.aborted.Load() && c.sender.hasEnded():
			continue // woken by sendRest's end
		case err != nil:
			if serr := c.stopSender(); errors.Is(serr, errRequestBody) {
				return serr
			}
			return err
		case status >= 100 && status < 200 && status != 101:
			if interims++; interims > h1MaxInterim {
				c.stopSender()
				return fmt.Errorf("%w: more than %d informational responses", errMalformed, h1MaxInterim)
			}
			c.interim(req, b, status)
			continue
		}
		return c.earlyFinal(ctx, req, b, status)
	}
}

// earlyFinal ends sendRest after a final head that came while it was
// sending: stopped for an error or redirect, waited for otherwise. The
// head is returned whatever the content's fate; c.complete tells whether
// the connection may be reused.
func (c *h1Conn) earlyFinal(ctx context.Context, req *outRequest, b *h1Body, status int) error {
	if status >= 300 {
		c.stopSender()
	} else {
		c.joinSender()
	}
	deadline, _ := ctx.Deadline()
	c.setReadDeadline(deadline) // undo sendRest's wake-up, for the body's reads
	return c.finalHead(req, b, status)
}

// afterSent goes on once sendRest ended before a final head came: with
// the upstream's answer when the content was sent, or when the upstream
// broke the connection (it may have answered and closed); else with
// sendRest's failure at once (the client's content failed, a trailer
// could not be written, the upstream stopped reading for the read
// timeout, the context ended).
func (c *h1Conn) afterSent(ctx context.Context, req *outRequest, b *h1Body) error {
	serr := c.joinSender()
	if serr != nil && (c.aborted.Load() || !brokenByPeer(serr)) {
		return serr
	}
	err := c.readFinalHead(ctx, req, b, c.headDeadline(ctx))
	if err != nil && serr != nil && !c.readFirst {
		return serr // no answer: the write's failure says more
	}
	return err
}

// brokenByPeer reports whether a failure to send the content is the
// upstream's closing or resetting the connection.
func brokenByPeer(err error) bool {
	return !errors.Is(err, errRequestBody) && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET))
}
