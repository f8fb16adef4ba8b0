package h1

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/tls/onloop"
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
	s.front = &onloop.Handler{}
	s.loops = &netpoll.Server{Handler: s.front, Loops: s.Loops}
	if err := s.loops.Listen(addr); err != nil {
		s.loops = nil
		return fmt.Errorf("h1: %w", err)
	}
	return nil
}

// ListenFDs is Listen on listening sockets inherited from the process
// that ran before (a binary upgrade): one event loop per socket. The
// server owns the fds from now on.
func (s *Server) ListenFDs(fds []int) error {
	if err := s.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loops != nil {
		return errors.New("h1: already listening")
	}
	s.front = &onloop.Handler{}
	s.loops = &netpoll.Server{Handler: s.front}
	if err := s.loops.ListenFDs(fds); err != nil {
		s.loops = nil
		return fmt.Errorf("h1: %w", err)
	}
	return nil
}

// DupListeners returns copies of the listening sockets of the running
// loops, for a new process to inherit; the caller closes them.
func (s *Server) DupListeners() ([]int, error) {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	if loops == nil {
		return nil, errors.New("h1: not listening")
	}
	fds, err := loops.DupListeners()
	if err != nil {
		return nil, fmt.Errorf("h1: %w", err)
	}
	return fds, nil
}

// Retire prepares the hand-over of the listening sockets to another
// process (a binary upgrade): the loops stop accepting, and from now on
// every response says Connection: close, so that a busy keep-alive
// connection ends after its next response, no request lost, and its
// client reconnects to the new process. Shutdown then drains what is
// left. ctx bounds the wait for the loops.
func (s *Server) Retire(ctx context.Context) {
	s.shutdown.Store(true)
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	if loops != nil {
		loops.StopAccepting(ctx)
	}
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
	loops, front := s.loops, s.front
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
	loops.Admitter = s.Admitter
	s.configureFront(loops, front)
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

// configureFront sets the connection layer below the loops (tls/onloop)
// from the settings: HTTP/1.1 for plain connections and for TLS ones
// whose ALPN chose http/1.1 or nothing, the other protocols as given.
func (s *Server) configureFront(loops *netpoll.Server, front *onloop.Handler) {
	h := &loopHandler{srv: s, states: make([]loopState, loops.LoopCount())}
	for i := range h.states {
		h.states[i].x = s.newExchange()
	}
	protocols := map[string]onloop.Protocol{"http/1.1": h}
	for name, p := range s.Protocols {
		if name != "http/1.1" {
			protocols[name] = p
		}
	}
	*front = onloop.Handler{
		Plain:             h,
		PriorKnowledge:    s.PriorKnowledge,
		FirstBytesTimeout: s.readHeaderTimeout(),
		TLSConfig:         s.TLSConfig,
		HandshakeTimeout:  s.HandshakeTimeout,
		MaxHandshakes:     s.MaxHandshakes,
		Protocols:         protocols,
		Detached:          s.TLSProtocols,
		Logger:            s.Logger,
	}
	front.Prepare(loops)
	s.mu.Lock()
	s.proto = h
	s.mu.Unlock()
}

// loopHandler is HTTP/1.1 as a protocol of the connection layer
// (onloop.Protocol): it turns the layer's events into calls on each
// connection's loopConn. Everything in it but the settings is per loop
// (states), used by that loop's goroutine only.
type loopHandler struct {
	srv    *Server
	states []loopState // by loop index; made by configureFront
}

var _ onloop.Protocol = (*loopHandler)(nil)

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
// and response state of the one request the loop serves at a time.
type loopState struct {
	x      *conn   // the exchange for requests served on the loop
	spares []*conn // exchanges to lend while others are deferred (deferred.go)
}

// state returns the state of c's loop.
func (h *loopHandler) state(c *netpoll.Conn) *loopState { return &h.states[c.Loop().Index()] }

// OnOpen starts a connection, plain or TLS once its handshake is done:
// the wait for the first request head, which must arrive within
// ReadHeaderTimeout.
func (h *loopHandler) OnOpen(c *onloop.Conn) {
	lc := &loopConn{h: h, c: c, nc: c.Net()}
	c.SetContext(lc)
	lc.phase = phaseHead
	lc.nc.SetTimeout(h.srv.readHeaderTimeout())
}

// OnRead passes input (plaintext) on to the connection.
func (h *loopHandler) OnRead(c *onloop.Conn, in []byte) int {
	return c.Context().(*loopConn).onRead(in)
}

// OnWritable continues a connection whose output had backed up.
func (h *loopHandler) OnWritable(c *onloop.Conn) { c.Context().(*loopConn).onWritable() }

// OnTimeout acts on an expired deadline according to the phase.
func (h *loopHandler) OnTimeout(c *onloop.Conn) { c.Context().(*loopConn).onTimeout() }

// OnHangup ends a connection whose client hung up while it was paused,
// if a handler was finishing a deferred response for it: the client gave
// up (nginx's client abort), and the handler stops (LoopEvents.Gone).
// In the other paused phases the hang-up shows when reading resumes.
func (h *loopHandler) OnHangup(c *onloop.Conn) {
	if lc := c.Context().(*loopConn); lc.phase == phaseDeferred {
		h.srv.debug("h1: client hung up while its response was deferred", "remote", c.RemoteAddr())
		lc.nc.Close()
	}
}

// OnDrain ends a connection when Shutdown begins: at once when it is
// idle, after its response when one is in flight.
func (h *loopHandler) OnDrain(c *onloop.Conn) { c.Context().(*loopConn).onDrain() }

// OnClose releases what the connection holds.
func (h *loopHandler) OnClose(c *onloop.Conn, err error) {
	c.Context().(*loopConn).onClose()
}
