package netpoll

import (
	"bytes"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/anx-gateway/anx/internal/testproc"
)

// TestIdleConnMemory opens 4000 connections, has each carry one 1 KiB
// request and response, lets them go idle and measures what the process
// grew by. The clients are bare sockets (an int each), so the growth is
// the server's: Conn structs, the loops' fd tables, and whatever buffers
// the idle connections failed to give back.
func TestIdleConnMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 4000 connections")
	}
	var open atomic.Int64
	s := &Server{Loops: 2, Handler: &funcs{open: func(*Conn) { open.Add(1) }}}
	addr := netip.MustParseAddrPort(start(t, s))
	const n = 4000
	msg := bytes.Repeat([]byte("x"), 1024)
	buf := make([]byte, 1024)
	fds := make([]int, 0, n)
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	sa := &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rss0 := testproc.VmRSS(t)
	for range n {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
		if err := unix.Connect(fd, sa); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Write(fd, msg); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(msg); {
			k, err := unix.Read(fd, buf)
			if err != nil || k == 0 {
				t.Fatalf("read: %d, %v", k, err)
			}
			got += k
		}
	}
	waitFor(t, func() bool { return open.Load() == n })
	runtime.GC()
	runtime.ReadMemStats(&after)
	rss1 := testproc.VmRSS(t)
	heap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	rss := float64(rss1-rss0) / n
	t.Logf("per idle connection: heap %.0f B, RSS %.0f B (unsafe.Sizeof(Conn) = %d B; the client ends' fds are ints)",
		heap, rss, unsafe.Sizeof(Conn{}))
	if heap > 512 {
		t.Errorf("heap per idle connection %.0f B, want <= 512", heap)
	}
}
