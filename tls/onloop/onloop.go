// Package onloop is the connection layer between core/netpoll's event
// loops and the HTTP protocols: it takes each accepted connection, plain
// or TLS, finds out which protocol it speaks and hands it to that
// protocol's Protocol on the same loop, with plaintext in and out. The
// protocols (h1, h2) never see whether their bytes were encrypted.
//
// A plain connection goes to Handler.Plain, unless its first bytes are the
// HTTP/2 client preface, in which case it goes to Handler.PriorKnowledge
// (h2c with prior knowledge, RFC 9113 section 3.3) with the preface still
// unread.
//
// # TLS
//
// With Handler.TLSConfig set, every connection is TLS. The handshake runs
// off the loop, on a goroutine of its own (netpoll.TLSConn), which starts
// with the first bytes of the ClientHello, so that a client that sends
// nothing holds none; at most MaxHandshakes run at once (each loop has
// its share), and a connection past the bound waits, paused, first come
// first served, its HandshakeTimeout running. Once the handshake is done
// the connection is back on its loop, where its records are decrypted as
// they arrive, into a buffer the loop shares among its connections, and
// handed to the Protocol that ALPN chose (Handler.Protocols; a connection
// without ALPN, or with a protocol missing there, goes to "http/1.1").
// What the protocol does not consume is kept, copied into a buffer from
// core/pool, and comes again with more. An idle TLS connection holds no
// goroutine and no buffer of the layer's (crypto/tls keeps its own).
//
// Output is encrypted as it is written (Conn.Write). A file body
// (Conn.SendFile) cannot go by sendfile over TLS: it waits on the
// connection's backlog, with the bytes written after it, and a pump reads,
// encrypts and sends it as the socket takes it, reading cold file regions
// on netpoll's file workers first (Server.Warm) so that the loop never
// waits for the disk. Closing waits for the backlog: the close_notify
// alert must follow the response.
//
// A protocol served off the loop (acme-tls/1, whose connections only
// close once the handshake has answered the CA) gets its connections from
// Handler.Detached, on a goroutine, as a *tls.Conn.
//
// Everything here runs on the loop's goroutine, as netpoll's callbacks do,
// unless said otherwise.
package onloop

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"log/slog"
	"math"
	"time"

	"github.com/anx-gateway/anx/core/netpoll"
)

// Preface is the HTTP/2 client connection preface (RFC 9113 section 3.4).
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Defaults of the Handler's settings.
const (
	// DefaultFirstBytesTimeout is Handler.FirstBytesTimeout's default.
	DefaultFirstBytesTimeout = 10 * time.Second
	// DefaultHandshakeTimeout is Handler.HandshakeTimeout's default.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxHandshakes is Handler.MaxHandshakes's default: each
	// handshake holds a goroutine with 15 to 25 KiB of state, so about
	// 100 MiB at most.
	DefaultMaxHandshakes = 4096
)

// Protocol serves one application protocol on the connections the layer
// hands it. Its methods run on the connection's loop goroutine, one at a
// time per loop, and must not block, as netpoll.Handler's.
type Protocol interface {
	// OnOpen is called once when the connection is the protocol's: at
	// once for a plain connection, after the handshake for TLS.
	OnOpen(c *Conn)
	// OnRead is called with the plaintext the protocol has not consumed
	// followed by what just arrived; it returns how many bytes it
	// consumed, and the rest comes again with more.
	OnRead(c *Conn, in []byte) int
	// OnWritable is called when output that had to be queued (Buffered)
	// has all been sent.
	OnWritable(c *Conn)
	// OnTimeout is called when the deadline set with Net().SetTimeout
	// passes; the protocol closes the connection or sets a new deadline.
	OnTimeout(c *Conn)
	// OnHangup is called when the peer of a paused connection sends a
	// FIN or a reset (netpoll.HangupHandler).
	OnHangup(c *Conn)
	// OnDrain is called once when Shutdown begins; the protocol closes the
	// connection at once or once the work in flight is done.
	OnDrain(c *Conn)
	// OnClose is called once when the connection has closed, with the
	// reason as netpoll.Handler.OnClose gets it.
	OnClose(c *Conn, err error)
}

// Handler is the netpoll.Handler of a listener: it gives each connection
// to its Protocol. The zero value refuses every connection; set the
// fields before the loops start and do not change them after. With
// TLSConfig set, call Prepare before the netpoll.Server starts.
type Handler struct {
	// Plain serves plain connections that do not start with the HTTP/2
	// preface (HTTP/1.1). Nil closes them.
	Plain Protocol
	// PriorKnowledge serves plain connections that start with the
	// HTTP/2 preface (h2c). Nil gives them to Plain.
	PriorKnowledge Protocol
	// FirstBytesTimeout bounds the wait for the bytes that choose between
	// Plain and PriorKnowledge; zero means DefaultFirstBytesTimeout.
	FirstBytesTimeout time.Duration

	// TLSConfig makes every connection TLS; nil means plain.
	TLSConfig *tls.Config
	// HandshakeTimeout bounds a TLS handshake, from the accept until the
	// connection is its protocol's. Zero means DefaultHandshakeTimeout;
	// negative, none.
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the TLS handshakes in flight, divided evenly
	// among the loops (at least one each): a connection past its loop's
	// share waits, paused, for a slot. Zero means DefaultMaxHandshakes;
	// negative, no bound.
	MaxHandshakes int
	// Protocols serves TLS connections on the loop by the protocol ALPN
	// chose ("http/1.1", "h2"). A connection without ALPN, or whose
	// protocol is neither here nor in Detached, goes to "http/1.1"; with
	// none there, it closes.
	Protocols map[string]Protocol
	// Detached serves TLS connections by ALPN protocol off the loop: the
	// function runs on a goroutine of its own with the connection, which
	// it owns until it closes it. Protocols is asked first; "http/1.1"
	// here is ignored.
	Detached map[string]func(*tls.Conn)
	// Logger receives what went wrong with a connection: Debug for what
	// clients did (a failed handshake, a bad record), Error for ours (a
	// file shorter than its response). Nil discards it.
	Logger *slog.Logger

	srv    *netpoll.Server // for Warm; set by Prepare
	states []loopState     // by loop index; made by Prepare
	counts counters        // connections and handshakes, for Stats
}

// loopState is what one loop shares among its TLS connections. Used by
// that loop's goroutine only.
type loopState struct {
	plain      []byte  // decrypted input; grows as needed, kept (up to maxKeptPlain)
	handshakes int     // TLS handshakes in flight
	waiting    []*Conn // connections waiting for a handshake slot, first come first served
}

// Prepare readies the handler for the loops of srv, whose Handler it is:
// the per-loop state of TLS, and the file workers that warm the cold file
// regions of TLS file bodies. Call it before srv.Start, once srv's Loops
// is final.
func (h *Handler) Prepare(srv *netpoll.Server) {
	h.srv = srv
	h.states = make([]loopState, srv.LoopCount())
}

// state returns the per-loop state of nc's loop.
func (h *Handler) state(nc *netpoll.Conn) *loopState { return &h.states[nc.Loop().Index()] }

// handshakeTimeout returns the handshake's deadline, or 0 for none.
func (h *Handler) handshakeTimeout() time.Duration {
	d := h.HandshakeTimeout
	switch {
	case d == 0:
		return DefaultHandshakeTimeout
	case d < 0:
		return 0
	}
	return d
}

// maxHandshakesPerLoop is each loop's share of MaxHandshakes.
func (h *Handler) maxHandshakesPerLoop() int {
	n := h.MaxHandshakes
	switch {
	case n < 0:
		return math.MaxInt
	case n == 0:
		n = DefaultMaxHandshakes
	}
	return max(1, n/len(h.states))
}

// debug logs what a client did wrong, when a Logger is set.
func (h *Handler) debug(msg string, args ...any) {
	if h.Logger != nil {
		h.Logger.Debug(msg, args...)
	}
}

// logError logs a failure of ours, when a Logger is set.
func (h *Handler) logError(msg string, args ...any) {
	if h.Logger != nil {
		h.Logger.Error(msg, args...)
	}
}

// OnOpen starts a connection: a TLS handshake, or the wait for the first
// bytes that choose the protocol, unless there is no choice.
func (h *Handler) OnOpen(nc *netpoll.Conn) {
	c := &Conn{nc: nc, h: h}
	nc.SetContext(c)
	c.track(&h.counts.choosing)
	if h.TLSConfig != nil {
		raw := netpoll.NewTLSConn(nc)
		c.tlsConn = &tlsConn{raw: raw, tc: tls.Server(raw, h.TLSConfig)}
		nc.SetTimeout(h.handshakeTimeout())
		return
	}
	if h.PriorKnowledge == nil {
		h.start(c, h.Plain)
		return
	}
	nc.SetTimeout(cmp.Or(h.FirstBytesTimeout, DefaultFirstBytesTimeout))
}

// start hands c to p, or closes it when p is nil.
func (h *Handler) start(c *Conn, p Protocol) {
	if p == nil {
		c.nc.Close()
		return
	}
	c.proto = p
	c.track(h.protocolGauge(c, p))
	p.OnOpen(c)
}

// OnRead passes input to the connection's protocol (decrypted, over
// TLS), choosing the protocol first if not yet chosen.
func (h *Handler) OnRead(nc *netpoll.Conn, in []byte) int {
	c := nc.Context().(*Conn)
	switch {
	case c.flags&flagLingering != 0:
		c.drop(len(in))
		return len(in)
	case c.tlsConn != nil:
		if c.proto == nil {
			return c.handshakeInput(in)
		}
		return c.readTLS(in)
	case c.proto == nil:
		p, known := h.sniff(in)
		if !known {
			return 0 // a prefix of the preface: wait for more
		}
		h.start(c, p)
		if c.proto == nil || nc.Closed() {
			return len(in)
		}
	}
	return c.proto.OnRead(c, in)
}

// sniff chooses the protocol of a plain connection from its first bytes;
// it reports false while they do not tell yet. The preface goes to
// PriorKnowledge, and so does a first line of three words whose last is
// no HTTP version at all ("INVALID CONNECTION PREFACE"): such a client
// speaks no HTTP/1.x, and HTTP/2 answers a bad preface with GOAWAY
// (RFC 9113 section 3.4), where an HTTP/1.1 400 would be read as a frame.
// Everything else, malformed HTTP/1.x included, goes to Plain.
func (h *Handler) sniff(in []byte) (Protocol, bool) {
	n := min(len(in), len(Preface))
	if string(in[:n]) == Preface[:n] {
		if n < len(Preface) {
			return nil, false
		}
		return h.PriorKnowledge, true
	}
	line, _, complete := bytes.Cut(in, []byte("\n"))
	switch {
	case !complete && len(in) < maxSniffLine:
		return nil, false
	case complete && notHTTP1(line):
		return h.PriorKnowledge, true
	}
	return h.Plain, true
}

// maxSniffLine is how much of a first line sniff waits for.
const maxSniffLine = 8 << 10

// notHTTP1 reports whether a first line has three words and the last does
// not begin with "HTTP/" in any case.
func notHTTP1(line []byte) bool {
	words := bytes.Fields(line) // a CR before the LF goes with the spaces
	if len(words) != 3 {
		return false
	}
	v := words[2]
	return len(v) < 5 || !bytes.EqualFold(v[:5], []byte("HTTP/"))
}

// OnWritable sends more of a TLS backlog, or goes on with a hand-off to
// Detached, and passes the event on once all output has gone out.
func (h *Handler) OnWritable(nc *netpoll.Conn) {
	c := nc.Context().(*Conn)
	if c.flags&flagLingering != 0 {
		return
	}
	if t := c.tlsConn; t != nil {
		if t.serve != nil {
			c.tryHandOff()
			return
		}
		if t.backlog != nil {
			c.pump()
			if c.Buffered() > 0 || nc.Closed() || c.flags&flagLingering != 0 {
				return
			}
		}
	}
	if c.proto != nil {
		c.proto.OnWritable(c)
	}
}

// OnTimeout passes the event on; before a protocol is chosen (the
// handshake, the first bytes) and while lingering, a timeout closes the
// connection.
func (h *Handler) OnTimeout(nc *netpoll.Conn) {
	c := nc.Context().(*Conn)
	switch {
	case c.flags&flagLingering != 0:
		nc.Close()
	case c.proto == nil:
		nc.Timeout()
	default:
		c.proto.OnTimeout(c)
	}
}

// OnHangup passes the event on.
func (h *Handler) OnHangup(nc *netpoll.Conn) {
	if c := nc.Context().(*Conn); c.proto != nil && c.flags&flagLingering == 0 {
		c.proto.OnHangup(c)
	}
}

// OnDrain passes the event on; a connection without a protocol closes,
// unless it is being handed to Detached, and a lingering one finishes.
func (h *Handler) OnDrain(nc *netpoll.Conn) {
	c := nc.Context().(*Conn)
	switch {
	case c.flags&flagLingering != 0:
	case c.proto != nil:
		c.proto.OnDrain(c)
	case c.tlsConn == nil || c.tlsConn.serve == nil:
		nc.Close()
	}
}

// OnClose passes the event on and gives back what the connection holds.
func (h *Handler) OnClose(nc *netpoll.Conn, err error) {
	c := nc.Context().(*Conn)
	c.track(nil)
	if c.proto != nil {
		c.proto.OnClose(c, err)
	}
	if t := c.tlsConn; t != nil {
		if t.handshake == handshakeNotStarted {
			h.countSilent(err)
		}
		t.raw.CloseInput(err) // ends a handshake's wait
		c.dropPlain()
		if t.backlog != nil {
			t.backlog.release()
			t.backlog = nil
		}
	}
}
