package netpoll

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// detachTimeout is the connection timeout set just before Detach, which
// cancels it.
const detachTimeout = 30 * time.Millisecond

// detached is what a handler hands the test when it has detached a
// connection.
type detached struct {
	c      *Conn
	nc     net.Conn
	err    error
	loopID uint64 // the goroutine that ran OnRead: the loop's
}

// detachOnCommand is a Handler that echoes lines prefixed with "loop:",
// and detaches the connection when a line is "detach" (after consuming
// it), handing the net.Conn to the test on out.
func detachOnCommand(out chan<- detached, closed chan<- error) *funcs {
	return &funcs{
		read: func(c *Conn, in []byte) int {
			end := bytes.LastIndexByte(in, '\n') + 1
			done := 0
			for line := range strings.Lines(string(in[:end])) {
				done += len(line)
				if line == "detach\n" {
					c.SetTimeout(detachTimeout) // which Detach cancels
					nc, err := c.Detach()
					out <- detached{c: c, nc: nc, err: err, loopID: goid()}
					return done // the tests send nothing behind it
				}
				c.Write([]byte("loop:" + line))
			}
			return end
		},
		closed: func(c *Conn, err error) {
			if closed != nil {
				closed <- err
			}
		},
	}
}

// readLine reads one line from r, failing the test on an error.
func readLine(t testing.TB, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a line: %q, %v", line, err)
	}
	return line
}

// inputQueued reports how many bytes wait unread in nc's socket.
func inputQueued(t testing.TB, nc net.Conn) int {
	t.Helper()
	rc, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		t.Fatal(err)
	}
	if ierr != nil {
		t.Fatal(ierr)
	}
	return n
}

func TestDetachAttach(t *testing.T) {
	dets := make(chan detached, 1)
	closed := make(chan error, 1)
	s := &Server{Loops: 1, Handler: detachOnCommand(dets, closed)}
	client := dial(t, start(t, s))
	client.SetDeadline(time.Now().Add(safetyNet))
	r := bufio.NewReader(client)

	client.Write([]byte("before\n"))
	if got := readLine(t, r); got != "loop:before\n" {
		t.Fatalf("on the loop: got %q", got)
	}
	client.Write([]byte("detach\n"))
	d := recv(t, dets)
	if d.err != nil {
		t.Fatalf("Detach: %v", d.err)
	}
	c, nc := d.c, d.nc
	defer c.Attach(nc, nil) // if the test fails before it does
	onLoop := func(f func()) {
		t.Helper()
		done := make(chan struct{})
		if err := c.Submit(func() { f(); close(done) }); err != nil {
			t.Fatal(err)
		}
		<-done
	}
	onLoop(func() {
		if !c.Detached() {
			t.Error("Detached() = false after Detach")
		}
		if nc2, err := c.Detach(); err == nil {
			nc2.Close()
			t.Error("a second Detach succeeded")
		}
	})

	// Blocking reads and writes, from this goroutine: the net.Conn's.
	nc.SetDeadline(time.Now().Add(safetyNet))
	nr := bufio.NewReader(nc)
	for _, msg := range []string{"one\n", "two\n", strings.Repeat("x", 100000) + "\n"} {
		client.Write([]byte(msg))
		line := readLine(t, nr)
		if line != msg {
			t.Fatalf("detached read: got %d bytes, want %d", len(line), len(msg))
		}
		if _, err := nc.Write([]byte("off:" + line)); err != nil {
			t.Fatal(err)
		}
		if got := readLine(t, r); got != "off:"+msg {
			t.Fatalf("client: got %d bytes, want %d", len(got), len("off:"+msg))
		}
	}

	// Deadlines. (The wait also outlasts the connection's timeout, which
	// Detach cancelled: see detachOnCommand.)
	nc.SetReadDeadline(time.Now().Add(2 * detachTimeout))
	if n, err := nc.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %d, %v; want a timeout", n, err)
	}
	nc.SetReadDeadline(time.Now().Add(safetyNet))

	// Input that arrives while detached and is not read by the goroutine
	// reaches OnRead after Attach.
	client.Write([]byte("pending\n"))
	waitFor(t, func() bool { return inputQueued(t, nc) == len("pending\n") })
	thenRan := make(chan bool, 1) // on the loop
	if err := c.Attach(nc, func() {
		thenRan <- goid() == d.loopID && !c.Detached()
		c.Write([]byte("attached\n"))
	}); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if ok := recv(t, thenRan); !ok {
		t.Error("Attach's function did not run on the loop, or with the connection still detached")
	}
	if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read of the net.Conn after Attach: %v, want net.ErrClosed", err)
	}
	for _, want := range []string{"attached\n", "loop:pending\n"} {
		if got := readLine(t, r); got != want {
			t.Fatalf("after Attach: got %q, want %q", got, want)
		}
	}
	client.Write([]byte("after\n"))
	if got := readLine(t, r); got != "loop:after\n" {
		t.Fatalf("after Attach: got %q", got)
	}
	// And again: detach, attach.
	client.Write([]byte("detach\n"))
	if d := recv(t, dets); d.err != nil {
		t.Fatalf("second Detach: %v", d.err)
	} else if err := d.c.Attach(d.nc, nil); err != nil {
		t.Fatalf("second Attach: %v", err)
	}
	client.Write([]byte("last\n"))
	if got := readLine(t, r); got != "loop:last\n" {
		t.Fatalf("after the second Attach: got %q", got)
	}
	select {
	case err := <-closed:
		t.Fatalf("connection closed: %v", err)
	default:
	}
}

func TestDetachBusy(t *testing.T) {
	t.Run("unconsumed input", func(t *testing.T) {
		kept := make(chan struct{}, 1)
		errs := make(chan error, 1)
		s := &Server{Loops: 1, Handler: &funcs{read: func(c *Conn, in []byte) int {
			if !bytes.HasSuffix(in, []byte("\n")) {
				kept <- struct{}{}
				return 0 // keep "det" for the rest of the line
			}
			if string(in) == "detach\n" {
				nc, err := c.Detach() // "det" is in the connection's buffer
				if nc != nil {
					nc.Close()
				}
				errs <- err
				return len(in)
			}
			c.Write(in)
			return len(in)
		}}}
		client := dial(t, start(t, s))
		client.SetDeadline(time.Now().Add(safetyNet))
		client.Write([]byte("det"))
		recv(t, kept)
		client.Write([]byte("ach\n"))
		if err := recv(t, errs); err != ErrBusy {
			t.Fatalf("Detach with input kept: %v, want ErrBusy", err)
		}
		// Still on the loop.
		client.Write([]byte("echo\n"))
		got := make([]byte, 5)
		if _, err := io.ReadFull(client, got); err != nil || string(got) != "echo\n" {
			t.Fatalf("after the refused Detach: %q, %v", got, err)
		}
	})

	t.Run("queued output", func(t *testing.T) {
		const size = 16 << 20
		type result struct {
			queued int64
			err    error
		}
		busy := make(chan result, 1)
		dets := make(chan detached, 1)
		s := &Server{Loops: 1, Handler: &funcs{
			read: func(c *Conn, in []byte) int {
				c.Write(make([]byte, size)) // more than the socket takes: the client is not reading
				nc, err := c.Detach()
				if nc != nil {
					nc.Close()
				}
				busy <- result{c.Buffered(), err}
				return len(in)
			},
			writable: func(c *Conn) { // all sent: now it may
				nc, err := c.Detach()
				dets <- detached{c: c, nc: nc, err: err}
			},
		}}
		client := dial(t, start(t, s))
		client.SetDeadline(time.Now().Add(safetyNet))
		client.Write([]byte("x"))
		if r := recv(t, busy); r.err != ErrBusy || r.queued == 0 {
			t.Fatalf("Detach with %d bytes queued: %v, want ErrBusy", r.queued, r.err)
		}
		if n, err := io.CopyN(io.Discard, client, size); err != nil {
			t.Fatalf("client read %d bytes: %v", n, err)
		}
		d := recv(t, dets)
		if d.err != nil {
			t.Fatalf("Detach in OnWritable: %v", d.err)
		}
		// Closing goes through the loop too.
		if err := d.c.Attach(d.nc, func() { d.c.Close() }); err != nil {
			t.Fatal(err)
		}
		if n, err := client.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("client after Close: %d, %v; want EOF", n, err)
		}
	})
}

// TestAttachAfterPeerClosed: input and a FIN that arrive while the
// connection is detached, unread by its goroutine, reach OnRead and
// OnClose after Attach.
func TestAttachAfterPeerClosed(t *testing.T) {
	lines := make(chan string, 4)
	dets := make(chan detached, 1)
	closed := make(chan error, 1)
	s := &Server{Loops: 1, Handler: &funcs{
		read: func(c *Conn, in []byte) int {
			if string(in) == "detach\n" {
				nc, err := c.Detach()
				dets <- detached{c: c, nc: nc, err: err}
			} else {
				lines <- string(in)
			}
			return len(in)
		},
		closed: func(c *Conn, err error) { closed <- err },
	}}
	client := dial(t, start(t, s))
	client.Write([]byte("detach\n"))
	d := recv(t, dets)
	if d.err != nil {
		t.Fatal(d.err)
	}
	defer d.c.Attach(d.nc, nil) // if the test fails before it does
	client.Write([]byte("tail\n"))
	client.(*net.TCPConn).CloseWrite() // a FIN, and no reset: the server writes nothing
	rc, err := d.nc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { // the FIN is in, behind the line
		var hup bool
		rc.Control(func(fd uintptr) {
			p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
			n, _ := unix.Poll(p, 0)
			hup = n == 1 && p[0].Revents&unix.POLLRDHUP != 0
		})
		return hup
	})
	if err := d.c.Attach(d.nc, nil); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, lines); got != "tail\n" {
		t.Errorf("OnRead after Attach: %q, want \"tail\\n\"", got)
	}
	if err := recv(t, closed); err != io.EOF {
		t.Errorf("OnClose(%v), want io.EOF", err)
	}
}

// startDetached starts a one-loop server whose connections detach on
// "detach\n", connects, and returns the server, the client and its
// connection detached. The server's Shutdown at cleanup returns at once
// if the test has shut it down already.
func startDetached(t *testing.T, closed chan<- error) (*Server, net.Conn, detached) {
	t.Helper()
	dets := make(chan detached, 1)
	s := &Server{Loops: 1, Handler: detachOnCommand(dets, closed)}
	client := dial(t, start(t, s))
	client.SetDeadline(time.Now().Add(safetyNet))
	client.Write([]byte("detach\n"))
	d := recv(t, dets)
	if d.err != nil {
		t.Fatal(d.err)
	}
	return s, client, d
}

// TestShutdownWaitsForDetached: Shutdown waits for a detached connection
// until its goroutine Attaches, which then closes it once its function
// has run.
func TestShutdownWaitsForDetached(t *testing.T) {
	closed := make(chan error, 1)
	s, client, d := startDetached(t, closed)
	defer d.c.Attach(d.nc, nil) // if the test fails before it does, so that Shutdown returns

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	l := s.loops[0]
	waitFor(t, func() bool { // Shutdown has begun draining the loop
		drain := make(chan bool, 1)
		if l.Submit(func() { drain <- l.drain }) != nil {
			return true
		}
		return <-drain
	})
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a connection was detached", err)
	default:
	}
	// The detached connection still works.
	client.Write([]byte("ping"))
	buf := make([]byte, 4)
	d.nc.SetDeadline(time.Now().Add(safetyNet))
	if _, err := io.ReadFull(d.nc, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("detached read during Shutdown: %q, %v", buf, err)
	}
	d.nc.Write([]byte("pong"))
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client during Shutdown: %q, %v", buf, err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a connection was detached", err)
	default:
	}

	if err := d.c.Attach(d.nc, func() { d.c.Write([]byte("bye\n")) }); err != nil {
		t.Fatalf("Attach during Shutdown: %v", err)
	}
	if err := recv(t, shut); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := recv(t, closed); err != ErrServerClosed {
		t.Fatalf("OnClose(%v), want ErrServerClosed", err)
	}
	rest, err := io.ReadAll(client)
	if err != nil || string(rest) != "bye\n" {
		t.Fatalf("client after Shutdown: %q, %v; want \"bye\\n\" and EOF", rest, err)
	}
}

// TestShutdownDetachedExpired: when Shutdown's context ends while a
// connection is detached, Shutdown returns the context's error and the
// loop closes the connection; the goroutine's Attach is refused and its
// function never runs.
func TestShutdownDetachedExpired(t *testing.T) {
	closed := make(chan error, 1)
	s, client, d := startDetached(t, closed)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); err != context.Canceled {
		t.Fatalf("Shutdown: %v, want context.Canceled", err)
	}
	if err := recv(t, closed); err != ErrServerClosed {
		t.Fatalf("OnClose(%v), want ErrServerClosed", err)
	}
	if err := d.c.Attach(d.nc, func() { t.Error("Attach's function ran after the loop closed the connection") }); err != ErrServerClosed {
		t.Errorf("Attach after Shutdown: %v, want ErrServerClosed", err)
	}
	if n, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client: %d, %v; want EOF", n, err)
	}
}

// TestShutdownDetachedExpiredWakesGoroutine: "If ctx ends first it closes
// the rest at once" should hold for a detached connection too: its
// goroutine, blocked in a read, should see the connection end, and the
// peer should see it closed, without waiting for the goroutine.
func TestShutdownDetachedExpiredWakesGoroutine(t *testing.T) {
	s, client, d := startDetached(t, nil)
	defer d.nc.Close()
	readErr := make(chan error, 1)
	d.nc.SetReadDeadline(time.Now().Add(safetyNet)) // a failing test ends all the same
	// The connection's goroutine: exits when its read fails.
	go func() {
		_, err := d.nc.Read(make([]byte, 1))
		readErr <- err
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); err != context.Canceled {
		t.Fatalf("Shutdown: %v, want context.Canceled", err)
	}
	client.SetReadDeadline(time.Now().Add(safetyNet))
	if n, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client after Shutdown: %d, %v; want EOF", n, err)
	}
	if err := recv(t, readErr); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the detached goroutine's read was not ended by Shutdown: %v", err)
	}
}

// tlsDetach is a Handler that terminates TLS, detaches each connection
// as soon as its handshake is done, and serves it from a goroutine that
// echoes the plaintext upper-cased; the message "attach" gives the
// connection back to the loop, which echoes the same way (tlsEcho's pump).
type tlsDetach struct {
	tlsEcho
	served chan *tlsServed // each connection, once detached
	closed chan error
}

// tlsServed is a detached TLS connection and its goroutine.
type tlsServed struct {
	st      *tlsState
	c       *Conn
	offLoop atomic.Int64  // plaintext bytes echoed by the goroutine
	exited  chan struct{} // closed when the goroutine exits
	readErr error         // the error that ended the goroutine; read after exited
}

func (h *tlsDetach) OnOpen(c *Conn) {
	st := &tlsState{t: NewTLSConn(c)}
	st.tc = tls.Server(st.t, h.cfg)
	c.SetContext(st)
	c.SetTimeout(safetyNet)
	st.t.Handshake(st.tc, func(err error) { // on the loop, outside OnRead
		if err != nil {
			c.Close()
			return
		}
		c.SetTimeout(0)
		sv := &tlsServed{st: st, c: c, exited: make(chan struct{})}
		if err := st.t.Detach(); err != nil {
			sv.readErr = err
			close(sv.exited)
			h.served <- sv
			return
		}
		h.served <- sv
		go h.serve(sv)
	})
}

// serve is a detached connection's goroutine: it exits after Attach, or
// when a read fails. Besides echoing, it answers "deadline" with
// "TIMEOUT" if a read with a 20 ms deadline times out.
func (h *tlsDetach) serve(sv *tlsServed) {
	defer close(sv.exited)
	st := sv.st
	buf := make([]byte, 32<<10)
	for {
		n, err := st.tc.Read(buf)
		if err != nil {
			sv.readErr = err
			return
		}
		switch string(buf[:n]) {
		case "attach":
			st.t.Attach(func() {
				st.ready = true
				h.pump(sv.c, st) // what came meanwhile, if anything
			})
			return
		case "deadline":
			st.t.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := st.tc.Read(buf) // the client waits for the answer
			st.t.SetReadDeadline(time.Time{})
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				sv.readErr = err
				return
			}
			st.tc.Write([]byte("TIMEOUT"))
			continue
		}
		sv.offLoop.Add(int64(n))
		st.tc.Write(bytes.ToUpper(buf[:n]))
	}
}

// OnRead serves a connection given back to the loop.
func (h *tlsDetach) OnRead(c *Conn, in []byte) int {
	st := c.Context().(*tlsState)
	st.t.SetInput(in)
	if st.ready {
		h.pump(c, st)
	}
	return st.t.Consumed()
}

func (h *tlsDetach) OnClose(c *Conn, err error) {
	h.tlsEcho.OnClose(c, err)
	h.closed <- err
}

// tlsDetachClient starts a server with a tlsDetach handler and returns a
// client that has done its handshake, and the served connection.
func tlsDetachClient(t *testing.T) (*tls.Conn, net.Conn, *tlsServed, *tlsDetach) {
	t.Helper()
	cert, roots := testCert(t)
	h := &tlsDetach{
		tlsEcho: tlsEcho{cfg: &tls.Config{Certificates: []tls.Certificate{cert}}},
		served:  make(chan *tlsServed, 1),
		closed:  make(chan error, 1),
	}
	raw := dial(t, start(t, &Server{Loops: 1, Handler: h}))
	cc := tls.Client(raw, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	t.Cleanup(func() { cc.Close() })
	cc.SetDeadline(time.Now().Add(safetyNet))
	if err := cc.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	return cc, raw, recv(t, h.served), h
}

// echoTLS sends messages of several sizes (a 17000-byte one is two
// records) and checks the upper-cased echo.
func echoTLS(t *testing.T, cc *tls.Conn, stage string) int64 {
	t.Helper()
	var total int64
	for i, size := range []int{1, 100, 5000, 17000, 3} {
		msg := bytes.Repeat([]byte{byte('a' + i)}, size)
		if _, err := cc.Write(msg); err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		got := make([]byte, size)
		if _, err := io.ReadFull(cc, got); err != nil {
			t.Fatalf("%s: message %d: %v", stage, i, err)
		}
		if !bytes.Equal(got, bytes.ToUpper(msg)) {
			t.Fatalf("%s: message %d: echo differs", stage, i)
		}
		total += int64(size)
	}
	return total
}

// TestTLSDetachAttach: a TLS connection detached when its handshake is
// done is served by a goroutine through the tls.Conn, with working read
// deadlines, then attached and served on the loop again.
func TestTLSDetachAttach(t *testing.T) {
	cc, _, sv, h := tlsDetachClient(t)
	n := echoTLS(t, cc, "detached")
	if got := sv.offLoop.Load(); got != n {
		t.Errorf("the goroutine echoed %d bytes, want %d", got, n)
	}
	if _, err := cc.Write([]byte("deadline")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("TIMEOUT"))
	if _, err := io.ReadFull(cc, got); err != nil || string(got) != "TIMEOUT" {
		recv(t, sv.exited)
		t.Fatalf("read deadline: client got %q, %v; the goroutine: %v", got, err, sv.readErr)
	}
	n += echoTLS(t, cc, "detached, after a read timeout")
	if _, err := cc.Write([]byte("attach")); err != nil {
		t.Fatal(err)
	}
	recv(t, sv.exited)
	if sv.readErr != nil {
		t.Fatalf("the detached goroutine: %v", sv.readErr)
	}
	echoTLS(t, cc, "attached")
	if got := sv.offLoop.Load(); got != n {
		t.Errorf("the goroutine echoed after Attach: %d bytes, want %d", got, n)
	}
	cc.Close() // close_notify: the loop's pump closes the connection
	if err := recv(t, h.closed); err != nil {
		t.Errorf("OnClose(%v), want nil", err)
	}
}

// TestTLSDetachedClose: TLSConn.Close (through tls.Conn.Close, from
// another goroutine) while the connection is detached and its goroutine
// blocked in a read: close_notify and EOF for the client, an error for
// the goroutine's read, OnClose(nil) on the loop.
func TestTLSDetachedClose(t *testing.T) {
	cc, raw, sv, h := tlsDetachClient(t)
	echoTLS(t, cc, "detached")
	// The goroutine is blocked in tc.Read, or about to be.
	if err := sv.st.tc.Close(); err != nil {
		t.Fatalf("tls.Conn.Close: %v", err)
	}
	if n, err := cc.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client after Close: %d, %v; want EOF (close_notify)", n, err)
	}
	if n, err := raw.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client's socket after Close: %d, %v; want EOF", n, err)
	}
	recv(t, sv.exited)
	if sv.readErr == nil {
		t.Error("the detached goroutine's read did not fail")
	}
	if err := recv(t, h.closed); err != nil {
		t.Errorf("OnClose(%v), want nil", err)
	}
	if _, err := sv.st.t.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("TLSConn.Read after Close: %v, want net.ErrClosed", err)
	}
	if _, err := sv.st.t.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("TLSConn.Write after Close: %v, want net.ErrClosed", err)
	}
}
