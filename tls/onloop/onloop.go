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
// Everything here runs on the loop's goroutine, as netpoll's callbacks do.
package onloop

import (
	"cmp"
	"net/netip"
	"os"
	"time"

	"github.com/anx-gateway/anx/core/netpoll"
)

// Preface is the HTTP/2 client connection preface (RFC 9113 section 3.4).
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

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
	// OnWritable is called when output that had to be queued has all
	// been sent.
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

// Conn is a connection as a Protocol sees it: plaintext output, and the
// loop connection below for everything that does not depend on the bytes
// (pausing, deadlines, Submit, addresses). Owned by the loop's goroutine.
type Conn struct {
	nc    *netpoll.Conn
	proto Protocol // nil while the layer has not decided
	ctx   any      // the protocol's state (SetContext)
}

// Net returns the loop connection below: for Pause, Resume, SetTimeout,
// Now, Progress, Submit, Closed and the addresses. Its own Write, Writev,
// SendFile, Close and SetContext are the layer's: use Conn's.
func (c *Conn) Net() *netpoll.Conn { return c.nc }

// Context returns the value set by SetContext.
func (c *Conn) Context() any { return c.ctx }

// SetContext keeps the protocol's state with the connection.
func (c *Conn) SetContext(v any) { c.ctx = v }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.nc.RemoteAddr() }

// TLS reports whether the connection is encrypted.
func (c *Conn) TLS() bool { return false }

// ServerName returns the server name a TLS client sent (SNI), or "".
func (c *Conn) ServerName() string { return "" }

// Write sends p (encrypted over TLS), queuing what the socket does not
// take; it never reports would-block, as netpoll.Conn.Write.
func (c *Conn) Write(p []byte) error { return c.nc.Write(p) }

// Writev sends bufs in order, as Write.
func (c *Conn) Writev(bufs [][]byte) error { return c.nc.Writev(bufs) }

// SendFile sends n bytes of f from off after the output queued before it,
// as netpoll.Conn.SendFile.
func (c *Conn) SendFile(f *os.File, off, n int64) error { return c.nc.SendFile(f, off, n) }

// Buffered returns the bytes of output queued and not yet sent.
func (c *Conn) Buffered() int64 { return c.nc.Buffered() }

// Close closes the connection once its queued output is sent.
func (c *Conn) Close() error { return c.nc.Close() }

// Handler is the netpoll.Handler of a listener: it gives each connection
// to its Protocol. The zero value refuses every connection; set the
// protocols before the loops start and do not change them after.
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
}

// DefaultFirstBytesTimeout is Handler.FirstBytesTimeout's default.
const DefaultFirstBytesTimeout = 10 * time.Second

// OnOpen starts a connection: it waits for the first bytes to choose
// the protocol, unless there is no choice.
func (h *Handler) OnOpen(nc *netpoll.Conn) {
	c := &Conn{nc: nc}
	nc.SetContext(c)
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
	p.OnOpen(c)
}

// OnRead passes input to the connection's protocol, choosing it first by
// the preface if not yet chosen.
func (h *Handler) OnRead(nc *netpoll.Conn, in []byte) int {
	c := nc.Context().(*Conn)
	if c.proto == nil {
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
// it reports false while they are a proper prefix of the preface.
func (h *Handler) sniff(in []byte) (Protocol, bool) {
	n := min(len(in), len(Preface))
	if string(in[:n]) != Preface[:n] {
		return h.Plain, true
	}
	if n < len(Preface) {
		return nil, false
	}
	return h.PriorKnowledge, true
}

// OnWritable passes the event on.
func (h *Handler) OnWritable(nc *netpoll.Conn) {
	if c := nc.Context().(*Conn); c.proto != nil {
		c.proto.OnWritable(c)
	}
}

// OnTimeout passes the event on; before a protocol is chosen, a timeout
// closes the connection.
func (h *Handler) OnTimeout(nc *netpoll.Conn) {
	c := nc.Context().(*Conn)
	if c.proto == nil {
		nc.Timeout()
		return
	}
	c.proto.OnTimeout(c)
}

// OnHangup passes the event on.
func (h *Handler) OnHangup(nc *netpoll.Conn) {
	if c := nc.Context().(*Conn); c.proto != nil {
		c.proto.OnHangup(c)
	}
}

// OnDrain passes the event on; a connection without a protocol closes.
func (h *Handler) OnDrain(nc *netpoll.Conn) {
	c := nc.Context().(*Conn)
	if c.proto == nil {
		nc.Close()
		return
	}
	c.proto.OnDrain(c)
}

// OnClose passes the event on.
func (h *Handler) OnClose(nc *netpoll.Conn, err error) {
	if c := nc.Context().(*Conn); c.proto != nil {
		c.proto.OnClose(c, err)
	}
}
