package h3

import (
	"net"
	"syscall"
)

// raiseBuffers asks for want bytes of receive and send buffer on pc's
// socket, forcing past net.core.rmem_max / wmem_max when the process may
// (CAP_NET_ADMIN), and returns the sizes the kernel then reports. ok is
// false when pc is not a socket it can inspect.
func raiseBuffers(pc net.PacketConn, want int) (rcv, snd int, ok bool) {
	sc, isSocket := pc.(syscall.Conn)
	if !isSocket {
		return 0, 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var rcvErr, sndErr error
	err = raw.Control(func(fd uintptr) {
		rcv, rcvErr = raise(int(fd), syscall.SO_RCVBUF, syscall.SO_RCVBUFFORCE, want)
		snd, sndErr = raise(int(fd), syscall.SO_SNDBUF, syscall.SO_SNDBUFFORCE, want)
	})
	if err != nil || rcvErr != nil || sndErr != nil {
		return 0, 0, false
	}
	return rcv, snd, true
}

// raise grows one buffer of fd to want if it is smaller, first within the
// system limit (opt), then past it (force), and returns the size the
// kernel reports.
func raise(fd, opt, force, want int) (int, error) {
	size, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, opt)
	if err != nil || size >= want {
		return size, err
	}
	// Errors are ignored: the size read back tells what happened.
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, opt, want)
	if size, err = syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, opt); err != nil || size >= want {
		return size, err
	}
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, force, want)
	return syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, opt)
}
