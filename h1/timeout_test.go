package h1

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestSlowlorisIsCutOffByReadHeaderTimeout(t *testing.T) {
	// The head must arrive within ReadHeaderTimeout of its first byte
	// (of the accept, for the first request), however steadily the bytes
	// trickle in. Nothing is cut off before ReadHeaderTimeout; the upper
	// bound is the safety net of the read (the 408 comes at all).
	const rht = 300 * time.Millisecond
	addr := serve(t, &Server{Handler: &recorder{}, ReadHeaderTimeout: rht, IdleTimeout: notUnderTest})
	for _, name := range []string{"first request", "second request"} {
		t.Run(name, func(t *testing.T) {
			start := time.Now() // before the connection: its accept starts the first head's clock
			c, br := dial(t, addr)
			if name == "second request" {
				send(t, c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
				readResponse(t, br, "GET")
				// Idle time, the state under test: it does not count
				// towards the next head's ReadHeaderTimeout. A slower
				// machine only makes it longer; IdleTimeout cannot fire.
				time.Sleep(2 * rht)
				start = time.Now() // before the head's first byte
			}
			stop := make(chan struct{})
			defer close(stop)
			go func() { // a byte every 20 ms, never finishing the head
				head := "GET / HTTP/1.1\r\nHost: h\r\nX-Slow: " + strings.Repeat("z", 1000)
				for i := 0; i < len(head); i++ {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					if _, err := c.Write([]byte{head[i]}); err != nil {
						return
					}
				}
			}()
			out, _ := io.ReadAll(br)
			elapsed := time.Since(start)
			if got, want := maskDate(string(out)), errorResponse(408, ""); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
			if elapsed < rht {
				t.Errorf("cut off after %v, want not before %v", elapsed, rht)
			}
		})
	}
}

func TestSilentConnectionIsClosedWithoutAnswer(t *testing.T) {
	// Nothing sent: ReadHeaderTimeout from the accept, then a quiet close
	// (RFC 9112 section 9.5: closing an idle connection is always fine),
	// not before; the upper bound is the read's safety net.
	const rht = 200 * time.Millisecond
	addr := serve(t, &Server{Handler: &recorder{}, ReadHeaderTimeout: rht, IdleTimeout: notUnderTest})
	start := time.Now() // before the accept
	_, br := dial(t, addr)
	expectEOF(t, br)
	if elapsed := time.Since(start); elapsed < rht {
		t.Errorf("closed after %v, want not before %v", elapsed, rht)
	}
}

func TestIdleTimeoutClosesKeepAliveConnections(t *testing.T) {
	// Not before IdleTimeout after the response; the upper bound is the
	// read's safety net.
	const idle = 300 * time.Millisecond
	addr := serve(t, &Server{Handler: &recorder{}, IdleTimeout: idle, ReadHeaderTimeout: notUnderTest})
	c, br := dial(t, addr)
	start := time.Now() // before the request, so before the response that starts the idle clock
	send(t, c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	readResponse(t, br, "GET")
	expectEOF(t, br)
	if elapsed := time.Since(start); elapsed < idle {
		t.Errorf("idle connection closed after %v, want not before %v", elapsed, idle)
	}
}

func TestWriteTimeoutCutsOffAClientThatDoesNotRead(t *testing.T) {
	done := make(chan error, 1)
	addr := serve(t, &Server{WriteTimeout: 200 * time.Millisecond, Handler: mayBlock{handlerFunc(func(w mrw, r *mreq) {
		chunk := make([]byte, 64<<10)
		for range 4096 { // 256 MiB: more than any socket buffer
			if _, err := w.Write(chunk); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	})}})
	c, _ := dial(t, addr)
	send(t, c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Errorf("handler's Write returned %v, want a timeout", err)
		}
	case <-time.After(hangTimeout):
		t.Fatal("a client that does not read was not cut off")
	}
}

func TestBodyReadTimeout(t *testing.T) {
	var readErr atomic.Value
	addr := serve(t, &Server{BodyReadTimeout: 200 * time.Millisecond, Handler: handlerFunc(func(w mrw, r *mreq) {
		_, err := io.ReadAll(r.Body)
		readErr.Store(err)
	})})
	c, br := dial(t, addr)
	send(t, c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n12345") // and then nothing
	out, _ := io.ReadAll(br)
	if got, want := maskDate(string(out)), errorResponse(408, ""); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err, _ := readErr.Load().(error); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("Read returned %v, want a timeout", err)
	}
}

func TestShutdownWaitsForInFlightRequestsAndClosesIdleOnes(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	// The timeouts cannot fire during the test: the idle connections can
	// only be closed by Shutdown.
	s := &Server{Handler: mayBlock{handlerFunc(func(w mrw, r *mreq) {
		if r.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, r.Path)
	})}, ReadHeaderTimeout: notUnderTest, IdleTimeout: notUnderTest}
	addr := serve(t, s)

	busy, busyBR := dial(t, addr)
	send(t, busy, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	<-started
	idle, idleBR := dial(t, addr)
	send(t, idle, "GET /fast HTTP/1.1\r\nHost: h\r\n\r\n")
	readResponse(t, idleBR, "GET")
	fresh, freshBR := dial(t, addr) // connected, no request yet
	_ = fresh

	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(context.Background()) }()

	// Idle connections, and new ones without a request, close at once:
	// within the reads' safety net, far shorter than their timeouts.
	expectEOF(t, idleBR)
	expectEOF(t, freshBR)
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v while a request was in flight", err)
	case <-time.After(100 * time.Millisecond): // a window for a wrong return; slowness cannot fail it
	}
	if _, err := net.DialTimeout("tcp", addr, hangTimeout); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dialing after Shutdown: %v, want connection refused", err)
	}

	// The request in flight finishes, with Connection: close.
	close(release)
	resp, body := readResponse(t, busyBR, "GET")
	if body != "/slow" || !resp.Close {
		t.Errorf("in-flight response: %q close=%v, want /slow with Connection: close", body, resp.Close)
	}
	expectEOF(t, busyBR)
	select {
	case err := <-shutdown:
		if err != nil {
			t.Errorf("Shutdown = %v, want nil", err)
		}
	case <-time.After(hangTimeout):
		t.Fatal("Shutdown did not return after the last request")
	}
}

func TestShutdownGivesUpWhenTheContextEnds(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	s := &Server{Handler: mayBlock{handlerFunc(func(w mrw, r *mreq) {
		close(started)
		<-release
		io.WriteString(w, "too late") // buffered; the flush fails
	})}}
	addr := serve(t, s)
	defer close(release)
	c, br := dial(t, addr)
	send(t, c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
	}
	expectEOF(t, br) // forced closed
}

func TestShutdownClosesAfterAResponseAlreadyStarted(t *testing.T) {
	// The head went out before Shutdown, without Connection: close; the
	// connection must still close after the response, and not serve the
	// request pipelined behind it.
	started, release := make(chan struct{}), make(chan struct{})
	s := &Server{Handler: mayBlock{handlerFunc(func(w mrw, r *mreq) {
		if r.Path == "/next" {
			io.WriteString(w, "served after Shutdown")
			return
		}
		io.WriteString(w, "head;")
		w.(interface{ Flush() error }).Flush()
		close(started)
		<-release
		io.WriteString(w, "end")
	})}}
	addr := serve(t, s)
	c, br := dial(t, addr)
	send(t, c, "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	<-started
	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(context.Background()) }()
	waitFor(t, s.shutdown.Load) // Shutdown has begun before the response ends
	close(release)
	resp, body := readResponse(t, br, "GET")
	if body != "head;end" || resp.Close {
		t.Errorf("body %q close=%v, want head;end without Connection: close", body, resp.Close)
	}
	expectEOF(t, br)
	c.Close() // ends the server's lingering read at once
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
}

func TestLingeringCloseDeliversTheRefusal(t *testing.T) {
	// The client is still sending a body the server will not read. A
	// plain close with unread input sends RST, and the client's kernel
	// then drops the 413 it had not read yet (RFC 9112 section 9.6).
	addr := serve(t, &Server{Handler: &recorder{}, MaxBodyBytes: 1000})
	c, br := dial(t, addr)
	send(t, c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000000\r\n\r\n"+strings.Repeat("b", 200<<10))
	waitPeerClosed(t, c) // the answer and the close arrive before we read
	out, err := io.ReadAll(br)
	if got, want := maskDate(string(out)), errorResponse(413, ""); got != want || err != nil {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
}
