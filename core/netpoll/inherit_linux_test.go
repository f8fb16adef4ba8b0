package netpoll

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestHandOverListeners: a second Server takes the first one's listening
// sockets (DupListeners, then ListenFDs, as a binary upgrade does): it
// serves on the same address with one loop per socket, and once the first
// has shut down, new connections still reach the second, none refused.
func TestHandOverListeners(t *testing.T) {
	old := &Server{Loops: 2, Handler: &funcs{}}
	if err := old.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := old.Addr()
	fds, err := old.DupListeners()
	if err != nil {
		t.Fatal(err)
	}
	if len(fds) != 2 {
		t.Fatalf("DupListeners: %d sockets, want 2 (one per loop)", len(fds))
	}
	next := &Server{Handler: &funcs{}}
	if err := next.ListenFDs(fds); err != nil {
		t.Fatal(err)
	}
	if next.LoopCount() != 2 || next.Addr() != addr {
		t.Fatalf("after ListenFDs: %d loops on %v, want 2 on %v", next.LoopCount(), next.Addr(), addr)
	}
	start(t, next)
	if err := old.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 20 { // over both sockets: the kernel spreads them
		echoOnce(t, addr.String())
	}
}

// echoOnce dials addr and checks that a byte comes back.
func echoOnce(t *testing.T, addr string) {
	t.Helper()
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(safetyNet))
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("echo from the server that took the sockets: %v", err)
	}
	c.Close()
}

// TestListenFDsRefusesNonListening: a descriptor that is not a listening
// socket (a connected one) is refused, and so is an empty list.
func TestListenFDsRefusesNonListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := (&Server{Handler: &funcs{}}).ListenFDs([]int{fd}); err == nil {
		t.Error("ListenFDs took a connected socket")
	}
	if err := (&Server{Handler: &funcs{}}).ListenFDs(nil); err == nil {
		t.Error("ListenFDs took no socket")
	}
}

// TestStopAccepting: after StopAccepting a connection already open is
// still served, and a new one is refused (no other process holds the
// sockets).
func TestStopAccepting(t *testing.T) {
	s := &Server{Loops: 2, Handler: &funcs{}}
	addr := start(t, s)
	open := dial(t, addr)
	open.SetDeadline(time.Now().Add(safetyNet))
	s.StopAccepting(context.Background())
	if _, err := open.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(open, make([]byte, 1)); err != nil {
		t.Fatalf("echo on a connection opened before StopAccepting: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, safetyNet); err == nil {
		c.Close()
		t.Fatal("a dial after StopAccepting succeeded")
	}
}
