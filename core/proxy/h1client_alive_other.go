//go:build !unix

package proxy

import "syscall"

// peekSocket cannot look at a socket on this system: it reports the
// connection open, and the first write tells.
func (c *h1Conn) peekSocket(fd uintptr) bool {
	c.peekErr = syscall.EAGAIN
	return true
}
