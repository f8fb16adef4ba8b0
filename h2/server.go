// Package h2 serves HTTP/2 on connections the TLS layer hands over after
// negotiating ALPN "h2", and cleartext HTTP/2 with prior knowledge (h2c).
// The protocol itself is golang.org/x/net/http2's server; requests reach
// the engine through core/nethttp as core/message values.
//
// # Protections
//
// Everything x/net/http2 does by default is kept. The number of handler
// goroutines per connection is bounded by MaxConcurrentStreams even when
// the client resets streams at once (rapid reset, CVE-2023-44487): a
// connection with more than 4×MaxConcurrentStreams requests waiting for a
// handler slot gets GOAWAY ENHANCE_YOUR_CALM. Queued control frames are
// capped (PING and SETTINGS floods); CONTINUATION floods stop at the
// header list limit (CVE-2023-45288); the client preface and the first
// SETTINGS are awaited for a bounded time; TLS below 1.2 and the cipher
// suites RFC 9113 forbids are refused with INADEQUATE_SECURITY. On top,
// Server sets an idle timeout and a write timeout by default, and a
// smaller header limit than net/http's 1 MiB. CountError reports every
// protocol error x/net counts, for metrics (a rapid reset shows up as
// "conn_ENHANCE_YOUR_CALM_too_many_early_resets").
//
// # Shutdown
//
// x/net/http2 starts graceful shutdown (GOAWAY with NO_ERROR, then close
// once the open streams are done) from the OnShutdown hook it registers
// on the *http.Server given to ConfigureServer. Server owns such an
// http.Server, which never listens, only to pull that trigger; it pulls it
// again every 100 ms while it waits, for a connection that entered
// ServeConn just before Shutdown but registered with x/net just after.
//
// x/net/http2 v0.62 marks http2.Server, ServeConn and ConfigureServer
// deprecated in favour of net/http's built-in HTTP/2 (http.Server.Serve
// with Protocols set); they remain the way to run x/net's own server on a
// connection accepted elsewhere. From Go 1.27, x/net/http2 delegates to
// net/http, and ServeConn with a BaseConfig builds a fresh http.Server per
// connection that Shutdown no longer reaches: TestShutdownSendsGoAway
// fails when the toolchain moves, and this needs revisiting then.
package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/nethttp"
)

// Defaults for the zero values of Server's fields.
const (
	DefaultMaxConcurrentStreams = 250
	DefaultMaxReadFrameSize     = minFrameSize
	DefaultMaxHeaderBytes       = 64 << 10
	DefaultIdleTimeout          = 2 * time.Minute
	DefaultWriteByteTimeout     = 30 * time.Second
)

// Frame size bounds of RFC 9113 section 6.5.2 (SETTINGS_MAX_FRAME_SIZE).
const (
	minFrameSize = 1 << 14
	maxFrameSize = 1<<24 - 1
)

// goAwayRetry is how often Shutdown pulls x/net's trigger again while it
// waits, for connections that reached ServeConn just before Shutdown but
// registered with x/net just after the previous pull.
const goAwayRetry = 100 * time.Millisecond

// ErrServerClosed is why ServeConn and ServeH2C refuse connections once
// Shutdown or Close has been called. It matches http.ErrServerClosed with
// errors.Is.
var ErrServerClosed = fmt.Errorf("h2: %w", http.ErrServerClosed)

// Server serves HTTP/2 connections. Set its fields before the first
// ServeConn and do not change them afterwards; the zero value of every
// field but Handler works.
type Server struct {
	// Handler answers every request. It must not be nil.
	Handler message.Handler
	// AltSvc, when not empty, is sent as the Alt-Svc field of responses
	// that do not set one; see h3.AltSvc.
	AltSvc string
	// MaxConcurrentStreams is the SETTINGS_MAX_CONCURRENT_STREAMS we
	// advertise, and the number of handlers one connection may run at
	// once. Zero means DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// MaxReadFrameSize is the SETTINGS_MAX_FRAME_SIZE we advertise: the
	// largest frame payload we accept, between 16 KiB and 16 MiB - 1.
	// Zero means DefaultMaxReadFrameSize, the protocol's initial value.
	// (x/net's own default is 1 MiB; h2spec's test 4.2/3 sends a HEADERS
	// frame just over 16 KiB and expects FRAME_SIZE_ERROR.)
	MaxReadFrameSize uint32
	// MaxHeaderBytes bounds a request's header list; larger requests get
	// 431 (x/net treats a single field longer than the whole limit as a
	// connection error, COMPRESSION_ERROR). x/net advertises
	// MaxHeaderBytes + 320 as SETTINGS_MAX_HEADER_LIST_SIZE (the spec's 32
	// bytes of overhead a field, for 10 fields). Zero means
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request's content; see
	// nethttp.Handler.MaxBodyBytes. Zero means no limit.
	MaxBodyBytes int64
	// ReadTimeout, if positive, resets a stream whose request (header
	// and body) has not fully arrived that long after it opened, against
	// clients that trickle bodies. Zero means no limit: slow large
	// uploads are legitimate.
	ReadTimeout time.Duration
	// IdleTimeout is how long a connection with no open stream is kept
	// before a GOAWAY closes it. Zero means DefaultIdleTimeout; negative,
	// no limit.
	IdleTimeout time.Duration
	// WriteByteTimeout closes a connection on which nothing could be
	// written for that long while there was something to write (a client
	// that stops reading). Zero means DefaultWriteByteTimeout; negative,
	// no limit.
	WriteByteTimeout time.Duration
	// CountError, if set, is called with a short ASCII name each time
	// x/net/http2 meets a protocol error or an abuse limit. It must be
	// safe for concurrent use.
	CountError func(errType string)
	// Logger receives x/net/http2's messages (handler panics, client
	// protocol errors) at Warn level. Nil means slog.Default().
	Logger *slog.Logger

	// once guards the building of hs and h2s; startErr is its outcome.
	once     sync.Once
	startErr error
	// hs carries the HTTP/1 settings x/net reads (MaxHeaderBytes,
	// ReadTimeout, ErrorLog) and the OnShutdown hook x/net registered; it
	// never listens. h2s is the x/net server. Both are read-only after
	// once.
	hs  *http.Server
	h2s *http2.Server

	// mu guards conns and closing. conns holds every connection inside
	// ServeConn or ServeH2C; the goroutine running that call owns it and
	// closes it on return, Shutdown and Close only close it early.
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closing bool
	// serving counts ServeConn and ServeH2C calls in progress; Add only
	// happens under mu while closing is false.
	serving sync.WaitGroup
}

// Validate reports a setting x/net/http2 would reject or silently replace.
func (s *Server) Validate() error {
	if s.Handler == nil {
		return errors.New("h2: no Handler")
	}
	if n := s.MaxReadFrameSize; n != 0 && (n < minFrameSize || n > maxFrameSize) {
		return fmt.Errorf("h2: MaxReadFrameSize %d outside [%d, %d]", n, minFrameSize, maxFrameSize)
	}
	if s.MaxHeaderBytes < 0 {
		return fmt.Errorf("h2: negative MaxHeaderBytes %d", s.MaxHeaderBytes)
	}
	return nil
}

// ServeConn serves HTTP/2 on c, a TLS connection whose handshake is done
// and negotiated ALPN "h2". It blocks until the connection ends, and runs
// on the caller's goroutine; x/net starts a reader goroutine and one
// goroutine per request, which end with the connection and the requests.
// c is closed when ServeConn returns. A connection that cannot be served
// (handshake not done, another ALPN protocol, invalid configuration,
// server shutting down) is closed at once and the reason logged.
func (s *Server) ServeConn(c *tls.Conn) {
	s.report(c, s.serveTLS(c))
}

// ServeH2C serves cleartext HTTP/2 with prior knowledge on c: the client
// starts with the HTTP/2 preface, which must still be unread (a caller
// that peeked at it can hand over a net.Conn whose Read replays it). It
// behaves as ServeConn otherwise. Requests served this way have
// Request.TLS false. The HTTP/1.1 "Upgrade: h2c" dance is not supported.
func (s *Server) ServeH2C(c net.Conn) {
	s.report(c, s.serve(c))
}

// serveTLS checks that c is ready for HTTP/2 and serves it.
func (s *Server) serveTLS(c *tls.Conn) error {
	st := c.ConnectionState()
	switch {
	case !st.HandshakeComplete:
		c.Close()
		return errors.New("h2: TLS handshake not complete")
	case st.NegotiatedProtocol != http2.NextProtoTLS:
		c.Close()
		return fmt.Errorf("h2: connection negotiated ALPN %q, not %q", st.NegotiatedProtocol, http2.NextProtoTLS)
	}
	return s.serve(c)
}

// report logs why c was refused: at Debug level when the server is
// draining, which is expected, and as a warning otherwise.
func (s *Server) report(c net.Conn, err error) {
	switch {
	case err == nil:
	case errors.Is(err, ErrServerClosed):
		s.logger().Debug("h2: connection refused", "remote", c.RemoteAddr().String(), "error", err)
	default:
		s.logger().Warn("h2: connection refused", "remote", c.RemoteAddr().String(), "error", err)
	}
}

// serve runs x/net/http2 on c while c is tracked. It closes c on every
// path.
func (s *Server) serve(c net.Conn) error {
	if err := s.start(); err != nil {
		c.Close()
		return err
	}
	if !s.track(c) {
		c.Close()
		return ErrServerClosed
	}
	defer s.untrack(c)
	s.h2s.ServeConn(c, &http2.ServeConnOpts{BaseConfig: s.hs, Handler: s.hs.Handler})
	return nil
}

// start validates the configuration and builds the x/net server once.
func (s *Server) start() error {
	s.once.Do(func() {
		if s.startErr = s.Validate(); s.startErr != nil {
			return
		}
		s.hs = &http.Server{
			Handler: &nethttp.Handler{
				Handler:      s.Handler,
				AltSvc:       s.AltSvc,
				Proto:        message.HTTP2,
				MaxBodyBytes: s.MaxBodyBytes,
			},
			MaxHeaderBytes: s.maxHeaderBytes(),
			ReadTimeout:    max(s.ReadTimeout, 0),
			ErrorLog:       slog.NewLogLogger(s.logger().Handler(), slog.LevelWarn),
		}
		s.h2s = &http2.Server{
			MaxConcurrentStreams: s.maxConcurrentStreams(),
			MaxReadFrameSize:     s.maxReadFrameSize(),
			IdleTimeout:          positive(s.IdleTimeout, DefaultIdleTimeout),
			WriteByteTimeout:     positive(s.WriteByteTimeout, DefaultWriteByteTimeout),
			CountError:           s.CountError,
		}
		if err := http2.ConfigureServer(s.hs, s.h2s); err != nil {
			s.startErr = fmt.Errorf("h2: %w", err)
		}
		// ConfigureServer fills a zero IdleTimeout from hs.ReadTimeout;
		// zero here means "none" (IdleTimeout < 0), so put it back.
		s.h2s.IdleTimeout = positive(s.IdleTimeout, DefaultIdleTimeout)
	})
	return s.startErr
}

// track records c as served, unless the server is closing.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[net.Conn]struct{})
	}
	s.conns[c] = struct{}{}
	s.serving.Add(1)
	return true
}

// untrack forgets c once ServeConn is done with it.
func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.serving.Done()
}

// Conns returns how many connections are being served.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown stops taking connections, sends GOAWAY (NO_ERROR, with the
// last stream the connection accepted) on every connection, lets the
// streams already open finish, and returns once every connection has
// closed. x/net closes a drained connection when the client does or one
// second after its last stream. If ctx ends first, Shutdown closes what
// is left, waits for ServeConn to return, and returns ctx.Err(); handlers
// still running then see their writes fail.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	if s.start() != nil {
		return nil // never served
	}
	done := s.drained()
	retry := time.NewTicker(goAwayRetry)
	defer retry.Stop()
	for {
		s.goAway()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			s.closeConns()
			<-done
			return ctx.Err()
		case <-retry.C:
		}
	}
}

// Close closes every connection at once, without GOAWAY, and waits for
// ServeConn to return on each. Handlers still running see their writes
// fail.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.closeConns()
	<-s.drained()
	return nil
}

// goAway pulls x/net's graceful-shutdown trigger: http.Server.Shutdown
// runs the OnShutdown hooks (in goroutines of their own that only post a
// message to each connection's loop, then end) and, since hs tracks no
// connection of its own, returns at once. Connections that already got
// a GOAWAY ignore the repeat.
func (s *Server) goAway() {
	_ = s.hs.Shutdown(context.Background())
}

// drained returns a channel closed once no ServeConn call is left. The
// goroutine behind it belongs to the caller of drained and ends then.
func (s *Server) drained() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		s.serving.Wait()
		close(done)
	}()
	return done
}

// closeConns closes every tracked connection; each ServeConn then
// returns.
func (s *Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

func (s *Server) maxConcurrentStreams() uint32 {
	if s.MaxConcurrentStreams == 0 {
		return DefaultMaxConcurrentStreams
	}
	return s.MaxConcurrentStreams
}

func (s *Server) maxReadFrameSize() uint32 {
	if s.MaxReadFrameSize == 0 {
		return DefaultMaxReadFrameSize
	}
	return s.MaxReadFrameSize
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes == 0 {
		return DefaultMaxHeaderBytes
	}
	return s.MaxHeaderBytes
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// positive maps a configured duration to what x/net expects: zero takes
// the default, negative disables (x/net's zero).
func positive(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}
