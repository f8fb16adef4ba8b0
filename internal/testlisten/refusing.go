//go:build unix

// Package testlisten gives tests loopback addresses whose connects fail
// in a known way: a TCP listener whose connects never complete, for
// connect timeouts (a socket that nobody accepts from, whose accept queue
// the test has filled: the kernel then drops the SYN of any further
// connect, tcp_conn_request, and the connect stays in SYN-SENT until the
// connector gives up), and an address where connects are refused.
package testlisten

import (
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// RefusingAddr returns a loopback address where connects are refused: a
// socket bound to it that does not listen, which holds the port until
// t.Cleanup, so that no other listener takes it meanwhile (a port found
// free and let go may be taken by the time it is dialed).
func RefusingAddr(t testing.TB) string {
	t.Helper()
	_, port := boundLoopback(t)
	return "127.0.0.1:" + strconv.Itoa(port)
}

// boundLoopback returns a TCP socket bound to a free port of 127.0.0.1,
// closed in t.Cleanup, and the port.
func boundLoopback(t testing.TB) (fd, port int) {
	t.Helper()
	syscall.ForkLock.RLock() // close-on-exec before any child can inherit it, as package net does
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, sa.(*unix.SockaddrInet4).Port
}
