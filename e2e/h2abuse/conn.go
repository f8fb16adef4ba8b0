// Package h2abuse is an HTTP/2 client for attack tests: it speaks just
// enough HTTP/2 (golang.org/x/net/http2's Framer and hpack) to open a
// connection, over TLS with ALPN h2 or over plain TCP with prior knowledge
// (h2c), and then writes what a well-behaved client never would: rapid
// resets, floods of SETTINGS, PING, empty or CONTINUATION frames, HPACK
// bombs, frames that make the server reset streams, zero windows. A
// reader goroutine watches what the server answers (GOAWAY with its code
// and last stream id, RST_STREAM, responses, the connection's close) while
// the caller's goroutine writes and counts what it sent, so that a test
// can assert that an attack ends in GOAWAY or a close, or at a bounded
// cost.
//
// It imports nothing of anx: it is a client of the wire protocol only.
package h2abuse

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Options say how Dial sets a connection up. The zero value sends an
// empty SETTINGS frame and reads the server from the start.
type Options struct {
	// Settings go in the client's first SETTINGS frame.
	Settings []http2.Setting
	// ConnWindow, if positive, is added to the connection's receive
	// window by a WINDOW_UPDATE on stream 0 right after the SETTINGS.
	ConnWindow uint32
	// ReceiveBuffer, if positive, is the client socket's SO_RCVBUF, set
	// before connecting: a small one makes the server's answers back up
	// into its own buffers sooner when the client does not read.
	ReceiveBuffer int
	// NoRead leaves the socket unread after the handshake (a client
	// that lets the server's answers queue) until Drain is called.
	NoRead bool
	// WriteStall bounds a single write of frames: a write that makes no
	// progress for that long (the server stopped reading without closing)
	// ends the attack as Stalled. Zero means DefaultWriteStall.
	WriteStall time.Duration
}

// DefaultWriteStall is the WriteStall of a zero Options: a safety net of
// minutes, since a busy server may leave its socket unread for seconds.
const DefaultWriteStall = 2 * time.Minute

// handshakeTimeout bounds dialling, the TLS handshake and the wait for the
// server's first SETTINGS: a safety net for a slow machine.
const handshakeTimeout = 2 * time.Minute

// writeBuffer is the size of the buffer frames are gathered in before
// they are written to the socket.
const writeBuffer = 64 << 10

// Conn is one attacking HTTP/2 connection. The goroutine that called Dial
// owns the write side: the frame methods, Run, Fence, Flush, Drain and
// Close. The reader goroutine owns the read side and publishes what it saw
// under mu; Seen, Wait, SentFrames, SentBytes and ServerReleased may be
// called from any goroutine.
type Conn struct {
	nc net.Conn
	// Written by the writing goroutine only.
	bw         *bufio.Writer
	fr         *http2.Framer
	enc        *hpack.Encoder
	encBuf     []byte // the block enc writes into, reused
	nextStream uint32
	scheme     string     // :scheme of requests: "https" or "http" (h2c)
	block      *openBlock // the header block an attack left open, if any
	writeStall time.Duration
	// ServerSettings holds the server's first SETTINGS frame; set by
	// Dial, read-only afterwards.
	ServerSettings map[http2.SettingID]uint32

	ended  atomic.Bool  // set by the reader at a GOAWAY or the close
	frames atomic.Int64 // frames written, by the writing goroutine
	bytes  atomic.Int64 // bytes written to the socket, by the writing goroutine

	// The reader goroutine starts at Dial (or at Drain with NoRead),
	// exits when a read fails, and closes readerDone then.
	readOnce   sync.Once
	readerDone chan struct{}
	rfr        *http2.Framer // owned by the reader goroutine (by Dial before it starts)

	mu   sync.Mutex
	seen Seen // guarded by mu; written by the reader goroutine
	// changed is closed and replaced under mu each time seen changes, so
	// that waiters wake up on events instead of polling.
	changed chan struct{}
}

// Seen is what the server sent on the connection, as the reader
// goroutine saw it.
type Seen struct {
	GoAway       *GoAway // the first GOAWAY, or nil
	Closed       bool    // a read failed: EOF, reset, or a frame we could not parse
	CloseErr     error   // why the read failed
	ClosedAt     int64   // frames we had written when the read failed
	Resets       map[http2.ErrCode]int
	ResetIDs     map[uint32]http2.ErrCode // the streams the server reset, and how
	Statuses     map[string]int           // :status of response HEADERS, counted
	EndedStreams map[uint32]bool          // streams the server ended (END_STREAM)
	DataBytes    int64
	PingAcks     int
	Fences       int // PING ACKs carrying the fence payload (Fence)
	Frames       int // frames read
}

// GoAway is a GOAWAY frame the server sent.
type GoAway struct {
	Code         http2.ErrCode
	LastStreamID uint32
	Debug        string
	// AfterFrames is how many frames we had written when it arrived: an
	// upper bound of what the server took before sending it, since the
	// writer runs ahead of the server.
	AfterFrames int64
}

// DialTLS connects to addr over TLS with cfg (its NextProtos replaced by
// "h2"), checks that the server chose h2, and does the HTTP/2 handshake.
func DialTLS(addr string, cfg *tls.Config, o Options) (*Conn, error) {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{http2.NextProtoTLS}
	d := &tls.Dialer{NetDialer: dialer(o), Config: cfg}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("h2abuse: TLS dial %s: %w", addr, err)
	}
	if p := nc.(*tls.Conn).ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
		nc.Close()
		return nil, fmt.Errorf("h2abuse: ALPN: server chose %q, want %q", p, http2.NextProtoTLS)
	}
	return handshake(nc, "https", o)
}

// DialH2C connects to addr over plain TCP and speaks HTTP/2 with prior
// knowledge (h2c).
func DialH2C(addr string, o Options) (*Conn, error) {
	nc, err := dialer(o).Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("h2abuse: dial %s: %w", addr, err)
	}
	return handshake(nc, "http", o)
}

// dialer is the TCP dialer of o: the handshake's timeout, and o's
// receive buffer.
func dialer(o Options) *net.Dialer {
	d := &net.Dialer{Timeout: handshakeTimeout}
	if o.ReceiveBuffer > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			return setReceiveBuffer(rc, o.ReceiveBuffer)
		}
	}
	return d
}

// handshake writes the preface and the client's SETTINGS, reads up to the
// server's first SETTINGS, acknowledges it and, unless o.NoRead, starts
// the reader goroutine. It closes nc on failure.
func handshake(nc net.Conn, scheme string, o Options) (*Conn, error) {
	c := &Conn{
		nc:         nc,
		nextStream: 1,
		scheme:     scheme,
		writeStall: o.WriteStall,
		readerDone: make(chan struct{}),
		changed:    make(chan struct{}),
		seen: Seen{Resets: map[http2.ErrCode]int{}, ResetIDs: map[uint32]http2.ErrCode{},
			Statuses: map[string]int{}, EndedStreams: map[uint32]bool{}},
	}
	if c.writeStall <= 0 {
		c.writeStall = DefaultWriteStall
	}
	c.bw = bufio.NewWriterSize(countingWriter{c}, writeBuffer)
	c.fr = http2.NewFramer(c.bw, nil)
	c.fr.AllowIllegalWrites = true // WINDOW_UPDATE 0, frames on closed streams
	c.enc = hpack.NewEncoder(encoderSink{c})
	c.rfr = http2.NewFramer(nil, bufio.NewReaderSize(nc, 64<<10))
	c.rfr.SetMaxReadFrameSize(1<<24 - 1)
	c.rfr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.rfr.MaxHeaderListSize = 1 << 30
	if err := c.start(o); err != nil {
		nc.Close()
		return nil, err
	}
	if !o.NoRead {
		c.startReader()
	}
	return c, nil
}

// start does the handshake of handshake.
func (c *Conn) start(o Options) error {
	if err := c.nc.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return err
	}
	defer c.nc.SetDeadline(time.Time{})
	if _, err := c.bw.WriteString(http2.ClientPreface); err != nil {
		return fmt.Errorf("h2abuse: preface: %w", err)
	}
	if err := c.Settings(o.Settings...); err != nil {
		return err
	}
	if o.ConnWindow > 0 {
		if err := c.WindowUpdate(0, o.ConnWindow); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return err
	}
	settings, err := c.readServerSettings()
	if err != nil {
		return err
	}
	c.ServerSettings = settings
	c.frames.Add(1)
	if err := c.fr.WriteSettingsAck(); err != nil {
		return err
	}
	return c.Flush()
}

// readServerSettings reads frames until the server's first SETTINGS (not
// an ACK) and returns its values.
func (c *Conn) readServerSettings() (map[http2.SettingID]uint32, error) {
	for {
		f, err := c.rfr.ReadFrame()
		if err != nil {
			return nil, fmt.Errorf("h2abuse: waiting for the server's SETTINGS: %w", err)
		}
		sf, ok := f.(*http2.SettingsFrame)
		if !ok || sf.IsAck() {
			continue
		}
		settings := map[http2.SettingID]uint32{}
		_ = sf.ForeachSetting(func(s http2.Setting) error {
			settings[s.ID] = s.Val
			return nil
		})
		return settings, nil
	}
}

// MaxConcurrentStreams returns the server's SETTINGS_MAX_CONCURRENT_STREAMS,
// or 0 if it sent none (no limit).
func (c *Conn) MaxConcurrentStreams() uint32 {
	return c.ServerSettings[http2.SettingMaxConcurrentStreams]
}

// startReader starts the reader goroutine once.
func (c *Conn) startReader() {
	c.readOnce.Do(func() { go c.read() })
}

// read is the reader goroutine: it reads frames until a read fails,
// recording them in seen; it exits then and closes readerDone.
func (c *Conn) read() {
	defer close(c.readerDone)
	for {
		f, err := c.rfr.ReadFrame()
		if err != nil {
			c.update(func(s *Seen) {
				s.Closed, s.CloseErr, s.ClosedAt = true, err, c.frames.Load()
			})
			c.ended.Store(true)
			return
		}
		c.update(func(s *Seen) { s.record(f, c.frames.Load()) })
		if _, ok := f.(*http2.GoAwayFrame); ok {
			c.ended.Store(true)
		}
	}
}

// record adds f to s; sent is how many frames we had written.
func (s *Seen) record(f http2.Frame, sent int64) {
	s.Frames++
	switch f := f.(type) {
	case *http2.GoAwayFrame:
		if s.GoAway == nil {
			s.GoAway = &GoAway{Code: f.ErrCode, LastStreamID: f.LastStreamID, Debug: string(f.DebugData()), AfterFrames: sent}
		}
	case *http2.RSTStreamFrame:
		s.Resets[f.ErrCode]++
		s.ResetIDs[f.StreamID] = f.ErrCode
	case *http2.MetaHeadersFrame:
		if st := f.PseudoValue("status"); st != "" {
			s.Statuses[st]++
		}
		if f.StreamEnded() {
			s.EndedStreams[f.StreamID] = true
		}
	case *http2.DataFrame:
		s.DataBytes += int64(len(f.Data()))
		if f.StreamEnded() {
			s.EndedStreams[f.StreamID] = true
		}
	case *http2.PingFrame:
		if f.IsAck() {
			s.PingAcks++
			if f.Data == fencePayload {
				s.Fences++
			}
		}
	}
}

// update applies fn to seen under mu and wakes the waiters.
func (c *Conn) update(fn func(*Seen)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(&c.seen)
	close(c.changed)
	c.changed = make(chan struct{})
}

// Seen returns a copy of what the reader has seen so far. It may be
// called from any goroutine.
func (c *Conn) Seen() Seen {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.seen
	if s.GoAway != nil {
		g := *s.GoAway
		s.GoAway = &g
	}
	s.Resets = cloneMap(s.Resets)
	s.ResetIDs = cloneMap(s.ResetIDs)
	s.Statuses = cloneMap(s.Statuses)
	s.EndedStreams = cloneMap(s.EndedStreams)
	return s
}

// cloneMap copies m.
func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Wait blocks until cond holds of what the reader has seen, the reader
// has exited (the connection is closed) or timeout passes, and returns
// the last Seen and whether cond held. It may be called from any
// goroutine.
func (c *Conn) Wait(timeout time.Duration, cond func(Seen) bool) (Seen, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok, closed, changed := cond(c.seen), c.seen.Closed, c.changed
		c.mu.Unlock()
		if ok || closed {
			return c.Seen(), ok
		}
		select {
		case <-changed:
		case <-deadline.C:
			return c.Seen(), false
		}
	}
}

// Ended reports whether the server ended the connection: a GOAWAY or a
// failed read.
func (s Seen) Ended() bool { return s.GoAway != nil || s.Closed }

// SentFrames returns how many frames have been written so far.
func (c *Conn) SentFrames() int64 { return c.frames.Load() }

// SentBytes returns how many bytes have been written to the socket.
func (c *Conn) SentBytes() int64 { return c.bytes.Load() }

// LocalAddr is the client's end of the connection.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr is the server's end of the connection.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Drain starts reading a NoRead connection (a no-op otherwise): what the
// server queued is read and recorded from now on.
func (c *Conn) Drain() { c.startReader() }

// Close closes the socket and waits for the reader goroutine, if it ran,
// to exit.
func (c *Conn) Close() error {
	err := c.nc.Close()
	c.readOnce.Do(func() { close(c.readerDone) }) // never started: nothing to wait for
	select {
	case <-c.readerDone:
		return err
	case <-time.After(handshakeTimeout):
		return errors.New("h2abuse: reader did not exit after close")
	}
}

// countingWriter writes to the socket under the stall deadline and
// counts the bytes written.
type countingWriter struct{ c *Conn }

func (w countingWriter) Write(p []byte) (int, error) {
	if err := w.c.nc.SetWriteDeadline(time.Now().Add(w.c.writeStall)); err != nil {
		return 0, err
	}
	n, err := w.c.nc.Write(p)
	w.c.bytes.Add(int64(n))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: %w", ErrStalled, err)
	}
	return n, err
}

// ErrStalled wraps the error of a write that made no progress for
// Options.WriteStall: the server stopped reading without closing.
var ErrStalled = errors.New("h2abuse: write stalled")

// encoderSink appends what the HPACK encoder writes to the Conn's block.
type encoderSink struct{ c *Conn }

func (s encoderSink) Write(p []byte) (int, error) {
	s.c.encBuf = append(s.c.encBuf, p...)
	return len(p), nil
}
