package netpoll

import (
	"net/netip"
	"os"
	"time"
)

// Conn is one connection on a loop. All its methods except Submit and
// Loop must be called on the loop's goroutine, that is from the Handler's
// methods or from functions passed to Submit; the loop's goroutine owns
// every field.
//
// An idle connection holds no buffer: input that the handler consumes is
// never copied out of the loop's read buffer, and output that the socket
// takes at once is never copied at all. Only an unconsumed remainder
// (half a request) or output the socket could not take borrows a buffer
// from core/pool, which goes back as soon as it is empty.
type Conn struct {
	loop  *Loop
	fd    int32
	flags connFlags
	port  uint16   // the peer's port (see RemoteAddr)
	addr  [16]byte // the peer's address, IPv4 mapped; zero, with port, for none
	h     Handler  // the connection's events go here: the Server's Handler, or Dial's
	timer Timer    // the connection's one deadline; Func is c.onTimeout
	ctx   any      // the protocol's state

	in  *[]byte // unconsumed input, (*in)[:inN]; nil when empty
	inN int

	out        *[]byte // queued output, (*out)[outR:outW]; nil when empty
	outR, outW int
	send       *fileSend // the first queued SendFile; nil when none
	progress   int64     // when output last moved (see Progress), in Unix nanoseconds

	err error // why the connection is closing
}

// fileSend is a queued SendFile: the file region goes out after the
// output queued before it, (*out)[outR:at], and before the next one.
type fileSend struct {
	f        *os.File
	next     *fileSend // the SendFile queued after this one
	at       int       // position in out where the file's bytes go
	off      int64     // next file offset to send
	left     int64     // bytes still to send
	dropFrom int64     // the send's first offset, from which drop-behind drops; -1: no drop-behind
	dropped  int64     // the offset the send had reached at the last drop
	checked  int64     // offsets below this are known to be in the page cache
	owned    bool      // f is a duplicate the send closes when it ends
}

// connFlags are a connection's state bits.
type connFlags uint16

const (
	flagReadable   connFlags = 1 << iota // the socket may have input (edge seen, not drained)
	flagPaused                           // the handler paused reading
	flagReady                            // on the loop's ready list
	flagRedeliver                        // Resume: hand the buffered input to OnRead again
	flagQueued                           // output had to wait: call OnWritable when drained
	flagCloseAfter                       // Close: close once the output has drained
	flagClosing                          // on the loop's close list
	flagClosed                           // closed; OnClose has been called
	flagHup                              // epoll reported RDHUP, HUP or ERR
	flagDetached                         // off the loop (Detach) until Attach
	flagWarming                          // a file worker is reading the next region of the queued file
	flagShutWrite                        // CloseWrite: shut the sending side once the output has drained
	flagConnecting                       // dialed, connect(2) not yet complete: OnOpen not yet called
	flagCorked                           // TCP_CORK is set while files are queued (SendFile)
	flagAdmitted                         // the Server's Admitter took it: Release when it closes
)

// RemoteAddr returns the peer's address (IPv4 addresses unmapped, IPv6
// ones without a zone), or the zero AddrPort for a Unix socket.
func (c *Conn) RemoteAddr() netip.AddrPort {
	if c.port == 0 && c.addr == [16]byte{} {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom16(c.addr).Unmap(), c.port)
}

// setRemote keeps the peer's address in 18 bytes rather than the 32 of a
// netip.AddrPort (which would make a Conn 16 bytes larger).
func (c *Conn) setRemote(ap netip.AddrPort) {
	if ap.IsValid() {
		c.addr, c.port = ap.Addr().As16(), ap.Port()
	}
}

// Fd returns the socket's file descriptor. It must not be closed or used
// for blocking I/O.
func (c *Conn) Fd() int { return int(c.fd) }

// Context returns the value set by SetContext.
func (c *Conn) Context() any { return c.ctx }

// SetContext keeps v with the connection, for the protocol's state.
func (c *Conn) SetContext(v any) { c.ctx = v }

// Loop returns the loop that owns the connection. Safe from any goroutine.
func (c *Conn) Loop() *Loop { return c.loop }

// Closed reports whether the connection is closed or closing; functions
// run by Submit check it, since the connection may have closed after the
// work they finish started.
func (c *Conn) Closed() bool { return c.flags&(flagClosing|flagClosed|flagCloseAfter) != 0 }

// dead reports whether the connection is closed or on the close list
// (unlike Closed, not when it only waits for its output to drain).
func (c *Conn) dead() bool { return c.flags&(flagClosing|flagClosed) != 0 }

// Buffered returns the bytes of output queued and not yet sent, a queued
// SendFile's remainder included. A protocol stops producing output while
// it is large, and resumes in OnWritable.
func (c *Conn) Buffered() int64 {
	n := int64(c.outW - c.outR)
	for s := c.send; s != nil; s = s.next {
		n += s.left
	}
	return n
}

// Kept returns the bytes of input the handler left unconsumed, which
// the connection holds for the next OnRead (after Resume, if paused).
func (c *Conn) Kept() int { return c.inN }

// Queued returns the bytes of output held in memory, unlike Buffered
// without the queued SendFiles' file regions.
func (c *Conn) Queued() int { return c.outW - c.outR }

// Progress returns when the connection's output last moved: when the
// socket last took queued bytes (or, before that, when the connection
// opened). A protocol's write timeout compares it with the time it gets
// from Now to tell a stalled peer from a slow one.
func (c *Conn) Progress() time.Time { return time.Unix(0, c.progress) }

// Now returns the time the loop last woke up, the clock of SetTimeout.
func (c *Conn) Now() time.Time { return c.loop.now }

// SetTimeout sets the connection's deadline to d from now (the time the
// loop last woke up, at the wheel's 5 ms resolution): when it passes, the
// connection is closed with ErrTimeout, or the Handler's OnTimeout is
// called if it is a TimeoutHandler. A connection has one deadline,
// which the protocol moves as its state changes (handshake, request head,
// idle keep-alive, write); d <= 0 removes it. Set on a dialed connection
// before OnOpen, it bounds the connect: see Loop.Dial.
func (c *Conn) SetTimeout(d time.Duration) {
	if c.dead() {
		return
	}
	if d <= 0 {
		c.loop.wheel.Cancel(&c.timer)
		return
	}
	c.loop.wheel.Add(&c.timer, c.loop.now.Add(d))
}

// onTimeout is the timer's Func: the Handler's OnTimeout if it has one,
// else the connection closes with ErrTimeout. A dialed connection that is
// still connecting fails without OnTimeout (OnOpen comes first of all
// methods); OnClose gets a *ConnectError that wraps ErrTimeout.
func (c *Conn) onTimeout() {
	if c.flags&flagConnecting != 0 {
		c.fail(ErrTimeout)
		return
	}
	if th, ok := c.h.(TimeoutHandler); ok {
		th.OnTimeout(c)
		return
	}
	c.fail(ErrTimeout)
}

// Timeout closes the connection at once with ErrTimeout, as an expired
// timeout does; for a TimeoutHandler that has nothing to say first.
func (c *Conn) Timeout() { c.fail(ErrTimeout) }

// Submit runs f on the connection's loop goroutine. It is safe from any
// goroutine, and is how off-loop work hands its result back; f should
// check c.Closed(). It returns ErrServerClosed when the loop has stopped,
// and then f will not run.
func (c *Conn) Submit(f func()) error { return c.loop.Submit(f) }
