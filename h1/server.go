package h1

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/tls/onloop"
)

// Defaults for the zero values of Server's timeouts and limits.
const (
	defaultReadHeaderTimeout = 10 * time.Second
	defaultIdleTimeout       = 60 * time.Second
	defaultWriteTimeout      = 60 * time.Second
	defaultBodyReadTimeout   = 60 * time.Second
	defaultMaxHeaderBytes    = 32 << 10
	defaultMaxHeaderCount    = 100
	defaultMaxBodyBytes      = 10 << 20
)

// Accept loop backoff after a temporary error (too many open files...).
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// Server serves HTTP/1.0 and HTTP/1.1 on net.Conns. Its zero value is
// ready to use; every timeout and limit left at zero takes the default
// documented on it. Set the fields before the first Serve or ServeConn
// and do not change them after. A Server must not be copied after first
// use.
//
// Every response carries Date (formatted once a second) and "Server: anx"
// (no version, nothing to fingerprint) unless the handler set its own;
// h1 writes Content-Length, Transfer-Encoding and Connection itself and
// drops the handler's, as well as any field that is not a token name with a
// valid value.
type Server struct {
	// Handler answers every request. Nil answers 404 to everything.
	Handler message.Handler

	// Observer, when not nil, sees every request once its response has
	// ended, the requests h1 refuses itself (400, 413, 431...) included
	// (the access log, the metrics). It runs on the goroutine that served
	// the request, often an event loop: see message.Observer.
	Observer message.Observer

	// AltSvc, when not empty, is sent as "Alt-Svc: <AltSvc>" on every
	// response whose handler did not set Alt-Svc itself, including the
	// error responses h1 makes (RFC 7838; h3 provides the value).
	AltSvc string

	// ReadHeaderTimeout bounds the arrival of a whole request head,
	// measured from its first byte, or for a connection's first request
	// from the accept. It is not extended by progress, so a client that
	// sends its head a byte at a time is cut off (slowloris). Default 10s;
	// negative means none.
	ReadHeaderTimeout time.Duration

	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection. Default 60s; negative means none.
	IdleTimeout time.Duration

	// WriteTimeout bounds each write (of at most 256 KiB; sendfile's
	// deadline moves with every progress): a peer that stops reading is
	// cut off, a slow one that keeps reading is not. Default 60s;
	// negative means none.
	WriteTimeout time.Duration

	// BodyReadTimeout bounds each read of a request body that has to wait
	// for the network (as nginx's client_body_timeout). Default 60s;
	// negative means none.
	BodyReadTimeout time.Duration

	// MaxHeaderBytes bounds a request head: request line, field lines and
	// the empty line. A request line that does not end within it gets
	// 414, a head that does not end within it 431. Default 32 KiB, the
	// total nginx allows by default (large_client_header_buffers 4 8k)
	// and Cloudflare's request header limit: real browser heads are
	// 0.5–4 KiB and rarely pass 16 KiB even with big cookies, and every
	// idle-ish attacker connection may make us hold this much.
	MaxHeaderBytes int

	// MaxHeaderCount bounds the number of field lines in a request head
	// (431 beyond). Default 100, as Apache's LimitRequestFields.
	MaxHeaderCount int

	// MaxBodyBytes bounds the content of a request: a Content-Length
	// above it gets 413 before the handler runs; a chunked body that
	// grows past it makes Read return ErrBodyTooLarge. Default 10 MiB;
	// negative means unlimited.
	MaxBodyBytes int64

	// TLSConfig makes the connections of Listen and Start TLS, through
	// the connection layer below (tls/onloop): the handshake runs off the
	// loop, bounded by HandshakeTimeout, and an established connection is
	// served on the loop, its records decrypted and encrypted there.
	// Serve and ServeConn ignore it.
	TLSConfig *tls.Config

	// Protocols maps ALPN protocols other than "http/1.1" (h2) to the
	// servers that serve them on the loops, with Listen and Start: a TLS
	// connection that negotiated one is handed to it on its loop once its
	// handshake is done. It comes before TLSProtocols.
	Protocols map[string]onloop.Protocol

	// TLSProtocols maps ALPN protocols other than "http/1.1" to the
	// servers that serve them off the loops: a connection that negotiated
	// one is handed to it on a goroutine of its own once its handshake is
	// done. A connection without ALPN, or with a protocol in neither map,
	// speaks HTTP/1.1.
	TLSProtocols map[string]func(*tls.Conn)

	// PriorKnowledge serves, with Listen and Start, the plain connections
	// that start with the HTTP/2 client preface (h2c with prior
	// knowledge, RFC 9113 section 3.3). Nil serves them as HTTP/1.1 (which
	// refuses the preface).
	PriorKnowledge onloop.Protocol

	// HandshakeTimeout bounds a TLS handshake on the loop, from the
	// accept. Default 10s; negative means none.
	HandshakeTimeout time.Duration

	// MaxHandshakes bounds the TLS handshakes in flight on the loops,
	// each of which runs on a goroutine of its own with 15 to 25 KiB of
	// state: a connection past the bound waits, paused, for a slot, its
	// HandshakeTimeout running. A handshake starts with the first bytes
	// of the ClientHello, so connections that send nothing take no slot.
	// Default 4096 (about 100 MiB at most); negative means no bound.
	MaxHandshakes int

	// DropBehind is the size from which a file body sent by sendfile on
	// the loops drops its pages from the page cache behind it, so that a
	// large download does not push the small hot files out
	// (netpoll.Server.DropBehind). Default 64 MiB; negative means never.
	DropBehind int64

	// Loops is the number of event loops of Listen and Start; 0 means
	// GOMAXPROCS.
	Loops int

	// Admitter, if set, admits or refuses each connection the loops of
	// Listen and Start accept, before anything is read from it (a
	// connection limit; see netpoll.Admitter). Serve's listeners are not
	// asked.
	Admitter netpoll.Admitter

	// Logger receives connection and protocol errors (Debug for what
	// clients did wrong, Error for handler panics). Nil discards them.
	Logger *slog.Logger

	dates    message.Date // the Date field of the current second
	shutdown atomic.Bool  // set once by Shutdown or Close; read by every connection

	mu        sync.Mutex             // guards the fields below
	listeners map[*net.Listener]bool // listeners of running Serve calls
	conns     map[*conn]bool         // connections being served
	done      chan struct{}          // closed by Shutdown or Close, to cut accept backoffs short
	drained   chan struct{}          // made by Shutdown, closed when conns empties
	loops     *netpoll.Server        // the event loops of Listen and Start; nil before Listen
	front     *onloop.Handler        // their Handler, the connection layer; set up by Start
	proto     *loopHandler           // HTTP/1.1 on the layer; nil before Start
}

// Validate reports settings that cannot work. Serve and ServeConn call it.
func (s *Server) Validate() error {
	var errs []error
	if s.MaxHeaderBytes < 0 {
		errs = append(errs, errors.New("h1: negative MaxHeaderBytes"))
	}
	if s.MaxHeaderCount < 0 {
		errs = append(errs, errors.New("h1: negative MaxHeaderCount"))
	}
	if !validFieldValue(s.AltSvc) || trimOWS(s.AltSvc) != s.AltSvc {
		errs = append(errs, fmt.Errorf("h1: AltSvc %q is not a valid field value", s.AltSvc))
	}
	return errors.Join(errs...)
}

// timeout returns d, or def when d is zero, or 0 (none) when d is
// negative.
func timeout(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func (s *Server) readHeaderTimeout() time.Duration {
	return timeout(s.ReadHeaderTimeout, defaultReadHeaderTimeout)
}

func (s *Server) idleTimeout() time.Duration { return timeout(s.IdleTimeout, defaultIdleTimeout) }

func (s *Server) writeTimeout() time.Duration { return timeout(s.WriteTimeout, defaultWriteTimeout) }

func (s *Server) bodyReadTimeout() time.Duration {
	return timeout(s.BodyReadTimeout, defaultBodyReadTimeout)
}

func (s *Server) limits() limits {
	l := limits{maxHeadBytes: s.MaxHeaderBytes, maxFields: s.MaxHeaderCount}
	if l.maxHeadBytes == 0 {
		l.maxHeadBytes = defaultMaxHeaderBytes
	}
	if l.maxFields == 0 {
		l.maxFields = defaultMaxHeaderCount
	}
	return l
}

// maxBodyBytes returns the bound on request content, or -1 for none.
func (s *Server) maxBodyBytes() int64 {
	switch {
	case s.MaxBodyBytes == 0:
		return defaultMaxBodyBytes
	case s.MaxBodyBytes < 0:
		return -1
	}
	return s.MaxBodyBytes
}

// debug logs what a client did wrong, when a Logger is set.
func (s *Server) debug(msg string, args ...any) {
	if s.Logger != nil {
		s.Logger.Debug(msg, args...)
	}
}

// logError logs a failure of ours or of the handler, when a Logger is set.
func (s *Server) logError(msg string, args ...any) {
	if s.Logger != nil {
		s.Logger.Error(msg, args...)
	}
}

// Serve accepts connections on ln and serves each in its own goroutine
// until Shutdown or Close, when it returns ErrServerClosed. It closes ln
// on return. Temporary accept errors are retried with backoff; any other
// accept error is returned.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.Validate(); err != nil {
		return err
	}
	defer ln.Close()
	if !s.trackListener(&ln, true) {
		return ErrServerClosed
	}
	defer s.trackListener(&ln, false)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return ErrServerClosed
			}
			if !isTemporary(err) {
				return fmt.Errorf("h1: accept: %w", err)
			}
			backoff = min(max(2*backoff, minAcceptBackoff), maxAcceptBackoff)
			s.logError("h1: accept failed; retrying", "error", err, "backoff", backoff)
			if !s.sleep(backoff) {
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		c := s.newConn(nc)
		if !s.trackConn(c) {
			nc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

// isTemporary reports whether an accept error is worth retrying.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// sleep waits d, or less if the server shuts down; it reports whether the
// server is still up.
func (s *Server) sleep(d time.Duration) bool {
	s.mu.Lock()
	if s.done == nil {
		s.done = make(chan struct{})
	}
	done := s.done
	s.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return !s.shutdown.Load()
	case <-done:
		return false
	}
}

// ServeConn serves nc in the calling goroutine until the connection ends,
// then closes it, unless a handler took it with Upgrade: it is then the
// handler's to close. It is how TLS connections whose ALPN chose http/1.1 get
// here: for a *tls.Conn, requests carry TLS and ServerName, and a
// handshake not yet done is done first, within ReadHeaderTimeout.
func (s *Server) ServeConn(nc net.Conn) {
	if err := s.Validate(); err != nil {
		s.logError("h1: invalid server settings", "error", err)
		nc.Close()
		return
	}
	c := s.newConn(nc)
	if !s.trackConn(c) {
		nc.Close()
		return
	}
	c.serve()
}

// Shutdown stops the server gracefully: it closes the listeners, closes
// idle connections at once, and lets each busy connection finish the
// request it is serving, whose response then carries "Connection: close"
// unless its head has already gone out, and close. It returns when every
// connection has closed, or, when ctx ends first, closes the remaining
// connections and returns ctx's error. Handlers still running then finish
// on their own, their writes failing.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true) // before the loops drain: detached connections see it
	loopErr := s.shutdownLoops(ctx)
	return errors.Join(loopErr, s.shutdownConns(ctx))
}

// shutdownConns is Shutdown for the connections served by goroutines.
func (s *Server) shutdownConns(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown.Store(true)
	s.closeDoneLocked()
	err := s.closeListenersLocked()
	for c := range s.conns {
		c.closeIfIdle()
	}
	if len(s.conns) == 0 {
		s.mu.Unlock()
		return err
	}
	if s.drained == nil {
		s.drained = make(chan struct{})
	}
	drained := s.drained
	s.mu.Unlock()

	select {
	case <-drained:
		return err
	case <-ctx.Done():
		s.closeConns()
		return ctx.Err()
	}
}

// Close stops the server at once: it closes the listeners and every
// connection, and returns without waiting for handlers.
func (s *Server) Close() error {
	s.mu.Lock()
	s.shutdown.Store(true)
	s.closeDoneLocked()
	err := s.closeListenersLocked()
	s.mu.Unlock()
	s.closeConns()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the loops close every connection at once
	if loopErr := s.shutdownLoops(ctx); loopErr != nil && loopErr != context.Canceled {
		err = errors.Join(err, loopErr)
	}
	return err
}

// closeConns closes every tracked connection.
func (s *Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.state.Store(stateClosed)
		c.nc.Close()
	}
}

// closeDoneLocked closes s.done once. s.mu must be held.
func (s *Server) closeDoneLocked() {
	if s.done == nil {
		s.done = make(chan struct{})
	}
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

// closeListenersLocked closes the listeners of running Serve calls. s.mu
// must be held.
func (s *Server) closeListenersLocked() error {
	var errs []error
	for ln := range s.listeners {
		if err := (*ln).Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// trackListener adds or removes a listener of a running Serve. Adding
// fails once the server is shutting down.
func (s *Server) trackListener(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.listeners, ln)
		return true
	}
	if s.shutdown.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[*net.Listener]bool)
	}
	s.listeners[ln] = true
	return true
}

// trackConn registers a connection, unless the server is shutting down.
func (s *Server) trackConn(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return false
	}
	s.addConnLocked(c)
	return true
}

// trackDetached registers a connection a loop handed to a goroutine with
// a request under way, also while shutting down: that request is answered
// (with Connection: close) before the connection closes.
func (s *Server) trackDetached(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addConnLocked(c)
}

// addConnLocked adds c to the tracked connections. s.mu must be held.
func (s *Server) addConnLocked(c *conn) {
	if s.conns == nil {
		s.conns = make(map[*conn]bool)
	}
	s.conns[c] = true
}

// untrackConn removes a closed connection and wakes Shutdown after the
// last one.
func (s *Server) untrackConn(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if len(s.conns) == 0 && s.drained != nil {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
}
