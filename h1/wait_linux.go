//go:build linux

package h1

import (
	"net"
	"syscall"
)

// initWait prepares the idle wait. On a plain TCP or Unix socket the
// connection waits for readability through the runtime's poller without
// reading, so that it needs no buffer at all while idle; this is the same
// wait an epoll reactor does, and costs the same system calls as a
// blocking read would (one recv that finds nothing, then the poller).
func (c *conn) initWait() {
	var sc interface {
		SyscallConn() (syscall.RawConn, error)
	}
	switch t := c.nc.(type) {
	case *net.TCPConn:
		sc = t
	case *net.UnixConn:
		sc = t
	default:
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c.raw = raw
	c.peekFn = c.peekReady // one method value per connection, not per wait
	c.peekInFn = c.peekInto
}

// waitReadable blocks until the connection has bytes (or EOF, or an error)
// to read, or its read deadline passes. On a plain socket it reads
// nothing; elsewhere it reads one byte into c.peek.
func (c *conn) waitReadable() error {
	if c.raw == nil {
		return c.waitByReading()
	}
	c.polled = false
	return c.raw.Read(c.peekFn)
}

// peekReady is the RawConn.Read callback of waitReadable. Its first call
// peeks at the socket; if nothing is there it asks the poller to wait, and
// the call after the wake-up reports ready without another system call: a
// rare spurious wake-up only means the next read blocks, holding a buffer.
func (c *conn) peekReady(fd uintptr) bool {
	if c.polled {
		return true
	}
	for {
		_, _, err := syscall.Recvfrom(int(fd), c.peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			c.polled = true
			return false
		}
		return true // a byte, EOF or an error: the next read reports it
	}
}

// peekInput copies into p what the socket has to read, without taking it
// out, and returns how much; 0 when it cannot tell.
func (c *conn) peekInput(p []byte) int {
	c.peekBuf, c.peekN = p, 0
	err := c.raw.Read(c.peekInFn)
	c.peekBuf = nil
	if err != nil {
		return 0
	}
	return c.peekN
}

// peekInto is peekInput's RawConn.Read callback (a method value made once
// per connection, so that a peek allocates nothing).
func (c *conn) peekInto(fd uintptr) bool {
	if n, _, err := syscall.Recvfrom(int(fd), c.peekBuf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT); err == nil {
		c.peekN = n
	}
	return true
}
