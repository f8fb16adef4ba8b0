package h1

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"time"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/netpoll"
)

// Defaults of the loop front end's TLS settings.
const (
	defaultHandshakeTimeout = 10 * time.Second
	defaultMaxHandshakes    = 4096
)

// Listen opens the server's listening sockets on addr for Start: one per
// event loop, bound with SO_REUSEPORT (core/netpoll). It reports an
// address in use before anything runs. The settings other than Loops may
// still change until Start. With TLSConfig set, the connections are TLS;
// otherwise plain HTTP.
func (s *Server) Listen(addr string) error {
	if err := s.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loops != nil {
		return errors.New("h1: already listening")
	}
	s.loops = &netpoll.Server{Handler: &loopHandler{srv: s}, Loops: s.Loops}
	if err := s.loops.Listen(addr); err != nil {
		s.loops = nil
		return fmt.Errorf("h1: %w", err)
	}
	return nil
}

// Addr returns the address Listen opened, or nil before.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loops == nil {
		return nil
	}
	return net.TCPAddrFromAddrPort(s.loops.Addr())
}

// Start runs the event loops on the sockets Listen opened and returns.
// Shutdown stops them.
func (s *Server) Start() error {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	if loops == nil {
		return errors.New("h1: Start before Listen")
	}
	if s.shutdown.Load() {
		return ErrServerClosed
	}
	if err := s.Validate(); err != nil {
		return err
	}
	loops.DropBehind = s.DropBehind
	h := loops.Handler.(*loopHandler)
	h.states = make([]loopState, loops.LoopCount())
	for i := range h.states {
		h.states[i].x = s.newExchange()
	}
	if err := loops.Start(""); err != nil {
		return fmt.Errorf("h1: %w", err)
	}
	return nil
}

// shutdownLoops drains the event loops: idle connections close at once,
// busy ones after their response.
func (s *Server) shutdownLoops(ctx context.Context) error {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	if loops == nil {
		return nil
	}
	return loops.Shutdown(ctx)
}

func (s *Server) handshakeTimeout() time.Duration {
	return timeout(s.HandshakeTimeout, defaultHandshakeTimeout)
}

// loopHandler is the netpoll.Handler of a Server's loops: it turns the
// loops' events into calls on each connection's loopConn. Everything in
// it but the settings is per loop (states), used by that loop's goroutine
// only.
type loopHandler struct {
	srv    *Server
	states []loopState // by loop index; made by Start
}

// onLoop reports whether a request without content is served on the
// loop: when the handler that answers it never waits, or is a
// message.LoopServer that serves it on the loop (deferring the response;
// see deferred.go). A message.Dispatcher (the routing table) is asked for
// that handler, so that a site's static files and its proxied GETs are
// served on the loop and, say, its proxied uploads off it.
func (h *loopHandler) onLoop(r *message.Request) bool {
	return h.srv.Handler == nil || message.ServesOnLoop(h.srv.Handler, r)
}

// loopState is what one loop shares among its connections: the request
// and response state of the one request the loop serves at a time, and
// the buffer TLS input is decrypted into.
type loopState struct {
	x          *conn       // the exchange for requests served on the loop
	plain      []byte      // decrypted TLS input; grows as needed, kept
	handshakes int         // TLS handshakes in flight
	waiting    []*loopConn // connections waiting for a handshake slot, first come first served
	spares     []*conn     // exchanges to lend while others are deferred (deferred.go)
}

// maxHandshakesPerLoop is each loop's share of MaxHandshakes.
func (h *loopHandler) maxHandshakesPerLoop() int {
	n := h.srv.MaxHandshakes
	switch {
	case n < 0:
		return math.MaxInt
	case n == 0:
		n = defaultMaxHandshakes
	}
	return max(1, n/len(h.states))
}

// state returns the state of c's loop.
func (h *loopHandler) state(c *netpoll.Conn) *loopState { return &h.states[c.Loop().Index()] }

// OnOpen starts a connection: a TLS handshake, or the wait for the first
// request head, which must arrive within ReadHeaderTimeout of the accept.
func (h *loopHandler) OnOpen(c *netpoll.Conn) {
	lc := &loopConn{h: h, nc: c}
	c.SetContext(lc)
	if cfg := h.srv.TLSConfig; cfg != nil {
		raw := netpoll.NewTLSConn(c)
		lc.tlsState = &tlsState{tls: raw, tc: tls.Server(raw, cfg)}
		lc.phase = phaseHandshake
		c.SetTimeout(h.srv.handshakeTimeout())
		return
	}
	lc.phase = phaseHead
	c.SetTimeout(h.srv.readHeaderTimeout())
}

// OnRead passes input on to the connection.
func (h *loopHandler) OnRead(c *netpoll.Conn, in []byte) int {
	return c.Context().(*loopConn).onRead(in)
}

// OnWritable continues a connection whose output had backed up.
func (h *loopHandler) OnWritable(c *netpoll.Conn) { c.Context().(*loopConn).onWritable() }

// OnTimeout acts on an expired deadline according to the phase.
func (h *loopHandler) OnTimeout(c *netpoll.Conn) { c.Context().(*loopConn).onTimeout() }

// OnHangup ends a connection whose client hung up while it was paused,
// if a handler was finishing a deferred response for it: the client gave
// up (nginx's client abort), and the handler stops (LoopEvents.Gone).
// In the other paused phases the hang-up shows when reading resumes.
func (h *loopHandler) OnHangup(c *netpoll.Conn) {
	if lc := c.Context().(*loopConn); lc.phase == phaseDeferred {
		h.srv.debug("h1: client hung up while its response was deferred", "remote", c.RemoteAddr())
		c.Close()
	}
}

// OnDrain ends a connection when Shutdown begins: at once when it is
// idle, after its response when one is in flight.
func (h *loopHandler) OnDrain(c *netpoll.Conn) { c.Context().(*loopConn).onDrain() }

// OnClose releases what the connection holds.
func (h *loopHandler) OnClose(c *netpoll.Conn, err error) {
	c.Context().(*loopConn).onClose(err)
}
