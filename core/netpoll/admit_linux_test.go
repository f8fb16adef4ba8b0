package netpoll

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// perAddress is an Admitter that takes at most limit connections from one
// address and checks that every Release matches an Admit.
type perAddress struct {
	t     testing.TB
	limit int

	mu                          sync.Mutex
	open                        map[netip.Addr]int // guarded by mu
	admitted, refused, released int                // guarded by mu
}

func newPerAddress(t testing.TB, limit int) *perAddress {
	return &perAddress{t: t, limit: limit, open: map[netip.Addr]int{}}
}

func (p *perAddress) Admit(addr netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open[addr] >= p.limit {
		p.refused++
		return false
	}
	p.open[addr]++
	p.admitted++
	return true
}

func (p *perAddress) Release(addr netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open[addr] == 0 {
		p.t.Errorf("Release(%v) with no connection admitted from it", addr)
		return
	}
	p.open[addr]--
	p.released++
}

// counts returns admitted, refused and released.
func (p *perAddress) counts() (int, int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.admitted, p.refused, p.released
}

// dialFrom connects to addr from the local address from (port 0).
func dialFrom(t testing.TB, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: safetyNet}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(safetyNet))
	return c
}

// echoes checks that c is served: a byte written comes back.
func echoes(t testing.TB, c net.Conn) {
	t.Helper()
	if _, err := c.Write([]byte("e")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("echo: %v", err)
	}
}

// TestAdmitterRefusesBeforeAnyRead: beyond the Admitter's limit a
// connection is reset without the handler hearing of it (no OnOpen, no
// OnRead of what the client sent), another address is still served, and
// a close makes room for the next connection.
func TestAdmitterRefusesBeforeAnyRead(t *testing.T) {
	var opened, reads atomic.Int64
	closed := make(chan struct{}, 8)
	adm := newPerAddress(t, 2)
	s := &Server{Loops: 2, Admitter: adm, Handler: &funcs{
		open:   func(*Conn) { opened.Add(1) },
		read:   func(c *Conn, in []byte) int { reads.Add(1); c.Write(in); return len(in) },
		closed: func(*Conn, error) { closed <- struct{}{} },
	}}
	addr := start(t, s)
	held := []net.Conn{dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.1", addr)}
	for _, c := range held {
		echoes(t, c)
	}
	readsBefore := reads.Load()

	// The kernel completes the TCP handshake before the accept; the reset
	// can come before connect(2) returns, or before or after the write.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, Timeout: safetyNet}
	over, err := d.Dial("tcp", addr)
	n := 0
	if err == nil {
		defer over.Close()
		over.SetDeadline(time.Now().Add(safetyNet))
		over.Write([]byte("never read"))
		n, err = over.Read(make([]byte, 1))
	}
	if n != 0 || !(errors.Is(err, syscall.ECONNRESET) || err == io.EOF) {
		t.Fatalf("connection over the limit: read %d, %v; want a reset or EOF", n, err)
	}
	if got := opened.Load(); got != 2 {
		t.Errorf("OnOpen ran %d times, want 2: the refused connection reached the handler", got)
	}
	if got := reads.Load(); got != readsBefore {
		t.Errorf("OnRead ran %d more times after the refusal", got-readsBefore)
	}

	echoes(t, dialFrom(t, "127.0.0.2", addr)) // another address: its own count

	held[0].Close()
	recv(t, closed)
	echoes(t, dialFrom(t, "127.0.0.1", addr))
	if a, r, rel := adm.counts(); a != 4 || r != 1 || rel != 1 {
		t.Errorf("admitted %d, refused %d, released %d; want 4, 1, 1", a, r, rel)
	}
}

// TestAdmitterReleasesEveryClose: each admitted connection is released
// exactly once, however it ends: closed by the peer, reset, closed by the
// handler, taken off the loop and back (Detach, Attach) before closing,
// and closed by Shutdown.
func TestAdmitterReleasesEveryClose(t *testing.T) {
	adm := newPerAddress(t, 1000)
	s := &Server{Loops: 2, Admitter: adm, Handler: &funcs{read: func(c *Conn, in []byte) int {
		switch string(in) {
		case "close":
			c.Close()
		case "detach":
			nc, err := c.Detach()
			if err != nil {
				t.Errorf("Detach: %v", err)
				return len(in)
			}
			go c.Attach(nc, func() { c.Write([]byte("back")) })
		default:
			c.Write(in)
		}
		return len(in)
	}}}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	const each = 20
	var keep []net.Conn
	for i := range each {
		peerClose := dialFrom(t, "127.0.0.1", addr)
		echoes(t, peerClose)
		peerClose.Close()

		reset := dialFrom(t, "127.0.0.1", addr).(*net.TCPConn)
		echoes(t, reset)
		reset.SetLinger(0)
		reset.Close()

		handlerClose := dialFrom(t, "127.0.0.1", addr)
		handlerClose.Write([]byte("close"))
		if _, err := handlerClose.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("after close: %v, want EOF", err)
		}

		detached := dialFrom(t, "127.0.0.1", addr)
		detached.Write([]byte("detach"))
		if _, err := io.ReadFull(detached, make([]byte, 4)); err != nil {
			t.Fatalf("after Detach and Attach: %v", err)
		}
		if i%2 == 0 {
			detached.Close()
		} else {
			keep = append(keep, detached) // closed by Shutdown
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), safetyNet)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range keep {
		c.Close()
	}
	a, r, rel := adm.counts()
	if a != 4*each || r != 0 || rel != a {
		t.Errorf("admitted %d, refused %d, released %d; want %d, 0, %d", a, r, rel, 4*each, 4*each)
	}
}
