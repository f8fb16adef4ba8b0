// Package h2 serves HTTP/2 on anx's event loops (core/netpoll): on TLS
// connections that chose "h2" by ALPN and on plain ones that start with
// the client preface (h2c with prior knowledge, RFC 9113 section 3.3),
// both handed over by tls/onloop with plaintext in and out. The frames
// are x/net/http2's definitions and its HPACK (x/net/http2/hpack); the
// connection state machine is this package's own.
//
// # On the loop
//
// A connection costs no goroutine: its HPACK state, flow-control windows,
// stream table and output belong to its loop's goroutine. A frame is
// handled once it is whole in the input (the loop keeps the rest), without
// allocating; streams come from a pool, with the storage of their headers.
// A request without content whose handler never waits
// (message.IsNonBlockingFor: the static files and the routing table over
// them) is served inline, and every frame that one batch of input produces
// leaves in one write (one TLS record batch). Other requests run their
// handler on a goroutine of their own, which hands its output back to the
// loop (Conn.Submit); only the loop touches HPACK, the windows and the
// output. A file body is read from the page cache as the windows open.
//
// # Protocol
//
// SETTINGS are sent first (MaxConcurrentStreams, a 64 KiB stream window,
// MaxReadFrameSize, MaxHeaderBytes as SETTINGS_MAX_HEADER_LIST_SIZE, and
// SETTINGS_ENABLE_CONNECT_PROTOCOL with ExtendedConnect), with a WINDOW_UPDATE
// that opens the connection's window to 1 MiB; windows are given back as
// handlers read. Stream states follow RFC 9113 section 5.1; a malformed
// request (section 8.1.1: bad pseudo-header fields, upper-case or
// connection-specific fields, a content-length that the DATA does not
// match) is a stream error. Priorities are ignored (section 5.3.2 allows it).
// Shutdown (netpoll's OnDrain) sends GOAWAY with the last stream taken and
// closes once the streams in flight are done; an idle connection gets
// GOAWAY after IdleTimeout. RFC 8441 extended CONNECT makes a stream a
// tunnel for a WebSocket (see Server.ExtendedConnect).
//
// # Defences
//
// Each of these ends the connection with GOAWAY ENHANCE_YOUR_CALM; the
// counts are per second of the connection's life (abuse.go):
//
//   - more than 100 streams reset, by the client or by the server for the
//     client's fault: Rapid Reset (CVE-2023-44487) and MadeYouReset
//     (CVE-2025-8671);
//   - more than 1000 SETTINGS and PING frames (CVE-2019-9512, 9515);
//   - more than 100 frames that carry nothing (CVE-2019-9518);
//   - more than 100 streams refused for being over the concurrency limit;
//   - a header block of more than 64 CONTINUATION frames or twice
//     MaxHeaderBytes encoded (the CONTINUATION floods of April 2024).
//
// A header list that decodes to more than MaxHeaderBytes (an HPACK bomb:
// a few bytes that reference a large table entry many times) is answered
// 431 without being stored. A client that does not read stops being read
// once 256 KiB of output waits (so floods that each cost an answer,
// CVE-2019-9514, queue no more), and is closed when the output has not moved
// for WriteTimeout; streams held by a shut window for WriteTimeout
// (a zero-window stall) and request content that stops for ReadTimeout
// close the connection too. A client over MaxConcurrentStreams is refused
// streams (REFUSED_STREAM).
package h2

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/tls/onloop"
)

// Defaults for the zero values of Server's fields.
const (
	DefaultMaxConcurrentStreams = 250
	DefaultMaxReadFrameSize     = minFrameSize
	DefaultMaxHeaderBytes       = 64 << 10
	DefaultIdleTimeout          = 2 * time.Minute
	// DefaultWriteTimeout closes a connection whose output has not moved
	// for that long while it had some to send, and one whose client kept
	// every stream's window shut that long.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultReadTimeout is Server.ReadTimeout's default, nginx's
	// client_body_timeout.
	DefaultReadTimeout = 60 * time.Second
	// DefaultPrefaceTimeout bounds the wait for the client preface and
	// the first SETTINGS.
	DefaultPrefaceTimeout = 10 * time.Second
	// streamWindow is the SETTINGS_INITIAL_WINDOW_SIZE we advertise: what
	// a client may send on one stream before the handler reads it, and so
	// the most request content one stream holds in memory.
	streamWindow = 64 << 10
	// connWindow is the connection's receive window, opened at once: the
	// most request content a connection holds in memory.
	connWindow = 1 << 20
)

// Frame size bounds of RFC 9113 section 6.5.2 (SETTINGS_MAX_FRAME_SIZE).
const (
	minFrameSize = 1 << 14
	maxFrameSize = 1<<24 - 1
)

// Server serves HTTP/2 on anx's event loops: it is the
// onloop.Protocol for TLS connections that chose "h2" and for plain ones
// that start with the preface (h2c). Its settings must not change once it
// serves; the zero value of each but Handler works.
//
// Everything a connection has (HPACK state, flow-control windows, the
// stream table, the output) belongs to its loop's goroutine. Handlers that
// never wait (message.IsNonBlockingFor) run there, inline, and their
// output joins the frames the same batch of input produced, all of which
// leave in one write; the others run on a goroutine of their own per
// stream and hand their output back to the loop (pipe).
type Server struct {
	// Handler answers every request. It must not be nil.
	Handler message.Handler
	// Observer, when not nil, sees every request a handler or the server
	// answered once its stream is done (the access log, the metrics),
	// on the connection's loop: see message.Observer.
	Observer message.Observer
	// AltSvc, when not empty, is sent as the Alt-Svc field of responses
	// that do not set one.
	AltSvc string
	// MaxConcurrentStreams is SETTINGS_MAX_CONCURRENT_STREAMS. Zero means
	// DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// MaxReadFrameSize is SETTINGS_MAX_FRAME_SIZE, the largest frame
	// payload accepted. Zero means DefaultMaxReadFrameSize.
	MaxReadFrameSize uint32
	// MaxHeaderBytes bounds the names and values of a request's decoded
	// header list, pseudo-header fields included; a larger one is answered
	// 431. The list size RFC 9113 section 6.5.2 counts adds 32 bytes a
	// field: SETTINGS_MAX_HEADER_LIST_SIZE is MaxHeaderBytes plus that
	// overhead for 10 fields, which is the bound applied. Zero means
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request's content: a larger content-length
	// is answered 413, a stream that sends more is reset. Zero means no
	// limit.
	MaxBodyBytes int64
	// IdleTimeout closes, with GOAWAY, a connection that has had no open
	// stream for that long. Zero means DefaultIdleTimeout; negative, none.
	IdleTimeout time.Duration
	// WriteTimeout closes a connection whose output has not moved for
	// that long while there was output to send. Zero means
	// DefaultWriteTimeout; negative, none.
	WriteTimeout time.Duration
	// ExtendedConnect is asked, as each connection starts, whether to
	// advertise SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441), so that
	// clients open WebSockets as streams: an extended CONNECT then reaches
	// the handler with Request.Protocol set, and the response writer's
	// Upgrade (message.Upgrader) makes the stream the tunnel. Say yes
	// where a route can tunnel (a proxy); it is a function so that a
	// reload changes the answer for new connections. Nil means never.
	ExtendedConnect func() bool
	// ReadTimeout closes, with GOAWAY, a connection on which a stream
	// waits for request content and none has arrived for that long
	// (a client that opens streams and sends nothing holds them). Zero
	// means DefaultReadTimeout; negative, none.
	ReadTimeout time.Duration
	// CountError, if set, is called with a short name each time a client
	// makes a connection error or a stream error ("conn_" or "stream_"
	// and the error code, such as "conn_ENHANCE_YOUR_CALM"), for metrics.
	// It must be safe for concurrent use.
	CountError func(errType string)
	// Logger receives client protocol errors at Debug level and handler
	// failures at Warn. Nil means slog.Default().
	Logger *slog.Logger

	// live counts the streams taken from the pool and not yet released,
	// open or finishing: what a leak would show in (Streams).
	live atomic.Int64
	// streams recycles streams, with their request and header storage,
	// so that a connection in steady state allocates none.
	streams sync.Pool
	// dates caches the Date field's value, one per second.
	dates message.Date
}

var _ onloop.Protocol = (*Server)(nil)

// Validate reports a setting that cannot work.
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

// Streams returns how many streams exist on all connections: open, or
// closed and waiting for their output or their handler to finish.
func (s *Server) Streams() int { return int(s.live.Load()) }

// OnOpen starts serving a connection: it sends our SETTINGS and waits for
// the client preface.
func (s *Server) OnOpen(c *onloop.Conn) {
	cn := newConn(s, c)
	c.SetContext(cn)
	cn.start()
}

// OnRead serves the frames in the input.
func (s *Server) OnRead(c *onloop.Conn, in []byte) int {
	return c.Context().(*conn).read(in)
}

// OnWritable goes on sending what waited for the socket.
func (s *Server) OnWritable(c *onloop.Conn) { c.Context().(*conn).writable() }

// OnTimeout acts on the connection's deadline.
func (s *Server) OnTimeout(c *onloop.Conn) { c.Context().(*conn).timeout() }

// OnHangup closes a connection whose client went while reading was
// paused: nothing it asked for can reach it.
func (s *Server) OnHangup(c *onloop.Conn) { c.Close() }

// OnDrain starts a graceful shutdown: GOAWAY, then close once the open
// streams are done.
func (s *Server) OnDrain(c *onloop.Conn) { c.Context().(*conn).drain() }

// OnClose ends every stream still open.
func (s *Server) OnClose(c *onloop.Conn, err error) { c.Context().(*conn).closed(err) }

func (s *Server) maxConcurrentStreams() uint32 {
	return cmp.Or(s.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
}

func (s *Server) maxReadFrameSize() uint32 {
	return cmp.Or(s.MaxReadFrameSize, DefaultMaxReadFrameSize)
}

func (s *Server) maxHeaderBytes() int { return cmp.Or(s.MaxHeaderBytes, DefaultMaxHeaderBytes) }

// headerListLimit is the header list size (RFC 9113 section 6.5.2)
// allowed and advertised: MaxHeaderBytes and the overhead of 10 fields.
func (s *Server) headerListLimit() int { return s.maxHeaderBytes() + 10*32 }

// countError reports an error to CountError.
func (s *Server) countError(kind string, code http2.ErrCode) {
	if s.CountError != nil {
		s.CountError(kind + code.String())
	}
}

func (s *Server) idleTimeout() time.Duration { return positive(s.IdleTimeout, DefaultIdleTimeout) }

func (s *Server) writeTimeout() time.Duration {
	return positive(s.WriteTimeout, DefaultWriteTimeout)
}

func (s *Server) readTimeout() time.Duration { return positive(s.ReadTimeout, DefaultReadTimeout) }

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// positive maps a configured duration to the one in force: zero takes the
// default, negative disables (zero).
func positive(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}
