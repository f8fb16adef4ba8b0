package netpoll

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/anx-gateway/anx/internal/testlisten"
)

// echoUpstream runs an echo server with a goroutine per connection on a
// net.Listener, the upstream the loop dials. Its goroutines exit when the
// test ends: the listener and every connection are closed.
func echoUpstream(t *testing.T, network, addr string) string {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() { // accepts until the listener closes
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { // echoes until the peer or the cleanup closes
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// relay is a tiny proxy on the loop: each accepted connection dials the
// upstream from its OnOpen, and the two copy to each other, each finding
// the other in its Context.
type relay struct {
	network, addr string
	upClosed      chan error // each upstream connection's OnClose
}

func (r *relay) OnOpen(c *Conn) {
	up, err := c.Loop().Dial(r.network, r.addr, relayUp{r.upClosed})
	if err != nil {
		r.upClosed <- err
		c.Close()
		return
	}
	c.SetContext(up)
	up.SetContext(c)
}

func (r *relay) OnRead(c *Conn, in []byte) int {
	c.Context().(*Conn).Write(in) // queued while the upstream connects
	return len(in)
}

func (r *relay) OnWritable(*Conn) {}

func (r *relay) OnClose(c *Conn, err error) {
	if up, ok := c.Context().(*Conn); ok {
		up.Close()
	}
}

// relayUp is the upstream side of relay.
type relayUp struct{ closed chan error }

func (relayUp) OnOpen(*Conn) {}

func (relayUp) OnRead(u *Conn, in []byte) int {
	u.Context().(*Conn).Write(in)
	return len(in)
}

func (relayUp) OnWritable(*Conn) {}

func (r relayUp) OnClose(u *Conn, err error) {
	u.Context().(*Conn).Close()
	r.closed <- err
}

// TestDialRelayEcho: bytes go both ways through a connection the loop
// dialed, over TCP (IPv4, IPv6) and a Unix socket: a client's 1 MiB goes
// through the relay to an echo upstream and back.
func TestDialRelayEcho(t *testing.T) {
	cases := []struct{ name, network, listen string }{
		{"tcp4", "tcp", "127.0.0.1:0"},
		{"tcp6", "tcp6", "[::1]:0"},
		{"unix", "unix", ""},
		{"unix-abstract", "unix", "@"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			listen := tc.listen
			switch listen {
			case "[::1]:0":
				ln, err := net.Listen("tcp6", listen)
				if err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				ln.Close()
			case "":
				listen = filepath.Join(t.TempDir(), "up.sock")
			case "@":
				listen = "@anx-netpoll-test-" + t.Name() + time.Now().Format("150405.000000000")
			}
			up := echoUpstream(t, tc.network, listen)
			if tc.network == "unix" {
				up = listen
			}
			r := &relay{network: tc.network, addr: up, upClosed: make(chan error, 1)}
			s := &Server{Loops: 1, Handler: r}
			c := dial(t, start(t, s))
			c.SetDeadline(time.Now().Add(safetyNet))
			msg := randomBytes(1 << 20)
			go c.Write(msg) // ends when the relay has taken it all, or the connection closed
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("read back: %v", err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatal("bytes echoed through the dialed connection differ")
			}
			c.Close()
			if err := recv(t, r.upClosed); err != nil {
				t.Fatalf("upstream OnClose(%v), want nil (closed by the relay)", err)
			}
		})
	}
}

// onLoop runs f on loop 0 of s and waits for it.
func onLoop(t testing.TB, s *Server, f func(l *Loop)) {
	t.Helper()
	l := s.Loop(0)
	done := make(chan struct{})
	if err := l.Submit(func() { f(l); close(done) }); err != nil {
		t.Fatal(err)
	}
	recv(t, done)
}

// loopConns returns how many connections loop 0 of s counts.
func loopConns(t testing.TB, s *Server) int {
	var n int
	onLoop(t, s, func(l *Loop) { n = l.nconns })
	return n
}

// dialOutcome records what a dialed connection's handler saw.
type dialOutcome struct {
	opened atomic.Int64
	closed chan error
}

func newDialOutcome() *dialOutcome { return &dialOutcome{closed: make(chan error, 16)} }

func (o *dialOutcome) handler() *funcs {
	return &funcs{
		open:   func(*Conn) { o.opened.Add(1) },
		closed: func(_ *Conn, err error) { o.closed <- err },
	}
}

// TestDialRefused: a refused connect reaches OnClose as a ConnectError
// that wraps ECONNREFUSED, OnOpen never runs, and a Write made before
// the outcome was only queued.
func TestDialRefused(t *testing.T) {
	s := &Server{Loops: 1, Handler: &funcs{}}
	start(t, s)
	addr := testlisten.RefusingAddr(t)
	o := newDialOutcome()
	var writeErr error
	onLoop(t, s, func(l *Loop) {
		c, err := l.Dial("tcp", addr, o.handler())
		if err != nil {
			t.Errorf("Dial: %v", err)
			return
		}
		writeErr = c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	})
	if writeErr != nil {
		t.Fatalf("Write before the connect's outcome: %v, want nil (queued)", writeErr)
	}
	err := recv(t, o.closed)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("OnClose(%v), want ECONNREFUSED", err)
	}
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Remote.String() != addr || ce.Timeout() {
		t.Fatalf("OnClose(%#v): want a *ConnectError for %s, not a timeout", err, addr)
	}
	if n := o.opened.Load(); n != 0 {
		t.Fatalf("OnOpen ran %d times for a refused connect", n)
	}
	if n := loopConns(t, s); n != 0 {
		t.Fatalf("the loop counts %d connections after the refused one closed, want 0", n)
	}
}

// TestDialErrors: Dial refuses what it cannot start, with no callback.
func TestDialErrors(t *testing.T) {
	s := &Server{Loops: 1, Handler: &funcs{}}
	start(t, s)
	o := newDialOutcome()
	bad := [][2]string{
		{"tcp", "localhost:80"}, // a name: no DNS on the loop
		{"tcp", "127.0.0.1"},    // no port
		{"tcp4", "[::1]:80"},
		{"udp", "127.0.0.1:53"},
		{"unix", ""},
		{"unix", string(make([]byte, 200))},
	}
	onLoop(t, s, func(l *Loop) {
		for _, b := range bad {
			if c, err := l.Dial(b[0], b[1], o.handler()); err == nil || c != nil {
				t.Errorf("Dial(%q, %q) = %v, %v; want an error", b[0], b[1], c, err)
			}
		}
		if _, err := l.Dial("tcp", "127.0.0.1:1", nil); err == nil {
			t.Error("Dial with a nil Handler: no error")
		}
	})
	if n := loopConns(t, s); n != 0 || o.opened.Load() != 0 || len(o.closed) != 0 {
		t.Fatalf("after failed Dials: %d connections, %d OnOpen, %d OnClose; want none", n, o.opened.Load(), len(o.closed))
	}
}

// connectTimeouter is a TimeoutHandler that records OnTimeout, which a
// connect timeout must not call.
type connectTimeouter struct {
	*funcs
	timeouts atomic.Int64
}

func (h *connectTimeouter) OnTimeout(c *Conn) { h.timeouts.Add(1); c.Timeout() }

// TestDialTimeout: a timeout set before OnOpen bounds the connect: the
// SYN to a listener whose accept queue is full is dropped, and OnClose
// gets a ConnectError that wraps ErrTimeout, with no OnOpen and no
// OnTimeout.
func TestDialTimeout(t *testing.T) {
	s := &Server{Loops: 1, Handler: &funcs{}}
	start(t, s)
	addr, _ := testlisten.FullAcceptQueue(t)
	o := newDialOutcome()
	h := &connectTimeouter{funcs: o.handler()}
	onLoop(t, s, func(l *Loop) {
		c, err := l.Dial("tcp", addr, h)
		if err != nil {
			t.Errorf("Dial: %v", err)
			return
		}
		c.SetTimeout(50 * time.Millisecond)
		c.Write([]byte("never sent"))
	})
	err := recv(t, o.closed)
	var ce *ConnectError
	if !errors.Is(err, ErrTimeout) || !errors.As(err, &ce) || !ce.Timeout() {
		t.Fatalf("OnClose(%v), want a ConnectError wrapping ErrTimeout", err)
	}
	if o.opened.Load() != 0 || h.timeouts.Load() != 0 {
		t.Fatalf("OnOpen ran %d times, OnTimeout %d times; want 0 and 0", o.opened.Load(), h.timeouts.Load())
	}
}

// TestDialTimeoutRemovedOnOpen: the connect timeout does not outlive the
// connect.
func TestDialTimeoutRemovedOnOpen(t *testing.T) {
	up := echoUpstream(t, "tcp", "127.0.0.1:0")
	s := &Server{Loops: 1, Handler: &funcs{}}
	start(t, s)
	pending := make(chan bool, 1)
	h := &funcs{open: func(c *Conn) { pending <- c.timer.Pending() }}
	onLoop(t, s, func(l *Loop) {
		c, err := l.Dial("tcp", up, h)
		if err != nil {
			t.Errorf("Dial: %v", err)
			return
		}
		c.SetTimeout(time.Hour)
	})
	if recv(t, pending) {
		t.Fatal("the connect timeout is still set in OnOpen")
	}
}

// TestDialUnixBacklogFull: a Unix socket's connect fails at once with
// EAGAIN when the listener's backlog is full; it reaches OnClose (after
// Dial returned) as a ConnectError, with no OnOpen.
func TestDialUnixBacklogFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "full.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil { // holds one connection
		t.Fatal(err)
	}
	filler := dialUnixBlocking(t, path) // completes at once: Unix connects are synchronous
	defer unix.Close(filler)

	s := &Server{Loops: 1, Handler: &funcs{}}
	start(t, s)
	o := newDialOutcome()
	closedInDial := false
	onLoop(t, s, func(l *Loop) {
		if _, err := l.Dial("unix", path, o.handler()); err != nil {
			t.Errorf("Dial: %v", err)
		}
		closedInDial = len(o.closed) > 0
	})
	err = recv(t, o.closed)
	var ce *ConnectError
	if !errors.Is(err, syscall.EAGAIN) || !errors.As(err, &ce) {
		t.Fatalf("OnClose(%v), want a ConnectError wrapping EAGAIN", err)
	}
	if closedInDial || o.opened.Load() != 0 {
		t.Fatalf("OnClose inside Dial: %v; OnOpen ran %d times", closedInDial, o.opened.Load())
	}
}

func dialUnixBlocking(t *testing.T, path string) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	return fd
}

// TestDialMany: 1000 connections dialed at once from one loop each echo
// their own number through an upstream on another Server's loops; half
// write before the connect completed, half in OnOpen.
func TestDialMany(t *testing.T) {
	const n = 1000
	upstream := &Server{Loops: 2, Handler: &funcs{}} // echoes
	up := start(t, upstream)
	s := &Server{Loops: 1, Handler: &funcs{}}
	start(t, s)
	var (
		echoed atomic.Int64
		errs   = make(chan error, n)
	)
	id := func(c *Conn) []byte { return binary.BigEndian.AppendUint64(nil, uint64(c.Context().(int))) }
	h := &funcs{
		open: func(c *Conn) {
			if c.Context().(int)%2 == 1 {
				c.Write(id(c))
			}
		},
		read: func(c *Conn, in []byte) int {
			if len(in) < 8 {
				return 0
			}
			if !bytes.Equal(in[:8], id(c)) {
				errs <- errors.New("a connection got another's bytes")
			}
			echoed.Add(1)
			c.Close()
			return len(in)
		},
		closed: func(c *Conn, err error) { errs <- err },
	}
	onLoop(t, s, func(l *Loop) {
		for i := range n {
			c, err := l.Dial("tcp", up, h)
			if err != nil {
				t.Errorf("Dial %d: %v", i, err)
				return
			}
			c.SetContext(i)
			if i%2 == 0 {
				c.Write(id(c)) // queued until connected
			}
		}
	})
	for range n {
		if err := recv(t, errs); err != nil {
			t.Fatal(err)
		}
	}
	if got := echoed.Load(); got != n {
		t.Fatalf("%d connections got their echo, want %d", got, n)
	}
	if k := loopConns(t, s); k != 0 {
		t.Fatalf("the loop counts %d connections after all closed", k)
	}
}

// drainRecorder is a Drainer that records the connections it was asked
// to drain and what a Dial from OnDrain returned, and closes them.
type drainRecorder struct {
	*funcs
	drained chan *Conn
	dialErr chan error
}

func newDrainRecorder(h *funcs) *drainRecorder {
	return &drainRecorder{funcs: h, drained: make(chan *Conn, 4), dialErr: make(chan error, 4)}
}

func (d *drainRecorder) OnDrain(c *Conn) {
	_, err := c.Loop().Dial("tcp", "127.0.0.1:1", &funcs{})
	d.dialErr <- err
	d.drained <- c
	c.Close()
}

// TestDialShutdown: Shutdown closes dialed connections with
// ErrServerClosed, whether open or still connecting (then as a
// ConnectError: nothing was sent), and asks the Server's Drainer about
// none of them; a dialed connection whose own handler is a Drainer gets
// OnDrain, and a Dial from there fails with ErrServerClosed.
func TestDialShutdown(t *testing.T) {
	up := echoUpstream(t, "tcp", "127.0.0.1:0")
	stuck, _ := testlisten.FullAcceptQueue(t)
	serverDrainer := newDrainRecorder(&funcs{})
	s := &Server{Loops: 1, Handler: serverDrainer}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	opened := make(chan *Conn, 2)
	plain := newDialOutcome()
	plainH := plain.handler()
	plainH.open = func(c *Conn) { opened <- c }
	ownClosed := make(chan error, 1)
	own := newDrainRecorder(&funcs{
		open:   func(c *Conn) { opened <- c },
		closed: func(_ *Conn, err error) { ownClosed <- err },
	})
	connecting := newDialOutcome()
	onLoop(t, s, func(l *Loop) {
		for _, d := range []struct {
			addr string
			h    Handler
		}{{up, plainH}, {up, own}, {stuck, connecting.handler()}} {
			c, err := l.Dial("tcp", d.addr, d.h)
			if err != nil {
				t.Errorf("Dial(%s): %v", d.addr, err)
				continue
			}
			if d.addr == stuck {
				c.Write([]byte("a request that must not wait for the connect"))
			}
		}
	})
	recv(t, opened)
	recv(t, opened)
	ctx, cancel := context.WithTimeout(context.Background(), safetyNet)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := recv(t, plain.closed); err != ErrServerClosed {
		t.Errorf("open dialed connection: OnClose(%v), want ErrServerClosed", err)
	}
	err := recv(t, connecting.closed)
	var ce *ConnectError
	if !errors.Is(err, ErrServerClosed) || !errors.As(err, &ce) {
		t.Errorf("connecting dialed connection: OnClose(%v), want a ConnectError wrapping ErrServerClosed", err)
	}
	if connecting.opened.Load() != 0 {
		t.Error("the connecting dialed connection got OnOpen")
	}
	recv(t, own.drained)
	if err := recv(t, own.dialErr); err != ErrServerClosed {
		t.Errorf("Dial from OnDrain: %v, want ErrServerClosed", err)
	}
	if err := recv(t, ownClosed); err != nil {
		t.Errorf("dialed connection closed by its own Drainer: OnClose(%v), want nil", err)
	}
	if n := len(serverDrainer.drained); n != 0 {
		t.Errorf("the Server's Drainer was asked about %d dialed connections, want 0", n)
	}
}

// quietListener returns the address of a listening socket that nobody
// accepts from, with room in its accept queue for every connect of a test.
func quietListener(t testing.TB) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	return sockaddrPort(sa).String()
}

// TestDialAllocs: Dial allocates the Conn and its timer's callback and
// nothing else (measured on the loop, where Dial runs, with the loop's
// tables already grown; the Closes are reaped when the function given to
// Submit returns).
func TestDialAllocs(t *testing.T) {
	addr := quietListener(t)
	s := &Server{Loops: 1, Handler: &funcs{}}
	start(t, s)
	h := &funcs{}
	dialClose := func(l *Loop) {
		c, err := l.Dial("tcp", addr, h)
		if err != nil {
			t.Error(err) // on the loop: no FailNow
			return
		}
		c.Close()
	}
	onLoop(t, s, func(l *Loop) { // grows the fd table and the close list
		for range 300 {
			dialClose(l)
		}
	})
	var allocs float64
	onLoop(t, s, func(l *Loop) { allocs = testing.AllocsPerRun(200, func() { dialClose(l) }) })
	t.Logf("Dial and Close: %.0f allocations", allocs)
	if allocs > 2 {
		t.Fatalf("Dial and Close allocate %.0f times, want at most 2 (the Conn and its timer callback)", allocs)
	}
}

// BenchmarkDial measures whole outbound connections on the loop, one
// after another: Dial, the connect, OnOpen, the upstream's close, OnClose.
// The upstream is another Server's loop in the same process, which
// accepts (its own Conn and timer callback: 2 of the allocations per op)
// and closes at once.
func BenchmarkDial(b *testing.B) {
	upstream := &Server{Loops: 1, Handler: &funcs{open: func(c *Conn) { c.Close() }}}
	up := start(b, upstream)
	s := &Server{Loops: 1, Handler: &funcs{}}
	start(b, s)
	done := make(chan error, 1)
	left := 0 // owned by the loop once submitted
	var h *funcs
	next := func(l *Loop) {
		if left == 0 {
			done <- nil
			return
		}
		left--
		if _, err := l.Dial("tcp", up, h); err != nil {
			done <- err
		}
	}
	h = &funcs{closed: func(c *Conn, err error) {
		if err != io.EOF {
			done <- err
			return
		}
		next(c.Loop())
	}}
	b.ReportAllocs()
	left = b.N
	b.ResetTimer()
	l := s.Loop(0)
	l.Submit(func() { next(l) })
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// TestDialDetach: a dialed connection refuses Detach while connecting;
// once open it goes off the loop and back like an accepted one, and
// comes back to its own handler.
func TestDialDetach(t *testing.T) {
	up := echoUpstream(t, "tcp", "127.0.0.1:0")
	s := &Server{Loops: 1, Handler: &funcs{}}
	start(t, s)
	detached := make(chan net.Conn, 1)
	var onLoopGot []byte // the loop's
	echoed := make(chan string, 1)
	h := &funcs{
		open: func(c *Conn) {
			nc, err := c.Detach()
			if err != nil {
				t.Errorf("Detach after OnOpen: %v", err)
			}
			detached <- nc
		},
		read: func(c *Conn, in []byte) int {
			if onLoopGot = append(onLoopGot, in...); len(onLoopGot) == len("on the loop") {
				echoed <- string(onLoopGot)
			}
			return len(in)
		},
	}
	var dc *Conn
	var busy error
	onLoop(t, s, func(l *Loop) {
		var err error
		if dc, err = l.Dial("tcp", up, h); err != nil {
			t.Error(err)
			return
		}
		_, busy = dc.Detach()
	})
	if busy != ErrBusy {
		t.Fatalf("Detach while connecting: %v, want ErrBusy", busy)
	}
	nc := recv(t, detached)
	if nc == nil {
		t.FailNow()
	}
	nc.SetDeadline(time.Now().Add(safetyNet))
	nc.Write([]byte("off the loop"))
	got := make([]byte, len("off the loop"))
	if _, err := io.ReadFull(nc, got); err != nil || string(got) != "off the loop" {
		t.Fatalf("detached: read %q, %v", got, err)
	}
	if err := dc.Attach(nc, func() { dc.Write([]byte("on the loop")) }); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, echoed); got != "on the loop" {
		t.Fatalf("after Attach: OnRead got %q", got)
	}
}

// TestRemoteAddr: RemoteAddr of accepted connections is the client's
// address (IPv4 unmapped), of a dialed one the address dialed, and zero
// for a Unix socket.
func TestRemoteAddr(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run("accepted "+listen, func(t *testing.T) {
			remote := make(chan netip.AddrPort, 1)
			s := &Server{Loops: 1, Handler: &funcs{open: func(c *Conn) { remote <- c.RemoteAddr() }}}
			if err := s.Start(listen); err != nil {
				t.Skipf("cannot listen on %s: %v", listen, err)
			}
			defer s.Shutdown(context.Background())
			c := dial(t, s.Addr().String())
			want := c.LocalAddr().(*net.TCPAddr).AddrPort()
			want = netip.AddrPortFrom(want.Addr().Unmap(), want.Port())
			if got := recv(t, remote); got != want {
				t.Fatalf("RemoteAddr() = %v, want %v", got, want)
			}
		})
	}
	s := &Server{Loops: 1, Handler: &funcs{}}
	start(t, s)
	up := echoUpstream(t, "tcp", "127.0.0.1:0")
	path := filepath.Join(t.TempDir(), "up.sock")
	echoUpstream(t, "unix", path)
	for _, d := range [][2]string{{"tcp", up}, {"unix", path}} {
		remote := make(chan netip.AddrPort, 1)
		h := &funcs{open: func(c *Conn) { remote <- c.RemoteAddr(); c.Close() }}
		onLoop(t, s, func(l *Loop) {
			if _, err := l.Dial(d[0], d[1], h); err != nil {
				t.Error(err)
			}
		})
		want := netip.AddrPort{}
		if d[0] == "tcp" {
			want = netip.MustParseAddrPort(up)
		}
		if got := recv(t, remote); got != want {
			t.Errorf("dialed %s %s: RemoteAddr() = %v, want %v", d[0], d[1], got, want)
		}
	}
}

// TestDialCloseBeforeOpen: Close before OnOpen with nothing queued ends
// the connection at once (OnClose(nil), no OnOpen); with output queued it
// waits for the connect, runs OnOpen, sends the output and then closes.
func TestDialCloseBeforeOpen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan string, 1)
	go func() { // reads one connection to EOF; exits after it
		c, err := ln.Accept()
		if err != nil {
			received <- err.Error()
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(safetyNet))
		b, err := io.ReadAll(c)
		if err != nil {
			received <- err.Error()
			return
		}
		received <- string(b)
	}()
	s := &Server{Loops: 1, Handler: &funcs{}}
	start(t, s)
	bare, queued := newDialOutcome(), newDialOutcome()
	nowhere := testlisten.RefusingAddr(t) // refused, if it ever got that far
	onLoop(t, s, func(l *Loop) {
		c, err := l.Dial("tcp", nowhere, bare.handler())
		if err != nil {
			t.Error(err)
			return
		}
		c.Close()
		if c, err = l.Dial("tcp", ln.Addr().String(), queued.handler()); err != nil {
			t.Error(err)
			return
		}
		c.Write([]byte("sent after OnOpen"))
		c.Close()
	})
	if err := recv(t, bare.closed); err != nil || bare.opened.Load() != 0 {
		t.Errorf("nothing queued: OnClose(%v) after %d OnOpen, want nil after none", err, bare.opened.Load())
	}
	if err := recv(t, queued.closed); err != nil || queued.opened.Load() != 1 {
		t.Errorf("output queued: OnClose(%v) after %d OnOpen, want nil after one", err, queued.opened.Load())
	}
	if got := recv(t, received); got != "sent after OnOpen" {
		t.Errorf("the upstream received %q", got)
	}
}
