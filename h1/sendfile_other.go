//go:build !linux

package h1

import (
	"net"
	"os"
	"time"
)

// sendFile reports that the kernel path is not available here; the caller
// copies through a pooled buffer.
func sendFile(tc *net.TCPConn, f *os.File, offset, length int64, timeout time.Duration) (int64, bool, error) {
	return 0, false, nil
}
