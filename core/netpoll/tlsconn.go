package netpoll

import (
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

	in       []byte // the loop's input at hand (established)
	consumed int    // bytes of in read so far
	extra    []byte // input that came during the handshake, read before in
	lastLen  int    // length of the last SetInput during the handshake
}

// NewTLSConn wraps a loop connection for tls.Server.
func NewTLSConn(c *Conn) *TLSConn { return &TLSConn{c: c} }

// Handshake runs tc.Handshake (tc made by tls.Server over t) on a new
// goroutine, then runs done on the loop with its result. Call it on the
// loop, once.
func (t *TLSConn) Handshake(tc *tls.Conn, done func(error)) {
	t.mu.Lock()
	t.blocked = true
	t.signal = make(chan struct{}, 1)
	t.mu.Unlock()
	go func() { // the handshake goroutine: exits when Handshake returns
		err := tc.Handshake()
		t.c.Submit(func() {
			t.mu.Lock()
			t.blocked = false
			t.extra, t.held = t.held, nil // input that came with the last flight
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
	if t.closed == nil {
		t.closed = err
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
// is none; in the handshake goroutine it waits for some.
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
	defer t.mu.Unlock()
	if len(t.extra) > 0 {
		n := copy(p, t.extra)
		t.extra = t.extra[n:]
		return n, nil
	}
	if t.consumed == len(t.in) {
		return 0, ErrNoInput
	}
	n := copy(p, t.in[t.consumed:])
	t.consumed += n
	return n, nil
}

// Write sends p through the loop connection; it never fails for lack of
// room (Conn.Write queues). From the handshake goroutine it copies p and
// Submits the write.
func (t *TLSConn) Write(p []byte) (int, error) {
	t.mu.Lock()
	blocked := t.blocked
	t.mu.Unlock()
	if !blocked {
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

// Close closes the loop connection (once its output is sent).
func (t *TLSConn) Close() error {
	t.mu.Lock()
	blocked := t.blocked
	t.mu.Unlock()
	if blocked { // from the handshake goroutine (a cancelled HandshakeContext)
		t.CloseInput(net.ErrClosed)
		return t.c.Submit(func() { t.c.Close() })
	}
	return t.c.Close()
}

// LocalAddr returns the local address.
func (t *TLSConn) LocalAddr() net.Addr { return net.TCPAddrFromAddrPort(t.c.LocalAddr()) }

// RemoteAddr returns the peer's address.
func (t *TLSConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(t.c.RemoteAddr()) }

// SetDeadline does nothing: deadlines are the loop's (Conn.SetTimeout).
func (t *TLSConn) SetDeadline(time.Time) error { return nil }

// SetReadDeadline does nothing; see SetDeadline.
func (t *TLSConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline does nothing; see SetDeadline.
func (t *TLSConn) SetWriteDeadline(time.Time) error { return nil }
