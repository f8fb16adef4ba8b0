package netpoll

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Dial opens a connection from the loop to addr and returns it at once,
// before it is connected. h receives its events as the Server's Handler
// receives an accepted connection's, on this loop's goroutine.
//
// network is "tcp", "tcp4" or "tcp6" with addr an IP address and a port
// ("127.0.0.1:8080", "[::1]:8080"): no name is resolved on the loop, so a
// protocol resolves names off it first; or "unix" with addr a socket path
// ("@name" for an abstract socket). Call Dial on the loop's goroutine only:
// from a Handler method of one of the loop's connections, or in a function
// given to Submit (Server.Loop finds a loop without a connection).
//
// The socket is non-blocking and close-on-exec, with TCP_NODELAY for TCP;
// connect(2) starts at once. When it completes (the first EPOLLOUT, with
// SO_ERROR clear), h.OnOpen runs, never from inside Dial. If it fails
// (refused, unreachable, a Unix socket whose listener's backlog is full,
// which is EAGAIN and not retried, the timeout set with SetTimeout before
// OnOpen, Shutdown), h.OnClose gets a *ConnectError that wraps the cause,
// OnOpen is never called and nothing was sent. Before OnOpen:
//
//   - Write, Writev and SendFile queue their output, which is sent in
//     order once connected, after OnOpen (then OnWritable is called, as
//     for any output that had to wait). Close closes at once if nothing is
//     queued, else once the queue has gone out after OnOpen; CloseWrite
//     waits likewise.
//   - SetTimeout bounds the connect. The connect timeout is removed when
//     the connection opens, so OnOpen starts with no timeout; a
//     TimeoutHandler's OnTimeout is not called for it.
//   - Detach fails with ErrBusy (after OnOpen a dialed connection may be
//     detached and attached like an accepted one).
//
// Dial itself fails, with no callback to follow, only when it cannot
// start: a bad network or address, socket(2) or epoll_ctl(2) failing (out
// of descriptors, say), or the loop draining after Shutdown began
// (ErrServerClosed).
//
// A dialed connection is the loop's like an accepted one: it counts while
// Shutdown waits for the loop, and Shutdown closes it with ErrServerClosed
// once its output is sent (at once, sending nothing, if it is still
// connecting). The Server's Handler is not asked: Shutdown calls OnDrain
// only if h is a Drainer, so a protocol that must finish an exchange in
// flight on it (a proxied response) makes h one. The dialed connection and
// the client connection that dialed it live on one goroutine, so their
// states can point at each other (SetContext) and hand data over without
// a lock.
func (l *Loop) Dial(network, addr string, h Handler) (*Conn, error) {
	if h == nil {
		return nil, errors.New("netpoll: Dial with a nil Handler")
	}
	if l.drain {
		return nil, ErrServerClosed
	}
	family, remote, salen, err := l.dialAddr(network, addr)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("netpoll: dial %s %s: %w", network, addr, os.NewSyscallError("socket", err))
	}
	if family != unix.AF_UNIX {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	errno := connect(fd, &l.dialSA, salen)
	started := connectStarted(errno)
	if started {
		// Registered after connect(2): an unconnected socket would report
		// EPOLLOUT|EPOLLHUP at once. Adding reports the present state, so
		// a connect that already completed (a Unix socket) raises the edge.
		if err := l.watch(fd); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("netpoll: dial %s %s: %w", network, addr, os.NewSyscallError("epoll_ctl", err))
		}
	}
	c := l.newConn(fd, remote, h)
	c.flags |= flagConnecting
	if !started {
		c.fail(errno) // OnClose (a ConnectError) when the current callback returns
	}
	return c, nil
}

// connectStarted reports whether connect(2) succeeded or goes on in the
// background: either way the first event on the socket tells the outcome.
// EINTR on a non-blocking connect means it goes on (as in package net).
func connectStarted(errno unix.Errno) bool {
	switch errno {
	case 0, unix.EINPROGRESS, unix.EINTR, unix.EALREADY, unix.EISCONN:
		return true
	}
	return false
}

// connect is connect(2) on the loop's address buffer, without allocating.
func connect(fd int, sa *unix.RawSockaddrAny, n uint32) unix.Errno {
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(sa)), uintptr(n))
	return e
}

// dialAddr fills the loop's connect(2) address buffer for Dial and returns
// the socket's family, the remote address (zero for a Unix socket) and the
// address's length.
func (l *Loop) dialAddr(network, addr string) (family int, remote netip.AddrPort, n uint32, err error) {
	l.dialSA = unix.RawSockaddrAny{}
	switch network {
	case "tcp", "tcp4", "tcp6":
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return 0, remote, 0, fmt.Errorf("netpoll: dial %s %q: want an IP address and a port: %w", network, addr, err)
		}
		return l.dialInet(network, ap)
	case "unix":
		return l.dialUnix(addr)
	}
	return 0, remote, 0, fmt.Errorf("netpoll: dial: unknown network %q", network)
}

// dialInet fills the address buffer with an IPv4 or IPv6 address.
func (l *Loop) dialInet(network string, ap netip.AddrPort) (int, netip.AddrPort, uint32, error) {
	ip, port := ap.Addr(), ap.Port()
	remote := netip.AddrPortFrom(ip.Unmap(), port)
	if network != "tcp6" && ip.Unmap().Is4() {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&l.dialSA))
		sa.Family = unix.AF_INET
		sa.Port = networkPort(port) // a byte swap, its own inverse
		sa.Addr = ip.Unmap().As4()
		return unix.AF_INET, remote, unix.SizeofSockaddrInet4, nil
	}
	if network == "tcp4" {
		return 0, remote, 0, fmt.Errorf("netpoll: dial tcp4 %s: not an IPv4 address", ap)
	}
	scope, err := zoneIndex(ip.Zone())
	if err != nil {
		return 0, remote, 0, fmt.Errorf("netpoll: dial %s %s: %w", network, ap, err)
	}
	sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&l.dialSA))
	sa.Family = unix.AF_INET6
	sa.Port = networkPort(port)
	sa.Addr = ip.As16()
	sa.Scope_id = scope
	return unix.AF_INET6, remote, unix.SizeofSockaddrInet6, nil
}

// zoneIndex returns the interface index of an IPv6 zone: a number, or an
// interface's name (looked up in the kernel, not in DNS).
func zoneIndex(zone string) (uint32, error) {
	if zone == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, err
	}
	return uint32(ifi.Index), nil
}

// dialUnix fills the address buffer with a Unix socket's path, as package
// net does: a leading '@' names an abstract socket.
func (l *Loop) dialUnix(path string) (int, netip.AddrPort, uint32, error) {
	sa := (*unix.RawSockaddrUnix)(unsafe.Pointer(&l.dialSA))
	if path == "" || len(path) >= len(sa.Path) {
		return 0, netip.AddrPort{}, 0, fmt.Errorf("netpoll: dial unix %q: empty or longer than %d bytes", path, len(sa.Path)-1)
	}
	sa.Family = unix.AF_UNIX
	for i := range len(path) {
		sa.Path[i] = int8(path[i])
	}
	n := uint32(unsafe.Offsetof(sa.Path)) + uint32(len(path)) + 1 // with the terminating NUL
	if path[0] == '@' {
		sa.Path[0] = 0
		n-- // an abstract name is exactly its bytes
	}
	return unix.AF_UNIX, netip.AddrPort{}, n, nil
}

// connectDone handles the first events of a dialed connection: the
// connect's outcome. It reports whether the connection is open (OnOpen
// has run), so that the event goes on to be handled as for any
// connection.
func (c *Conn) connectDone(ev uint32) bool {
	soerr, err := unix.GetsockoptInt(int(c.fd), unix.SOL_SOCKET, unix.SO_ERROR)
	switch {
	case err != nil:
		c.fail(os.NewSyscallError("getsockopt", err))
		return false
	case soerr != 0:
		c.fail(unix.Errno(soerr))
		return false
	case ev&unix.EPOLLOUT == 0 && !c.peerConnected():
		if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			c.fail(unix.ENOTCONN)
		}
		return false // no outcome yet: the next edge tells
	}
	c.flags &^= flagConnecting
	c.loop.wheel.Cancel(&c.timer) // the connect timeout
	c.progress = c.loop.now.UnixNano()
	c.h.OnOpen(c)
	c.flushQueued() // what was written before, and a Close or CloseWrite that waited for it
	return true
}

// peerConnected reports whether the socket is connected, for an event
// without EPOLLOUT (which a completed connect raises).
func (c *Conn) peerConnected() bool {
	_, err := unix.Getpeername(int(c.fd))
	return err == nil
}
