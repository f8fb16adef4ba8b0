package h2

import (
	"errors"
	"io"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http2"

	"github.com/anx-gateway/anx/core/message"
)

// Why a stream can take no more output, as its writer reports it.
var (
	errStreamReset = errors.New("h2: stream reset")
	errConnClosed  = errors.New("h2: connection closed")
)

// stream is one request and its response. Its fields belong to the
// connection's loop, except out and body, which a handler running off the
// loop shares under their locks, and w, which the handler owns while it
// runs. Streams are recycled (Server.streams) with the storage of their
// headers.
type stream struct {
	c  *conn
	id uint32

	req     message.Request
	in      requestState
	trailer message.Header // the request's trailer fields, until handed over
	body    *body          // content for a handler off the loop; nil when none

	w      responseWriter
	out    output
	send   sendState
	pushFn func() // pushFromHandler, for Submit (made once per stream)
}

// requestState is what the loop tracks of a request as it arrives.
type requestState struct {
	scheme, protocol                            string
	hasMethod, hasScheme, hasPath, hasAuthority bool
	hasProtocol, regularSeen, inTrailers        bool
	tooLarge                                    bool   // the header list is over MaxHeaderBytes
	malformed                                   string // why the request is malformed; "" if it is not
	headerBytes                                 int
	cookies                                     int
	contentLength, received                     int64 // declared (-1: none) and received content
	recvWindow, recvUnacked                     int64
	remoteDone                                  bool // END_STREAM received (or the stream is reset)
	expectContinue                              bool // "expect: 100-continue": 100 goes out when the handler first reads
	served                                      bool // a handler or an answer of the server's took it: the Observer sees it
	headAt                                      time.Time
}

// sendState is what the loop tracks of the response as it goes out.
type sendState struct {
	window    int64
	headSent  bool // the final HEADERS is out
	localDone bool // END_STREAM sent
	reset     bool // RST_STREAM sent or received
	peerReset bool // RST_STREAM received
	running   bool // a handler runs off the loop
	blocked   bool // in conn.blocked
	warming   bool // a file worker reads the next window of a cold file region
}

// newStream takes a stream from the pool for a new request.
func (srv *Server) newStream(c *conn, id uint32) *stream {
	s, _ := srv.streams.Get().(*stream)
	if s == nil {
		s = &stream{}
		s.pushFn = s.pushFromHandler
		s.out.cond.L = &s.out.mu
		s.w.s = s
	}
	srv.live.Add(1)
	s.c, s.id = c, id
	s.in.contentLength = -1
	s.in.recvWindow = streamWindow
	s.send.window = int64(c.peerInitialWindow)
	return s
}

// release returns the stream to the pool, keeping its storage.
func (s *stream) release() {
	srv := s.c.srv
	if s.body != nil {
		s.body.release()
		s.body = nil
	}
	s.out.reset()
	s.w.reset()
	s.req.Header.Reset()
	s.req.Trailer.Reset()
	s.req = message.Request{Header: s.req.Header, Trailer: s.req.Trailer}
	s.trailer.Reset()
	s.in = requestState{}
	s.send = sendState{}
	s.c, s.id = nil, 0
	srv.live.Add(-1)
	srv.streams.Put(s)
}

// fillRequest completes the request from the connection's facts.
func (s *stream) fillRequest(c *conn) {
	r := &s.req
	r.Proto = message.HTTP2
	r.RemoteAddr = c.c.RemoteAddr()
	r.TLS = c.c.TLS()
	r.ServerName = c.c.ServerName()
	r.TLSVersion = c.c.TLSVersion()
	r.ContentLength = s.in.contentLength
	r.Protocol = s.in.protocol
	if s.in.remoteDone || r.Protocol != "" {
		// An extended CONNECT's stream is the tunnel, read through
		// Upgrade, not content.
		r.ContentLength = 0
		r.Body = noBody{}
	}
	if s.in.cookies > 1 {
		joinCookies(&r.Header)
	}
}

// joinCookies makes the cookie fields one, as RFC 9113 section 8.2.3
// asks before a request goes on to HTTP/1.1 or a generic handler.
func joinCookies(h *message.Header) {
	var crumbs []string
	for v := range h.Values("cookie") {
		crumbs = append(crumbs, v)
	}
	h.Set("cookie", strings.Join(crumbs, "; "))
}

// dispatch runs the handler: on the loop when it never waits and the
// request is complete, else on a goroutine of its own.
func (c *conn) dispatch(s *stream) {
	s.fillRequest(c)
	s.in.served, s.in.headAt = true, c.now()
	if s.in.remoteDone && message.IsNonBlockingFor(c.srv.Handler, &s.req) {
		c.srv.serve(&s.w, &s.req)
		s.w.finish()
		c.push(s)
		return
	}
	if !s.in.remoteDone {
		s.body = newBody(s, s.in.expectContinue)
		if s.req.Protocol == "" {
			s.req.Body = s.body
		}
	}
	s.send.running = true
	s.w.offLoop = true
	go s.run() // exits when the handler returns; hands the end to the loop
}

// run serves the request off the loop.
func (s *stream) run() {
	s.c.srv.serve(&s.w, &s.req)
	s.w.finish()
	s.out.handlerReturned(s)
}

// serve calls the handler, turning a panic into a reset stream.
func (srv *Server) serve(w *responseWriter, r *message.Request) {
	defer func() {
		if p := recover(); p != nil {
			srv.logger().Warn("h2: handler panicked", "path", r.Path, "panic", p)
			w.Abort()
		}
	}()
	srv.Handler.Serve(w, r)
}

// answer sends a response without content, for requests refused before
// a handler sees them (431, 413).
func (s *stream) answer(status int) {
	s.fillRequest(s.c)
	s.in.served, s.in.headAt = true, s.c.now()
	s.w.Header().Set("content-length", "0")
	s.w.WriteHeader(status)
	s.w.finish()
	s.c.push(s)
}

// cancel ends a stream that was reset (by either side) or whose
// connection closed: its writer fails from now on, its reader sees err.
func (s *stream) cancel(err error) {
	s.send.reset = true
	s.in.remoteDone = true
	s.out.fail(err)
	if s.body != nil {
		s.body.fail(err)
	}
	s.c.unblock(s)
	s.c.finishIfDone(s)
}

// done reports whether nothing more happens on the stream.
func (s *stream) done() bool {
	return !s.send.running && (s.send.reset || s.send.localDone && s.in.remoteDone)
}

// finishIfDone removes a stream that is done from the connection.
func (c *conn) finishIfDone(s *stream) {
	if !s.done() {
		return
	}
	c.forget(s)
	c.observe(s)
	s.release()
	if len(c.streams) == 0 {
		c.idleSince = c.c.Net().Now()
	}
	c.closeIfDone()
}

// forget takes s off the connection's lists.
func (c *conn) forget(s *stream) {
	c.unblock(s)
	if i := slices.Index(c.streams, s); i >= 0 {
		c.streams = slices.Delete(c.streams, i, i+1)
	}
}

// noBody is the content of a request that has none.
type noBody struct{}

func (noBody) Read([]byte) (int, error) { return 0, io.EOF }

// endContent ends the request content: the handler reading it sees EOF
// (with the trailer fields), or, when the content-length promised more,
// the stream is malformed.
func (s *stream) endContent(c *conn) error {
	if s.in.contentLength >= 0 && s.in.received != s.in.contentLength {
		return c.streamError(s, http2.ErrCodeProtocol)
	}
	if s.body != nil {
		s.body.end(&s.trailer)
	}
	if s.send.localDone {
		c.finishIfDone(s)
	}
	return nil
}

// has reports whether s is still one of the connection's streams (push
// may have finished it).
func (c *conn) has(s *stream) bool { return slices.Contains(c.streams, s) }

// unblock takes s off the list of streams waiting to send.
func (c *conn) unblock(s *stream) {
	if !s.send.blocked {
		return
	}
	s.send.blocked = false
	for i, t := range c.blocked {
		if t == s {
			c.blocked = slices.Delete(c.blocked, i, i+1)
			return
		}
	}
}
