package netpoll

import (
	"errors"
	"net/netip"
	"runtime"
	"sync"
	"time"
)

// Handler is the protocol on top of the loops: the Server's for the
// connections it accepts, and the one given to Loop.Dial for a connection
// a loop opens. Its methods run on the goroutine of the connection's loop,
// one at a time per loop, and must not block: work that may block (a cold
// file read, a TLS handshake) goes to another goroutine, which hands its
// result back with Conn.Submit.
type Handler interface {
	// OnOpen is called once for a new connection, before any other method;
	// for a dialed one, when its connect has completed.
	OnOpen(c *Conn)
	// OnRead is called with the connection's unconsumed input followed by
	// what just arrived. It returns how many bytes it consumed; the rest
	// is kept (copied into a buffer from core/pool) and handed over again,
	// with more, next time. in is valid only during the call.
	OnRead(c *Conn, in []byte) int
	// OnWritable is called when output that had to be queued (the socket
	// was full) has all been sent, including a queued SendFile.
	OnWritable(c *Conn)
	// OnClose is called once when the connection has closed: err is nil
	// after Close, io.EOF when the peer closed, ErrTimeout when a timeout
	// set with SetTimeout expired, ErrServerClosed when Shutdown closed it,
	// or the I/O error; for a dialed connection whose connect did not
	// complete (no OnOpen), a *ConnectError.
	OnClose(c *Conn, err error)
}

// Admitter decides, from the peer's address alone, whether the Server
// takes a connection it has just accepted: before the connection is
// registered, before anything is read from it. A refused connection is
// reset at once (closed with SO_LINGER 0), so it costs neither a read nor
// a handshake, and leaves no TIME_WAIT behind. Admit runs on the loops,
// for every accept: it must not block and should not allocate.
type Admitter interface {
	// Admit reports whether to take a connection from addr. Each true is
	// followed by exactly one Release, when the connection has closed,
	// whatever closed it (the peer, an error, Shutdown).
	Admit(addr netip.Addr) bool
	// Release gives back a connection Admit took.
	Release(addr netip.Addr)
}

// TimeoutHandler is a Handler that wants to act when a connection's
// timeout expires (answer 408, say) instead of having it closed. OnTimeout
// runs on the loop; it closes the connection itself (Close, or Timeout),
// or sets a new timeout.
type TimeoutHandler interface {
	Handler
	OnTimeout(c *Conn)
}

// HangupHandler is a Handler that wants to know when the peer of a
// paused connection hangs up: a FIN (the peer may still read, but sends
// no more) or a reset, which a paused connection, not reading, would see
// only once it reads or writes again. OnHangup runs on the loop, once,
// when the hang-up arrives while the connection is paused; one that
// arrived before the pause shows when reading resumes, as EOF or an
// error. The protocol decides: h1 takes it for a client that gave up on
// a deferred response, as nginx takes a client's close while it waits
// for an upstream.
type HangupHandler interface {
	Handler
	OnHangup(c *Conn)
}

// Drainer is a Handler that decides how its connections end when
// Shutdown begins: OnDrain is called on the loop, once for each of its
// connections that is open and on the loop (a detached one when it comes
// back), and closes it at once or when its work is done (a response in
// flight). Without it, Shutdown closes every connection once its queued
// output has been sent. Only a connection's own Handler is asked: the
// Server's for the accepted ones, Dial's for a dialed one (so the
// Server's Drainer never sees the dialed connections; a protocol that
// must finish an exchange on one makes its Handler a Drainer too).
type Drainer interface {
	Handler
	OnDrain(c *Conn)
}

// Errors reported by the package.
var (
	// ErrServerClosed is given to OnClose for connections closed by
	// Shutdown, and returned by Submit once a loop has stopped.
	ErrServerClosed = errors.New("netpoll: server closed")
	// ErrClosed is returned by the I/O methods of a closed connection.
	ErrClosed = errors.New("netpoll: connection closed")
	// ErrInputFull closes a connection whose handler left more than
	// Server.MaxInput bytes unconsumed.
	ErrInputFull = errors.New("netpoll: input buffer full")
	// ErrUnsupported is returned on systems without epoll.
	ErrUnsupported = errors.New("netpoll: not supported on this system")
	// ErrTimeout closes a connection whose timeout expired. It is a
	// net.Error with Timeout() true.
	ErrTimeout error = timeoutError{}
)

// timeoutError is the type of ErrTimeout.
type timeoutError struct{}

func (timeoutError) Error() string   { return "netpoll: timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// Defaults of the Server's settings.
const (
	defaultMaxInput    = 1 << 20  // core/pool's largest class
	defaultDropBehind  = 64 << 20 // SendFile of at least this many bytes drops the pages it sent
	defaultFileWorkers = 4        // goroutines that warm cold files
	timerTick          = 5 * time.Millisecond
	timerSlots         = 64
	scratchSize        = 64 << 10 // the per-loop read buffer
)

// Server runs epoll loops and the connections accepted on them. Its zero
// value with a Handler works; the settings must not change after Start.
//
// Goroutines: Start starts one goroutine per loop, which owns the loop and
// all of its connections and exits after Shutdown once the loop has no
// connection left (or Shutdown's context ended and it closed the rest),
// and FileWorkers goroutines for Warm, which exit when Shutdown returns.
// The Server's own fields below the settings are guarded by mu.
type Server struct {
	// Handler receives the connections' events. Required.
	Handler Handler
	// Loops is the number of epoll loops (and listening sockets); 0 means
	// GOMAXPROCS.
	Loops int
	// LockOSThread wires each loop's goroutine to its own OS thread. Off
	// by default: see the package documentation for the measurement.
	LockOSThread bool
	// MaxInput is the most input a connection may hold unconsumed; 0
	// means 1 MiB.
	MaxInput int
	// DropBehind is the size from which a SendFile advises the kernel to
	// drop the pages it has sent from the page cache, so that one large
	// download does not evict the small hot files; 0 means 64 MiB, a
	// negative value never. The default spares the files a site serves
	// over and over, which dropping would send back to the disk each time:
	// dropping a 10 MiB file that every request asks for cost make bench's
	// 10 MiB load about a fifth of its throughput (1.8 against 2.3 GB/s).
	DropBehind int64
	// FileWorkers bounds the goroutines that warm cold file regions for
	// Warm; 0 means 4.
	FileWorkers int
	// Admitter, if set, admits or refuses each accepted connection (a
	// connection limit); nil takes them all. Dialed connections are not
	// asked.
	Admitter Admitter

	mu       sync.Mutex
	started  bool
	closing  bool
	lnfds    []int          // the listening sockets, one per loop; owned by the loops once started
	addr     netip.AddrPort // their address
	loops    []*Loop
	loopDone sync.WaitGroup // one count per running loop goroutine
	warm     *warmer        // the file workers; nil before Start
}

// LoopCount returns the number of loops Start runs (Loops, or
// GOMAXPROCS).
func (s *Server) LoopCount() int { return s.loopCount() }

func (s *Server) loopCount() int {
	if s.Loops > 0 {
		return s.Loops
	}
	return runtime.GOMAXPROCS(0)
}

func (s *Server) maxInput() int {
	if s.MaxInput > 0 {
		return s.MaxInput
	}
	return defaultMaxInput
}

func (s *Server) dropBehind() int64 {
	switch {
	case s.DropBehind < 0:
		return -1
	case s.DropBehind == 0:
		return defaultDropBehind
	}
	return s.DropBehind
}

func (s *Server) fileWorkers() int {
	if s.FileWorkers > 0 {
		return s.FileWorkers
	}
	return defaultFileWorkers
}

// Validate reports whether the settings can run.
func (s *Server) Validate() error {
	if s.Handler == nil {
		return errors.New("netpoll: Server.Handler is nil")
	}
	if s.Loops < 0 || s.MaxInput < 0 || s.FileWorkers < 0 {
		return errors.New("netpoll: negative Server setting")
	}
	return nil
}

// Loop returns loop i (0 <= i < LoopCount) once Start has run, or nil. A
// protocol that dials with no client connection to start from (a health
// check, a pool warming up) runs Dial in a function given to its Submit.
// Safe from any goroutine.
func (s *Server) Loop(i int) *Loop {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.loops) {
		return nil
	}
	return s.loops[i]
}
