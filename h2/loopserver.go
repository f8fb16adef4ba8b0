package h2

import (
	"cmp"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/tls/onloop"
)

// Defaults of LoopServer's settings that Server does not share.
const (
	// DefaultWriteTimeout closes a connection whose output has not moved
	// for that long while it had some to send, and one whose client kept
	// every stream's window shut that long.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultReadTimeout is LoopServer.ReadTimeout's default, nginx's
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

// LoopServer serves HTTP/2 on anx's event loops: it is the
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
type LoopServer struct {
	// Handler answers every request. It must not be nil.
	Handler message.Handler
	// AltSvc, when not empty, is sent as the Alt-Svc field of responses
	// that do not set one.
	AltSvc string
	// MaxConcurrentStreams is SETTINGS_MAX_CONCURRENT_STREAMS. Zero means
	// DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// MaxReadFrameSize is SETTINGS_MAX_FRAME_SIZE, the largest frame
	// payload accepted. Zero means DefaultMaxReadFrameSize.
	MaxReadFrameSize uint32
	// MaxHeaderBytes bounds a request's decoded header list (names and
	// values plus 32 bytes a field, RFC 9113 section 6.5.2); a larger one
	// is answered 431. Zero means DefaultMaxHeaderBytes.
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
	// ExtendedConnect advertises SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC
	// 8441), so that clients open WebSockets as streams: an extended
	// CONNECT reaches the handler with Request.Protocol set, and the
	// response writer's Upgrade (message.Upgrader) makes the stream the
	// tunnel. Set it where a route can tunnel (a proxy).
	ExtendedConnect bool
	// ReadTimeout closes, with GOAWAY, a connection on which a stream
	// waits for request content and none has arrived for that long
	// (a client that opens streams and sends nothing holds them). Zero
	// means DefaultReadTimeout; negative, none.
	ReadTimeout time.Duration
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
	dates dateCache
}

var _ onloop.Protocol = (*LoopServer)(nil)

// Streams returns how many streams exist on all connections: open, or
// closed and waiting for their output or their handler to finish.
func (s *LoopServer) Streams() int { return int(s.live.Load()) }

// OnOpen starts serving a connection: it sends our SETTINGS and waits for
// the client preface.
func (s *LoopServer) OnOpen(c *onloop.Conn) {
	cn := newConn(s, c)
	c.SetContext(cn)
	cn.start()
}

// OnRead serves the frames in the input.
func (s *LoopServer) OnRead(c *onloop.Conn, in []byte) int {
	return c.Context().(*conn).read(in)
}

// OnWritable goes on sending what waited for the socket.
func (s *LoopServer) OnWritable(c *onloop.Conn) { c.Context().(*conn).writable() }

// OnTimeout acts on the connection's deadline.
func (s *LoopServer) OnTimeout(c *onloop.Conn) { c.Context().(*conn).timeout() }

// OnHangup closes a connection whose client went while reading was
// paused: nothing it asked for can reach it.
func (s *LoopServer) OnHangup(c *onloop.Conn) { c.Close() }

// OnDrain starts a graceful shutdown: GOAWAY, then close once the open
// streams are done.
func (s *LoopServer) OnDrain(c *onloop.Conn) { c.Context().(*conn).drain() }

// OnClose ends every stream still open.
func (s *LoopServer) OnClose(c *onloop.Conn, err error) { c.Context().(*conn).closed(err) }

func (s *LoopServer) maxConcurrentStreams() uint32 {
	return cmp.Or(s.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
}

func (s *LoopServer) maxReadFrameSize() uint32 {
	return cmp.Or(s.MaxReadFrameSize, DefaultMaxReadFrameSize)
}

func (s *LoopServer) maxHeaderBytes() int { return cmp.Or(s.MaxHeaderBytes, DefaultMaxHeaderBytes) }

func (s *LoopServer) idleTimeout() time.Duration { return positive(s.IdleTimeout, DefaultIdleTimeout) }

func (s *LoopServer) writeTimeout() time.Duration {
	return positive(s.WriteTimeout, DefaultWriteTimeout)
}

func (s *LoopServer) readTimeout() time.Duration { return positive(s.ReadTimeout, DefaultReadTimeout) }

func (s *LoopServer) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// dateCache formats the Date field once a second.
type dateCache struct {
	mu   sync.Mutex
	sec  int64
	text string
}

// get returns now in the Date field's format (RFC 9110 section 5.6.7).
func (d *dateCache) get(now time.Time) string {
	sec := now.Unix()
	d.mu.Lock()
	defer d.mu.Unlock()
	if sec != d.sec || d.text == "" {
		d.sec = sec
		d.text = now.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")
	}
	return d.text
}
