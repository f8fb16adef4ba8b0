package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/anx-gateway/anx/core/message"
)

// waitOrHang waits for ch, for at most hangTimeout (a safety net).
func waitOrHang(ch <-chan struct{}) {
	select {
	case <-ch:
	case <-time.After(hangTimeout):
	}
}

func TestResponseTrailers(t *testing.T) {
	// RFC 9112 section 7.1.2: trailer fields follow the last chunk;
	// invalid ones and those h1 manages are left out, as in the header.
	addr := serve(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {
		tr := w.(message.TrailerWriter).Trailer()
		tr.Set("X-Early", "set before the head")
		if r.Path == "/length" {
			w.Header().Set("Content-Length", "2")
		}
		io.WriteString(w, "hi")
		tr.Set("X-Sum", "abc")
		tr.Set("Bad Name", "x")
		tr.Set("X-Split", "a\r\nInjected: yes")
		tr.Set("Transfer-Encoding", "chunked")
		tr.Set("Content-Type", "text/html") // RFC 9110 section 6.5.1: not in a trailer
	})})
	expectExchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"+
			"2\r\nhi\r\n0\r\nX-Early: set before the head\r\nX-Sum: abc\r\n\r\n")
	// Framed by Content-Length, or to HTTP/1.0: no room for them.
	expectExchange(t, addr, "GET /length HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
	expectExchange(t, addr, "GET / HTTP/1.0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nConnection: close\r\n\r\nhi")

	// A Go client sees them as the response's trailer, and the next
	// request on the connection starts with none.
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for i := range 2 {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "hi" || resp.Trailer.Get("X-Sum") != "abc" || len(resp.Trailer) != 2 {
			t.Errorf("request %d: body %q (%v), trailer %v; want hi with X-Early and X-Sum", i, body, err, resp.Trailer)
		}
	}
}

func TestWriteInterim(t *testing.T) {
	// The 103 carries its own fields (filtered as a final response's) and
	// reaches the client before the final response, which the handler
	// writes only once the client has seen the 103.
	seen := make(chan struct{})
	errs := make(chan []error, 1)
	addr := serve(t, &Server{Handler: mayBlock{handlerFunc(func(w mrw, r *mreq) {
		iw := w.(message.InterimWriter)
		var hints message.Header
		hints.Add("Link", "</a.css>; rel=preload")
		hints.Add("Content-Length", "9")
		hints.Add("Connection", "close")
		got := []error{iw.WriteInterim(103, &hints), iw.WriteInterim(101, &hints), iw.WriteInterim(200, &hints)}
		waitOrHang(seen)
		w.Header().Set("Content-Length", "4")
		io.WriteString(w, "done")
		errs <- append(got, iw.WriteInterim(103, &hints))
	})}})
	var mu sync.Mutex
	var interim []textproto.MIMEHeader
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, hdr textproto.MIMEHeader) error {
		mu.Lock()
		defer mu.Unlock()
		if code != 103 {
			t.Errorf("interim status %d, want 103", code)
		}
		interim = append(interim, hdr)
		if len(interim) == 1 {
			close(seen)
		}
		return nil
	}}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "http://"+addr+"/", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := <-errs
	if got[0] != nil || got[1] == nil || got[2] == nil || got[3] == nil {
		t.Errorf("WriteInterim errors (103, 101, 200, 103 after the final) = %v; want nil then three errors", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(interim) != 1 || interim[0].Get("Link") != "</a.css>; rel=preload" || len(interim[0]) != 1 {
		t.Errorf("interim responses %v; want one 103 with only its Link", interim)
	}
	if resp.StatusCode != 200 || string(body) != "done" || resp.Header.Get("Link") != "" {
		t.Errorf("final response %d %q, header %v; want 200 \"done\" without Link", resp.StatusCode, body, resp.Header)
	}
}

func TestWriteInterimHTTP10AndOnTheLoop(t *testing.T) {
	// Exact bytes, from a handler that does not wait (on the loop in the
	// fast mode); an HTTP/1.0 client gets no 1xx and the handler no error.
	errs := make(chan error, 1)
	addr := serve(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {
		var hints message.Header
		hints.Add("Link", "</a.css>; rel=preload")
		errs <- w.(message.InterimWriter).WriteInterim(103, &hints)
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	})})
	expectExchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	if err := <-errs; err != nil {
		t.Errorf("HTTP/1.1: WriteInterim = %v", err)
	}
	expectExchange(t, addr, "GET / HTTP/1.0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	if err := <-errs; err != nil {
		t.Errorf("HTTP/1.0: WriteInterim = %v, want nil (nothing sent)", err)
	}
}

func TestForwardedContinueIsSentOnce(t *testing.T) {
	// A handler that forwards a 100 (as a proxy does) and the body
	// reader's own 100 for Expect: 100-continue make one 100 between
	// them, in either order, and the connection stays usable.
	addr := serve(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {
		iw := w.(message.InterimWriter)
		var err error
		if r.Path == "/forward-first" {
			err = iw.WriteInterim(100, nil)
		}
		b, _ := io.ReadAll(r.Body)
		if r.Path == "/read-first" {
			err = iw.WriteInterim(100, nil)
		}
		if err != nil {
			w.WriteHeader(500)
			return
		}
		w.Write(b)
	})})
	c, br := dial(t, addr)
	for _, path := range []string{"/forward-first", "/read-first"} {
		send(t, c, "PUT "+path+" HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		head, err := br.ReadString('\n')
		blank, _ := br.ReadString('\n')
		if err != nil || head != "HTTP/1.1 100 Continue\r\n" || blank != "\r\n" {
			t.Fatalf("%s: %q %q, %v; want 100 Continue", path, head, blank, err)
		}
		send(t, c, "hello")
		// A second 100 would be read here as the response.
		if resp, body := readResponse(t, br, "PUT"); resp.StatusCode != 200 || body != "hello" || resp.Close {
			t.Errorf("%s: %d %q close=%v; want 200 hello, kept open", path, resp.StatusCode, body, resp.Close)
		}
	}
}

func TestFlushReachesTheClientBeforeTheHandlerReturns(t *testing.T) {
	release := make(chan struct{})
	addr := serve(t, &Server{Handler: mayBlock{handlerFunc(func(w mrw, r *mreq) {
		io.WriteString(w, "first\n")
		if err := w.(message.Flusher).Flush(); err != nil {
			return
		}
		waitOrHang(release)
		io.WriteString(w, "second\n")
	})}})
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	close(release)
	if line != "first\n" || err != nil {
		t.Fatalf("first piece %q, %v; want %q before the handler returns", line, err, "first\n")
	}
	if rest, err := io.ReadAll(br); string(rest) != "second\n" || err != nil {
		t.Errorf("rest %q, %v", rest, err)
	}
}

func TestAbort(t *testing.T) {
	// An aborted chunked response ends without its last chunk, and the
	// connection closes: the client sees a broken body.
	addr := serve(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {
		io.WriteString(w, "part")
		w.(message.Aborter).Abort()
	})})
	got := exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	want := "HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// routes is a message.Dispatcher, as core/route's table: /static/ goes
// to a handler that never waits, everything else to one that may.
type routes struct{ static, app message.Handler }

func (rt routes) Serve(w mrw, r *mreq) { rt.HandlerFor(r).Serve(w, r) }

func (rt routes) HandlerFor(r *mreq) message.Handler {
	if strings.HasPrefix(r.Path, "/static/") {
		return rt.static
	}
	return rt.app
}

// NonBlocking is false: the table as a whole may wait.
func (routes) NonBlocking() bool { return false }

func TestLoopDecisionPerRequest(t *testing.T) {
	// Behind a Dispatcher, a request for a handler that never waits is
	// served on the loop and one for a handler that may wait off it, on
	// the same connection.
	where := func(w mrw, r *mreq) { io.WriteString(w, servedOn()) }
	addr := serve(t, &Server{Handler: routes{static: nonBlocking{handlerFunc(where)}, app: mayBlock{handlerFunc(where)}}})
	c, br := dial(t, addr)
	wantStatic, wantApp := "loop", "goroutine"
	if *serveMode == "goroutine" { // Serve: no loop at all
		wantStatic, wantApp = "?", "?"
	}
	for _, tc := range []struct{ path, want string }{
		{"/static/a.css", wantStatic}, {"/api/x", wantApp}, {"/static/b.css", wantStatic}, {"/api/y", wantApp},
	} {
		send(t, c, "GET "+tc.path+" HTTP/1.1\r\nHost: h\r\n\r\n")
		if _, body := readResponse(t, br, "GET"); body != tc.want {
			t.Errorf("%s served on the %s, want the %s", tc.path, body, tc.want)
		}
	}
}

// upgradeRequest asks to switch to the test protocol.
const upgradeRequest = "GET /tunnel HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo-test\r\n\r\n"

// backend is a TCP server that answers what it reads, prefixed by "<",
// and half-closes when the client has: the far side of a tunnel.
func backend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(hangTimeout))
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						c.Write(append([]byte("<"), buf[:n]...))
					}
					if err != nil {
						c.(*net.TCPConn).CloseWrite()
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// tunnelReport is what the tunnelling handler saw.
type tunnelReport struct {
	err            error
	writerTo, tcp  bool // the conn is an io.WriterTo and io.ReaderFrom; over a *net.TCPConn
	toUp, fromUp   int64
	errUp, errDown error
}

// tunnelHandler upgrades and copies, with io.Copy both ways, between the
// client and a TCP connection to up, as a proxy tunnels a WebSocket.
func tunnelHandler(up string, report chan<- tunnelReport) message.Handler {
	return mayBlock{handlerFunc(func(w mrw, r *mreq) {
		var rep tunnelReport
		defer func() { report <- rep }()
		w.Header().Set("Upgrade", r.Header.Get("Upgrade"))
		conn, err := w.(message.Upgrader).Upgrade()
		if rep.err = err; err != nil {
			w.WriteHeader(400)
			return
		}
		defer conn.Close()
		_, wt := conn.(io.WriterTo)
		_, rf := conn.(io.ReaderFrom)
		rep.writerTo = wt && rf
		if tc, ok := conn.(*tunnel); ok {
			rep.tcp = tc.tcp != nil
		}
		upc, err := net.Dial("tcp", up)
		if err != nil {
			rep.err = err
			return
		}
		defer upc.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			rep.fromUp, rep.errDown = io.Copy(conn, upc)
		}()
		rep.toUp, rep.errUp = io.Copy(upc, conn)
		upc.(*net.TCPConn).CloseWrite()
		<-done
	})}
}

func TestUpgradeTunnelsBothWays(t *testing.T) {
	report := make(chan tunnelReport, 1)
	addr := serve(t, &Server{Handler: tunnelHandler(backend(t), report)})
	c, br := dial(t, addr)
	// Bytes sent right behind the head arrive with it: they are the
	// first the tunnel reads.
	send(t, c, upgradeRequest+"early")
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "echo-test" || resp.Header.Get("Connection") != "Upgrade" {
		t.Fatalf("response %d %v; want 101 with Upgrade: echo-test and Connection: Upgrade", resp.StatusCode, resp.Header)
	}
	if got := readN(t, br, len("<early")); got != "<early" {
		t.Fatalf("first answer %q, want %q", got, "<early")
	}
	send(t, c, "later")
	if got := readN(t, br, len("<later")); got != "<later" {
		t.Fatalf("second answer %q, want %q", got, "<later")
	}
	c.(*progressConn).Conn.(*net.TCPConn).CloseWrite()
	if rest, err := io.ReadAll(br); len(rest) != 0 || err != nil {
		t.Errorf("after the client's EOF: %q, %v; want the server's EOF", rest, err)
	}
	rep := <-report
	if rep.err != nil || rep.errUp != nil || rep.errDown != nil {
		t.Fatalf("handler: upgrade %v, copy up %v, copy down %v", rep.err, rep.errUp, rep.errDown)
	}
	if rep.toUp != int64(len("earlylater")) || rep.fromUp != int64(len("<early<later")) {
		t.Errorf("copied %d bytes up and %d down, want %d and %d", rep.toUp, rep.fromUp, len("earlylater"), len("<early<later"))
	}
	if !rep.writerTo || !rep.tcp {
		t.Errorf("the upgraded conn is a WriterTo and ReaderFrom: %v, over a *net.TCPConn: %v; want both (splice)", rep.writerTo, rep.tcp)
	}
}

// readN reads exactly n bytes.
func readN(t *testing.T, r io.Reader, n int) string {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("reading %d bytes: %v (got %q)", n, err, buf)
	}
	return string(buf)
}

func TestUpgradeRefusals(t *testing.T) {
	errs := make(chan error, 1)
	addr := serve(t, &Server{Handler: mayBlock{handlerFunc(func(w mrw, r *mreq) {
		if r.Path != "/no-field" {
			w.Header().Set("Upgrade", "echo-test")
		}
		if r.Path == "/started" {
			w.WriteHeader(200)
		}
		conn, err := w.(message.Upgrader).Upgrade()
		if err == nil {
			conn.Close()
		}
		errs <- err
	})}})
	for _, tc := range []struct{ name, raw string }{
		{"no Connection: upgrade", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: echo-test\r\nConnection: close\r\n\r\n"},
		{"no Upgrade field", "GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, close\r\n\r\n"},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: echo-test\r\n\r\n"},
		{"response started", "GET /started HTTP/1.1\r\nHost: h\r\nConnection: upgrade, close\r\nUpgrade: echo-test\r\n\r\n"},
		{"no Upgrade in the response", "GET /no-field HTTP/1.1\r\nHost: h\r\nConnection: upgrade, close\r\nUpgrade: echo-test\r\n\r\n"},
		{"content not read", "POST / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, close\r\nUpgrade: echo-test\r\nContent-Length: 2\r\n\r\nhi"},
	} {
		got := exchange(t, addr, tc.raw)
		if err := <-errs; err == nil || strings.Contains(got, " 101 ") {
			t.Errorf("%s: Upgrade = %v, client got %q; want an error and no 101", tc.name, err, got)
		}
	}
}

func TestUpgradeOnTheLoopFails(t *testing.T) {
	// A NonBlocking handler runs on the loop, where a tunnel cannot.
	errs := make(chan error, 1)
	s := &Server{Handler: nonBlocking{handlerFunc(func(w mrw, r *mreq) {
		w.Header().Set("Upgrade", "echo-test")
		_, err := w.(message.Upgrader).Upgrade()
		errs <- err
	})}}
	addr := serveLoops(t, s, goleak.IgnoreCurrent())
	got := exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, close\r\nUpgrade: echo-test\r\n\r\n")
	if err := <-errs; !errors.Is(err, errUpgradeOnLoop) || strings.Contains(got, " 101 ") {
		t.Errorf("Upgrade on the loop = %v, client got %q; want errUpgradeOnLoop", err, got)
	}
}

func TestCloseEndsATunnel(t *testing.T) {
	// The server's Close closes an upgraded connection the handler still
	// holds: its read fails, the client sees EOF.
	upgraded := make(chan struct{})
	readErr := make(chan error, 1)
	s := &Server{Handler: mayBlock{handlerFunc(func(w mrw, r *mreq) {
		w.Header().Set("Upgrade", "echo-test")
		conn, err := w.(message.Upgrader).Upgrade()
		if err != nil {
			readErr <- err
			return
		}
		defer conn.Close()
		close(upgraded)
		_, err = conn.Read(make([]byte, 1))
		readErr <- err
	})}}
	addr := serve(t, s)
	c, br := dial(t, addr)
	send(t, c, upgradeRequest)
	if resp, err := http.ReadResponse(br, &http.Request{Method: "GET"}); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v", err)
	}
	waitOrHang(upgraded)
	s.Close()
	if err := <-readErr; err == nil {
		t.Error("the handler's read of the tunnel succeeded after Close")
	}
	if rest, err := io.ReadAll(br); len(rest) != 0 || err != nil && !isReset(err) {
		t.Errorf("client read %q, %v after Close; want EOF", rest, err)
	}
}

func TestLoopTLSUpgrade(t *testing.T) {
	// Over TLS on the loops the tunnel wraps the TLS connection; bytes
	// that came in the request's record are read first.
	report := make(chan tunnelReport, 1)
	l := serveLoopTLS(t, &Server{Handler: tunnelHandler(backend(t), report)})
	c, br := l.dial(t)
	send(t, c, upgradeRequest+"early")
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v", err)
	}
	if got := readN(t, br, len("<early")); got != "<early" {
		t.Fatalf("first answer %q, want %q", got, "<early")
	}
	send(t, c, "later")
	if got := readN(t, br, len("<later")); got != "<later" {
		t.Fatalf("second answer %q, want %q", got, "<later")
	}
	c.CloseWrite() // close_notify: the tunnel reads EOF
	if rest, err := io.ReadAll(br); len(rest) != 0 || err != nil {
		t.Errorf("after the client's close_notify: %q, %v; want the server's EOF", rest, err)
	}
	rep := <-report
	if rep.err != nil || rep.errUp != nil || rep.errDown != nil {
		t.Fatalf("handler: upgrade %v, copy up %v, copy down %v", rep.err, rep.errUp, rep.errDown)
	}
	if rep.toUp != int64(len("earlylater")) || rep.fromUp != int64(len("<early<later")) || rep.tcp {
		t.Errorf("copied %d bytes up and %d down, over TCP %v; want %d and %d over TLS",
			rep.toUp, rep.fromUp, rep.tcp, len("earlylater"), len("<early<later"))
	}
}

func TestShutdownWaitsForATunnel(t *testing.T) {
	// A graceful Shutdown lets a tunnel run: it returns once the handler
	// has closed it (here when the client's byte came through it).
	upgraded := make(chan struct{})
	s := &Server{Handler: mayBlock{handlerFunc(func(w mrw, r *mreq) {
		w.Header().Set("Upgrade", "echo-test")
		conn, err := w.(message.Upgrader).Upgrade()
		if err != nil {
			return
		}
		defer conn.Close()
		close(upgraded)
		b := make([]byte, 1)
		if _, err := conn.Read(b); err == nil {
			conn.Write(b)
		}
	})}}
	addr := serve(t, s)
	c, br := dial(t, addr)
	send(t, c, upgradeRequest)
	if resp, err := http.ReadResponse(br, &http.Request{Method: "GET"}); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v", err)
	}
	waitOrHang(upgraded)
	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	send(t, c, "x")
	if got := readN(t, br, 1); got != "x" {
		t.Errorf("echo %q through the tunnel during Shutdown, want x", got)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown = %v after the tunnel closed, want nil", err)
	}
	if rest, err := io.ReadAll(br); len(rest) != 0 || err != nil && !isReset(err) {
		t.Errorf("client read %q, %v; want EOF", rest, err)
	}
}

func TestRequestTrailers(t *testing.T) {
	// RFC 9112 section 7.1.2: the trailer fields of a chunked request
	// body are in Request.Trailer once Body has returned io.EOF, and not
	// before; the next request on the connection starts with none.
	addr := serve(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {
		before := r.Trailer.Len()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		var fields []string
		for _, f := range r.Trailer.Fields() {
			fields = append(fields, f.Name+"="+f.Value)
		}
		io.WriteString(w, string(body)+" before="+strconv.Itoa(before)+" trailer="+strings.Join(fields, ","))
	})})
	c, br := dial(t, addr)
	send(t, c, "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"4\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Sum: abc\r\nX-Other: 1\r\n\r\n"+
		"POST /again HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
	if _, body := readResponse(t, br, "POST"); body != "Wikipedia before=0 trailer=X-Sum=abc,X-Other=1" {
		t.Errorf("first request: %q", body)
	}
	if _, body := readResponse(t, br, "POST"); body != "hi before=0 trailer=" {
		t.Errorf("second request, without trailer fields: %q", body)
	}

	// And from a Go client, which sends the trailer after the body.
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest("POST", "http://"+addr+"/go", io.NopCloser(strings.NewReader("payload")))
	req.ContentLength = -1
	req.Trailer = http.Header{"X-Sum": {"sum-1"}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "payload before=0 trailer=X-Sum=sum-1" {
		t.Errorf("Go client: %q", body)
	}
}

// TestDetachedConnectionLingersAfterBlockingRequest checks that a
// connection taken off the loop for a handler that may wait serves the
// next such request on the same goroutine (no hand-back and new
// hand-off between them), and goes back to the loop once idle for
// detachedLinger.
func TestDetachedConnectionLingersAfterBlockingRequest(t *testing.T) {
	where := func(w mrw, r *mreq) {
		buf := make([]byte, 64)
		id, _, _ := strings.Cut(string(buf[:runtime.Stack(buf, false)]), "[")
		io.WriteString(w, servedOn()+" "+strings.TrimSpace(id))
	}
	addr := serve(t, &Server{Handler: routes{static: nonBlocking{handlerFunc(where)}, app: mayBlock{handlerFunc(where)}}})
	c, br := dial(t, addr)
	get := func(path string) string {
		t.Helper()
		send(t, c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n")
		_, body := readResponse(t, br, "GET")
		return body
	}
	first, second := get("/api/1"), get("/api/2")
	if *serveMode == "goroutine" { // Serve: one goroutine for the connection, no loop
		if !strings.HasPrefix(first, "? ") || first != second {
			t.Errorf("Serve: two requests served by %q and %q, want the connection's one goroutine", first, second)
		}
		return
	}
	if !strings.HasPrefix(first, "goroutine ") || first != second {
		t.Errorf("two proxied requests in a row served by %q and %q, want one detached goroutine", first, second)
	}
	// Idle past the linger, the connection is back on the loop: its
	// goroutine ends.
	for deadline := time.Now().Add(hangTimeout); goroutinesIn("h1.(*loopConn).runDetached(") > 0; {
		if time.Now().After(deadline) {
			t.Fatal("the detached goroutine never ended")
		}
		time.Sleep(10 * time.Millisecond) // polling for the goroutine's end, not a synchronisation
	}
	if third := get("/api/3"); third == first || !strings.HasPrefix(third, "goroutine ") {
		t.Errorf("after the linger, served by %q, want a new detached goroutine (the first was %q)", third, first)
	}
	if s := get("/static/x"); !strings.HasPrefix(s, "loop") {
		t.Errorf("a static request after a proxied one: served on %q, want the loop", s)
	}
}
