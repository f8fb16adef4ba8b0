package onloop

import (
	"crypto/tls"
	"io"
	"slices"

	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/core/pool"
)

// Sizes of the TLS input path.
const (
	tlsRecordRoom = 16<<10 + 512 // room for one decrypted record
	maxKeptPlain  = 256 << 10    // the largest decryption buffer a loop keeps between reads
)

// tlsConn is what only a TLS connection holds. Owned by the loop's
// goroutine, except while the connection is detached (Conn.Detach), when
// the goroutine serving it owns tc.
type tlsConn struct {
	raw        *netpoll.TLSConn
	tc         *tls.Conn // the TLS connection over raw
	serverName string    // SNI
	alpn       string    // the protocol ALPN chose
	version    uint16    // the TLS version negotiated
	plain      *[]byte   // decrypted input not yet consumed, (*plain)[:plainN]; nil when none
	plainN     int
	backlog    *backlog          // output behind a file body the pump sends; nil when none
	serve      func(*tls.Conn)   // the Detached protocol the connection waits to go to; nil when none
	then       func()            // Attach's then, run by reattached
	attached   func()            // reattached as a func, made once
	closeAfter closeKind         // how to close once the backlog has gone out; keepOpen unless asked
	handshake  handshakeProgress // where the handshake is
	warming    bool              // a file worker reads the backlog's file for the pump
}

// handshakeProgress is where a TLS connection's handshake is.
type handshakeProgress uint8

const (
	handshakeNotStarted handshakeProgress = iota // no input yet, or waiting for a slot
	handshakeRunning                             // the handshake goroutine has started
	handshakeDone                                // ended (the connection is a protocol's, or closing)
)

// closeKind is how a TLS connection closes once the backlog has gone out,
// when it was asked to close before (closeAfterBacklog): the close_notify
// must follow the response (crypto/tls writes nothing after it), and
// netpoll, which closes once its own queued output is sent, does not know
// the backlog.
type closeKind uint8

const (
	keepOpen    closeKind = iota // no close asked for
	closeNotify                  // Close
	closeLinger                  // CloseWrite
	closeSocket                  // the peer ended the TLS session: close the socket
)

// handshakeInput passes input to the handshake, which runs on its own
// goroutine (netpoll.TLSConn); the goroutine starts with the first bytes
// of the ClientHello, so that a client that sends nothing holds none.
// At its loop's share of MaxHandshakes a connection waits, paused, for
// one of its loop's handshakes to end.
func (c *Conn) handshakeInput(in []byte) int {
	t := c.tlsConn
	switch t.handshake {
	case handshakeDone:
		return len(in) // going to Detached: not reached, the connection is paused
	case handshakeNotStarted:
		st := c.h.state(c.nc)
		if st.handshakes >= c.h.maxHandshakesPerLoop() {
			st.waiting = append(st.waiting, c)
			c.nc.Pause() // the input stays with the loop until then
			return 0
		}
		st.handshakes++
		t.handshake = handshakeRunning
		t.raw.Handshake(t.tc, c.handshakeEnded)
	}
	t.raw.SetInput(in)
	return t.raw.Consumed()
}

// releaseSlot frees a handshake slot of the loop and lets the first
// connection waiting for one go on.
func (c *Conn) releaseSlot() {
	st := c.h.state(c.nc)
	st.handshakes--
	for len(st.waiting) > 0 {
		next := st.waiting[0]
		st.waiting[0] = nil
		st.waiting = st.waiting[1:]
		if !next.nc.Closed() {
			next.nc.Resume() // its input comes again, to handshakeInput
			return
		}
	}
}

// handshakeEnded runs on the loop when the handshake has ended: it hands
// the connection to the protocol ALPN chose, on the loop or off it.
func (c *Conn) handshakeEnded(err error) {
	t := c.tlsConn
	t.handshake = handshakeDone
	c.h.countHandshake(err)
	c.releaseSlot()
	if c.nc.Closed() {
		return
	}
	if err != nil {
		c.h.debug("onloop: TLS handshake failed", "remote", c.nc.RemoteAddr(), "error", err)
		c.nc.Close()
		return
	}
	st := t.tc.ConnectionState()
	t.serverName, t.alpn, t.version = st.ServerName, st.NegotiatedProtocol, st.Version
	p := c.h.Protocols[t.alpn]
	if p == nil {
		if serve := c.h.Detached[t.alpn]; serve != nil && t.alpn != "http/1.1" {
			c.handOff(serve)
			return
		}
		p = c.h.Protocols["http/1.1"]
	}
	c.h.start(c, p)
	if c.proto != nil && !c.nc.Closed() {
		c.readTLS(nil) // a request may have come with the client's last flight
	}
}

// handOff gives the connection to a Detached protocol once its output
// (the end of the handshake) has gone out and this callback has returned,
// which netpoll.Conn.Detach needs.
func (c *Conn) handOff(serve func(*tls.Conn)) {
	c.serve = serve
	c.nc.Pause()
	c.nc.Submit(c.tryHandOff)
}

// tryHandOff runs the pending hand-off if the output has drained; else
// OnWritable calls it again.
func (c *Conn) tryHandOff() {
	t := c.tlsConn
	if c.nc.Closed() || t.serve == nil || c.nc.Buffered() > 0 {
		return
	}
	serve := t.serve
	t.serve = nil
	if err := t.raw.Detach(); err != nil {
		c.nc.Close()
		return
	}
	c.track(nil)   // off the loop: no longer the layer's
	go serve(t.tc) // exits when the protocol's server is done with the connection
}

// readTLS decrypts the input at hand (in, what crypto/tls buffered, and
// the decrypted bytes kept from before) and passes it to the protocol. It
// returns the bytes of in consumed: all of them, since the undecrypted
// rest of a record stays in the tls.Conn. Called again while it runs (a
// Resume from the protocol), it goes round once more when the protocol
// returns.
func (c *Conn) readTLS(in []byte) int {
	t := c.tlsConn
	if c.flags&flagReading != 0 {
		c.flags |= flagReadAgain
		return 0 // in is nil: only Resume calls it here
	}
	c.flags |= flagReading
	t.raw.SetInput(in)
	for {
		c.flags &^= flagReadAgain
		c.decryptAndServe()
		if c.flags&flagReadAgain == 0 || c.nc.Closed() || c.flags&(flagPaused|flagLingering) != 0 {
			break
		}
	}
	c.flags &^= flagReading | flagReadAgain
	return t.raw.Consumed()
}

// decryptAndServe is one round of readTLS. A close_notify, or a bad
// record (crypto/tls has sent its alert), ends the connection, unless the
// protocol paused it: crypto/tls keeps the error, which shows again when
// reading resumes.
func (c *Conn) decryptAndServe() {
	t := c.tlsConn
	st := c.h.state(c.nc)
	buf := st.plain[:0]
	st.plain = nil // while the protocol has it: a nested readTLS of another connection gets its own
	if t.plain != nil {
		buf = append(buf, (*t.plain)[:t.plainN]...)
		c.dropPlain()
	}
	var readErr error
	for {
		buf = slices.Grow(buf, tlsRecordRoom)
		n, err := t.tc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if err != netpoll.ErrNoInput {
				readErr = err
			}
			break
		}
	}
	consumed := 0
	if len(buf) > 0 {
		consumed = c.proto.OnRead(c, buf)
	}
	if rest := buf[consumed:]; len(rest) > 0 && !c.nc.Closed() && !c.nc.Detached() && c.flags&flagLingering == 0 {
		t.plain = pool.Get(len(rest))
		t.plainN = copy(*t.plain, rest)
	}
	if cap(buf) <= maxKeptPlain {
		st.plain = buf[:0] // keep what it grew to, for the next connection
	}
	if readErr != nil && !c.nc.Closed() && !c.nc.Detached() && c.flags&(flagPaused|flagLingering) == 0 {
		c.h.debug("onloop: TLS connection ended", "remote", c.nc.RemoteAddr(), "error", readErr)
		// After a clean end the output on the backlog still goes out (a
		// client may half-close); after a bad record crypto/tls writes
		// nothing more.
		if readErr != io.EOF || !c.closeAfterBacklog(closeSocket) {
			c.nc.Close()
		}
	}
}

// dropPlain gives back the kept decrypted input.
func (c *Conn) dropPlain() {
	if t := c.tlsConn; t != nil && t.plain != nil {
		pool.Put(t.plain)
		t.plain, t.plainN = nil, 0
	}
}

// closeAfterBacklog asks for the close how once the TLS backlog has gone
// out (backlogSent) and reports true; without a backlog it reports false,
// and the caller closes now.
func (c *Conn) closeAfterBacklog(how closeKind) bool {
	t := c.tlsConn
	if t == nil || t.backlog == nil {
		return false
	}
	t.closeAfter = how
	return true
}

// backlogSent closes the connection, now that its TLS backlog has gone
// out, if it was asked to close before (closeAfterBacklog).
func (c *Conn) backlogSent() {
	t := c.tlsConn
	how := t.closeAfter
	t.closeAfter = keepOpen
	switch how {
	case closeNotify:
		c.Close()
	case closeLinger:
		c.linger()
	case closeSocket:
		c.nc.Close()
	}
}
