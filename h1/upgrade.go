package h1

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Errors of Upgrade.
var (
	errUpgradeNotAsked = errors.New("h1: Upgrade of a request without Connection: upgrade and Upgrade over HTTP/1.1")
	errUpgradeOnLoop   = errors.New("h1: Upgrade from a handler on the event loop (a NonBlocking handler cannot take the connection)")
	errUpgradeStarted  = errors.New("h1: Upgrade after the response started")
	errUpgradeBody     = errors.New("h1: Upgrade before the request content was read to its end")
	errUpgradeNoField  = errors.New("h1: Upgrade without an Upgrade field in the response header")
)

// Upgrade switches protocols (message.Upgrader, RFC 9110 section 7.8): it
// writes "101 Switching Protocols" with the handler's fields (its Upgrade
// field is required; h1 writes "Connection: Upgrade"), flushes it and hands
// the connection over. It serves only an HTTP/1.1 request that carried
// "Connection: upgrade" and an Upgrade field, whose content (if any) has
// been read to its end, before the response has started, on a goroutine:
// a handler running on an event loop gets an error (it must not block, and
// a tunnel does).
//
// The returned net.Conn reads first the bytes the client sent after the
// request that h1 had already received, then the socket; it writes to the
// socket (or the TLS connection) directly; its deadlines are cleared. Over
// plain TCP it implements io.WriterTo and io.ReaderFrom on the
// *net.TCPConn, so that io.Copy to or from another TCP connection splices.
// h1 serves the connection no more: the handler owns it and must close
// it, which closes the client connection. Until then the server counts
// it as a connection in use: Shutdown waits for it (until its context
// ends, when it closes it) and Close closes it.
func (r *response) Upgrade() (net.Conn, error) {
	c := r.c
	switch {
	case c.req.ProtoMinor != 1 || !c.info.upgrade || !c.req.Header.Has("Upgrade"):
		return nil, errUpgradeNotAsked
	case c.loop != nil:
		return nil, errUpgradeOnLoop
	case r.committed:
		return nil, errUpgradeStarted
	case c.body.err != io.EOF:
		return nil, errUpgradeBody
	case !r.header.Has("Upgrade"):
		return nil, errUpgradeNoField
	}
	r.mu.Lock()
	r.committed, r.status, r.closeAfter = true, 101, true
	c.body.expect = false
	r.mu.Unlock()
	h := r.scanHeader()
	o := &c.out
	o.write(statusLine(o.scratch[:0], 101))
	if !h.date {
		o.writeString(c.srv.dates.Line(time.Now()))
	}
	if !h.server {
		o.writeString("Server: anx\r\n")
	}
	r.writeFields()
	o.writeString("Connection: Upgrade\r\n\r\n")
	if err := o.flush(); err != nil {
		r.aborted = true
		return nil, err
	}
	r.upgraded = true
	return c.hijack(), nil
}

// hijack hands the connection to the handler as a tunnel, with the input
// already received after the request head.
func (c *conn) hijack() *tunnel {
	t := &tunnel{Conn: c.nc, tcp: c.tcp, c: c}
	if c.rbuf != nil && c.r < c.w {
		t.pre = append([]byte(nil), (*c.rbuf)[c.r:c.w]...)
		c.r = c.w
	}
	c.nc.SetDeadline(time.Time{})
	return t
}

// tunnel is the client connection after Upgrade: the handler's. Its
// reading side (Read, WriteTo) belongs to one goroutine at a time, its
// writing side (Write, ReadFrom) to one at a time, and Close may be called
// from any goroutine, any number of times.
type tunnel struct {
	net.Conn              // the client connection: a *net.TCPConn, or a *tls.Conn
	tcp      *net.TCPConn // Conn as a plain TCP connection; nil over TLS
	c        *conn        // what h1 served the connection as; Close ends it
	pre      []byte       // input received after the request head, read first

	once     sync.Once
	closeErr error
}

var (
	_ io.WriterTo   = (*tunnel)(nil)
	_ io.ReaderFrom = (*tunnel)(nil)
)

// Read reads what the client sends: the input received with the request
// first.
func (t *tunnel) Read(p []byte) (int, error) {
	if len(t.pre) > 0 {
		n := copy(p, t.pre)
		t.pre = t.pre[n:]
		return n, nil
	}
	return t.Conn.Read(p)
}

// WriteTo copies what the client sends to w until EOF: the input received
// with the request first, then, over plain TCP, by w's ReadFrom on the
// *net.TCPConn, which splices when w is a TCP connection.
func (t *tunnel) WriteTo(w io.Writer) (int64, error) {
	var n int64
	if len(t.pre) > 0 {
		k, err := w.Write(t.pre)
		n += int64(k)
		t.pre = t.pre[k:]
		if err != nil {
			return n, err
		}
	}
	var m int64
	var err error
	rf, isReaderFrom := w.(io.ReaderFrom)
	switch {
	case t.tcp != nil && isReaderFrom:
		m, err = rf.ReadFrom(t.tcp)
	case t.tcp != nil:
		m, err = t.tcp.WriteTo(w)
	default:
		m, err = io.Copy(w, readerOnly{t.Conn})
	}
	return n + m, err
}

// ReadFrom copies r to the client until EOF: over plain TCP by the
// *net.TCPConn's ReadFrom, which splices when r is a TCP connection.
func (t *tunnel) ReadFrom(r io.Reader) (int64, error) {
	if t.tcp != nil {
		return t.tcp.ReadFrom(r)
	}
	return io.Copy(writerOnly{t.Conn}, r)
}

// CloseWrite shuts down the sending side (after a TLS close_notify over
// TLS): the client reads EOF, and may still send.
func (t *tunnel) CloseWrite() error {
	cw, ok := t.Conn.(interface{ CloseWrite() error })
	if !ok {
		return errors.New("h1: connection cannot close for writing")
	}
	return cw.CloseWrite()
}

// Close closes the client connection and ends it as the server's.
func (t *tunnel) Close() error {
	t.once.Do(func() {
		t.closeErr = t.c.closeHijacked()
		t.c.srv.untrackConn(t.c)
	})
	return t.closeErr
}

// closeHijacked closes the connection after Upgrade. A plain connection
// detached from a loop goes back to it to close, since its socket is the
// loop's; a TLS one does so by itself (netpoll.TLSConn.Close).
func (c *conn) closeHijacked() error {
	c.state.Store(stateClosed)
	if lc := c.detachedFrom; lc != nil && !lc.c.TLS() {
		return lc.c.Attach(c.nc, func() { lc.nc.Close() })
	}
	return c.nc.Close()
}

// readerOnly hides every method of a reader but Read, so that io.Copy
// does not come back to a WriterTo.
type readerOnly struct{ io.Reader }

// writerOnly hides every method of a writer but Write, so that io.Copy
// does not come back to a ReaderFrom.
type writerOnly struct{ io.Writer }

// upgraded reports whether Upgrade handed the connection over: h1 must
// then neither close it nor serve it again.
func (c *conn) upgraded() bool { return c.resp.upgraded }
