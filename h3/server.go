// Package h3 serves HTTP/3 over QUIC with github.com/quic-go/quic-go/http3;
// requests reach the engine through core/nethttp as core/message values.
// Clients find the HTTP/3 endpoint through the Alt-Svc field that the
// HTTP/1.1 and HTTP/2 front ends send (see AltSvc).
//
// Shutdown is quic-go's: every connection gets a GOAWAY frame on its
// control stream naming the first request it will not serve, requests
// already accepted run to completion, and the server waits for clients to
// close the drained connections (quic-go's client, and browsers, do so at
// once when nothing is in flight) or for the context to end.
//
// WebSockets over HTTP/3 (RFC 9220): quic-go's server advertises
// SETTINGS_ENABLE_CONNECT_PROTOCOL on every connection (quic-go v0.65 has
// no option to leave it out) and hands an extended CONNECT to the handler;
// core/nethttp gives it to the engine with Request.Protocol set, and its
// response writer's Upgrade answers 200 and makes the request stream,
// taken over from quic-go (http3.HTTPStreamer), the tunnel. An extended
// CONNECT to a route that cannot tunnel gets that route's answer (405
// from a file route). quic-go resets a malformed one (no :scheme, :path
// or :authority; :protocol on another method) with H3_MESSAGE_ERROR
// before any handler runs.
//
// 0-RTT is off unless Allow0RTT is set: requests sent in 0-RTT can be
// replayed by an attacker, and nothing in the engine checks whether a
// request is safe to replay (RFC 8470, RFC 9114 section 10.9).
package h3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/nethttp"
)

// Defaults for the zero values of Server's fields.
const (
	DefaultAddr                 = ":443"
	DefaultIdleTimeout          = 2 * time.Minute
	DefaultMaxHeaderBytes       = 64 << 10
	DefaultMaxConcurrentStreams = 250
)

// altSvcMaxAge is how long, in seconds, a client may remember the Alt-Svc
// advertisement: 30 days, the value quic-go and most servers send.
const altSvcMaxAge = 2592000

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown
// or Close. It matches http.ErrServerClosed with errors.Is.
var ErrServerClosed = fmt.Errorf("h3: %w", http.ErrServerClosed)

// AltSvc returns the Alt-Svc field value that advertises HTTP/3 on the
// given UDP port of the same host, for the HTTP/1.1 and HTTP/2 front ends
// to send: h3=":<port>"; ma=2592000 (RFC 7838: the empty host means "this
// host", ma is the lifetime in seconds, here 30 days).
func AltSvc(port int) string {
	return `h3=":` + strconv.Itoa(port) + `"; ma=` + strconv.Itoa(altSvcMaxAge)
}

// Server serves HTTP/3. Set its fields before the first Serve and do not
// change them afterwards; the zero value of every field but Handler and
// TLSConfig works.
type Server struct {
	// Handler answers every request. It must not be nil.
	Handler message.Handler
	// Observer, when not nil, sees every request once the engine has
	// answered it (the access log, the metrics): see message.Observer.
	Observer message.Observer
	// TLSConfig provides the certificates. It is not modified: quic-go
	// clones it and sets NextProtos to "h3", also on the configs
	// GetConfigForClient returns. QUIC always uses TLS 1.3.
	TLSConfig *tls.Config
	// Addr is the UDP address ListenAndServe listens on; empty means
	// DefaultAddr.
	Addr string
	// IdleTimeout closes a connection that had no request open for that
	// long, and is also the QUIC idle timeout (no packet at all for that
	// long). Zero means DefaultIdleTimeout; negative leaves only QUIC's
	// default of 30 seconds of silence.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's HEADERS frame; larger requests
	// get 431. Zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request's content; see
	// nethttp.Handler.MaxBodyBytes. Zero means no limit.
	MaxBodyBytes int64
	// MaxConcurrentStreams is how many requests one connection may have
	// open at once (QUIC's initial_max_streams_bidi). Zero means
	// DefaultMaxConcurrentStreams.
	MaxConcurrentStreams int64
	// Allow0RTT accepts requests sent in 0-RTT data; see the package
	// documentation for the replay risk.
	Allow0RTT bool
	// ConnectionIDTag, when not zero, starts every connection ID the
	// server issues (then 8 random bytes), so that in a binary upgrade the
	// kernel can steer each packet to the process serving its connection
	// (SteerToSuccessor). Give each process its own (NewConnectionIDTag).
	// Zero: quic-go's random 4-byte IDs.
	ConnectionIDTag uint32
	// Logger receives quic-go's HTTP/3 messages and the UDP buffer
	// warning. Nil means slog.Default().
	Logger *slog.Logger
	// Admitter, if set, admits or refuses each new connection before its
	// handshake (a connection limit, admit.go); nil takes them all.
	Admitter Admitter

	// once guards the building of srv and done; startErr is its outcome.
	once     sync.Once
	startErr error
	// srv is quic-go's server; it tracks listeners and connections and
	// runs one goroutine per connection and per request, all of which
	// end by the time its Shutdown or Close returns.
	srv *http3.Server
	// done is closed once Shutdown or Close has finished, so that
	// ListenAndServe can close the socket it owns after the drain.
	done     chan struct{}
	doneOnce sync.Once
	// conns counts the open connections (stats.go).
	conns atomic.Int64
	// lns are the listeners Serve opened (listen.go).
	lns listeners
}

// Validate reports a missing or impossible setting.
func (s *Server) Validate() error {
	switch {
	case s.Handler == nil:
		return errors.New("h3: no Handler")
	case s.TLSConfig == nil:
		return errors.New("h3: no TLSConfig")
	case len(s.TLSConfig.Certificates) == 0 && s.TLSConfig.GetCertificate == nil && s.TLSConfig.GetConfigForClient == nil:
		return errors.New("h3: TLSConfig has no certificate")
	case s.MaxHeaderBytes < 0:
		return fmt.Errorf("h3: negative MaxHeaderBytes %d", s.MaxHeaderBytes)
	case s.MaxConcurrentStreams < 0:
		return fmt.Errorf("h3: negative MaxConcurrentStreams %d", s.MaxConcurrentStreams)
	}
	return nil
}

// ListenAndServe listens on Addr and serves HTTP/3 there until Shutdown
// or Close. After those it returns ErrServerClosed, once the drain is
// over, and closes the socket.
func (s *Server) ListenAndServe() error {
	if err := s.start(); err != nil {
		return err
	}
	addr := s.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("h3: %w", err)
	}
	err = s.Serve(pc)
	if errors.Is(err, ErrServerClosed) {
		<-s.done // connections drain on this socket until then
	}
	pc.Close()
	return err
}

// Serve serves HTTP/3 on pc, a UDP socket, until Shutdown or Close, then
// returns ErrServerClosed; it runs quic-go's accept loop on the caller's
// goroutine. It does not close pc, which the connections keep using until
// Shutdown or Close has returned. Before serving it raises pc's socket
// buffers to what QUIC wants, and logs one warning with the fix when the
// system does not allow it.
func (s *Server) Serve(pc net.PacketConn) error {
	if err := s.start(); err != nil {
		return err
	}
	s.checkBuffers(pc)
	ln, err := s.listen(pc)
	if err != nil {
		return err
	}
	return s.acceptLoop(ln)
}

// Shutdown stops accepting connections, sends GOAWAY on every connection,
// and waits for the requests in flight to finish and the clients to close
// their connections. If ctx ends first, it closes the connections, waits
// for the handlers to return (they see their writes fail), and returns
// ctx.Err(), wrapped. A handler that blocks without reading or writing
// holds Shutdown and Close until it returns.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.start() != nil {
		return nil // never served
	}
	defer s.finish()
	s.lns.closeListeners()
	defer s.lns.closeTransports()
	return wrap("shutdown", s.srv.Shutdown(ctx))
}

// Close closes every connection at once (CONNECTION_CLOSE with
// H3_NO_ERROR) and waits for the handlers to return; those still writing
// or reading see an error.
func (s *Server) Close() error {
	if s.start() != nil {
		return nil
	}
	defer s.finish()
	s.lns.closeListeners()
	defer s.lns.closeTransports()
	return wrap("close", s.srv.Close())
}

// wrap prefixes a quic-go error with the package and the operation; a
// context error stays recognisable with errors.Is.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("h3: %s: %w", op, err)
}

// start validates the configuration and builds quic-go's server once.
func (s *Server) start() error {
	s.once.Do(func() {
		s.done = make(chan struct{})
		if s.startErr = s.Validate(); s.startErr != nil {
			return
		}
		idle := s.IdleTimeout
		if idle == 0 {
			idle = DefaultIdleTimeout
		}
		s.srv = &http3.Server{
			Handler: &nethttp.Handler{
				Handler:      s.Handler,
				Proto:        message.HTTP3,
				MaxBodyBytes: s.MaxBodyBytes,
				Observer:     s.Observer,
				TakeStream:   takeStream,
			},
			TLSConfig:      s.TLSConfig,
			QUICConfig:     s.quicConfig(idle),
			ConnContext:    s.countConn,
			MaxHeaderBytes: s.maxHeaderBytes(),
			IdleTimeout:    max(idle, 0),
			Logger:         s.logger(),
		}
	})
	return s.startErr
}

// quicConfig returns the QUIC transport settings.
func (s *Server) quicConfig(idle time.Duration) *quic.Config {
	streams := s.MaxConcurrentStreams
	if streams == 0 {
		streams = DefaultMaxConcurrentStreams
	}
	return &quic.Config{
		MaxIdleTimeout:     max(idle, 0), // zero: quic-go's default
		MaxIncomingStreams: streams,
		Allow0RTT:          s.Allow0RTT,
	}
}

// finish marks the end of Shutdown or Close.
func (s *Server) finish() {
	s.doneOnce.Do(func() { close(s.done) })
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
