package netpoll

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
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
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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
			c.SetDeadline(time.Now().Add(30 * time.Second))
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

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPartialInput checks that unconsumed input is kept and handed over
// again with what follows: the handler consumes only whole lines.
func TestPartialInput(t *testing.T) {
	s := &Server{Loops: 1, Handler: &funcs{read: func(c *Conn, in []byte) int {
		end := bytes.LastIndexByte(in, '\n') + 1
		c.Write(in[:end])
		return end
	}}}
	c := dial(t, start(t, s))
	want := "hello world\nsecond line\n"
	for _, piece := range []string{"hel", "lo w", "orld\nsec", "ond ", "line\n"} {
		c.Write([]byte(piece))
		time.Sleep(5 * time.Millisecond)
	}
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
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
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for len(got) < len(data) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
		if len(got) < 1<<20 {
			time.Sleep(2 * time.Millisecond) // slow at first
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data differs")
	}
	select {
	case left := <-writable:
		if left != 0 {
			t.Fatalf("OnWritable with %d bytes still buffered", left)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no OnWritable")
	}
}

func TestSendFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	data := make([]byte, 10<<20+123)
	rand.Read(data)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // after the server's Shutdown (cleanups run last first)
	head, tail := []byte("HEAD\n"), []byte("\nTAIL")
	const off = 1000
	s := &Server{Loops: 1, DropBehind: 1 << 20, Handler: &funcs{
		read: func(c *Conn, in []byte) int {
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
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	time.Sleep(50 * time.Millisecond) // let the socket fill: the EPOLLOUT path
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("file bytes differ")
	}
}

func TestPeerCloseAndReset(t *testing.T) {
	errs := make(chan error, 2)
	s := &Server{Loops: 1, Handler: &funcs{
		read:   func(c *Conn, in []byte) int { return len(in) }, // no echo: the client reads nothing
		closed: func(c *Conn, err error) { errs <- err },
	}}
	addr := start(t, s)

	c := dial(t, addr)
	c.Write([]byte("x"))
	c.Close()
	if err := <-errs; err != io.EOF {
		t.Fatalf("peer close: OnClose(%v), want io.EOF", err)
	}

	c = dial(t, addr)
	c.(*net.TCPConn).SetLinger(0)
	c.Write([]byte("y"))
	time.Sleep(20 * time.Millisecond)
	c.Close() // RST
	if err := <-errs; !errors.Is(err, syscall.ECONNRESET) && err != io.EOF {
		t.Fatalf("reset: OnClose(%v), want ECONNRESET", err)
	}
}

// TestWriteToResetPeer checks that a write to a reset connection fails
// with EPIPE or ECONNRESET and that no SIGPIPE kills the process.
func TestWriteToResetPeer(t *testing.T) {
	conns := make(chan *Conn, 1)
	errs := make(chan error, 1)
	s := &Server{Loops: 1, Handler: &funcs{
		open:   func(c *Conn) { conns <- c },
		read:   func(c *Conn, in []byte) int { return len(in) },
		closed: func(c *Conn, err error) { errs <- err },
	}}
	c := dial(t, start(t, s))
	sc := <-conns
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	time.Sleep(20 * time.Millisecond)
	werr := make(chan error, 1)
	sc.Submit(func() {
		err := sc.Write([]byte("a"))
		if err == nil {
			err = sc.Write([]byte("b"))
		}
		werr <- err
	})
	err := <-werr
	cerr := <-errs
	if err == nil && cerr == nil {
		t.Fatal("write to a reset peer did not fail")
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
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
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

func TestTimeoutClosesIdle(t *testing.T) {
	errs := make(chan error, 1)
	var closedAt atomic.Int64
	s := &Server{Loops: 1, Handler: &funcs{
		open: func(c *Conn) { c.SetTimeout(100 * time.Millisecond) },
		read: func(c *Conn, in []byte) int {
			c.SetTimeout(100 * time.Millisecond) // moved by every request
			return len(in)
		},
		closed: func(c *Conn, err error) { closedAt.Store(time.Now().UnixNano()); errs <- err },
	}}
	c := dial(t, start(t, s))
	begin := time.Now()
	for range 5 { // activity keeps it open past the first deadline
		time.Sleep(50 * time.Millisecond)
		c.Write([]byte("x"))
	}
	last := time.Now()
	err := <-errs
	if err != ErrTimeout {
		t.Fatalf("OnClose(%v), want ErrTimeout", err)
	}
	at := time.Unix(0, closedAt.Load())
	if d := at.Sub(last); d < 100*time.Millisecond-timerTick || d > 300*time.Millisecond {
		t.Fatalf("closed %v after the last activity, want about 100ms", d)
	}
	if at.Sub(begin) < 250*time.Millisecond {
		t.Fatal("activity did not move the deadline")
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read after timeout: %v, want EOF", err)
	}
}

func TestPauseResume(t *testing.T) {
	conns := make(chan *Conn, 1)
	var paused atomic.Bool
	s := &Server{Loops: 1, Handler: &funcs{
		open: func(c *Conn) { conns <- c },
		read: func(c *Conn, in []byte) int {
			if paused.Load() {
				c.Pause()
				return 0 // keep it: redelivered after Resume
			}
			c.Write(in)
			return len(in)
		},
	}}
	c := dial(t, start(t, s))
	sc := <-conns
	paused.Store(true)
	c.Write([]byte("held"))
	time.Sleep(30 * time.Millisecond)
	c.Write([]byte("+more"))
	time.Sleep(30 * time.Millisecond)
	paused.Store(false)
	sc.Submit(sc.Resume)
	got := make([]byte, len("held+more"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
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
		if err := <-errs; err != ErrServerClosed {
			t.Fatalf("OnClose(%v), want ErrServerClosed", err)
		}
	}
	for _, c := range cs {
		c.SetReadDeadline(time.Now().Add(time.Second))
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
	s := &Server{Loops: 1, Handler: &funcs{read: func(c *Conn, in []byte) int {
		c.Write(make([]byte, 16<<20)) // the client never reads
		return len(in)
	}}}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.Addr().String())
	c.Write([]byte("x"))
	time.Sleep(50 * time.Millisecond)
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
	if err := <-errs; err != ErrInputFull {
		t.Fatalf("OnClose(%v), want ErrInputFull", err)
	}
}
