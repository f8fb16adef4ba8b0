package netpoll

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// funcs is a Handler made of optional functions; the default OnRead echoes.
type funcs struct {
	open     func(c *Conn)
	read     func(c *Conn, in []byte) int
	writable func(c *Conn)
	closed   func(c *Conn, err error)
}

func (h *funcs) OnOpen(c *Conn) {
	if h.open != nil {
		h.open(c)
	}
}

func (h *funcs) OnRead(c *Conn, in []byte) int {
	if h.read != nil {
		return h.read(c, in)
	}
	c.Write(in)
	return len(in)
}

func (h *funcs) OnWritable(c *Conn) {
	if h.writable != nil {
		h.writable(c)
	}
}

func (h *funcs) OnClose(c *Conn, err error) {
	if h.closed != nil {
		h.closed(c, err)
	}
}

// start runs a server on 127.0.0.1 that the test shuts down at its end.
func start(t testing.TB, s *Server) string {
	t.Helper()
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), safetyNet)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s.Addr().String()
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestEchoManyConnsPipelined(t *testing.T) {
	var open, closed atomic.Int64
	s := &Server{Loops: 2, Handler: &funcs{
		open:   func(*Conn) { open.Add(1) },
		closed: func(*Conn, error) { closed.Add(1) },
	}}
	addr := start(t, s)
	const conns, rounds = 2000, 5
	msg := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1 KiB
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(safetyNet))
			// Several messages in one write (pipelined), then read them all.
			batch := bytes.Repeat(msg, 1+i%7)
			got := make([]byte, len(batch))
			for range rounds {
				if _, err := c.Write(batch); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, got); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, batch) {
					errs <- errors.New("echo differs")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return closed.Load() == conns })
	if open.Load() != conns {
		t.Fatalf("opened %d, want %d", open.Load(), conns)
	}
}

// safetyNet bounds every wait of these tests for an event: not a figure
// the tests measure, only what ends a test that would otherwise hang,
// sized for -race on a busy 2-core machine and for qemu emulation.
const safetyNet = 2 * time.Minute

// waitFor polls cond until it holds, failing the test after safetyNet.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(safetyNet); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached in %v", safetyNet)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPartialInput checks that unconsumed input is kept and handed over
// again with what follows: the handler consumes only whole lines. Each
// piece is sent once the handler has seen the one before, so that every
// call gets what was kept and one new piece.
func TestPartialInput(t *testing.T) {
	seen := make(chan string, 1)
	s := &Server{Loops: 1, Handler: &funcs{read: func(c *Conn, in []byte) int {
		seen <- string(in)
		end := bytes.LastIndexByte(in, '\n') + 1
		c.Write(in[:end])
		return end
	}}}
	c := dial(t, start(t, s))
	want := "hello world\nsecond line\n"
	kept := ""
	for _, piece := range []string{"hel", "lo w", "orld\nsec", "ond ", "line\n"} {
		c.Write([]byte(piece))
		if in := recv(t, seen); in != kept+piece {
			t.Fatalf("OnRead got %q, want %q (kept) + %q (new)", in, kept, piece)
		}
		kept = (kept + piece)[strings.LastIndexByte(kept+piece, '\n')+1:]
	}
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(safetyNet))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

// TestSlowReader writes far more than the socket buffers to a client that
// reads slowly: the output is queued, sent on EPOLLOUT, and OnWritable
// follows.
func TestSlowReader(t *testing.T) {
	data := make([]byte, 8<<20)
	rand.Read(data)
	writable := make(chan int64, 1)
	s := &Server{Loops: 1, Handler: &funcs{
		read: func(c *Conn, in []byte) int {
			c.Write(data[:len(data)/2])
			c.Writev([][]byte{data[len(data)/2 : len(data)/2+10], data[len(data)/2+10:]})
			if c.Buffered() == 0 {
				t.Error("8 MiB went out at once: the test proves nothing")
			}
			return len(in)
		},
		writable: func(c *Conn) { writable <- c.Buffered() },
	}}
	c := dial(t, start(t, s))
	c.Write([]byte("go"))
	got := make([]byte, 0, len(data))
	buf := make([]byte, 16<<10)
	c.SetReadDeadline(time.Now().Add(safetyNet))
	for len(got) < len(data) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
		if len(got) < 1<<20 {
			// Slow at first: the state under test (the server's output
			// backs up), which a slower machine only makes slower still.
			time.Sleep(2 * time.Millisecond)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data differs")
	}
	if left := recv(t, writable); left != 0 {
		t.Fatalf("OnWritable with %d bytes still buffered", left)
	}
}

func TestSendFile(t *testing.T) {
	f, data := randomFile(t, 10<<20+123) // closed after the server's Shutdown (cleanups run last first)
	head, tail := []byte("HEAD\n"), []byte("\nTAIL")
	const off = 1000
	queued := make(chan int64, 1)
	s := &Server{Loops: 1, DropBehind: 1 << 20, Handler: &funcs{
		read: func(c *Conn, in []byte) int {
			defer func() { queued <- c.Buffered() }()
			c.Writev([][]byte{head[:2], head[2:]})
			if err := c.SendFile(f, off, int64(len(data)-off)); err != nil {
				t.Error(err)
			}
			c.Write(tail[:1]) // queued behind the file
			if err := c.SendFile(f, 0, 3); err != nil {
				t.Errorf("second SendFile: %v", err)
			}
			c.Write(tail[1:]) // and behind the second
			return len(in)
		},
	}}
	c := dial(t, start(t, s))
	c.Write([]byte("x"))
	want := slices.Concat(head, data[off:], tail[:1], data[:3], tail[1:])
	got := make([]byte, len(want))
	// The client reads nothing until the server has queued what the socket
	// did not take: the rest goes out on EPOLLOUT.
	if n := recv(t, queued); n == 0 {
		t.Fatal("the whole file went out at once: the test proves nothing")
	}
	c.SetReadDeadline(time.Now().Add(safetyNet))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("file bytes differ")
	}
}

func TestPeerCloseAndReset(t *testing.T) {
	errs := make(chan error, 2)
	reads := make(chan string, 2)
	s := &Server{Loops: 1, Handler: &funcs{
		read: func(c *Conn, in []byte) int {
			reads <- string(in)
			return len(in) // no echo: the client reads nothing
		},
		closed: func(c *Conn, err error) { errs <- err },
	}}
	addr := start(t, s)

	c := dial(t, addr)
	c.Write([]byte("x"))
	c.Close()
	if err := recv(t, errs); err != io.EOF {
		t.Fatalf("peer close: OnClose(%v), want io.EOF", err)
	}
	if got := recv(t, reads); got != "x" {
		t.Fatalf("peer close: OnRead got %q, want \"x\"", got)
	}

	c = dial(t, addr)
	c.(*net.TCPConn).SetLinger(0)
	c.Write([]byte("y"))
	if got := recv(t, reads); got != "y" { // read: nothing unread when the RST comes
		t.Fatalf("reset: OnRead got %q, want \"y\"", got)
	}
	c.Close() // RST
	if err := recv(t, errs); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reset: OnClose(%v), want ECONNRESET", err)
	}
}

// TestWriteToResetPeer checks that a write to a reset connection fails
// with EPIPE or ECONNRESET and that no SIGPIPE kills the process. The
// write runs on the loop once the socket has taken the peer's RST (its
// TCP state is CLOSE), before the loop can handle the event (it waits in
// the submitted function): a Write on a Conn that the loop had already
// closed would only prove ErrClosed.
func TestWriteToResetPeer(t *testing.T) {
	conns := make(chan *Conn, 1)
	errs := make(chan error, 1)
	s := &Server{Loops: 1, Handler: &funcs{
		open:   func(c *Conn) { conns <- c },
		read:   func(c *Conn, in []byte) int { return len(in) },
		closed: func(c *Conn, err error) { errs <- err },
	}}
	c := dial(t, start(t, s))
	sc := recv(t, conns)
	c.(*net.TCPConn).SetLinger(0)
	running, reset := make(chan struct{}), make(chan struct{})
	werr := make(chan error, 1)
	sc.Submit(func() {
		close(running)
		<-reset // the loop waits here, so it cannot handle the RST first
		if err := waitTCPState(sc.Fd(), unix.BPF_TCP_CLOSE); err != nil {
			werr <- err
			return
		}
		err := sc.Write([]byte("a"))
		if err == nil {
			err = sc.Write([]byte("b"))
		}
		werr <- err
	})
	recv(t, running) // else the loop may handle the RST, and close sc, before the function runs
	c.Close()        // RST
	close(reset)
	err := recv(t, werr)
	if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Write to a reset peer: %v, want EPIPE or ECONNRESET", err)
	}
	if cerr := recv(t, errs); !errors.Is(cerr, syscall.EPIPE) && !errors.Is(cerr, syscall.ECONNRESET) {
		t.Fatalf("OnClose(%v), want EPIPE or ECONNRESET", cerr)
	}
}

// waitTCPState polls the TCP state of the socket fd (TCP_INFO) until it
// is state, for up to safetyNet.
func waitTCPState(fd int, state uint8) error {
	for deadline := time.Now().Add(safetyNet); ; time.Sleep(time.Millisecond) {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return err
		}
		if info.State == state {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("TCP state %d after %v, want %d", info.State, safetyNet, state)
		}
	}
}

func TestSubmitFromOtherGoroutines(t *testing.T) {
	conns := make(chan *Conn, 1)
	s := &Server{Loops: 2, Handler: &funcs{open: func(c *Conn) { conns <- c }}}
	c := dial(t, start(t, s))
	sc := <-conns
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				msg := []byte{byte('a' + w)}
				if err := sc.Submit(func() { sc.Write(msg) }); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	got := make([]byte, writers*each)
	c.SetReadDeadline(time.Now().Add(safetyNet))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	var count [writers]int
	for _, b := range got {
		count[b-'a']++
	}
	for w, n := range count {
		if n != each {
			t.Fatalf("writer %d: %d bytes, want %d", w, n, each)
		}
	}
}

// TestTimeoutClosesIdle checks SetTimeout: every request moves the
// connection's deadline to the timeout from the loop's clock (Conn.Now),
// as the connection's timer in the wheel shows; and once the client is
// idle, the connection is closed with ErrTimeout, not before its deadline
// (the wheel is never early) and at some point after it (within the
// safety net). While the client is active the handler sets a long
// timeout, so that no pause of a loaded machine between two requests can
// expire it; the last request sets the short one whose expiry is measured
// (and moves the deadline earlier).
func TestTimeoutClosesIdle(t *testing.T) {
	const long, short = safetyNet, 300 * time.Millisecond
	type event struct {
		now, deadline time.Time // the loop's clock and the connection's deadline, after SetTimeout
		timeout       time.Duration
		err           error     // OnClose's
		closedAt      time.Time // OnClose's time.Now()
	}
	events := make(chan event, 10)
	set := func(c *Conn, d time.Duration) {
		c.SetTimeout(d)
		events <- event{now: c.Now(), deadline: timerDeadline(c), timeout: d}
	}
	s := &Server{Loops: 1, Handler: &funcs{
		open: func(c *Conn) { set(c, long) },
		read: func(c *Conn, in []byte) int { // moved by every request
			if bytes.HasSuffix(in, []byte(".")) {
				set(c, short) // the last one
			} else {
				set(c, long)
			}
			return len(in)
		},
		closed: func(c *Conn, err error) { events <- event{err: err, closedAt: time.Now()} },
	}}
	c := dial(t, start(t, s))
	var last event
	for i, request := range []string{"", "a", "b", "c", "."} {
		if request != "" {
			// A tick later, so that the new deadline falls in a later tick
			// of the wheel than the last (a longer pause changes nothing:
			// the timeout is long).
			time.Sleep(time.Until(last.now.Add(timerTick)))
			c.Write([]byte(request))
		}
		ev := recv(t, events)
		if ev.err != nil {
			t.Fatalf("request %d (%q): closed (%v) while the client was active", i, request, ev.err)
		}
		// The wheel rounds a deadline up to its tick.
		if want := ev.now.Add(ev.timeout); ev.deadline.Before(want) || !ev.deadline.Before(want.Add(timerTick)) {
			t.Errorf("request %d (%q): deadline %v after the loop's clock, want %v (to a tick, %v)",
				i, request, ev.deadline.Sub(ev.now), ev.timeout, timerTick)
		}
		if i > 0 && ev.timeout == long && !ev.deadline.After(last.deadline) {
			t.Errorf("request %d (%q) did not move the deadline: %v after the previous one",
				i, request, ev.deadline.Sub(last.deadline))
		}
		last = ev
	}
	closed := recv(t, events)
	if closed.err != ErrTimeout {
		t.Fatalf("OnClose(%v), want ErrTimeout", closed.err)
	}
	if d := closed.closedAt.Sub(last.now); closed.closedAt.Before(last.deadline) {
		t.Fatalf("closed %v after the last request, before its deadline, %v after it", d, last.deadline.Sub(last.now))
	}
	c.SetReadDeadline(time.Now().Add(safetyNet))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read after timeout: %v, want EOF", err)
	}
}

// timerDeadline returns when c's timer is due, from its place in the
// wheel (tests only; call it on c's loop).
func timerDeadline(c *Conn) time.Time {
	w := c.loop.wheel
	return w.origin.Add(time.Duration(c.timer.when) * w.tick)
}

// TestPauseResume checks that a paused connection is not read: input that
// arrives meanwhile waits in the socket, and Resume hands over what the
// handler kept and then that input.
func TestPauseResume(t *testing.T) {
	conns := make(chan *Conn, 1)
	reads := make(chan string, 10)
	var paused atomic.Bool
	s := &Server{Loops: 1, Handler: &funcs{
		open: func(c *Conn) { conns <- c },
		read: func(c *Conn, in []byte) int {
			reads <- string(in)
			if paused.Load() {
				c.Pause()
				return 0 // keep it: redelivered after Resume
			}
			c.Write(in)
			return len(in)
		},
	}}
	c := dial(t, start(t, s))
	sc := recv(t, conns)
	paused.Store(true)
	c.Write([]byte("held"))
	if got := recv(t, reads); got != "held" {
		t.Fatalf("OnRead got %q, want \"held\"", got)
	}
	c.Write([]byte("+more"))
	// Paused: the loop leaves it in the socket, where the test sees it.
	waitFor(t, func() bool {
		n, err := unix.IoctlGetInt(sc.Fd(), unix.SIOCINQ)
		return err != nil || n == len("+more") || len(reads) > 0
	})
	select {
	case got := <-reads:
		t.Fatalf("OnRead(%q) while paused", got)
	default:
	}
	paused.Store(false)
	sc.Submit(sc.Resume)
	got := make([]byte, len("held+more"))
	c.SetReadDeadline(time.Now().Add(safetyNet))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "held+more" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestShutdown(t *testing.T) {
	errs := make(chan error, 10)
	s := &Server{Loops: 2, Handler: &funcs{closed: func(c *Conn, err error) { errs <- err }}}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	cs := make([]net.Conn, 4)
	for i := range cs {
		cs[i] = dial(t, addr)
		cs[i].Write([]byte("x"))
		io.ReadFull(cs[i], make([]byte, 1))
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range cs {
		if err := recv(t, errs); err != ErrServerClosed {
			t.Fatalf("OnClose(%v), want ErrServerClosed", err)
		}
	}
	for _, c := range cs {
		c.SetReadDeadline(time.Now().Add(safetyNet))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read after Shutdown: %v, want EOF", err)
		}
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("dial after Shutdown succeeded")
	}
	if err := s.loops[0].Submit(func() {}); err != ErrServerClosed {
		t.Fatalf("Submit after Shutdown: %v", err)
	}
}

// TestShutdownForced: a connection whose output never drains is closed
// when Shutdown's context ends.
func TestShutdownForced(t *testing.T) {
	queued := make(chan int64, 1)
	s := &Server{Loops: 1, Handler: &funcs{read: func(c *Conn, in []byte) int {
		c.Write(make([]byte, 16<<20)) // the client never reads
		queued <- c.Buffered()
		return len(in)
	}}}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.Addr().String())
	c.Write([]byte("x"))
	if n := recv(t, queued); n == 0 {
		t.Fatal("16 MiB went out at once: the test proves nothing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown: %v, want DeadlineExceeded", err)
	}
}

func TestInputLimit(t *testing.T) {
	errs := make(chan error, 1)
	s := &Server{Loops: 1, MaxInput: 4096, Handler: &funcs{
		read:   func(c *Conn, in []byte) int { return 0 },
		closed: func(c *Conn, err error) { errs <- err },
	}}
	c := dial(t, start(t, s))
	c.Write(make([]byte, 10000))
	if err := recv(t, errs); err != ErrInputFull {
		t.Fatalf("OnClose(%v), want ErrInputFull", err)
	}
}

// TestStartRefusesPortInUse: a second server on a port another server
// listens on fails with EADDRINUSE instead of sharing it through
// SO_REUSEPORT; a plain listener's port is refused too.
func TestStartRefusesPortInUse(t *testing.T) {
	first := &Server{Handler: &funcs{}}
	if err := first.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Shutdown(context.Background()) })
	second := &Server{Handler: &funcs{}}
	if err := second.Start(first.Addr().String()); !errors.Is(err, syscall.EADDRINUSE) {
		second.Shutdown(context.Background())
		t.Errorf("a second server on %s: got %v, want EADDRINUSE", first.Addr(), err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	third := &Server{Handler: &funcs{}}
	if err := third.Start(ln.Addr().String()); !errors.Is(err, syscall.EADDRINUSE) {
		third.Shutdown(context.Background())
		t.Errorf("a server on a plain listener's port: got %v, want EADDRINUSE", err)
	}
}

// hangupFuncs is funcs with OnHangup.
type hangupFuncs struct {
	funcs
	hangup func(c *Conn)
}

func (h *hangupFuncs) OnHangup(c *Conn) { h.hangup(c) }

// TestHangupWhilePaused checks that a HangupHandler hears, once, of a
// peer that closes or resets a paused connection, which reads nothing
// meanwhile, and that the input it left unconsumed stays kept (Kept).
func TestHangupWhilePaused(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(map[bool]string{false: "close", true: "reset"}[reset], func(t *testing.T) {
			conns := make(chan *Conn, 1)
			hangups := make(chan int, 2) // Kept at each OnHangup
			closed := make(chan error, 1)
			s := &Server{Loops: 1, Handler: &hangupFuncs{
				funcs: funcs{
					read: func(c *Conn, in []byte) int {
						c.Pause()
						conns <- c
						return len(in) - 2 // keep two bytes
					},
					closed: func(c *Conn, err error) { closed <- err },
				},
				hangup: func(c *Conn) {
					hangups <- c.Kept()
					c.Close()
				},
			}}
			c := dial(t, start(t, s))
			c.Write([]byte("request"))
			recv(t, conns)
			if reset {
				c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
			if kept := recv(t, hangups); kept != 2 {
				t.Errorf("Kept() = %d at the hang-up, want 2", kept)
			}
			recv(t, closed)
			select {
			case <-hangups:
				t.Error("OnHangup called twice")
			default:
			}
		})
	}
}

// TestWriteMoreJoinsSendFile checks that bytes written with WriteMore
// leave in one segment with the start of the SendFile behind them (which
// the receiver needs to measure its round-trip time: see Files in the
// package doc), where Write sends them in a segment of their own, and
// that the socket is uncorked once the file has gone.
func TestWriteMoreJoinsSendFile(t *testing.T) {
	f, data := randomFile(t, 8000) // one segment with the head on loopback, within the first send buffer
	head := []byte("HTTP/1.1 200 OK\r\nContent-Length: 8000\r\n\r\n")
	for _, tc := range []struct {
		name     string
		write    func(c *Conn, p []byte) error
		segments uint32
	}{
		{"Write", (*Conn).Write, 2},
		{"WriteMore", (*Conn).WriteMore, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type sent struct {
				segments uint32
				corked   int
			}
			done := make(chan sent, 1)
			report := func(c *Conn) {
				info, err := unix.GetsockoptTCPInfo(int(c.fd), unix.IPPROTO_TCP, unix.TCP_INFO)
				if err != nil {
					t.Error(err)
				}
				corked, err := unix.GetsockoptInt(int(c.fd), unix.IPPROTO_TCP, unix.TCP_CORK)
				if err != nil {
					t.Error(err)
				}
				done <- sent{info.Data_segs_out, corked}
			}
			s := &Server{Loops: 1, Handler: &funcs{
				read: func(c *Conn, in []byte) int {
					if err := tc.write(c, head); err != nil {
						t.Error(err)
					}
					if err := c.SendFile(f, 0, int64(len(data))); err != nil {
						t.Error(err)
					}
					if c.Buffered() == 0 {
						report(c)
					}
					return len(in)
				},
				writable: report, // the socket did not take it all at once
			}}
			c := dial(t, start(t, s))
			c.Write([]byte("x"))
			got := make([]byte, len(head)+len(data))
			c.SetReadDeadline(time.Now().Add(safetyNet))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, slices.Concat(head, data)) {
				t.Fatal("bytes differ")
			}
			r := recv(t, done)
			switch {
			case r.segments == 0:
				// Bytes went out, so TCP_INFO does not give the
				// kernel's count here: under qemu-user (make unit's
				// arm64 run) tcpi_data_segs_out reads 0.
				t.Logf("TCP_INFO counts no data segments here (qemu-user): the segments cannot be checked")
			case r.segments != tc.segments:
				t.Errorf("data segments sent: got %d, want %d", r.segments, tc.segments)
			}
			if r.corked != 0 {
				t.Error("TCP_CORK still set after the file was sent")
			}
		})
	}
}

// randomFile writes n random bytes to a file of the test's and opens it;
// cleanup closes it.
func randomFile(t *testing.T, n int) (*os.File, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}
