package netpoll

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// ErrNoInput is what TLSConn.Read returns on the loop when it has no
// input: a temporary net.Error, after which crypto/tls keeps its state
// (see TLSConn). Compare with ==.
var ErrNoInput error = noInputError{}

// noInputError is the type of ErrNoInput.
type noInputError struct{}

func (noInputError) Error() string   { return "netpoll: no input yet" }
func (noInputError) Timeout() bool   { return false }
func (noInputError) Temporary() bool { return true }

// TLSConn is the net.Conn under a crypto/tls server connection on a loop.
//
// What crypto/tls allows (Go 1.26, crypto/tls/conn.go): a read error that
// is a temporary net.Error is returned by tls.Conn.Read without being
// recorded (readRecordOrCCS), and the bytes of a partial record stay in
// the tls.Conn, so an established connection can be read on the loop:
// Read returns ErrNoInput when the input at hand is used up, and the next
// tls.Conn.Read resumes. The handshake cannot: its first error, temporary
// or not, is stored in handshakeErr and returned by every later Handshake.
// A write error is always recorded as permanent (halfConn.setErrorLocked).
// So:
//
//   - The handshake runs off the loop: Handshake starts a goroutine that
//     sees a blocking view (Read waits for input that the loop hands over
//     with SetInput; Write hands output to the loop with Submit). When it
//     ends, the connection comes back to the loop and the goroutine exits.
//     Its timeout is the loop connection's (Conn.SetTimeout): closing the
//     connection ends the wait.
//   - Established, Read never blocks and Write never fails for lack of
//     room: it goes through Conn.Write, which queues. An idle established
//     TLS connection holds no goroutine (but crypto/tls keeps its own
//     record buffers in the tls.Conn).
//
// Use on the loop: in OnRead call SetInput(in), then tls.Conn.Read until
// it returns ErrNoInput, and return Consumed(). During the handshake the
// same calls only pass the input on (tls.Conn.Read must not be called
// until done has run).
//
// Goroutines: during the handshake the fields under mu are shared by the
// loop and the handshake goroutine, which Handshake starts and which exits
// when the handshake ends; otherwise the loop's goroutine owns everything.
type TLSConn struct {
	c *Conn

	mu      sync.Mutex
	blocked bool          // the handshake goroutine owns the read side
	held    []byte        // input passed during the handshake and not yet read
	closed  error         // why no more input will come (handshake view)
	signal  chan struct{} // wakes the handshake goroutine's Read
	cancel  func()        // ends the handshake's context: GetCertificate stops waiting too

	in       []byte // the loop's input at hand (established)
	consumed int    // bytes of in read so far
	extra    []byte // input that came during the handshake or before Detach, read before in
	lastLen  int    // length of the last SetInput during the handshake

	// direct is the net.Conn of a detached connection (see Detach); nil
	// on the loop. Guarded by mu, since a protocol with goroutines of its
	// own (HTTP/2) may close while another goroutine reads.
	direct     net.Conn
	directDone bool // Close ended a detached connection
}

// NewTLSConn wraps a loop connection for tls.Server.
func NewTLSConn(c *Conn) *TLSConn { return &TLSConn{c: c} }

// Handshake runs tc.HandshakeContext (tc made by tls.Server over t) on a
// new goroutine, then runs done on the loop with its result. Call it on the
// loop, once. CloseInput cancels the handshake's context, so that a
// GetCertificate that waits (an on-demand certificate being obtained,
// through hello.Context()) gives up when the connection ends.
func (t *TLSConn) Handshake(tc *tls.Conn, done func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	t.mu.Lock()
	t.blocked = true
	t.signal = make(chan struct{}, 1)
	t.cancel = cancel
	t.mu.Unlock()
	go func() { // the handshake goroutine: exits when HandshakeContext returns
		err := tc.HandshakeContext(ctx)
		cancel()
		t.c.Submit(func() {
			t.mu.Lock()
			t.blocked = false
			t.extra, t.held = t.held, nil // input that came with the last flight
			if len(t.extra) == 0 {
				t.extra = nil // keep no buffer while idle
			}
			t.signal, t.cancel = nil, nil
			t.mu.Unlock()
			done(err)
		})
	}()
}

// SetInput hands the input of an OnRead over, for the reads that follow.
func (t *TLSConn) SetInput(in []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.blocked {
		t.held = append(t.held, in...)
		t.lastLen = len(in)
		t.wake()
		return
	}
	t.in, t.consumed = in, 0
}

// Consumed returns how many bytes of the last SetInput's input were
// taken; return it from OnRead. All of it, except after an error.
func (t *TLSConn) Consumed() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.blocked {
		return t.lastLen // copied into held
	}
	n := t.consumed
	t.in, t.consumed = nil, 0
	return n
}

// CloseInput ends the handshake goroutine's wait with err; call it from
// OnClose.
func (t *TLSConn) CloseInput(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		err = net.ErrClosed // a Close of ours: the wait must end all the same
	}
	if t.closed == nil {
		t.closed = err
	}
	if t.cancel != nil {
		t.cancel()
	}
	t.wake()
}

// wake signals the handshake goroutine; t.mu is held.
func (t *TLSConn) wake() {
	if t.signal != nil {
		select {
		case t.signal <- struct{}{}:
		default:
		}
	}
}

// Read returns input at hand. On the loop it returns ErrNoInput when there
// is none; in the handshake goroutine it waits for some; detached, it
// reads the socket (after the input left over from the loop).
func (t *TLSConn) Read(p []byte) (int, error) {
	t.mu.Lock()
	for t.blocked {
		if len(t.held) > 0 {
			n := copy(p, t.held)
			t.held = t.held[n:]
			t.mu.Unlock()
			return n, nil
		}
		if t.closed != nil {
			err := t.closed
			t.mu.Unlock()
			return 0, err
		}
		t.mu.Unlock()
		<-t.signal
		t.mu.Lock()
	}
	if len(t.extra) > 0 {
		n := copy(p, t.extra)
		t.extra = t.extra[n:]
		if len(t.extra) == 0 {
			t.extra = nil
		}
		t.mu.Unlock()
		return n, nil
	}
	if direct, done := t.direct, t.directDone; direct != nil || done {
		t.mu.Unlock()
		if done {
			return 0, net.ErrClosed
		}
		return direct.Read(p)
	}
	defer t.mu.Unlock()
	if t.consumed == len(t.in) {
		return 0, ErrNoInput
	}
	n := copy(p, t.in[t.consumed:])
	t.consumed += n
	return n, nil
}

// Write sends p through the loop connection; it never fails for lack of
// room (Conn.Write queues). From the handshake goroutine it copies p and
// Submits the write; detached, it writes the socket.
func (t *TLSConn) Write(p []byte) (int, error) {
	t.mu.Lock()
	blocked, direct, done := t.blocked, t.direct, t.directDone
	t.mu.Unlock()
	switch {
	case done:
		return 0, net.ErrClosed
	case direct != nil:
		return direct.Write(p)
	case !blocked:
		if err := t.c.Write(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	b := append([]byte(nil), p...)
	if err := t.c.Submit(func() { t.c.Write(b) }); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close closes the loop connection (once its output is sent). Detached,
// it gives the connection back to the loop to close (Attach).
func (t *TLSConn) Close() error {
	t.mu.Lock()
	blocked, direct, done := t.blocked, t.direct, t.directDone
	if direct != nil {
		t.direct, t.directDone = nil, true
	}
	t.mu.Unlock()
	switch {
	case done:
		return net.ErrClosed
	case direct != nil:
		return t.c.Attach(direct, func() { t.c.Close() })
	case blocked: // from the handshake goroutine (a cancelled HandshakeContext)
		t.CloseInput(net.ErrClosed)
		return t.c.Submit(func() { t.c.Close() })
	}
	return t.c.Close()
}

// Detach takes the connection off the loop (Conn.Detach) so that the
// tls.Conn above can be served by a goroutine with blocking I/O: HTTP/2,
// or an HTTP/1.1 request that has to wait. Input already passed with
// SetInput and not yet read is read first. Call it on the loop, outside
// OnRead (the loop connection must hold no input), with no tls.Conn call
// in progress.
func (t *TLSConn) Detach() error {
	nc, err := t.c.Detach()
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.consumed < len(t.in) {
		t.extra = append(t.extra, t.in[t.consumed:]...)
	}
	t.in, t.consumed = nil, 0
	t.direct = nc
	return nil
}

// Attach gives a detached connection back to the loop (Conn.Attach),
// then runs then there. Call it from the goroutine that served it, with
// no tls.Conn call in progress.
func (t *TLSConn) Attach(then func()) error {
	t.mu.Lock()
	direct := t.direct
	t.direct = nil
	t.mu.Unlock()
	return t.c.Attach(direct, then)
}

// CloseWrite shuts down the sending side of a detached connection's
// socket (after tls.Conn.CloseWrite sent close_notify), for a lingering
// close. On the loop it does nothing.
func (t *TLSConn) CloseWrite() error {
	t.mu.Lock()
	direct := t.direct
	t.mu.Unlock()
	if cw, ok := direct.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// LocalAddr returns the local address.
func (t *TLSConn) LocalAddr() net.Addr { return net.TCPAddrFromAddrPort(t.c.LocalAddr()) }

// RemoteAddr returns the peer's address.
func (t *TLSConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(t.c.RemoteAddr()) }

// SetDeadline sets a detached connection's deadlines; on the loop it
// does nothing: deadlines are the loop's (Conn.SetTimeout).
func (t *TLSConn) SetDeadline(d time.Time) error {
	if direct := t.directConn(); direct != nil {
		return direct.SetDeadline(d)
	}
	return nil
}

// SetReadDeadline is SetDeadline for reads.
func (t *TLSConn) SetReadDeadline(d time.Time) error {
	if direct := t.directConn(); direct != nil {
		return direct.SetReadDeadline(d)
	}
	return nil
}

// SetWriteDeadline is SetDeadline for writes.
func (t *TLSConn) SetWriteDeadline(d time.Time) error {
	if direct := t.directConn(); direct != nil {
		return direct.SetWriteDeadline(d)
	}
	return nil
}

// directConn returns the detached connection's net.Conn, or nil.
func (t *TLSConn) directConn() net.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.direct
}
