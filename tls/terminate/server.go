package terminate

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Server.
const (
	// DefaultHandshakeTimeout bounds a handshake, from accept to done.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxHandshakes bounds the handshakes in flight; see
	// Server.MaxHandshakes. It is set high enough that thousands of
	// clients stalling their handshakes (a slowloris on TLS) do not stop
	// the accept loop: at this many, the kernel's open-files limit is the
	// nearer bound on most machines.
	DefaultMaxHandshakes = 16384
)

// Accept error backoff, as net/http does it.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("terminate: server closed")

// Server accepts TCP connections, completes their TLS handshakes and hands
// each established connection to the handler of its negotiated ALPN
// protocol.
//
// Each accepted connection gets its own goroutine, so a slow client delays
// no one else. That goroutine runs the handshake, bounded by
// HandshakeTimeout, and then calls the handler, which owns the connection
// from then on: it runs on that goroutine and may block for the life of the
// connection (as h2's ServeConn does) or hand it on and return. The Server
// neither tracks nor closes dispatched connections: draining them is the
// protocol servers' business.
//
// The exported fields must be set before the first Serve and not changed
// after. A Server must not be copied after first use.
type Server struct {
	// TLSConfig is used for every connection, e.g. from Config.TLSConfig.
	TLSConfig *tls.Config

	// Protocols maps a negotiated ALPN protocol to its handler.
	Protocols map[string]func(*tls.Conn)

	// Default handles connections that negotiated no ALPN protocol (a
	// client without ALPN, or an http/1.1 client let in by crypto/tls's
	// fallback) or one missing from Protocols. If nil, they are closed.
	Default func(*tls.Conn)

	// HandshakeTimeout bounds each handshake from accept to completion,
	// including GetCertificate; zero means DefaultHandshakeTimeout. The
	// connection's deadline is cleared before it is dispatched.
	HandshakeTimeout time.Duration

	// MaxHandshakes bounds the handshakes in flight at once: when that many
	// are running, the accept loop waits for one to finish before it
	// accepts again, and new connections queue in the kernel's listen
	// backlog. This bounds the memory a flood of handshakes can take: 15 to
	// 25 KiB per handshake waiting for the client's Finished, a few KiB per
	// connection that has sent nothing (BenchmarkHandshakeMemory, amd64,
	// TLS 1.3, X25519MLKEM768, a two-certificate ECDSA P-256 chain), so the
	// default holds at most about 400 MiB in the worst case, and a few KiB
	// per stalled client in the common one. It is not a defense against
	// slow clients: MaxHandshakes idle connections delay new handshakes by
	// up to HandshakeTimeout; per-address limits are a later step. Zero means
	// DefaultMaxHandshakes; a negative value means no limit.
	MaxHandshakes int

	// Logger receives handshake failures at debug level and accept errors
	// at warn level. If nil, nothing is logged.
	Logger *slog.Logger

	// mu guards the fields below. They are set up by the first Serve or
	// Close.
	mu        sync.Mutex
	ctx       context.Context    // cancelled by Close: ends handshakes in flight
	cancel    context.CancelFunc //
	sem       chan struct{}      // one token per handshake in flight; nil if unlimited
	listeners map[*net.Listener]struct{}
	closed    bool

	// wg counts the accept loops and the connection goroutines until they
	// dispatch, so that Shutdown can wait for them.
	wg sync.WaitGroup

	accepted, established, failed, timedOut atomic.Uint64
}

// Stats are a Server's counters since it started.
type Stats struct {
	Accepted    uint64 // connections accepted
	Established uint64 // handshakes completed and dispatched
	Failed      uint64 // handshakes failed, timeouts included, shutdown excluded
	TimedOut    uint64 // handshakes cut by HandshakeTimeout
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Accepted:    s.accepted.Load(),
		Established: s.established.Load(),
		Failed:      s.failed.Load(),
		TimedOut:    s.timedOut.Load(),
	}
}

// initLocked sets up the server's state on first use. The caller holds mu.
func (s *Server) initLocked() {
	if s.ctx != nil {
		return
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.listeners = make(map[*net.Listener]struct{})
	switch n := s.MaxHandshakes; {
	case n == 0:
		s.sem = make(chan struct{}, DefaultMaxHandshakes)
	case n > 0:
		s.sem = make(chan struct{}, n)
	}
}

// Serve accepts connections on l until Close or Shutdown, and then returns
// ErrServerClosed; it returns another error if accepting fails for good. It
// closes l when it returns. Serve may be called for several listeners at
// once; they share MaxHandshakes.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	s.initLocked()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	if s.TLSConfig == nil {
		s.mu.Unlock()
		l.Close()
		return errors.New("terminate: Serve: nil TLSConfig")
	}
	s.listeners[&l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, &l)
		s.mu.Unlock()
		l.Close()
	}()
	return s.acceptLoop(l)
}

// acceptLoop is the body of Serve.
func (s *Server) acceptLoop(l net.Listener) error {
	var delay time.Duration
	for {
		if !s.acquire() {
			return ErrServerClosed
		}
		conn, err := l.Accept()
		if err != nil {
			s.release()
			if s.ctx.Err() != nil {
				return ErrServerClosed
			}
			if !temporary(err) {
				return err
			}
			delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
			s.logAccept(err, delay)
			if !s.sleep(delay) {
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		s.accepted.Add(1)
		s.wg.Add(1)
		go s.handle(conn)
	}
}

// acquire takes a handshake token, waiting while MaxHandshakes are in
// flight. It reports false if the server closed meanwhile.
func (s *Server) acquire() bool {
	if s.sem == nil {
		return s.ctx.Err() == nil
	}
	select {
	case s.sem <- struct{}{}:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// release returns a handshake token.
func (s *Server) release() {
	if s.sem != nil {
		<-s.sem
	}
}

// sleep waits for d, or until the server closes; it reports whether the
// server is still open.
func (s *Server) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// handle runs on the connection's own goroutine: it completes the
// handshake, gives back the token and dispatches the connection.
func (s *Server) handle(conn net.Conn) {
	tc, ok := s.handshake(conn)
	if !ok {
		conn.Close()
		s.release()
		s.wg.Done()
		return
	}
	s.release()
	s.established.Add(1)
	s.wg.Done()
	s.dispatch(tc)
}

// handshake runs the TLS handshake on conn within HandshakeTimeout and
// clears the deadline after. It reports false, having counted and logged
// the failure, if the handshake failed or the server is closing.
func (s *Server) handshake(conn net.Conn) (*tls.Conn, bool) {
	deadline := time.Now().Add(s.handshakeTimeout())
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	defer cancel()
	tc := tls.Server(conn, s.TLSConfig)
	err := conn.SetDeadline(deadline)
	if err == nil {
		err = tc.HandshakeContext(ctx)
	}
	if err == nil {
		err = conn.SetDeadline(time.Time{})
	}
	if s.ctx.Err() != nil {
		return nil, false // closing: not a failure of the client's
	}
	if err != nil {
		s.failed.Add(1)
		timedOut := isTimeout(err)
		if timedOut {
			s.timedOut.Add(1)
		}
		s.logHandshake(conn, err, timedOut)
		return nil, false
	}
	return tc, true
}

// dispatch hands an established connection to its protocol's handler.
func (s *Server) dispatch(tc *tls.Conn) {
	proto := tc.ConnectionState().NegotiatedProtocol
	h := s.Default
	if p, ok := s.Protocols[proto]; ok && proto != "" {
		h = p
	}
	if h == nil {
		if s.debugEnabled() {
			s.Logger.LogAttrs(context.Background(), slog.LevelDebug, "terminate: no handler; closing",
				slog.String("remote", tc.RemoteAddr().String()), slog.String("alpn", proto))
		}
		tc.Close()
		return
	}
	h(tc)
}

// handshakeTimeout returns HandshakeTimeout or its default.
func (s *Server) handshakeTimeout() time.Duration {
	if s.HandshakeTimeout > 0 {
		return s.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
}

// Close stops the server at once: it closes the listeners, so that Serve
// returns ErrServerClosed, and ends the handshakes in flight by closing
// their connections. Dispatched connections are left to their handlers.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initLocked()
	s.closed = true
	s.cancel()
	var errs []error
	for l := range s.listeners {
		if err := (*l).Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Shutdown closes the server as Close does and waits until its accept
// loops and handshake goroutines have returned, or ctx is done. It does
// not wait for dispatched connections.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.Close()
	done := make(chan struct{})
	// This goroutine ends when the handshakes do, which Close has cut
	// short; it outlives Shutdown only if ctx ends first.
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		return errors.Join(err, ctx.Err())
	}
}

// temporary reports whether an accept error may go away by itself, such
// as running out of file descriptors.
func temporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// isTimeout reports whether a handshake error is HandshakeTimeout running
// out, seen either as the connection's deadline or as the context's.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// logHandshake logs a failed handshake at debug level.
func (s *Server) logHandshake(conn net.Conn, err error, timedOut bool) {
	if s.debugEnabled() {
		s.Logger.LogAttrs(context.Background(), slog.LevelDebug, "terminate: handshake failed",
			slog.String("remote", conn.RemoteAddr().String()),
			slog.Bool("timeout", timedOut),
			slog.Any("err", err))
	}
}

// logAccept logs an accept error that will be retried after delay.
func (s *Server) logAccept(err error, delay time.Duration) {
	if s.Logger != nil {
		s.Logger.LogAttrs(context.Background(), slog.LevelWarn, "terminate: accept failed; retrying",
			slog.Any("err", err), slog.Duration("delay", delay))
	}
}

// debugEnabled reports whether debug records are logged; callers check it
// before building attributes.
func (s *Server) debugEnabled() bool {
	return s.Logger != nil && s.Logger.Enabled(context.Background(), slog.LevelDebug)
}
