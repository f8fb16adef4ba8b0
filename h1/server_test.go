package h1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/anx-gateway/anx/core/message"
)

func TestKeepAliveServesRequestsInTurn(t *testing.T) {
	// RFC 9112 section 9.3: HTTP/1.1 connections persist by default.
	addr := serve(t, &Server{Handler: &recorder{}})
	c, br := dial(t, addr)
	for i, path := range []string{"/one", "/two?x=1", "/three"} {
		send(t, c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n")
		resp, body := readResponse(t, br, "GET")
		p, q, _ := strings.Cut(path, "?")
		if want := "GET " + p + " q=" + q + " host=h body="; resp.StatusCode != 200 || body != want || resp.Close {
			t.Errorf("request %d: %d %q close=%v, want 200 %q keep-alive", i, resp.StatusCode, body, resp.Close, want)
		}
	}
}

func TestResponseHeadIsExact(t *testing.T) {
	addr := serve(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {
		w.Header().Add("Content-Type", "text/plain")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("set-cookie", "b=2")
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	})})
	expectExchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nContent-Type: text/plain\r\n"+
			"Set-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
}

// countingConn counts the writes the server makes.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// serveOne accepts one connection on a new listener and serves it with
// ServeConn through wrap; it returns the client's side. The timeouts s
// leaves at zero are notUnderTest.
func serveOne(t *testing.T, s *Server, wrap func(net.Conn) net.Conn) (net.Conn, *bufio.Reader) {
	t.Helper()
	timeoutsNotUnderTest(s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		s.ServeConn(wrap(nc))
	}()
	c, br := dial(t, ln.Addr().String())
	t.Cleanup(func() {
		c.Close()
		s.Close()
		<-done
	})
	return c, br
}

func TestPipelinedRequestsAreAnsweredInOrderInOneWrite(t *testing.T) {
	// RFC 9112 section 9.3.2: responses in the order of the requests.
	var cc *countingConn
	c, br := serveOne(t, &Server{Handler: &recorder{}}, func(nc net.Conn) net.Conn {
		cc = &countingConn{Conn: nc}
		return cc
	})
	send(t, c, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2?x HTTP/1.1\r\nHost: h\r\n\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n")
	for _, want := range []string{"GET /1 q= host=h body=", "GET /2 q=x host=h body=", "GET /3 q= host=h body="} {
		if _, body := readResponse(t, br, "GET"); body != want {
			t.Errorf("body %q, want %q", body, want)
		}
	}
	if n := cc.writes.Load(); n != 1 {
		t.Errorf("three pipelined responses took %d writes, want 1", n)
	}
	// A request with a body: the answers before it go out before its
	// handler runs, which may wait for the body; the order holds.
	send(t, c, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"+
		"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody"+
		"GET /c HTTP/1.1\r\nHost: h\r\n\r\n")
	for _, want := range []string{"GET /a q= host=h body=", "POST /b q= host=h body=body", "GET /c q= host=h body="} {
		if _, body := readResponse(t, br, "GET"); body != want {
			t.Errorf("body %q, want %q", body, want)
		}
	}
	// A response is not held back for a request that has not fully
	// arrived: the client may wait for it before sending more.
	send(t, c, "GET /4 HTTP/1.1\r\nHost: h\r\n\r\nGET /5 HTTP/1.1\r\n")
	if _, body := readResponse(t, br, "GET"); body != "GET /4 q= host=h body=" {
		t.Errorf("body %q, want the answer to /4", body)
	}
	send(t, c, "Host: h\r\n\r\n")
	if _, body := readResponse(t, br, "GET"); body != "GET /5 q= host=h body=" {
		t.Errorf("body %q, want the answer to /5", body)
	}
}

func TestFullDuplexBodyAndResponse(t *testing.T) {
	// A proxy streams both ways: the body is read in one goroutine while
	// the response is written in another, and the client sends the rest
	// of the body only after it has seen the start of the response.
	addr := serve(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {
		done := make(chan string)
		go func() {
			b, _ := io.ReadAll(r.Body)
			done <- string(b)
		}()
		w.Header().Set("X-Early", "1")
		io.WriteString(w, "started;")
		w.(interface{ Flush() error }).Flush()
		io.WriteString(w, "body="+<-done)
	})})
	c, br := dial(t, addr)
	send(t, c, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
	for line := ""; line != "\r\n"; { // skip the 100 Continue, if it came first
		line, _ = br.ReadString('\n')
		if strings.HasPrefix(line, "HTTP/1.1 200") {
			break
		}
	}
	send(t, c, "5\r\nhello\r\n0\r\n\r\n")
	out, _ := io.ReadAll(br)
	if !strings.Contains(string(out), "started;") || !strings.Contains(string(out), "body=hello") {
		t.Errorf("got %q", out)
	}
}

func TestHTTP10(t *testing.T) {
	// RFC 9112 section 9.3: HTTP/1.0 persists only with keep-alive.
	withLength := handlerFunc(func(w mrw, r *mreq) {
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	})
	withoutLength := handlerFunc(func(w mrw, r *mreq) { io.WriteString(w, "streamed") })

	addr := serve(t, &Server{Handler: withLength})
	expectExchange(t, addr, "GET / HTTP/1.0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	c, br := dial(t, addr)
	for range 2 {
		send(t, c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		resp, body := readResponse(t, br, "GET")
		if resp.Header.Get("Connection") != "keep-alive" || body != "ok" {
			t.Errorf("HTTP/1.0 keep-alive: Connection %q body %q, want keep-alive echoed, ok", resp.Header.Get("Connection"), body)
		}
	}

	// Without a length, an HTTP/1.0 body is delimited by the close (no
	// chunked coding in 1.0), even if the client asked for keep-alive.
	addr = serve(t, &Server{Handler: withoutLength})
	expectExchange(t, addr, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nConnection: close\r\n\r\nstreamed")
}

func TestHeadSendsNoBody(t *testing.T) {
	// RFC 9110 section 9.3.2: same fields as GET, no content.
	addr := serve(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {
		if r.Path == "/len" {
			w.Header().Set("Content-Length", "5")
		}
		n, err := io.WriteString(w, "hello")
		if n != 5 || err != nil {
			t.Errorf("Write on HEAD = %d, %v; want 5, nil", n, err)
		}
	})})
	c, br := dial(t, addr)
	send(t, c, "HEAD /len HTTP/1.1\r\nHost: h\r\n\r\nHEAD /nolen HTTP/1.1\r\nHost: h\r\n\r\nGET /len HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	out, _ := io.ReadAll(br)
	want := "HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nContent-Length: 5\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
	if got := maskDate(string(out)); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestStatusesWithoutContent(t *testing.T) {
	// RFC 9110 sections 8.6, 15.3.5, 15.4.5: 204 and 304 carry no content;
	// 204 no Content-Length; 304 may carry the representation's.
	addr := serve(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {
		w.Header().Set("Content-Length", "7")
		switch r.Path {
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.WriteHeader(304)
		}
		io.WriteString(w, "content")
	})})
	expectExchange(t, addr, "GET /204 HTTP/1.1\r\nHost: h\r\n\r\nGET /304 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nDate: X\r\nServer: anx\r\n\r\n"+
			"HTTP/1.1 304 Not Modified\r\nDate: X\r\nServer: anx\r\nContent-Length: 7\r\nConnection: close\r\n\r\n")
}

func TestChunkedResponse(t *testing.T) {
	// RFC 9112 section 7.1: without a length, HTTP/1.1 bodies are chunked;
	// large writes go through as one chunk, small ones are buffered.
	big := strings.Repeat("x", 100<<10)
	addr := serve(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {
		io.WriteString(w, "a")
		io.WriteString(w, "bc")
		io.WriteString(w, big)
		io.WriteString(w, "")
	})})
	got := exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	want := "HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
		"1\r\na\r\n2\r\nbc\r\n19000\r\n" + big + "\r\n0\r\n\r\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", trimForLog(got), trimForLog(want))
	}
}

func TestEmptyResponseHasContentLengthZero(t *testing.T) {
	addr := serve(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {})})
	expectExchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

func TestChunkedRequestBody(t *testing.T) {
	addr := serve(t, &Server{Handler: &recorder{}})
	c, br := dial(t, addr)
	send(t, c, "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: dropped\r\n\r\n"+
		"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, body := readResponse(t, br, "POST"); body != "POST /up q= host=h body=Wikipedia" {
		t.Errorf("body %q", body)
	}
	if _, body := readResponse(t, br, "GET"); body != "GET /after q= host=h body=" {
		t.Errorf("request after a chunked body: %q", body)
	}
}

func TestExpectContinue(t *testing.T) {
	// RFC 9110 section 10.1.1.
	addr := serve(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {
		if r.Path == "/deny" {
			w.WriteHeader(403)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})})

	// The handler reads: 100 Continue comes first, then the final answer.
	c, br := dial(t, addr)
	send(t, c, "PUT /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q, %v; want 100 Continue", line, err)
	}
	if blank, _ := br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("100 Continue not followed by an empty line: %q", blank)
	}
	send(t, c, "hello")
	if resp, body := readResponse(t, br, "PUT"); resp.StatusCode != 200 || body != "hello" || resp.Close {
		t.Errorf("after 100: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}

	// The handler refuses without reading: no 100, and the connection
	// closes, since the client may send the body anyway.
	c, br = dial(t, addr)
	send(t, c, "PUT /deny HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	if resp, _ := readResponse(t, br, "PUT"); resp.StatusCode != 403 || !resp.Close {
		t.Errorf("refusal: status %d close=%v, want 403, close", resp.StatusCode, resp.Close)
	}
	expectEOF(t, br)

	// Unknown expectations get 417; HTTP/1.0 expectations are ignored.
	expectExchange(t, addr, "PUT / HTTP/1.1\r\nHost: h\r\nExpect: telepathy\r\nContent-Length: 1\r\n\r\nx",
		errorResponse(417, ""))
	if got := exchange(t, addr, "PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx"); strings.Contains(got, "100 Continue") || !strings.HasSuffix(got, "\r\n\r\nx") {
		t.Errorf("HTTP/1.0 with Expect: %q", got)
	}
}

func TestBodyLimits(t *testing.T) {
	rec := &recorder{}
	var readErr atomic.Value
	addr := serve(t, &Server{MaxBodyBytes: 10, Handler: handlerFunc(func(w mrw, r *mreq) {
		if r.Path == "/rec" {
			rec.Serve(w, r)
			return
		}
		_, err := io.ReadAll(r.Body)
		readErr.Store(err)
	})})

	// A declared length above the limit is refused before the handler.
	expectExchange(t, addr, "POST /rec HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n01234567890",
		errorResponse(413, ""))
	if seen := rec.requests(); len(seen) != 0 {
		t.Errorf("handler ran for a refused body: %q", seen)
	}
	// Exactly at the limit is fine.
	if got := exchange(t, addr, "POST /rec HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789"); !strings.HasSuffix(got, "body=0123456789\r\n0\r\n\r\n") {
		t.Errorf("Content-Length 10 at a limit of 10: %q", got)
	}
	// A chunked body that grows past it: Read fails with ErrBodyTooLarge
	// and, as the handler wrote nothing, the client gets 413.
	expectExchange(t, addr, "POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n",
		errorResponse(413, ""))
	if err, _ := readErr.Load().(error); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("Read returned %v, want ErrBodyTooLarge", err)
	}
}

func TestHeadLimitsOnTheWire(t *testing.T) {
	addr := serve(t, &Server{Handler: &recorder{}, MaxHeaderBytes: 1024, MaxHeaderCount: 3})
	cases := []struct {
		name, raw string
		status    int
	}{
		{"request line over the limit", "GET /" + strings.Repeat("a", 1100) + " HTTP/1.1\r\nHost: h\r\n\r\n", 414},
		{"head over the limit", "GET / HTTP/1.1\r\nHost: h\r\nCookie: " + strings.Repeat("a", 1100) + "\r\n\r\n", 431},
		{"four fields over a limit of three", "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431},
	}
	for _, c := range cases {
		if got, want := exchange(t, addr, c.raw), errorResponse(c.status, ""); got != want {
			t.Errorf("%s:\ngot  %q\nwant %q", c.name, got, want)
		}
	}
	// A head that just fits, arriving in small pieces, is served: the
	// read buffer grows past its first 4 KiB as needed. Each piece is
	// read by the server before the next is sent.
	addr = serve(t, &Server{Handler: &recorder{}, MaxHeaderBytes: 20 << 10})
	c, br := dial(t, addr)
	head := "GET / HTTP/1.1\r\nHost: h\r\nCookie: " + strings.Repeat("c", 19<<10) + "\r\n\r\n"
	for len(head) > 0 {
		n := min(len(head), 1000)
		send(t, c, head[:n])
		head = head[n:]
		waitConsumed(t, c)
	}
	if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 200 {
		t.Errorf("19 KiB head under a 20 KiB limit: status %d", resp.StatusCode)
	}
}

func TestDeclaredLengthIsEnforced(t *testing.T) {
	var writeErr atomic.Value
	addr := serve(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {
		w.Header().Set("Content-Length", "5")
		if r.Path == "/short" {
			io.WriteString(w, "abc")
			return
		}
		_, err := io.WriteString(w, "abcdefgh")
		writeErr.Store(err)
	})})
	// Fewer bytes than declared: the client sees the short body and EOF.
	c, br := dial(t, addr)
	send(t, c, "GET /short HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	out, _ := io.ReadAll(br)
	if got, want := maskDate(string(out)), "HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nContent-Length: 5\r\n\r\nabc"; got != want {
		t.Errorf("short body:\ngot  %q\nwant %q", got, want)
	}
	// More bytes: cut at the declared length, and the handler is told.
	c, br = dial(t, addr)
	send(t, c, "GET /long HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	out, _ = io.ReadAll(br)
	if got, want := maskDate(string(out)), "HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nContent-Length: 5\r\n\r\nabcde"; got != want {
		t.Errorf("long body:\ngot  %q\nwant %q", got, want)
	}
	if err, _ := writeErr.Load().(error); !errors.Is(err, ErrContentLength) {
		t.Errorf("overlong Write returned %v, want ErrContentLength", err)
	}
}

func TestHandlerFieldsAreSanitized(t *testing.T) {
	addr := serve(t, &Server{AltSvc: `h3=":443"`, Handler: handlerFunc(func(w mrw, r *mreq) {
		h := w.Header()
		h.Add("X-Split", "a\r\nSet-Cookie: evil=1") // response splitting
		h.Add("X-Nul", "a\x00b")
		h.Add("Bad Name", "v")
		h.Add("", "v")
		h.Add("Transfer-Encoding", "gzip")       // h1 frames the body itself
		h.Add("Connection", "keep-alive, close") // honoured, then rewritten
		h.Add("Keep-Alive", "timeout=5")
		h.Add("Content-Length", "nope") // invalid: ignored
		h.Add("Server", "custom")       // the handler's own wins
		h.Add("Alt-Svc", "clear")       // the handler's own wins
		h.Add("X-Ok", "fine\tvalue é")
		io.WriteString(w, "hi")
	})})
	expectExchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"HTTP/1.1 200 OK\r\nDate: X\r\nServer: custom\r\nAlt-Svc: clear\r\nX-Ok: fine\tvalue é\r\n"+
			"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
}

func TestInterimResponses(t *testing.T) {
	// RFC 8297: 103 Early Hints goes out at once, with the fields so far.
	addr := serve(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(103)
		w.WriteHeader(101) // cannot switch protocols here: ignored
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(200)
		io.WriteString(w, "ok")
	})})
	expectExchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nLink: </style.css>; rel=preload\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	// Never to HTTP/1.0 clients (RFC 9110 section 15.2).
	if got := exchange(t, addr, "GET / HTTP/1.0\r\n\r\n"); strings.Contains(got, "103") {
		t.Errorf("HTTP/1.0 client got a 1xx: %q", got)
	}
}

func TestHandlerPanic(t *testing.T) {
	addr := serve(t, &Server{Handler: handlerFunc(func(w mrw, r *mreq) {
		if r.Path == "/late" {
			io.WriteString(w, "partial")
		}
		panic("boom")
	})})
	expectExchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", errorResponse(500, ""))
	// After the head went out, the body is cut without its last chunk so
	// the client sees the failure.
	expectExchange(t, addr, "GET /late HTTP/1.1\r\nHost: h\r\n\r\n",
		"HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n")
}

func TestUnreadBodyIsDrainedOrTheConnectionCloses(t *testing.T) {
	addr := serve(t, &Server{MaxBodyBytes: -1, Handler: handlerFunc(func(w mrw, r *mreq) {
		io.WriteString(w, r.Path)
	})})
	// A small unread body is drained: the connection carries on.
	c, br := dial(t, addr)
	send(t, c, "POST /small HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("b", 1000)+
		"POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"+
		"GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	for _, want := range []string{"/small", "/chunked", "/next"} {
		if resp, body := readResponse(t, br, "GET"); body != want || resp.Close {
			t.Errorf("body %q close=%v, want %q, keep-alive", body, resp.Close, want)
		}
	}
	// A large one is not: the response goes out, then the close.
	c, br = dial(t, addr)
	go func() { // the client keeps sending; the server must not take it for requests
		c.Write([]byte("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 10000000\r\n\r\n"))
		chunk := []byte(strings.Repeat("GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n", 100))
		for i := 0; i < 2000; i++ {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	if _, body := readResponse(t, br, "POST"); body != "/big" {
		t.Errorf("body %q, want /big", body)
	}
	expectEOF(t, br)
}

func TestIdleConnectionHoldsNoBuffer(t *testing.T) {
	s := &Server{Handler: &recorder{}}
	addr := serve(t, s)
	c, br := dial(t, addr)
	send(t, c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
	readResponse(t, br, "POST")
	if *serveMode != "goroutine" {
		// The goroutine that served the POST gave the connection back to
		// its loop (whose idle connections TestIdleLoopConnection checks).
		waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.conns) == 0 })
		send(t, c, "GET /again HTTP/1.1\r\nHost: h\r\n\r\n")
		if _, body := readResponse(t, br, "GET"); body != "GET /again q= host=h body=" {
			t.Errorf("after idling: %q", body)
		}
		return
	}
	var conn *conn
	waitFor(t, func() bool {
		s.mu.Lock()
		for k := range s.conns {
			conn = k
		}
		s.mu.Unlock()
		// The atomic load of the state orders the checks below after
		// the connection goroutine's release.
		return conn != nil && conn.state.Load() == stateIdle
	})
	if conn.rbuf != nil || conn.out.buf != nil {
		t.Errorf("idle connection holds buffers: read %v, write %v", conn.rbuf != nil, conn.out.buf != nil)
	}
	// A no-op CAS orders the reads above before the connection's own CAS
	// when it wakes up (the network is no edge for the race detector).
	conn.state.CompareAndSwap(stateIdle, stateIdle)
	send(t, c, "GET /again HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, body := readResponse(t, br, "GET"); body != "GET /again q= host=h body=" {
		t.Errorf("after idling: %q", body)
	}
}

func TestNilHandlerAnswers404(t *testing.T) {
	addr := serve(t, &Server{})
	expectExchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 404 Not Found\r\nDate: X\r\nServer: anx\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\nConnection: close\r\n\r\nNot Found\n")
}

func TestValidate(t *testing.T) {
	for _, s := range []*Server{{MaxHeaderBytes: -1}, {MaxHeaderCount: -1}, {AltSvc: "h3=\":443\"\r\nX: y"}, {AltSvc: " padded"}} {
		if err := s.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", s)
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		if err := s.Serve(ln); err == nil || errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve with invalid settings = %v", err)
		}
		ln.Close()
	}
	if err := (&Server{}).Validate(); err != nil {
		t.Errorf("zero Server: %v", err)
	}
}

var _ message.Handler = (*recorder)(nil)
