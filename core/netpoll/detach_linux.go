package netpoll

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// ErrBusy is returned by Detach while the connection has queued output or
// unconsumed input, which would be lost or reordered off the loop, or is a
// dialed connection still connecting.
var ErrBusy = errors.New("netpoll: connection has queued input or output")

// Detach takes the connection off its loop, for work that blocks: a
// request whose body has yet to arrive, a handler that waits on the
// network, a protocol with goroutines of its own (HTTP/2). It returns a
// net.Conn over a duplicate of the socket, on the Go runtime's poller,
// with working deadlines, sendfile and CloseWrite; the loop no longer
// watches the socket and the connection's timeout is cancelled. Call it on
// the loop, with no output queued (after OnWritable) and all input
// consumed; it fails with ErrBusy otherwise. A dialed connection (see
// Loop.Dial) may be detached once OnOpen has run, and comes back to its
// own handler.
//
// A detached connection still counts as the loop's, so Shutdown waits for
// it (and, when its context ends, shuts the socket down, which ends the
// goroutine's blocked reads and writes, and closes the loop's descriptor).
// Give it back with Attach, which closes the returned net.Conn.
func (c *Conn) Detach() (net.Conn, error) {
	if c.Closed() || c.flags&flagDetached != 0 {
		return nil, ErrClosed
	}
	if c.Buffered() > 0 || c.inN > 0 || c.flags&flagConnecting != 0 {
		return nil, ErrBusy
	}
	nc, err := dupConn(int(c.fd))
	if err != nil {
		return nil, err
	}
	if err := unix.EpollCtl(c.loop.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil); err != nil {
		nc.Close()
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	c.loop.wheel.Cancel(&c.timer)
	c.flags = c.flags&^(flagReadable|flagRedeliver|flagPaused) | flagDetached
	return nc, nil
}

// dupConn returns a net.Conn on a duplicate of the socket fd.
func dupConn(fd int) (net.Conn, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(dup), "netpoll")
	defer f.Close() // FileConn made its own duplicate
	nc, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("netpoll: detach: %w", err)
	}
	return nc, nil
}

// Attach gives a detached connection back to its loop: it closes nc (what
// Detach returned), registers the socket with the loop again and then runs
// then on the loop, where the protocol serves whatever it already holds;
// input that arrives later reaches OnRead as before. Safe from any
// goroutine, and the way a detached connection's goroutine ends, also when
// the connection is to close: then calls Close. If the connection was
// closed meanwhile (Shutdown's context ended), then does not run.
func (c *Conn) Attach(nc net.Conn, then func()) error {
	if nc != nil {
		nc.Close()
	}
	return c.loop.Submit(func() { c.attach(then) })
}

// attach is Attach on the loop.
func (c *Conn) attach(then func()) {
	if c.dead() || c.flags&flagDetached == 0 {
		return
	}
	c.flags &^= flagDetached
	// Edge-triggered again. Adding reports the socket's present state, so
	// input that arrived while detached raises an event.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: c.fd}
	if err := unix.EpollCtl(c.loop.epfd, unix.EPOLL_CTL_ADD, int(c.fd), &ev); err != nil {
		c.fail(os.NewSyscallError("epoll_ctl", err))
		return
	}
	if then != nil {
		then()
	}
	if c.loop.drain {
		c.drain()
	}
}

// Detached reports whether the connection is off its loop (see Detach).
func (c *Conn) Detached() bool { return c.flags&flagDetached != 0 }
