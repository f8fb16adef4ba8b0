//go:build unix

package h2abuse

import "syscall"

// setReceiveBuffer sets SO_RCVBUF on the socket behind rc.
func setReceiveBuffer(rc syscall.RawConn, size int) error {
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
	}); cerr != nil {
		return cerr
	}
	return err
}
