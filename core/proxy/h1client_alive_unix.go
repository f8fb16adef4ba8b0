//go:build unix

package proxy

import "syscall"

// peekSocket looks at the socket fd of an idle connection without
// blocking and without consuming anything: EAGAIN means open and silent,
// 0 bytes means the upstream closed it, bytes mean it sent something.
// It runs inside syscall.RawConn.Read and reports that it is done.
func (c *h1Conn) peekSocket(fd uintptr) bool {
	c.peekN, _, c.peekErr = syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return true
}
