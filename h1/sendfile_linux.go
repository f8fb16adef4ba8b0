//go:build linux

package h1

import (
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// maxSendfile bounds one sendfile(2) call; Linux moves at most 0x7ffff000
// bytes per call anyway.
const maxSendfile = 1 << 30

// sendFile sends length bytes of f, from offset, to tc with sendfile(2).
// It passes the offset explicitly, so f's own file offset is left alone
// and a file shared between concurrent requests is safe (net.TCPConn's
// ReadFrom would use and move the shared offset). Whenever bytes move, the
// write deadline is pushed timeout further, so a slow reader that keeps
// reading is not cut off. handled is false when the kernel refused before
// sending anything; the caller then copies.
func sendFile(tc *net.TCPConn, f *os.File, offset, length int64, timeout time.Duration) (sent int64, handled bool, err error) {
	src, err := f.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	dst, err := tc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	handled = true
	var serr, werr error // from sendfile itself; from waiting on the socket
	cerr := src.Control(func(sfd uintptr) {
		werr = dst.Write(func(dfd uintptr) bool {
			moved := false
			for sent < length {
				n, err := syscall.Sendfile(int(dfd), int(sfd), &offset, int(min(length-sent, maxSendfile)))
				if n > 0 {
					sent += int64(n)
					moved = true
				}
				switch {
				case err == syscall.EINTR:
					continue
				case err == syscall.EAGAIN:
					if moved && timeout > 0 {
						tc.SetWriteDeadline(time.Now().Add(timeout))
					}
					return false
				case err != nil:
					if sent == 0 && (err == syscall.EINVAL || err == syscall.ENOSYS || err == syscall.EOPNOTSUPP) {
						handled = false
					} else {
						serr = os.NewSyscallError("sendfile", err)
					}
					return true
				case n == 0:
					serr = io.ErrUnexpectedEOF // the file is shorter than asked
					return true
				}
			}
			return true
		})
	})
	if !handled {
		return 0, false, nil
	}
	for _, err := range []error{serr, werr, cerr} {
		if err != nil {
			return sent, true, err
		}
	}
	return sent, true, nil
}
