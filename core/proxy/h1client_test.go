package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/internal/testpki"
)

// checkNoLeaks fails t if goroutines started during the test are still
// running once its cleanups (registered after this call) have run.
func checkNoLeaks(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

// safetyNet bounds every wait for an event in these tests: long enough
// for a loaded machine, so only a hang trips it.
const safetyNet = 2 * time.Minute

// rawUpstream is an upstream on a real loopback socket whose every
// connection is served by serve, in a goroutine of its own; tests use it
// to send canned, often malformed, bytes. It counts accepted connections
// and stops, closing them, when the test ends.
type rawUpstream struct {
	ln      net.Listener
	accepts atomic.Int64
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func newRawUpstream(t *testing.T, network string, serve func(n int64, c net.Conn)) *rawUpstream {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "up.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := u.accepts.Add(1)
			u.mu.Lock()
			u.conns = append(u.conns, c)
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer c.Close()
				serve(n, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		u.mu.Lock()
		for _, c := range u.conns {
			c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

func (u *rawUpstream) addr() string { return u.ln.Addr().String() }

// readRequest reads one request (head and content) with net/http's
// parser, the real peer that judges what the client writes.
func readRequest(br *bufio.Reader) (*http.Request, []byte, error) {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(r.Body)
	return r, body, err
}

// testClient returns a client to addr over TCP with the given options.
func testClient(addr string, o h1ClientOptions) *h1Client {
	return newH1Client(h1DialTCP(addr, 5*time.Second), o)
}

// defaultTestOptions keep connections and never time out by themselves.
var defaultTestOptions = h1ClientOptions{keepAlive: 4, keepAliveTimeout: time.Hour}

// exchangeResult is what a test request got.
type exchangeResult struct {
	status  int
	header  message.Header
	body    string
	trailer message.Header
}

// do sends req and reads the whole response.
func do(t *testing.T, c *h1Client, req *outRequest) (exchangeResult, error) {
	t.Helper()
	resp, err := c.roundTrip(context.Background(), req)
	if err != nil {
		return exchangeResult{}, err
	}
	defer c.recycle(resp)
	var res exchangeResult
	res.status = resp.Status
	for _, f := range resp.Header.Fields() {
		res.header.Add(strings.Clone(f.Name), strings.Clone(f.Value))
	}
	body, err := io.ReadAll(resp.Body)
	res.body = string(body)
	for _, f := range resp.Trailer.Fields() {
		res.trailer.Add(strings.Clone(f.Name), strings.Clone(f.Value))
	}
	resp.Body.Close()
	return res, err
}

func getRequest(target string) *outRequest {
	return &outRequest{Method: "GET", Target: target, Host: "up.test", Header: new(message.Header), ContentLength: 0}
}

// httpUpstream serves h over net/http on a loopback socket and reports
// each connection's new and closed events.
type httpUpstream struct {
	srv    *http.Server
	ln     net.Listener
	opened atomic.Int64
	closed chan net.Conn
}

func newHTTPUpstream(t *testing.T, network string, idle time.Duration, h http.HandlerFunc) *httpUpstream {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "http.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	u := &httpUpstream{ln: ln, closed: make(chan net.Conn, 1000)}
	u.srv = &http.Server{Handler: h, IdleTimeout: idle, ConnState: func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			u.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			u.closed <- c
		}
	}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		u.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		u.srv.Close()
		<-done
	})
	return u
}

func (u *httpUpstream) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-u.closed:
	case <-time.After(safetyNet):
		t.Fatal("the upstream never closed a connection")
	}
}

func TestH1ClientReusesKeepAliveConnections(t *testing.T) {
	checkNoLeaks(t)
	up := newHTTPUpstream(t, "tcp", time.Hour, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.URL.Path)
	})
	c := testClient(up.ln.Addr().String(), defaultTestOptions)
	defer c.closeIdle()
	for i := range 20 {
		res, err := do(t, c, getRequest(fmt.Sprintf("/%d", i)))
		if err != nil || res.status != 200 || res.body != fmt.Sprintf("hello /%d", i) {
			t.Fatalf("request %d: %v %d %q", i, err, res.status, res.body)
		}
	}
	if n := up.opened.Load(); n != 1 {
		t.Errorf("20 sequential requests opened %d connections, want 1", n)
	}
}

func TestH1ClientUnixSocketUpstream(t *testing.T) {
	up := newHTTPUpstream(t, "unix", time.Hour, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "unix "+r.Host)
	})
	c := newH1Client(h1DialUnix(up.ln.Addr().String(), 5*time.Second), defaultTestOptions)
	defer c.closeIdle()
	for range 3 {
		res, err := do(t, c, getRequest("/"))
		if err != nil || res.status != 200 || res.body != "unix up.test" {
			t.Fatalf("over a unix socket: %v %d %q", err, res.status, res.body)
		}
	}
	if n := up.opened.Load(); n != 1 {
		t.Errorf("3 requests over a unix socket opened %d connections, want 1", n)
	}
}

// cannedUpstream answers the first connection's first request with
// first, then keeps it open, reporting on gone when the client closes
// it; every later connection gets a well-formed 200 "ok" per request.
func cannedUpstream(t *testing.T, first string, gone chan<- bool) *rawUpstream {
	return newRawUpstream(t, "tcp", func(n int64, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, _, err := readRequest(br); err != nil {
				return
			}
			if n == 1 {
				io.WriteString(c, first)
				_, err := br.ReadByte() // the client must close, not send another request
				gone <- err != nil
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
}

func TestH1ClientRefusesMalformedResponseHeads(t *testing.T) {
	cases := []struct{ name, resp string }{
		{"no version", "200 OK\r\n\r\n"},
		{"HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n"},
		{"lower-case version", "http/1.1 200 OK\r\n\r\n"},
		{"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n"},
		{"two-digit status", "HTTP/1.1 20 OK\r\n\r\n"},
		{"status 600", "HTTP/1.1 600 X\r\n\r\n"},
		{"two spaces", "HTTP/1.1  200 OK\r\n\r\n"},
		{"control byte in reason", "HTTP/1.1 200 O\x01K\r\n\r\n"},
		{"bare LF ends a line", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"},
		{"bare CR in a value", "HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n"},
		{"NUL in a value", "HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"},
		{"field without colon", "HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n"},
		{"non-token name", "HTTP/1.1 200 OK\r\nX(y): 1\r\nContent-Length: 0\r\n\r\n"},
		{"two equal Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"},
		{"Content-Length list", "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok"},
		{"signed Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok"},
		{"hex Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nok"},
		{"huge Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nok"},
		{"empty Content-Length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nok"},
		{"TE and CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
		{"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
		{"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx"},
		{"TE gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
		{"TE twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"longer than Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"},
		{"204 with content", "HTTP/1.1 204 No Content\r\n\r\nsurprise"},
		{"101 without Upgrade asked", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"},
		{"head too large", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", h1MaxHeadBytes) + "\r\n\r\n"},
		{"too many fields", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", h1MaxFields+1) + "\r\n"},
		{"closed inside the head", "HTTP/1.1 200 OK\r\nContent-Le"},
		{"endless 1xx", strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", h1MaxInterim+1) + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gone := make(chan bool, 1)
			resp := tc.resp
			if tc.name == "closed inside the head" {
				gone <- true // the upstream's close is the case itself
			}
			up := newRawUpstream(t, "tcp", func(n int64, c net.Conn) {
				br := bufio.NewReader(c)
				for {
					if _, _, err := readRequest(br); err != nil {
						return
					}
					if n == 1 {
						io.WriteString(c, resp)
						if tc.name == "closed inside the head" {
							return
						}
						_, err := br.ReadByte()
						gone <- err != nil // EOF, or a reset when the client closed amid the write
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			})
			c := testClient(up.addr(), defaultTestOptions)
			defer c.closeIdle()
			_, err := do(t, c, getRequest("/bad"))
			if !errors.Is(err, errMalformed) {
				t.Fatalf("%q: err %v, want errMalformed", trimForTest(resp), err)
			}
			if errors.Is(err, errNotSent) {
				t.Errorf("a malformed answer to a sent request says errNotSent")
			}
			expectClosedAndNotReused(t, c, up, gone)
		})
	}
}

// expectClosedAndNotReused checks that the client's next request goes on
// a new connection and that it closed the one that misbehaved (at once,
// or when the pool check found it unusable) without sending more on it.
func expectClosedAndNotReused(t *testing.T, c *h1Client, up *rawUpstream, gone <-chan bool) {
	t.Helper()
	res, err := do(t, c, getRequest("/next"))
	if err != nil || res.body != "ok" {
		t.Fatalf("next request: %v %q", err, res.body)
	}
	if n := up.accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the bad one must not be reused", n)
	}
	select {
	case closed := <-gone:
		if !closed {
			t.Errorf("the client sent more on the connection instead of closing it")
		}
	case <-time.After(safetyNet):
		t.Fatal("the client never closed the connection")
	}
}

func trimForTest(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func TestH1ClientMalformedChunkedBodyFailsTheRead(t *testing.T) {
	for _, body := range []string{
		"5\r\nhelloXX0\r\n\r\n",
		"5\nhello\r\n0\r\n\r\n",
		"zz\r\n",
		"2\r\nok\r\n0\r\nBad Name: x\r\n\r\n",
	} {
		gone := make(chan bool, 1)
		up := cannedUpstream(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+body, gone)
		c := testClient(up.addr(), defaultTestOptions)
		resp, err := c.roundTrip(context.Background(), getRequest("/"))
		if err != nil {
			t.Fatalf("%q: head refused: %v", body, err)
		}
		_, err = io.ReadAll(resp.Body)
		if !errors.Is(err, errMalformed) {
			t.Errorf("%q: body read %v, want errMalformed", body, err)
		}
		resp.Body.Close()
		c.recycle(resp)
		expectClosedAndNotReused(t, c, up, gone)
		c.closeIdle()
	}
}

func TestH1ClientBytesAfterTheBodyPreventReuse(t *testing.T) {
	// The head arrives first; the content and extra bytes after it come
	// later, once the client reads the body.
	for _, extra := range []struct{ name, head, rest string }{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "helloEXTRA"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nhello\r\n0\r\n\r\nEXTRA"},
	} {
		t.Run(extra.name, func(t *testing.T) {
			headRead := make(chan struct{})
			gone := make(chan bool, 1)
			up := newRawUpstream(t, "tcp", func(n int64, c net.Conn) {
				br := bufio.NewReader(c)
				for {
					if _, _, err := readRequest(br); err != nil {
						return
					}
					if n == 1 {
						io.WriteString(c, extra.head)
						<-headRead
						io.WriteString(c, extra.rest)
						_, err := br.ReadByte()
						gone <- err != nil // EOF, or a reset when the client closed amid the write
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			})
			c := testClient(up.addr(), defaultTestOptions)
			defer c.closeIdle()
			resp, err := c.roundTrip(context.Background(), getRequest("/"))
			if err != nil {
				t.Fatal(err)
			}
			close(headRead)
			body, err := io.ReadAll(resp.Body)
			if err != nil || string(body) != "hello" {
				t.Fatalf("body %q, %v", body, err)
			}
			resp.Body.Close()
			c.recycle(resp)
			expectClosedAndNotReused(t, c, up, gone)
		})
	}
}

func TestH1ClientChunkedBothWaysWithTrailers(t *testing.T) {
	checkNoLeaks(t)
	up := newHTTPUpstream(t, "tcp", time.Hour, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Header().Set("Trailer", "X-Got-Sum, X-Got-Forbidden")
		w.Header().Set("X-TE", strings.Join(r.TransferEncoding, ","))
		w.Header().Set("X-CL", fmt.Sprint(r.ContentLength))
		w.WriteHeader(200)
		w.Write(body)
		w.(http.Flusher).Flush()
		w.Write([]byte("!"))
		w.Header().Set("X-Got-Sum", r.Trailer.Get("X-Sum"))
		w.Header().Set("X-Got-Forbidden", fmt.Sprint(r.Trailer.Get("Content-Type") != ""))
	})
	c := testClient(up.ln.Addr().String(), defaultTestOptions)
	defer c.closeIdle()
	var tr message.Header
	tr.Add("X-Sum", "abc")
	tr.Add("Content-Type", "text/evil") // RFC 9110 section 6.5.1: never a trailer
	var h message.Header
	h.Add("Trailer", "X-Sum")
	for i := range 2 {
		body := io.MultiReader(strings.NewReader("hello "), strings.NewReader(strings.Repeat("x", 40000)))
		req := &outRequest{Method: "POST", Target: "/up", Host: "up.test", Header: &h, Body: body, ContentLength: -1, Trailer: &tr}
		res, err := do(t, c, req)
		if err != nil || res.status != 200 {
			t.Fatalf("request %d: %v %d", i, err, res.status)
		}
		if want := "hello " + strings.Repeat("x", 40000) + "!"; res.body != want {
			t.Errorf("echoed %d bytes, want %d", len(res.body), len(want))
		}
		if te, cl := res.header.Get("X-TE"), res.header.Get("X-CL"); te != "chunked" || cl != "-1" {
			t.Errorf("the upstream saw Transfer-Encoding %q, Content-Length %s; want chunked, -1", te, cl)
		}
		if got := res.trailer.Get("X-Got-Sum"); got != "abc" {
			t.Errorf("response trailer X-Got-Sum = %q, want abc (the request trailer went through)", got)
		}
		if got := res.trailer.Get("X-Got-Forbidden"); got != "false" {
			t.Errorf("the upstream got a Content-Type trailer")
		}
	}
	if n := up.opened.Load(); n != 1 {
		t.Errorf("%d connections for 2 chunked exchanges, want 1", n)
	}
}

// captureUpstream answers every request with 200 "ok" and sends the raw
// head of each on heads.
func captureUpstream(t *testing.T, heads chan<- string) *rawUpstream {
	return newRawUpstream(t, "tcp", func(_ int64, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			var head strings.Builder
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				head.WriteString(line)
				if line == "\r\n" {
					break
				}
			}
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head.String())))
			if err != nil {
				heads <- "unparsable: " + err.Error()
				return
			}
			r.Body = http.NoBody
			// Read the content as framed, with net/http's own readers.
			full := io.MultiReader(strings.NewReader(head.String()), br)
			req, err := http.ReadRequest(bufio.NewReaderSize(full, 1))
			if err != nil {
				heads <- "unparsable: " + err.Error()
				return
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				heads <- "bad content: " + err.Error()
				return
			}
			heads <- head.String()
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
}

func TestH1ClientRequestFraming(t *testing.T) {
	heads := make(chan string, 10)
	up := captureUpstream(t, heads)
	c := testClient(up.addr(), defaultTestOptions)
	defer c.closeIdle()
	cases := []struct {
		name        string
		req         *outRequest
		want, wantN []string // lines the head must have, and must not
	}{
		{"GET without content", getRequest("/"), []string{"GET / HTTP/1.1", "Host: up.test"},
			[]string{"Content-Length", "Transfer-Encoding", "Connection"}},
		{"POST without content", &outRequest{Method: "POST", Target: "/p", Host: "h", ContentLength: 0},
			[]string{"Content-Length: 0"}, []string{"Transfer-Encoding"}},
		{"PUT with nil body", &outRequest{Method: "PUT", Target: "/p", Host: "h", ContentLength: -1},
			[]string{"Content-Length: 0"}, []string{"Transfer-Encoding"}},
		{"known length", &outRequest{Method: "POST", Target: "/p?q=1", Host: "h", Body: strings.NewReader("hello"), ContentLength: 5},
			[]string{"POST /p?q=1 HTTP/1.1", "Content-Length: 5"}, []string{"Transfer-Encoding"}},
		{"unknown length", &outRequest{Method: "POST", Target: "/p", Host: "h", Body: strings.NewReader("hello"), ContentLength: -1},
			[]string{"Transfer-Encoding: chunked"}, []string{"Content-Length"}},
		{"GET of unknown length, empty", &outRequest{Method: "GET", Target: "/g", Host: "h", Body: strings.NewReader(""), ContentLength: -1},
			[]string{"GET /g HTTP/1.1"}, []string{"Content-Length", "Transfer-Encoding"}},
		{"GET of unknown length with content", &outRequest{Method: "GET", Target: "/g", Host: "h", Body: strings.NewReader("abc"), ContentLength: -1},
			[]string{"Transfer-Encoding: chunked"}, []string{"Content-Length"}},
		{"POST of unknown length, empty", &outRequest{Method: "POST", Target: "/p", Host: "h", Body: strings.NewReader(""), ContentLength: -1},
			[]string{"Transfer-Encoding: chunked"}, []string{"Content-Length"}},
		{"upgrade", &outRequest{Method: "GET", Target: "/ws", Host: "h", Upgrade: "websocket", Header: headerOf("Upgrade", "websocket", "Sec-WebSocket-Version", "13")},
			[]string{"Connection: upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13"}, []string{"Content-Length"}},
	}
	for _, tc := range cases {
		res, err := do(t, c, tc.req)
		if err != nil || res.body != "ok" {
			t.Fatalf("%s: %v %q", tc.name, err, res.body)
		}
		head := <-heads
		lines := strings.Split(head, "\r\n")
		for _, w := range tc.want {
			if !containsLine(lines, w) {
				t.Errorf("%s: head %q lacks %q", tc.name, head, w)
			}
		}
		for _, w := range tc.wantN {
			if strings.Contains(head, w) {
				t.Errorf("%s: head %q has %q", tc.name, head, w)
			}
		}
		if strings.Count(head, "Upgrade:") > 1 {
			t.Errorf("%s: Upgrade written twice: %q", tc.name, head)
		}
	}
}

func headerOf(kv ...string) *message.Header {
	h := new(message.Header)
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func TestH1ClientRefusesUnsafeRequestsBeforeWriting(t *testing.T) {
	heads := make(chan string, 10)
	up := captureUpstream(t, heads)
	c := testClient(up.addr(), defaultTestOptions)
	defer c.closeIdle()
	cases := []struct {
		name string
		req  *outRequest
	}{
		{"CR LF in a value", &outRequest{Method: "GET", Target: "/", Host: "h", Header: headerOf("X-A", "1\r\nContent-Length: 5")}},
		{"LF in a value", &outRequest{Method: "GET", Target: "/", Host: "h", Header: headerOf("X-A", "1\nX: y")}},
		{"NUL in a value", &outRequest{Method: "GET", Target: "/", Host: "h", Header: headerOf("X-A", "a\x00b")}},
		{"space in a name", &outRequest{Method: "GET", Target: "/", Host: "h", Header: headerOf("X A", "1")}},
		{"colon in a name", &outRequest{Method: "GET", Target: "/", Host: "h", Header: headerOf("X:A", "1")}},
		{"empty name", &outRequest{Method: "GET", Target: "/", Host: "h", Header: headerOf("", "1")}},
		{"Content-Length field", &outRequest{Method: "POST", Target: "/", Host: "h", Body: strings.NewReader("x"), ContentLength: -1, Header: headerOf("Content-Length", "1")}},
		{"Transfer-Encoding field", &outRequest{Method: "POST", Target: "/", Host: "h", Body: strings.NewReader("x"), ContentLength: 1, Header: headerOf("transfer-encoding", "chunked")}},
		{"Host field", &outRequest{Method: "GET", Target: "/", Host: "h", Header: headerOf("Host", "other")}},
		{"Connection field", &outRequest{Method: "GET", Target: "/", Host: "h", Header: headerOf("Connection", "close")}},
		{"space in the target", &outRequest{Method: "GET", Target: "/a b", Host: "h"}},
		{"CRLF in the target", &outRequest{Method: "GET", Target: "/\r\nX: y", Host: "h"}},
		{"CRLF in Host", &outRequest{Method: "GET", Target: "/", Host: "h\r\nX: y"}},
		{"bad method", &outRequest{Method: "GE T", Target: "/", Host: "h"}},
		{"CRLF in Upgrade", &outRequest{Method: "GET", Target: "/", Host: "h", Upgrade: "ws\r\nX: y"}},
		{"length without body", &outRequest{Method: "POST", Target: "/", Host: "h", ContentLength: 3}},
	}
	for _, tc := range cases {
		_, err := do(t, c, tc.req)
		if !errors.Is(err, errUnsafeRequest) {
			t.Errorf("%s: err %v, want errUnsafeRequest", tc.name, err)
		}
	}
	if n := up.accepts.Load(); n != 0 {
		t.Errorf("refused requests opened %d connections, want 0", n)
	}
	// A trailer field that cannot be written safely fails the request
	// before the end of the body is written.
	tr := headerOf("X-T", "a\r\nb")
	req := &outRequest{Method: "POST", Target: "/", Host: "h", Body: strings.NewReader("x"), ContentLength: -1, Trailer: tr}
	if _, err := do(t, c, req); !errors.Is(err, errUnsafeRequest) {
		t.Errorf("bad trailer: err %v, want errUnsafeRequest", err)
	}
	select {
	case h := <-heads:
		if !strings.HasPrefix(h, "bad content: ") {
			t.Errorf("a request with a bad trailer reached the upstream whole: %q", h)
		}
	case <-time.After(safetyNet):
		t.Fatal("the upstream never saw the request with the bad trailer end")
	}
}

func TestH1ClientInterimResponses(t *testing.T) {
	up := newRawUpstream(t, "tcp", func(_ int64, c net.Conn) {
		br := bufio.NewReader(c)
		if _, _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"+
			"HTTP/1.1 102 Processing\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
		br.ReadByte()
	})
	c := testClient(up.addr(), defaultTestOptions)
	defer c.closeIdle()
	var got []string
	req := getRequest("/")
	req.Interim = func(status int, h *message.Header) {
		got = append(got, fmt.Sprintf("%d %s", status, h.Get("Link")))
	}
	res, err := do(t, c, req)
	if err != nil || res.status != 200 || res.body != "done" {
		t.Fatalf("%v %d %q", err, res.status, res.body)
	}
	if want := []string{"103 </s.css>; rel=preload", "102 "}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("interim responses %q, want %q", got, want)
	}
	if res.header.Has("Link") {
		t.Errorf("the 103's fields leaked into the final response: %v", res.header.Fields())
	}
}

func TestH1ClientExpectContinue(t *testing.T) {
	t.Run("100 then the body", func(t *testing.T) {
		up := newRawUpstream(t, "tcp", func(_ int64, c net.Conn) {
			br := bufio.NewReader(c)
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			br.ReadByte()
		})
		c := testClient(up.addr(), defaultTestOptions)
		defer c.closeIdle()
		var interims []int
		req := &outRequest{Method: "PUT", Target: "/", Host: "h", Header: headerOf("Expect", "100-continue"),
			Body: strings.NewReader("payload"), ContentLength: 7,
			Interim: func(s int, _ *message.Header) { interims = append(interims, s) }}
		res, err := do(t, c, req)
		if err != nil || res.body != "payload" || fmt.Sprint(interims) != "[100]" {
			t.Fatalf("%v %q interims %v", err, res.body, interims)
		}
	})
	t.Run("final answer instead", func(t *testing.T) {
		got := make(chan int, 1)
		up := newRawUpstream(t, "tcp", func(_ int64, c net.Conn) {
			br := bufio.NewReader(c)
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n")
			rest, _ := io.ReadAll(br) // until the client closes
			got <- len(rest)
		})
		c := testClient(up.addr(), defaultTestOptions)
		defer c.closeIdle()
		req := &outRequest{Method: "PUT", Target: "/", Host: "h", Header: headerOf("Expect", "100-continue"),
			Body: strings.NewReader("payload"), ContentLength: 7}
		res, err := do(t, c, req)
		if err != nil || res.status != 417 {
			t.Fatalf("%v %d", err, res.status)
		}
		select {
		case n := <-got:
			if n != 0 {
				t.Errorf("the client sent %d body bytes after a final answer to Expect", n)
			}
		case <-time.After(safetyNet):
			t.Fatal("the client kept the connection whose body it never sent")
		}
	})
}

func TestH1ClientUpgradeHandsOverTheConnection(t *testing.T) {
	checkNoLeaks(t)
	sawHead := make(chan string, 1)
	up := newRawUpstream(t, "tcp", func(_ int64, c net.Conn) {
		br := bufio.NewReader(c)
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		sawHead <- r.Header.Get("Connection") + "|" + r.Header.Get("Upgrade")
		// The 101 and the first bytes of the new protocol in one write.
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nHELLO")
		io.Copy(c, br) // echo, until the client's end of stream
		io.WriteString(c, "BYE")
	})
	c := testClient(up.addr(), defaultTestOptions)
	defer c.closeIdle()
	req := &outRequest{Method: "GET", Target: "/ws", Host: "h", Upgrade: "websocket", Header: new(message.Header)}
	resp, err := c.roundTrip(context.Background(), req)
	if err != nil || resp.Status != 101 || resp.Conn == nil || resp.Body != nil {
		t.Fatalf("%v %+v", err, resp)
	}
	if h := <-sawHead; h != "upgrade|websocket" {
		t.Errorf("the upstream saw Connection|Upgrade %q", h)
	}
	conn := resp.Conn
	defer conn.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(conn, buf[:2]); err != nil || string(buf[:2]) != "HE" {
		t.Fatalf("first bytes %q, %v; want HE, read with the head", buf[:2], err)
	}
	io.WriteString(conn, "ping")
	// The end of stream passes to the upstream (a tunnel's half-close),
	// and the rest reads through WriteTo, as io.Copy in a tunnel does.
	cw, ok := conn.(interface{ CloseWrite() error })
	if !ok {
		t.Fatalf("the upgraded connection %T has no CloseWrite", conn)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var rest bytes.Buffer
	if _, err := io.Copy(&rest, conn); err != nil || rest.String() != "LLOpingBYE" {
		t.Fatalf("rest %q, %v; want LLOpingBYE", rest.String(), err)
	}
	if n := c.idleCount(); n != 0 {
		t.Errorf("an upgraded connection is pooled")
	}
}

func TestH1ClientUpstreamClosingIdleAfterOneSecondNeverFails(t *testing.T) {
	// The Traefik "502 EOF" class: an upstream closes idle keep-alive
	// connections after 1 s. Each request here follows the close of the
	// connection the previous one left in the pool (the upstream's own
	// close event), at once or a little later: the dead connection must
	// be found before any byte is written to it, every time.
	up := newHTTPUpstream(t, "tcp", time.Second, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	c := testClient(up.ln.Addr().String(), defaultTestOptions)
	defer c.closeIdle()
	const rounds = 6
	for i := range rounds {
		res, err := do(t, c, getRequest("/"))
		if err != nil || res.body != "ok" {
			t.Fatalf("round %d: %v %q", i, err, res.body)
		}
		up.waitClosed(t)
		time.Sleep(time.Duration(i%3) * 5 * time.Millisecond) // at once, 5 ms, 10 ms after the close
	}
	if n := up.opened.Load(); n != rounds {
		t.Errorf("%d connections for %d rounds, want one per round", n, rounds)
	}
}

func TestH1ClientDetectsPooledConnectionClosedByUpstream(t *testing.T) {
	closed := make(chan struct{}, 10)
	up := newRawUpstream(t, "tcp", func(_ int64, c net.Conn) {
		br := bufio.NewReader(c)
		if _, _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		c.Close() // with no "Connection: close": the client pooled it
		closed <- struct{}{}
	})
	c := testClient(up.addr(), defaultTestOptions)
	defer c.closeIdle()
	for i := range 3 {
		res, err := do(t, c, getRequest("/"))
		if err != nil || res.body != "ok" {
			t.Fatalf("request %d: %v %q", i, err, res.body)
		}
		<-closed
		if n := c.idleCount(); n != 1 {
			t.Fatalf("pooled %d connections, want 1", n)
		}
		if conn := c.getIdle(); conn != nil {
			t.Fatalf("getIdle returned a connection the upstream had closed")
		}
	}
}

func TestH1ClientReusedConnectionClosedAfterWrite(t *testing.T) {
	// The race the pool check cannot see: the upstream closes after the
	// request went out. The error says so, and is not errNotSent.
	up := newRawUpstream(t, "tcp", func(n int64, c net.Conn) {
		br := bufio.NewReader(c)
		if _, _, err := readRequest(br); err != nil {
			return
		}
		if n > 1 {
			return // a new connection: its first request is never answered
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		readRequest(br) // the second request, read and never answered
	})
	c := testClient(up.addr(), defaultTestOptions)
	defer c.closeIdle()
	if _, err := do(t, c, getRequest("/1")); err != nil {
		t.Fatal(err)
	}
	_, err := do(t, c, getRequest("/2"))
	if !errors.Is(err, errReusedConnClosed) || errors.Is(err, errNotSent) {
		t.Errorf("err %v, want errReusedConnClosed and not errNotSent", err)
	}
	// On a new connection the same close is a plain failure.
	_, err = do(t, c, getRequest("/3"))
	if err == nil || errors.Is(err, errReusedConnClosed) || errors.Is(err, errNotSent) {
		t.Errorf("fresh connection closed without answer: err %v", err)
	}
}

func TestH1ClientHonoursKeepAliveTimeout(t *testing.T) {
	checkNoLeaks(t)
	for _, tc := range []struct {
		name      string
		field     string
		opts      h1ClientOptions
		pooled    bool
		minIdle   time.Duration
		maxExpiry time.Duration
	}{
		{"upstream timeout=2 gives 1 s", "Keep-Alive: timeout=2\r\n", defaultTestOptions, true, time.Second, time.Second},
		{"upstream timeout=1 is not pooled", "Keep-Alive: timeout=1, max=100\r\n", defaultTestOptions, false, 0, 0},
		{"own timeout shorter", "Keep-Alive: timeout=30\r\n", h1ClientOptions{keepAlive: 4, keepAliveTimeout: 300 * time.Millisecond}, true, 300 * time.Millisecond, 300 * time.Millisecond},
		{"Connection: close", "Connection: close\r\n", defaultTestOptions, false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gone := make(chan time.Time, 1)
			up := newRawUpstream(t, "tcp", func(_ int64, c net.Conn) {
				br := bufio.NewReader(c)
				if _, _, err := readRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\n"+tc.field+"Content-Length: 2\r\n\r\nok")
				br.ReadByte()
				gone <- time.Now()
			})
			c := testClient(up.addr(), tc.opts)
			defer c.closeIdle()
			if _, err := do(t, c, getRequest("/")); err != nil {
				t.Fatal(err)
			}
			pooledAt := time.Now()
			if got := c.idleCount(); got != map[bool]int{true: 1, false: 0}[tc.pooled] {
				t.Fatalf("pooled %d connections, want pooled=%v", got, tc.pooled)
			}
			if tc.pooled {
				c.mu.Lock()
				expiry := c.idle[0].expires.Sub(pooledAt)
				c.mu.Unlock()
				if expiry > tc.maxExpiry {
					t.Errorf("the pooled connection expires in %v, want at most %v", expiry, tc.maxExpiry)
				}
			}
			select {
			case at := <-gone:
				if idle := at.Sub(pooledAt); tc.pooled && idle < tc.minIdle-50*time.Millisecond {
					t.Errorf("closed after %v idle, before %v", idle, tc.minIdle)
				}
			case <-time.After(safetyNet):
				t.Fatal("the idle connection was never closed")
			}
			if n := c.idleCount(); n != 0 {
				t.Errorf("%d connections still pooled after the sweep", n)
			}
		})
	}
}

func TestH1ClientPoolKeepsAtMostKeepAlive(t *testing.T) {
	up := newHTTPUpstream(t, "tcp", time.Hour, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	c := testClient(up.ln.Addr().String(), h1ClientOptions{keepAlive: 2, keepAliveTimeout: time.Hour})
	defer c.closeIdle()
	var resps []*inResponse
	for range 4 { // four at once: four connections
		resp, err := c.roundTrip(context.Background(), getRequest("/"))
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, resp)
	}
	for _, resp := range resps {
		io.ReadAll(resp.Body)
		resp.Body.Close()
		c.recycle(resp)
	}
	if n := c.idleCount(); n != 2 {
		t.Errorf("pooled %d, want keepAlive = 2", n)
	}
	for range 2 {
		up.waitClosed(t)
	}
	c.closeIdle()
	for range 2 {
		up.waitClosed(t)
	}
}

func TestH1ClientTimeouts(t *testing.T) {
	checkNoLeaks(t)
	release := make(chan struct{})
	got := make(chan struct{}, 10)
	up := newRawUpstream(t, "tcp", func(_ int64, c net.Conn) {
		br := bufio.NewReader(c)
		r, _, err := readRequest(br)
		if err != nil {
			return
		}
		got <- struct{}{}
		if r.URL.Path == "/body" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
		}
		<-release
	})
	t.Cleanup(func() { close(release) }) // before the upstream's own cleanup waits for its goroutines
	t.Run("response header timeout", func(t *testing.T) {
		c := testClient(up.addr(), h1ClientOptions{responseHeaderTimeout: 100 * time.Millisecond})
		_, err := c.roundTrip(context.Background(), getRequest("/head"))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("err %v, want os.ErrDeadlineExceeded", err)
		}
	})
	t.Run("read timeout", func(t *testing.T) {
		c := testClient(up.addr(), h1ClientOptions{readTimeout: 100 * time.Millisecond})
		resp, err := c.roundTrip(context.Background(), getRequest("/body"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if string(b) != "half" || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read %q, %v; want half and os.ErrDeadlineExceeded", b, err)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		for len(got) > 0 {
			<-got
		}
		c := testClient(up.addr(), defaultTestOptions)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-got // the upstream has the request
			cancel()
		}()
		_, err := c.roundTrip(ctx, getRequest("/head"))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		c := testClient(up.addr(), defaultTestOptions)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := c.roundTrip(ctx, getRequest("/head"))
		if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v, want a deadline error", err)
		}
	})
}

func TestH1ClientDialFailureIsNotSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := testClient(addr, defaultTestOptions)
	if _, err := c.roundTrip(context.Background(), getRequest("/")); !errors.Is(err, errNotSent) {
		t.Errorf("refused connection: err %v, want errNotSent", err)
	}
}

func TestH1ClientCloseBeforeEOFClosesTheConnection(t *testing.T) {
	up := newHTTPUpstream(t, "tcp", time.Hour, func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), 100000))
	})
	c := testClient(up.ln.Addr().String(), defaultTestOptions)
	defer c.closeIdle()
	resp, err := c.roundTrip(context.Background(), getRequest("/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 1)); !errors.Is(err, errBodyClosed) {
		t.Errorf("read after Close: %v", err)
	}
	c.recycle(resp)
	if n := c.idleCount(); n != 0 {
		t.Errorf("a connection closed mid-body was pooled")
	}
	up.waitClosed(t)
}

// tlsUpstream serves h over TLS, offering protos by ALPN, and reports
// its connections' events; it returns the client config that trusts it.
func tlsUpstream(t *testing.T, idle time.Duration, protos []string, h http.HandlerFunc) (*httpUpstream, *tls.Config) {
	t.Helper()
	up := &httpUpstream{closed: make(chan net.Conn, 1000)}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.IdleTimeout = idle
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			up.opened.Add(1)
		case http.StateClosed:
			up.closed <- c
		}
	}
	srv.EnableHTTP2 = slices.Contains(protos, "h2")
	srv.StartTLS()
	t.Cleanup(srv.Close)
	up.ln = srv.Listener
	conf := &tls.Config{RootCAs: x509.NewCertPool(), NextProtos: protos, ServerName: "example.com"}
	conf.RootCAs.AddCert(srv.Certificate())
	return up, conf
}

func TestH1ClientOverTLS(t *testing.T) {
	up, conf := tlsUpstream(t, time.Second, []string{"http/1.1"}, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	})
	c := newH1Client(h1DialTLS(up.ln.Addr().String(), 5*time.Second, conf), defaultTestOptions)
	defer c.closeIdle()
	for i := range 3 {
		res, err := do(t, c, getRequest("/"))
		if err != nil || res.body != "HTTP/1.1" {
			t.Fatalf("request %d: %v %q", i, err, res.body)
		}
	}
	if n := up.opened.Load(); n != 1 {
		t.Errorf("3 requests over TLS opened %d connections, want 1", n)
	}
	// The upstream closes the idle connection (close_notify, then FIN):
	// the pool check finds it closed, and the next request succeeds.
	up.waitClosed(t)
	if res, err := do(t, c, getRequest("/")); err != nil || res.body != "HTTP/1.1" {
		t.Fatalf("after the upstream closed the idle connection: %v %q", err, res.body)
	}
	if n := up.opened.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestH1ClientRefusesTLSPeerChoosingH2(t *testing.T) {
	up, conf := tlsUpstream(t, time.Hour, []string{"h2", "http/1.1"}, func(w http.ResponseWriter, r *http.Request) {})
	c := newH1Client(h1DialTLS(up.ln.Addr().String(), 5*time.Second, conf), defaultTestOptions)
	if _, err := c.roundTrip(context.Background(), getRequest("/")); !errors.Is(err, errNotSent) || !strings.Contains(err.Error(), `"h2"`) {
		t.Errorf("err %v, want errNotSent naming h2", err)
	}
}

func TestH1ClientTLSBytesAfterTheBodyPreventReuse(t *testing.T) {
	// Extra bytes in the same TLS record as the end of the body stay in
	// crypto/tls's buffer, where the socket peek cannot see them: the
	// pool check reads them out of the TLS connection instead.
	pki := testpki.New(t, "up.test")
	serverConf := &tls.Config{Certificates: []tls.Certificate{*pki.Certificate()}, NextProtos: []string{"http/1.1"}}
	headRead := make(chan struct{})
	gone := make(chan bool, 1)
	up := newRawUpstream(t, "tcp", func(n int64, raw net.Conn) {
		c := tls.Server(raw, serverConf)
		br := bufio.NewReader(c)
		for {
			if _, _, err := readRequest(br); err != nil {
				return
			}
			if n == 1 {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
				<-headRead
				io.WriteString(c, "helloEXTRA") // one record
				_, err := br.ReadByte()
				gone <- err != nil
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	conf := pki.ClientConfig()
	conf.NextProtos = []string{"http/1.1"}
	c := newH1Client(h1DialTLS(up.addr(), 5*time.Second, conf), defaultTestOptions)
	defer c.closeIdle()
	resp, err := c.roundTrip(context.Background(), getRequest("/"))
	if err != nil {
		t.Fatal(err)
	}
	close(headRead)
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("body %q, %v", buf, err)
	}
	if _, err := resp.Body.Read(buf); err != io.EOF {
		t.Fatalf("after the content: %v, want io.EOF", err)
	}
	resp.Body.Close()
	c.recycle(resp)
	expectClosedAndNotReused(t, c, up, gone)
}

// failingReader returns data, then err.
type failingReader struct {
	data string
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestH1ClientRequestBodyFailuresAreTheClients(t *testing.T) {
	heads := make(chan string, 10)
	up := captureUpstream(t, heads)
	c := testClient(up.addr(), defaultTestOptions)
	defer c.closeIdle()
	clientErr := errors.New("client framing broken")
	cases := []struct {
		name string
		req  *outRequest
	}{
		{"chunked body fails", &outRequest{Method: "POST", Target: "/", Host: "h", Body: &failingReader{"abc", clientErr}, ContentLength: -1}},
		{"sized body fails", &outRequest{Method: "POST", Target: "/", Host: "h", Body: &failingReader{"abc", clientErr}, ContentLength: 10}},
		{"probed body fails", &outRequest{Method: "GET", Target: "/", Host: "h", Body: &failingReader{"", clientErr}, ContentLength: -1}},
		{"body shorter than its length", &outRequest{Method: "POST", Target: "/", Host: "h", Body: strings.NewReader("abc"), ContentLength: 10}},
		{"body longer than its length", &outRequest{Method: "POST", Target: "/", Host: "h", Body: strings.NewReader("abcdef"), ContentLength: 3}},
	}
	for _, tc := range cases {
		_, err := do(t, c, tc.req)
		if !errors.Is(err, errRequestBody) || errors.Is(err, errMalformed) || errors.Is(err, errReusedConnClosed) {
			t.Errorf("%s: err %v, want errRequestBody alone", tc.name, err)
		}
		if errors.Is(err, clientErr) != strings.Contains(tc.name, "fails") {
			t.Errorf("%s: err %v does not carry the client's own error", tc.name, err)
		}
	}
}
