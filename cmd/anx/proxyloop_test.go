package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"
	"github.com/anx-gateway/anx/internal/testlisten"
)

// The tests below run the whole gateway in-process with a route to
// upstreams at http://127.0.0.1:port, which core/proxy serves on h1's
// event loop for requests without content (core/proxy/loop.go): the
// upstreams are raw sockets written byte by byte, and the clients raw
// TCP connections to the plain HTTP port.

// safetyNet bounds every wait of these tests: a hang fails the test
// instead of blocking it, and nothing waits on it otherwise.
const safetyNet = 2 * time.Minute

// rawUpstream is an HTTP/1.1 upstream on loopback whose answers the test
// writes itself: serve runs in a goroutine of its own for each accepted
// connection. Every goroutine and connection ends at the test's cleanup.
type rawUpstream struct {
	url      string
	accepted atomic.Int32  // connections accepted so far
	done     chan struct{} // closed at cleanup: serve stops waiting

	mu     sync.Mutex // guards conns and closed, shared by the accepting goroutine and cleanup
	conns  []net.Conn
	closed bool
}

// rawConn is one connection of a rawUpstream, with the serving
// goroutine's reader of it.
type rawConn struct {
	n    int // its rank among the upstream's connections, from 1
	c    net.Conn
	br   *bufio.Reader
	done <-chan struct{} // closed at cleanup
}

// startRawUpstream listens on a loopback port chosen now and serves each
// connection with serve; it stops, and waits for every goroutine it
// started, at the test's cleanup.
func startRawUpstream(t *testing.T, serve func(rc *rawConn)) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{url: "http://" + ln.Addr().String(), done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // accepts until the listener closes at cleanup
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rc := &rawConn{n: int(u.accepted.Add(1)), c: c, br: bufio.NewReader(c), done: u.done}
			if !u.keep(c) {
				return
			}
			wg.Add(1)
			go func() { // serves the connection until serve returns or cleanup closes it
				defer wg.Done()
				defer c.Close()
				serve(rc)
			}()
		}
	}()
	t.Cleanup(func() {
		close(u.done)
		ln.Close()
		u.mu.Lock()
		u.closed = true
		for _, c := range u.conns {
			c.Close()
		}
		u.mu.Unlock()
		wg.Wait()
	})
	return u
}

// keep records c for cleanup; it closes c and reports false when cleanup
// already ran.
func (u *rawUpstream) keep(c net.Conn) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		c.Close()
		return false
	}
	u.conns = append(u.conns, c)
	return true
}

// request reads the next request head (the gateway sends no content on
// this path).
func (rc *rawConn) request() (*http.Request, error) {
	return http.ReadRequest(rc.br)
}

// wait waits for ch, and reports false when the test ended first.
func (rc *rawConn) wait(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-rc.done:
		return false
	}
}

// writeThenAfter writes first, waits for gate, then writes then; it
// reports false when a write failed or the test ended first.
func (rc *rawConn) writeThenAfter(first string, gate <-chan struct{}, then string) bool {
	if _, err := io.WriteString(rc.c, first); err != nil || !rc.wait(gate) {
		return false
	}
	_, err := io.WriteString(rc.c, then)
	return err == nil
}

// closedByGateway waits for the gateway's next move on the connection:
// true when it closes it, false when it sends more bytes (it reused a
// connection that it should have closed) or nothing comes.
func (rc *rawConn) closedByGateway() bool {
	rc.c.SetReadDeadline(time.Now().Add(safetyNet))
	_, err := rc.br.Peek(1)
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// answerPaths answers each request on rc with 200 and "path TARGET" as
// the body, until the connection closes.
func answerPaths(rc *rawConn) {
	for {
		req, err := rc.request()
		if err != nil {
			return
		}
		if _, err := rc.c.Write(pathAnswer(req.RequestURI)); err != nil {
			return
		}
	}
}

// pathAnswer is a 200 response whose body names target.
func pathAnswer(target string) []byte {
	body := "path " + target
	return fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// startProxyGateway runs the gateway with one site, localhost, whose
// route "/" proxies to upstreams with route's other options.
func startProxyGateway(t *testing.T, route config.Route, upstreams ...string) *gateway {
	t.Helper()
	return startGateway(t, proxySiteConfig(route, upstreams...))
}

// proxySiteConfig is the configuration of startProxyGateway.
func proxySiteConfig(route config.Route, upstreams ...string) config.Config {
	route.Path = "/"
	for _, u := range upstreams {
		route.Proxy = append(route.Proxy, config.Upstream{URL: u})
	}
	cfg := config.Default()
	cfg.Sites = []config.Site{{Hosts: []string{"localhost"}, Routes: []config.Route{route}}}
	return cfg
}

// pooledForLong is a route whose idle upstream connections stay pooled
// past the safety net: an upstream connection seen closed was closed by
// the gateway's decision, not by the pool's idle timer.
func pooledForLong() config.Route {
	return config.Route{KeepAliveTimeout: config.Duration{Duration: 2 * safetyNet}}
}

// rawClient is a raw TCP connection to the gateway's plain HTTP port.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// dialGateway connects to the gateway's plain HTTP port; the connection
// closes at the test's cleanup.
func dialGateway(t *testing.T, gw *gateway) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", gw.httpAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(safetyNet))
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

// send writes raw as it is.
func (cl *rawClient) send(raw string) {
	cl.t.Helper()
	if _, err := io.WriteString(cl.c, raw); err != nil {
		cl.t.Fatal(err)
	}
}

// request is an HTTP/1.1 request head without content for target.
func request(method, target string) string {
	return method + " " + target + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: proxyloop-test\r\n\r\n"
}

// response reads one response to a request of method, and its whole
// body.
func (cl *rawClient) response(method string) (*http.Response, string) {
	cl.t.Helper()
	resp, err := http.ReadResponse(cl.br, &http.Request{Method: method})
	if err != nil {
		cl.t.Fatalf("reading the response to a %s: %v", method, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		cl.t.Fatalf("reading the body of the response to a %s: %v", method, err)
	}
	return resp, string(body)
}

// get sends a GET for target and returns its response and body.
func (cl *rawClient) get(target string) (*http.Response, string) {
	cl.t.Helper()
	cl.send(request("GET", target))
	return cl.response("GET")
}

// wantPathAnswer fails the test unless resp and body are answerPaths'
// answer for target.
func wantPathAnswer(t *testing.T, resp *http.Response, body, target string) {
	t.Helper()
	if resp.StatusCode != 200 || body != "path "+target {
		t.Fatalf("GET %s: %d %q, want 200 %q", target, resp.StatusCode, body, "path "+target)
	}
}

// receive waits for a value of ch, failing the test at the safety net.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(safetyNet):
		t.Fatalf("gave up waiting for %s", what)
		panic("unreachable")
	}
}

// Three GETs in one write of the client reach the upstream one after the
// other, and their answers come back in the order asked, each with the
// body the upstream sent for its path.
func TestProxyLoopPipelinedRequestsKeepTheirOrder(t *testing.T) {
	seen := make(chan string, 10) // the targets the upstream received, in order
	up := startRawUpstream(t, func(rc *rawConn) {
		for {
			req, err := rc.request()
			if err != nil {
				return
			}
			seen <- req.RequestURI
			if _, err := rc.c.Write(pathAnswer(req.RequestURI)); err != nil {
				return
			}
		}
	})
	gw := startProxyGateway(t, config.Route{}, up.url)
	cl := dialGateway(t, gw)
	targets := []string{"/one", "/two?x=2", "/three"}
	cl.send(request("GET", targets[0]) + request("GET", targets[1]) + request("GET", targets[2]))
	for _, target := range targets {
		resp, body := cl.response("GET")
		wantPathAnswer(t, resp, body, target)
	}
	for i, target := range targets {
		if got := receive(t, seen, "the upstream's requests"); got != target {
			t.Errorf("the upstream's request %d was for %q, want %q", i+1, got, target)
		}
	}
}

// A client that closes its connection in the middle of a large proxied
// response makes the gateway close the upstream connection, whose
// response is not read to its end, rather than pool it; the next client
// is answered over a new one.
func TestProxyLoopClientGoneMidResponseClosesUpstream(t *testing.T) {
	const size = 8 << 20
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	upstreamClosed := make(chan bool, 1) // whether the gateway closed the first connection, rather than reusing it
	up := startRawUpstream(t, func(rc *rawConn) {
		if rc.n > 1 {
			answerPaths(rc)
			return
		}
		if _, err := rc.request(); err != nil {
			return
		}
		// The write fails, or ends in the socket buffers, when the gateway closes.
		_, _ = fmt.Fprintf(rc.c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		_, _ = rc.c.Write(body)
		upstreamClosed <- rc.closedByGateway()
	})
	gw := startProxyGateway(t, pooledForLong(), up.url)

	first := dialGateway(t, gw)
	first.send(request("GET", "/big"))
	resp, err := http.ReadResponse(first.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("GET /big: %d with Content-Length %d, want 200 and %d", resp.StatusCode, resp.ContentLength, size)
	}
	part := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, part); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(part, body[:len(part)]) {
		t.Fatal("the first MiB of the body differs from the upstream's")
	}
	first.c.Close()
	if !receive(t, upstreamClosed, "the gateway to close the upstream connection") {
		t.Fatal("the upstream connection whose response the client abandoned was not closed (it was reused, or left open)")
	}

	resp, got := dialGateway(t, gw).get("/after")
	wantPathAnswer(t, resp, got, "/after")
	if n := up.accepted.Load(); n != 2 {
		t.Errorf("the upstream accepted %d connections, want 2 (the abandoned one, then a new one)", n)
	}
}

// A response followed at once, in the same write, by bytes the upstream
// had no reason to send is not passed on: the client gets a short 502
// that names no address, the connection to the upstream closes, and the
// next request goes over a new one.
func TestProxyLoopBytesAfterResponseInSameWriteGive502(t *testing.T) {
	upstreamClosed := make(chan bool, 1)
	up := startRawUpstream(t, func(rc *rawConn) {
		if rc.n > 1 {
			answerPaths(rc)
			return
		}
		if _, err := rc.request(); err != nil {
			return
		}
		// One small write on loopback: the gateway reads it whole, the
		// head and the bytes past the body together.
		if _, err := io.WriteString(rc.c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n\r\n"); err != nil {
			return
		}
		upstreamClosed <- rc.closedByGateway()
	})
	// The failure marks the upstream down for a nanosecond only, so that
	// it serves the next request.
	route := pooledForLong()
	route.FailDuration = config.Duration{Duration: time.Nanosecond}
	gw := startProxyGateway(t, route, up.url)
	cl := dialGateway(t, gw)
	resp, body := cl.get("/extra")
	if resp.StatusCode != 502 {
		t.Fatalf("GET /extra: %d %q, want 502", resp.StatusCode, body)
	}
	addr := strings.TrimPrefix(up.url, "http://")
	_, port, _ := net.SplitHostPort(addr)
	if len(body) > 64 || strings.Contains(body, "127.0.0.1") || strings.Contains(body, port) || strings.Contains(body, "hello") {
		t.Errorf("the 502's body is %q: want a short text naming no address and passing nothing of the upstream's", body)
	}
	if !receive(t, upstreamClosed, "the gateway to close the upstream connection") {
		t.Fatal("the upstream connection that sent bytes after its response was not closed")
	}
	resp, body = cl.get("/next")
	wantPathAnswer(t, resp, body, "/next")
	if n := up.accepted.Load(); n != 2 {
		t.Errorf("the upstream accepted %d connections, want 2", n)
	}
}

// Bytes that an upstream sends after a whole response, in a later write,
// leave the client's response intact, and the connection they came on is
// not used again.
func TestProxyLoopBytesAfterResponseInLaterWriteSpoilConnection(t *testing.T) {
	clientHasResponse := make(chan struct{})
	extraSent := make(chan struct{})
	upstreamClosed := make(chan bool, 1)
	up := startRawUpstream(t, func(rc *rawConn) {
		if rc.n > 1 {
			answerPaths(rc)
			return
		}
		req, err := rc.request()
		if err != nil {
			return
		}
		// On loopback the bytes are in the gateway's socket when Write returns.
		if !rc.writeThenAfter(string(pathAnswer(req.RequestURI)), clientHasResponse, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad") {
			return
		}
		close(extraSent)
		upstreamClosed <- rc.closedByGateway()
	})
	gw := startProxyGateway(t, pooledForLong(), up.url)
	cl := dialGateway(t, gw)
	resp, body := cl.get("/first")
	wantPathAnswer(t, resp, body, "/first")
	close(clientHasResponse)
	receive(t, extraSent, "the upstream's extra bytes")

	resp, body = cl.get("/second")
	wantPathAnswer(t, resp, body, "/second")
	if n := up.accepted.Load(); n != 2 {
		t.Errorf("the upstream accepted %d connections, want 2: the one that sent extra bytes must not carry the next request", n)
	}
	if !receive(t, upstreamClosed, "the gateway to close the spoiled connection") {
		t.Error("the connection that sent bytes after its response got another request")
	}
}

// Bytes that come right after a response's body, in the same write,
// once the head went to the client, leave the client's response intact,
// and the connection they came on is not used again.
func TestProxyLoopBytesAfterBodySpoilConnection(t *testing.T) {
	clientHasHead := make(chan struct{})
	upstreamClosed := make(chan bool, 1)
	up := startRawUpstream(t, func(rc *rawConn) {
		if rc.n > 1 {
			answerPaths(rc)
			return
		}
		if _, err := rc.request(); err != nil {
			return
		}
		if !rc.writeThenAfter("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", clientHasHead, "helloHTTP/1.1 200 OK\r\n\r\n") {
			return
		}
		upstreamClosed <- rc.closedByGateway()
	})
	gw := startProxyGateway(t, pooledForLong(), up.url)
	cl := dialGateway(t, gw)
	cl.send(request("GET", "/first"))
	resp, err := http.ReadResponse(cl.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	close(clientHasHead)
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("GET /first: %d %q (%v), want 200 hello", resp.StatusCode, body, err)
	}
	resp, got := cl.get("/second")
	wantPathAnswer(t, resp, got, "/second")
	if n := up.accepted.Load(); n != 2 {
		t.Errorf("the upstream accepted %d connections, want 2: the one that sent extra bytes must not carry the next request", n)
	}
	if !receive(t, upstreamClosed, "the gateway to close the spoiled connection") {
		t.Error("the connection that sent bytes after its response got another request")
	}
}

// A chunked response with trailers reaches an HTTP/1.1 client chunked,
// with its trailer fields after the last chunk.
func TestProxyLoopChunkedResponseKeepsTrailers(t *testing.T) {
	up := startRawUpstream(t, func(rc *rawConn) {
		if _, err := rc.request(); err != nil {
			return
		}
		_, _ = io.WriteString(rc.c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"+
			"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Checksum: abc123\r\n\r\n")
		answerPaths(rc) // the connection is reusable after the trailers
	})
	gw := startProxyGateway(t, config.Route{}, up.url)
	cl := dialGateway(t, gw)
	var raw bytes.Buffer
	cl.send(request("GET", "/chunked"))
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(cl.br, &raw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(body) != "hello world" {
		t.Fatalf("GET /chunked: %d %q, want 200 %q", resp.StatusCode, body, "hello world")
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("the response's Transfer-Encoding is %q, want chunked; the answer:\n%q", resp.TransferEncoding, raw.Bytes())
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc123" {
		t.Errorf("the trailer X-Checksum is %q, want abc123; the answer:\n%q", got, raw.Bytes())
	}
	if !bytes.HasSuffix(raw.Bytes(), []byte("\r\n0\r\nX-Checksum: abc123\r\n\r\n")) {
		t.Errorf("the answer does not end with the last chunk and the trailer:\n%q", raw.Bytes())
	}
	resp, got := cl.get("/next")
	wantPathAnswer(t, resp, got, "/next")
	if n := up.accepted.Load(); n != 1 {
		t.Errorf("the upstream accepted %d connections, want 1 (reused after the trailers)", n)
	}
}

// A malformed chunk size after the head went to the client aborts the
// client's response: its connection closes without the last chunk, so
// that the response is not taken for a whole one.
func TestProxyLoopMalformedChunkAbortsResponse(t *testing.T) {
	clientHasFirstChunk := make(chan struct{})
	upstreamClosed := make(chan bool, 1)
	up := startRawUpstream(t, func(rc *rawConn) {
		if _, err := rc.request(); err != nil {
			return
		}
		if !rc.writeThenAfter("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", clientHasFirstChunk, "zz\r\nmore\r\n0\r\n\r\n") {
			return
		}
		upstreamClosed <- rc.closedByGateway()
	})
	gw := startProxyGateway(t, pooledForLong(), up.url)
	cl := dialGateway(t, gw)
	cl.send(request("GET", "/bad"))
	resp, err := http.ReadResponse(cl.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /bad: %d, want the upstream's 200", resp.StatusCode)
	}
	first := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "hello" {
		t.Fatalf("the first chunk: %q (%v), want hello", first, err)
	}
	close(clientHasFirstChunk)
	rest, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("after the malformed chunk the client read %q and %v, want the connection to close without the last chunk (unexpected EOF)", rest, err)
	}
	if len(rest) > 0 {
		t.Errorf("the client got %q after the malformed chunk size", rest)
	}
	if b, err := cl.br.ReadByte(); err == nil {
		t.Errorf("the client connection is still open after the aborted response (it sent %q)", b)
	}
	if !receive(t, upstreamClosed, "the gateway to close the broken upstream connection") {
		t.Error("the upstream connection with the malformed chunk was not closed")
	}
}

// A route with an upstream that refuses connections and a good one
// answers every request: a request sent to the refusing one goes again
// to the good one.
func TestProxyLoopRetriesRefusedUpstream(t *testing.T) {
	refusedURL := "http://" + testlisten.RefusingAddr(t)
	good := startRawUpstream(t, answerPaths)
	// An upstream that failed is down for a nanosecond only, so that the
	// balancer keeps picking the refusing one.
	cfg := proxySiteConfig(config.Route{FailDuration: config.Duration{Duration: time.Nanosecond}}, refusedURL, good.url)
	var log lockedLog
	gw := startGatewayLoggingTo(t, cfg, io.MultiWriter(&log, testLog{t}))
	cl := dialGateway(t, gw)
	for i := range 20 {
		target := fmt.Sprintf("/r%d", i)
		resp, body := cl.get(target)
		wantPathAnswer(t, resp, body, target)
	}
	text := log.String()
	if refusals := strings.Count(text, "connection refused"); refusals == 0 {
		t.Errorf("no attempt went to the refusing upstream; the log:\n%s", text)
	}
	wantDialedByLoop(t, text)
}

// wantDialedByLoop fails the test unless the upstream failures in the
// gateway's log text are netpoll's: the only outside sign that the
// requests were served on the event loop, whose connections netpoll
// dials and times (the blocking path's errors are net's, "dial tcp" and
// "i/o timeout").
func wantDialedByLoop(t *testing.T, text string) {
	t.Helper()
	failed, offLoop := 0, ""
	for line := range strings.Lines(text) {
		if !strings.Contains(line, `msg="proxy: upstream failed"`) {
			continue
		}
		failed++
		if offLoop == "" && !strings.Contains(line, "netpoll: ") {
			offLoop = line
		}
	}
	switch {
	case failed == 0:
		t.Errorf("no upstream failure in the log:\n%s", text)
	case offLoop != "":
		t.Errorf("an upstream failure not seen by an event loop's connection (the request took the blocking path):\n%s", offLoop)
	}
}

// An upstream that accepts the request and never answers gets a 504
// after the route's response header timeout, and the log names the route
// and the upstream.
func TestProxyLoopResponseHeaderTimeoutGives504(t *testing.T) {
	up := startRawUpstream(t, func(rc *rawConn) {
		if _, err := rc.request(); err != nil {
			return
		}
		<-rc.done // never answers
	})
	var log lockedLog
	cfg := proxySiteConfig(config.Route{ResponseHeaderTimeout: config.Duration{Duration: 200 * time.Millisecond}}, up.url)
	gw := startGatewayLoggingTo(t, cfg, io.MultiWriter(&log, testLog{t}))
	resp, body := dialGateway(t, gw).get("/slow")
	if resp.StatusCode != 504 {
		t.Fatalf("GET /slow: %d %q, want 504", resp.StatusCode, body)
	}
	// The failure is logged before the answer is written.
	text := log.String()
	if !strings.Contains(text, `msg="proxy: upstream failed" route="localhost /" upstream=`+up.url) || !strings.Contains(text, "reason=\"timeout") {
		t.Errorf("no log line names the route, the upstream and the timeout:\n%s", text)
	}
	wantDialedByLoop(t, text)
}

// lockedLog keeps what the gateway logs, written from its goroutines.
type lockedLog struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A HEAD goes through with the upstream's Content-Length and no body,
// and the client's connection (and the upstream's) carries the next
// request.
func TestProxyLoopHead(t *testing.T) {
	methods := make(chan string, 10)
	up := startRawUpstream(t, func(rc *rawConn) {
		for {
			req, err := rc.request()
			if err != nil {
				return
			}
			methods <- req.Method
			answer := pathAnswer(req.RequestURI)
			if req.Method == "HEAD" {
				answer = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1234\r\n\r\n")
			}
			if _, err := rc.c.Write(answer); err != nil {
				return
			}
		}
	})
	gw := startProxyGateway(t, config.Route{}, up.url)
	cl := dialGateway(t, gw)
	cl.send(request("HEAD", "/h"))
	resp, body := cl.response("HEAD")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != "1234" || body != "" {
		t.Fatalf("HEAD /h: %d, Content-Length %q, body %q; want 200, the upstream's 1234, no body", resp.StatusCode, resp.Header.Get("Content-Length"), body)
	}
	if m := receive(t, methods, "the upstream's request"); m != "HEAD" {
		t.Errorf("the upstream got a %s, want HEAD", m)
	}
	// A body after the head would be read as the next response's start.
	resp, body = cl.get("/after-head")
	wantPathAnswer(t, resp, body, "/after-head")
	if n := up.accepted.Load(); n != 1 {
		t.Errorf("the upstream accepted %d connections, want 1 (reused after the HEAD)", n)
	}
}

// An upstream that closes keep-alive connections idle for 100 ms: the
// pool never hands one it closed to a request, which it sees closed (or
// dead, by its peek) first. The waits between requests are timers on
// purpose: the idle time is the behaviour under test.
func TestProxyLoopUpstreamClosingIdleConnections(t *testing.T) {
	const upstreamIdle, clientPause, requests = 100 * time.Millisecond, 150 * time.Millisecond, 30
	up := startRawUpstream(t, func(rc *rawConn) {
		for {
			rc.c.SetReadDeadline(time.Now().Add(upstreamIdle))
			req, err := rc.request()
			if err != nil {
				return // idle too long: closes
			}
			if _, err := rc.c.Write(pathAnswer(req.RequestURI)); err != nil {
				return
			}
		}
	})
	gw := startProxyGateway(t, config.Route{}, up.url)
	cl := dialGateway(t, gw)
	for i := range requests {
		if i > 0 {
			time.Sleep(clientPause) // lets the upstream's idle timeout pass: what is tested, not a synchronisation
		}
		target := fmt.Sprintf("/idle%d", i)
		resp, body := cl.get(target)
		wantPathAnswer(t, resp, body, target)
	}
	if n := up.accepted.Load(); n != requests {
		t.Errorf("the upstream accepted %d connections for %d requests each after its idle timeout, want %d", n, requests, requests)
	}
}

// A client that stops reading a 32 MiB response makes the gateway stop
// reading the upstream, whose writes then block, and resume when the
// client reads again: the whole body arrives intact.
func TestProxyLoopSlowClientPausesUpstream(t *testing.T) {
	const size = 32 << 20
	body := make([]byte, size)
	for i := 0; i < size; i += 8 {
		binary.LittleEndian.PutUint64(body[i:], uint64(i)) // every word its offset: any loss or reordering shows
	}
	blockedAt := make(chan int, 1)         // the bytes written when a write of the upstream first blocked
	wroteAll := make(chan struct{})        // closed when the body is all written
	writeFailed := make(chan error, 1)     // why the upstream stopped writing before the end
	const blocked = 500 * time.Millisecond // a write stuck this long is blocked: the gateway stopped reading
	up := startRawUpstream(t, func(rc *rawConn) {
		if _, err := rc.request(); err != nil {
			return
		}
		if _, err := fmt.Fprintf(rc.c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size); err != nil {
			return
		}
		written, reported := 0, false
		for written < size {
			if !reported {
				rc.c.SetWriteDeadline(time.Now().Add(blocked))
			}
			n, err := rc.c.Write(body[written:min(written+64<<10, size)])
			written += n
			switch {
			case err == nil:
			case !reported && errors.Is(err, os.ErrDeadlineExceeded):
				reported = true
				blockedAt <- written
				rc.c.SetWriteDeadline(time.Time{})
			default:
				writeFailed <- err
				return
			}
		}
		close(wroteAll)
	})
	gw := startProxyGateway(t, config.Route{}, up.url)
	cl := dialGateway(t, gw)
	cl.send(request("GET", "/large"))
	resp, err := http.ReadResponse(cl.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("GET /large: %d with Content-Length %d, want 200 and %d", resp.StatusCode, resp.ContentLength, size)
	}
	hash := sha256.New()
	if _, err := io.CopyN(hash, resp.Body, 1<<10); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-blockedAt:
		t.Logf("the upstream's writes blocked after %d of %d bytes, the client having read 1 KiB", n, size)
	case <-wroteAll:
		t.Fatalf("the upstream wrote all %d bytes while the client read 1 KiB: the gateway did not stop reading it", size)
	case err := <-writeFailed:
		t.Fatalf("the upstream's write failed while the client paused: %v", err)
	case <-time.After(safetyNet):
		t.Fatal("the upstream's writes neither blocked nor ended")
	}
	if _, err := io.Copy(hash, resp.Body); err != nil {
		t.Fatalf("reading the rest of the body: %v", err)
	}
	if want := sha256.Sum256(body); !bytes.Equal(hash.Sum(nil), want[:]) {
		t.Error("the body the client got differs from the upstream's")
	}
	select {
	case <-wroteAll:
	case err := <-writeFailed:
		t.Errorf("the upstream's write failed: %v", err)
	case <-time.After(safetyNet):
		t.Error("gave up waiting for the upstream to write the whole body")
	}
}
