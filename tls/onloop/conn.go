package onloop

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/anx-gateway/anx/core/netpoll"
)

// The lingering close (Conn.CloseWrite).
const (
	// LingerTimeout is the longest a lingering close reads and drops.
	LingerTimeout = 2 * time.Second
	// LingerBytes is the most a lingering close reads and drops.
	LingerBytes = 256 << 10
)

// errBusy is Detach's error while the layer still holds the connection's
// output or decrypted input.
var errBusy = errors.New("onloop: Detach with output or input still held")

// Conn is a connection as a Protocol sees it: plaintext output, and the
// loop connection below for everything that does not depend on the bytes
// (deadlines, Submit, addresses). Owned by the loop's goroutine, except
// while detached (Detach), when the goroutine serving it owns it.
type Conn struct {
	nc       *netpoll.Conn
	h        *Handler
	proto    Protocol // nil while the layer has not decided
	ctx      any      // the protocol's state (SetContext)
	*tlsConn          // nil on a plain connection
	lingered int32    // bytes dropped while lingering
	flags    connFlags
	gauge    *connGauge // the Handler's count it is in (stats.go); nil once closed or detached
}

// connFlags are a connection's state bits in the layer.
type connFlags uint8

const (
	flagPaused    connFlags = 1 << iota // the protocol paused reading (Pause)
	flagLingering                       // CloseWrite: reading and dropping until the peer's EOF
	flagReading                         // readTLS is running: a Resume then only asks it to go on
	flagReadAgain                       // Resume came during readTLS: read the kept input again
)

// Net returns the loop connection below: for SetTimeout, Now, Progress,
// Submit, Closed, Timeout, Loop and the addresses. Its Write, Writev,
// SendFile, Close, CloseWrite, Pause, Resume, Detach, Attach and
// SetContext are the layer's: use Conn's.
func (c *Conn) Net() *netpoll.Conn { return c.nc }

// Context returns the value set by SetContext.
func (c *Conn) Context() any { return c.ctx }

// SetContext keeps the protocol's state with the connection.
func (c *Conn) SetContext(v any) { c.ctx = v }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.nc.RemoteAddr() }

// TLS reports whether the connection is encrypted. Safe from the
// goroutine of a detached connection.
func (c *Conn) TLS() bool { return c.tlsConn != nil }

// ServerName returns the server name a TLS client sent (SNI), or "".
func (c *Conn) ServerName() string {
	if c.tlsConn == nil {
		return ""
	}
	return c.serverName
}

// ALPN returns the protocol ALPN chose for a TLS connection, or "".
func (c *Conn) ALPN() string {
	if c.tlsConn == nil {
		return ""
	}
	return c.alpn
}

// TLSVersion returns the TLS version of the connection (tls.VersionTLS13,
// ...), or 0 for a plain one.
func (c *Conn) TLSVersion() uint16 {
	if c.tlsConn == nil {
		return 0
	}
	return c.version
}

// ConnectionState returns the state of a TLS connection; the zero value
// for a plain one.
func (c *Conn) ConnectionState() tls.ConnectionState {
	if c.tlsConn == nil {
		return tls.ConnectionState{}
	}
	return c.tc.ConnectionState()
}

// Write sends p (encrypted over TLS), queuing what the socket does not
// take; it never reports would-block, as netpoll.Conn.Write. Behind a TLS
// file body it waits its turn on the backlog.
func (c *Conn) Write(p []byte) error {
	t := c.tlsConn
	switch {
	case t == nil:
		return c.nc.Write(p)
	case t.backlog != nil:
		t.backlog.addBytes(p)
		return nil
	}
	_, err := t.tc.Write(p)
	return err
}

// Writev sends bufs in order, as Write.
func (c *Conn) Writev(bufs [][]byte) error {
	if c.tlsConn == nil {
		return c.nc.Writev(bufs)
	}
	for _, b := range bufs {
		if err := c.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// SendFile sends n bytes of f from off after the output queued before it:
// on a plain connection by sendfile (netpoll.Conn.SendFile), over TLS by
// the backlog's pump, which keeps a duplicate of f (the caller may close
// f when SendFile returns).
func (c *Conn) SendFile(f *os.File, off, n int64) error {
	if c.tlsConn == nil {
		return c.nc.SendFile(f, off, n)
	}
	if err := c.queueFile(f, off, n); err != nil {
		return err
	}
	c.pump()
	return nil
}

// Buffered returns the bytes of output queued and not yet sent: in the
// socket's stead, and on the TLS backlog (file regions included). A
// protocol stops producing output while it is large, and resumes in
// OnWritable.
func (c *Conn) Buffered() int64 {
	n := c.nc.Buffered()
	if t := c.tlsConn; t != nil && t.backlog != nil {
		n += t.backlog.size()
	}
	return n
}

// Queued returns the bytes of output held in memory: as Buffered, without
// the file regions waiting to be sent.
func (c *Conn) Queued() int {
	n := c.nc.Queued()
	if t := c.tlsConn; t != nil && t.backlog != nil {
		n += t.backlog.bytes
	}
	return n
}

// Kept returns the bytes of input the protocol left unconsumed, which
// come again with the next OnRead (after Resume, if paused).
func (c *Conn) Kept() int {
	n := c.nc.Kept()
	if t := c.tlsConn; t != nil {
		n += t.plainN
	}
	return n
}

// Pause stops reading: no OnRead until Resume. Over TLS a close_notify
// or a bad record that came with the last input waits too: it ends the
// connection once reading resumes.
func (c *Conn) Pause() {
	c.flags |= flagPaused
	c.nc.Pause()
}

// Resume reads again: the input kept (decrypted or not) comes again to
// OnRead, over TLS before Resume returns, on a plain connection from the
// loop.
func (c *Conn) Resume() {
	c.flags &^= flagPaused
	c.nc.Resume()
	if c.tlsConn != nil && c.proto != nil && !c.nc.Closed() {
		c.readTLS(nil)
	}
}

// Close closes the connection once its queued output is sent: over TLS
// after the backlog and a close_notify alert.
func (c *Conn) Close() error {
	if c.closeAfterBacklog(closeNotify) {
		return nil
	}
	if c.tlsConn != nil && c.proto != nil {
		return c.tc.Close() // close_notify, then the TLSConn closes the loop connection
	}
	return c.nc.Close()
}

// CloseWrite closes the connection by a lingering close: it sends the
// queued output (over TLS the backlog, then a close_notify alert), then a
// FIN, then reads and drops what the peer still sends until its EOF, for
// up to LingerTimeout or LingerBytes, before it closes. Closing with
// unread input makes the kernel reset the connection, which can destroy
// the response before the peer reads it (RFC 9112 section 9.6; nginx's
// lingering_close). The protocol gets no more OnRead, OnWritable,
// OnTimeout, OnHangup or OnDrain once Lingering reports true, only
// OnClose.
func (c *Conn) CloseWrite() {
	c.dropPlain() // the requests behind are not answered
	if c.closeAfterBacklog(closeLinger) {
		return
	}
	c.linger()
}

// Lingering reports whether the connection is in its lingering close
// (CloseWrite): false while a TLS backlog still goes out before it.
func (c *Conn) Lingering() bool { return c.flags&flagLingering != 0 }

// linger starts the lingering close.
func (c *Conn) linger() {
	if c.tlsConn != nil && c.proto != nil {
		c.tc.CloseWrite() // close_notify
	}
	c.flags |= flagLingering
	c.dropPlain()
	c.nc.CloseWrite()
	c.nc.SetTimeout(LingerTimeout)
	if c.flags&flagPaused != 0 {
		c.flags &^= flagPaused
		c.nc.Resume() // reading and dropping
	}
}

// drop counts n bytes read and dropped while lingering.
func (c *Conn) drop(n int) {
	if c.lingered += int32(min(n, LingerBytes)); c.lingered >= LingerBytes {
		c.nc.Close()
	}
}

// Detach takes the connection off the loop (netpoll.Conn.Detach) for a
// goroutine that serves it with blocking I/O, and returns the plaintext
// net.Conn to serve it with: the *tls.Conn over TLS. Call it on the loop,
// outside OnRead, with no output queued (Buffered is 0: wait for
// OnWritable) and no input kept. Give the connection back with Attach,
// or close the net.Conn to close it (over TLS; a plain one is closed by
// Attach with a then that calls Close).
func (c *Conn) Detach() (net.Conn, error) {
	if c.Buffered() > 0 || c.Kept() > 0 {
		return nil, errBusy
	}
	c.flags &^= flagPaused // netpoll's Detach unpauses
	if t := c.tlsConn; t != nil {
		if err := t.raw.Detach(); err != nil {
			return nil, err
		}
		return t.tc, nil
	}
	return c.nc.Detach()
}

// Attach gives a detached connection back to its loop, then runs then
// there; over TLS, the plaintext crypto/tls already holds comes to OnRead
// after then. nc is what Detach returned. Call it from the goroutine that
// served the connection, with no call on nc in progress.
func (c *Conn) Attach(nc net.Conn, then func()) error {
	t := c.tlsConn
	if t == nil {
		return c.nc.Attach(nc, then)
	}
	t.then = then
	if t.attached == nil {
		t.attached = c.reattached
	}
	return t.raw.Attach(t.attached)
}

// reattached runs on the loop when a detached TLS connection is back: the
// protocol's then, and the input crypto/tls holds.
func (c *Conn) reattached() {
	then := c.then
	c.then = nil
	if then != nil {
		then()
	}
	if c.proto != nil && !c.nc.Closed() && c.flags&flagLingering == 0 {
		c.readTLS(nil)
	}
}

// errNotPrepared is Warm's error on a Handler that Prepare did not ready.
var errNotPrepared = errors.New("onloop: Handler not prepared: no file workers")

// Warm has one of the server's file workers read n bytes of f from off
// into the page cache, then runs done on the loop (netpoll.Server.Warm):
// a protocol that finds a file region cold (netpoll.ErrWouldBlock) waits
// for it so, instead of reading it on the loop. It fails when the workers
// are behind (netpoll.ErrWarmQueueFull) or Prepare was not called.
func (c *Conn) Warm(f *os.File, off, n int64, done func(error)) error {
	if c.h.srv == nil {
		return errNotPrepared
	}
	return c.h.srv.Warm(c.nc, f, off, n, done)
}

// WriteMore is Write with MSG_MORE on a plain connection.
func (c *Conn) WriteMore(p []byte) error {
	if c.tlsConn == nil {
		return c.nc.WriteMore(p)
	}
	return c.Write(p)
}
