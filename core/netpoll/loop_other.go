//go:build !linux

package netpoll

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"time"
)

// Loop is an epoll loop; on this system there is none, and Start fails
// with ErrUnsupported.
type Loop struct {
	srv   *Server
	wheel *Wheel
	now   time.Time
}

// Submit fails: there are no loops on this system.
func (l *Loop) Submit(f func()) error { return ErrUnsupported }

// Start fails with ErrUnsupported: the loops need epoll.
func (s *Server) Start(addr string) error { return ErrUnsupported }

// Addr returns the zero address: the server never listens here.
func (s *Server) Addr() netip.AddrPort { return netip.AddrPort{} }

// Shutdown does nothing: the server never started.
func (s *Server) Shutdown(ctx context.Context) error { return nil }

// Warm fails: there are no loops on this system.
func (s *Server) Warm(c *Conn, f *os.File, off, n int64, done func(error)) error {
	return ErrUnsupported
}

// warmer is the file worker pool, absent here.
type warmer struct{}

// The connection methods fail: no Conn exists on this system.

// Pause stops reading.
func (c *Conn) Pause() {}

// Resume undoes Pause.
func (c *Conn) Resume() {}

// Write fails with ErrUnsupported.
func (c *Conn) Write(p []byte) error { return ErrUnsupported }

// WriteMore fails with ErrUnsupported.
func (c *Conn) WriteMore(p []byte) error { return ErrUnsupported }

// Writev fails with ErrUnsupported.
func (c *Conn) Writev(bufs [][]byte) error { return ErrUnsupported }

// SendFile fails with ErrUnsupported.
func (c *Conn) SendFile(f *os.File, off, n int64) error { return ErrUnsupported }

// Close does nothing.
func (c *Conn) Close() error { return nil }

// LocalAddr returns the zero address.
func (c *Conn) LocalAddr() netip.AddrPort { return netip.AddrPort{} }

// fail does nothing.
func (c *Conn) fail(err error) {}

// Resident reports true: without mincore every region counts as cached.
func Resident(f *os.File, off, n int64) (bool, error) { return true, nil }

// ErrWouldBlock is returned by ReadNoWait when the data is not in the
// page cache.
var ErrWouldBlock = errors.New("netpoll: data not in page cache")

// ErrWarmQueueFull is returned by Warm when the file workers are behind.
var ErrWarmQueueFull = errors.New("netpoll: file worker queue full")

// ReadNoWait fails with ErrUnsupported.
func ReadNoWait(f *os.File, p []byte, off int64) (int, error) { return 0, ErrUnsupported }

// DropCache does nothing.
func DropCache(f *os.File, off, n int64) error { return nil }

// Listen fails with ErrUnsupported: the loops need epoll.
func (s *Server) Listen(addr string) error { return ErrUnsupported }

// ErrBusy is returned by Detach while the connection has queued input or
// output.
var ErrBusy = errors.New("netpoll: connection has queued input or output")

// Detach fails with ErrUnsupported.
func (c *Conn) Detach() (net.Conn, error) { return nil, ErrUnsupported }

// Attach fails with ErrUnsupported.
func (c *Conn) Attach(nc net.Conn, then func()) error { return ErrUnsupported }

// Detached reports false.
func (c *Conn) Detached() bool { return false }

// Index returns 0: there are no loops on this system.
func (l *Loop) Index() int { return 0 }

// CloseWrite does nothing.
func (c *Conn) CloseWrite() {}

// DupFile fails with ErrUnsupported: only the loops need it.
func DupFile(f *os.File) (*os.File, error) { return nil, ErrUnsupported }

// ListenFDs fails with ErrUnsupported: the loops need epoll.
func (s *Server) ListenFDs(fds []int) error { return ErrUnsupported }

// DupListeners fails with ErrUnsupported: there are no loops here.
func (s *Server) DupListeners() ([]int, error) { return nil, ErrUnsupported }

// StopAccepting does nothing: the server never started here.
func (s *Server) StopAccepting(ctx context.Context) {}
