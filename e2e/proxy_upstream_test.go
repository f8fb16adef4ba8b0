package e2e

// The test upstream of the proxy tests: a separate process (this test
// binary, started again with upstreamEnv set; see init below), so that a
// failover test can kill it by pid. It listens on loopback, each listener
// on a port of its own:
//
//	http     HTTP/1.1 and h2c (prior knowledge): the paths of upstreamMux
//	https    HTTP/1.1 and h2 over TLS (ALPN), the same paths
//	control  the test's side door: /counts, /health, /hold, /sse-ack (never counted)
//	raw      canned HTTP/1.1 answers written by hand, malformed ones among them
//	grpc     a grpc-go server (TestService, health) over h2c
//	grpcs    the same over TLS h2
//
// It prints its addresses as one JSON line on stdout, then serves until
// killed.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// upstreamEnv, when set in a process's environment, makes this test binary
// an upstream: its value is the JSON of upstreamConfig.
const upstreamEnv = "ANX_E2E_UPSTREAM"

func init() {
	cfg := os.Getenv(upstreamEnv)
	if cfg == "" {
		return
	}
	if err := runUpstream(cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

// upstreamConfig is what an upstream process is told by its parent.
type upstreamConfig struct {
	Name string // answers name themselves with it (X-Upstream, "server" in JSON)
	// HTTPAddr is where the http listener binds ("127.0.0.1:0" when empty):
	// a restarted upstream takes its predecessor's port.
	HTTPAddr string
	// IdleTimeout closes idle keep-alive connections of the http and https
	// listeners after it ("1s"); empty: Go's default (none).
	IdleTimeout string
	// CertFile and KeyFile (PEM) turn on the https and grpcs listeners.
	CertFile, KeyFile string
	// UnixPath, when set, serves the http listener's paths (HTTP/1.1) on
	// a Unix socket there too.
	UnixPath string
	// FailAll makes every request of the http and https listeners get a
	// 500 (counted as usual): a broken application.
	FailAll bool
}

// upstreamAddrs are the listeners of a running upstream (its stdout line).
type upstreamAddrs struct {
	HTTP, HTTPS, Control, Raw, GRPC, GRPCS string
}

// echoReply is what /echo (and every path without a handler of its own)
// answers: the request as the upstream received it.
type echoReply struct {
	Server           string      `json:"server"`
	Method           string      `json:"method"`
	Target           string      `json:"target"`
	Host             string      `json:"host"`
	Proto            string      `json:"proto"`
	Header           http.Header `json:"header"`
	Trailer          http.Header `json:"trailer"`
	ContentLength    int64       `json:"content_length"`
	TransferEncoding []string    `json:"transfer_encoding"`
	Body             string      `json:"body"`
	BodyLen          int64       `json:"body_len"`
	BodySHA256       string      `json:"body_sha256"`
	RemoteAddr       string      `json:"remote_addr"`
}

// upstreamCounts is what /counts of the control listener answers.
type upstreamCounts struct {
	Paths map[string]int64 `json:"paths"` // requests handled per path (http, https, raw)
	Total int64            `json:"total"` // requests handled, all paths
	Conns int64            `json:"conns"` // connections accepted by http, https and raw
	Bytes int64            `json:"bytes"` // bytes read from those connections
	// Heads holds the raw listener's last request head per path, as
	// written on the wire.
	Heads map[string]string `json:"heads"`
	// Waiting is how many /gated requests wait at the closed gate now.
	Waiting int64 `json:"waiting"`
}

// upstream is the state of an upstream process. Its handlers run on the
// net/http, grpc and raw-listener goroutines (each owned by its server,
// ending with the process); every field is safe for them.
type upstream struct {
	name    string                   // set once, read-only
	failAll bool                     // set once, read-only: upstreamConfig.FailAll
	healthy atomic.Bool              // what /health answers; set by control /health
	conns   atomic.Int64             // connections accepted (http, https, raw, unix)
	bytes   atomic.Int64             // bytes read on them
	waiting atomic.Int64             // /gated requests waiting at the gate
	mu      sync.Mutex               // guards paths, acks, heads and gate
	paths   map[string]int64         // requests per path
	acks    map[string]chan struct{} // /sse streams waiting for the client's ack, by id
	heads   map[string]string        // the raw listener's last request head per path
	gate    chan struct{}            // nil: /gated answers at once; else closed to release its waiters
}

// runUpstream opens the listeners of cfgJSON, prints their addresses on out
// and serves until the process is killed.
func runUpstream(cfgJSON string, out io.Writer) error {
	var cfg upstreamConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		return err
	}
	u := &upstream{name: cfg.Name, failAll: cfg.FailAll, paths: map[string]int64{}, acks: map[string]chan struct{}{}, heads: map[string]string{}}
	u.healthy.Store(true)
	var addrs upstreamAddrs
	errs := make(chan error, 6)
	if err := u.serveHTTP(cfg, &addrs, errs); err != nil {
		return err
	}
	if err := u.serveSide(&addrs, errs); err != nil {
		return err
	}
	if cfg.CertFile != "" {
		if err := u.serveTLS(cfg, &addrs, errs); err != nil {
			return err
		}
	}
	line, _ := json.Marshal(addrs)
	if _, err := fmt.Fprintf(out, "%s\n", line); err != nil {
		return err
	}
	return <-errs
}

// serveHTTP opens the http listener (h1 and h2c), and the Unix socket
// listener if cfg asks for one.
func (u *upstream) serveHTTP(cfg upstreamConfig, addrs *upstreamAddrs, errs chan<- error) error {
	addr := cfg.HTTPAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := u.listen(addr)
	if err != nil {
		return err
	}
	addrs.HTTP = ln.Addr().String()
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: u.mux(), Protocols: &protos, IdleTimeout: idle(cfg)}
	go func() { errs <- srv.Serve(ln) }()
	if cfg.UnixPath == "" {
		return nil
	}
	unix, err := net.Listen("unix", cfg.UnixPath)
	if err != nil {
		return err
	}
	go func() { errs <- srv.Serve(countingListener{unix, u}) }()
	return nil
}

// serveSide opens the control, raw and grpc (h2c) listeners.
func (u *upstream) serveSide(addrs *upstreamAddrs, errs chan<- error) error {
	control, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addrs.Control = control.Addr().String()
	go func() { errs <- (&http.Server{Handler: u.controlMux()}).Serve(control) }()
	raw, err := u.listen("127.0.0.1:0")
	if err != nil {
		return err
	}
	addrs.Raw = raw.Addr().String()
	go func() { errs <- u.serveRaw(raw) }()
	g, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addrs.GRPC = g.Addr().String()
	go func() { errs <- u.grpcServer().Serve(g) }()
	return nil
}

// serveTLS opens the https and grpcs listeners with cfg's certificate.
func (u *upstream) serveTLS(cfg upstreamConfig, addrs *upstreamAddrs, errs chan<- error) error {
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return err
	}
	ln, err := u.listen("127.0.0.1:0")
	if err != nil {
		return err
	}
	addrs.HTTPS = ln.Addr().String()
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	srv := &http.Server{Handler: u.mux(), Protocols: &protos, IdleTimeout: idle(cfg),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}}
	go func() { errs <- srv.ServeTLS(ln, "", "") }()
	g, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addrs.GRPCS = g.Addr().String()
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})
	go func() { errs <- u.grpcServer(grpc.Creds(creds)).Serve(g) }()
	return nil
}

// idle returns cfg.IdleTimeout, or 0.
func idle(cfg upstreamConfig) time.Duration {
	d, _ := time.ParseDuration(cfg.IdleTimeout)
	return d
}

// listen is net.Listen whose connections count themselves and their bytes.
func (u *upstream) listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return countingListener{ln, u}, nil
}

// countingListener counts accepted connections and the bytes read on them.
type countingListener struct {
	net.Listener
	u *upstream
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.u.conns.Add(1)
	return countingConn{c, l.u}, nil
}

// countingConn adds what it reads to its upstream's byte count.
type countingConn struct {
	net.Conn
	u *upstream
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.u.bytes.Add(int64(n))
	return n, err
}

// count records one request for path.
func (u *upstream) count(path string) {
	u.mu.Lock()
	u.paths[path]++
	u.mu.Unlock()
}

// mux serves the paths of the http and https listeners; every request is
// counted under its path first. It dispatches on the path itself rather
// than with a ServeMux, which would redirect a path that is not clean
// ("//x", "/a/../b") instead of echoing it as received.
func (u *upstream) mux() http.Handler {
	routes := map[string]http.HandlerFunc{
		"/health": u.health, "/sse": u.sse, "/trailers": u.trailers, "/early-hints": u.earlyHints,
		"/slow": u.slow, "/download": u.download, "/upload": u.upload, "/ws": u.websocket,
		"/close-after-body": u.closeAfterBody, "/die-mid-body": u.dieMidBody,
		"/gated": u.gated, "/stall": u.stall,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.count(r.URL.Path)
		w.Header().Set("X-Upstream", u.name)
		if u.failAll {
			u.status(w, "500")
			return
		}
		if h, ok := routes[r.URL.Path]; ok {
			h(w, r)
			return
		}
		if code, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
			u.status(w, code)
			return
		}
		u.echo(w, r)
	})
}

// echo answers the request as received, as JSON (echoReply). Each
// "resp_header=Name:value" query parameter adds a response field.
func (u *upstream) echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "upstream: reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	sum := sha256.Sum256(body)
	reply := echoReply{Server: u.name, Method: r.Method, Target: r.RequestURI, Host: r.Host, Proto: r.Proto,
		Header: r.Header, Trailer: r.Trailer, ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
		BodyLen: int64(len(body)), BodySHA256: hex.EncodeToString(sum[:]), RemoteAddr: r.RemoteAddr}
	if len(body) <= 64<<10 {
		reply.Body = string(body)
	}
	for _, kv := range r.URL.Query()["resp_header"] {
		if k, v, ok := strings.Cut(kv, ":"); ok {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}

// health answers 200 while the upstream is healthy (control /health?ok=1),
// else 503.
func (u *upstream) health(w http.ResponseWriter, r *http.Request) {
	if !u.healthy.Load() {
		http.Error(w, "unhealthy", http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

// status answers with the status code named in its path (/status/503).
func (u *upstream) status(w http.ResponseWriter, name string) {
	code, err := strconv.Atoi(name)
	if err != nil || code < 200 || code > 599 {
		http.Error(w, "bad code", http.StatusBadRequest)
		return
	}
	w.WriteHeader(code)
	fmt.Fprintf(w, "status %d from %s\n", code, u.name)
}

// sseEvent is the data of one server-sent event of /sse.
type sseEvent struct {
	Seq     int   `json:"seq"`
	Written int64 `json:"written"` // UnixNano when the upstream wrote it
}

// sse streams ?n= server-sent events (default 5). After each event but the
// last it waits for the client's ack (control /sse-ack?id=<id>), so that
// the next event is written only once the previous one reached the
// client; a proxy that holds the stream back makes the wait end at its
// safety net (30 s) instead.
func (u *upstream) sse(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	if n <= 0 {
		n = 5
	}
	ack := u.ackChannel(r.URL.Query().Get("id"))
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	for i := 1; i <= n; i++ {
		ev, _ := json.Marshal(sseEvent{Seq: i, Written: time.Now().UnixNano()})
		if _, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", i, ev); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		if i == n {
			return
		}
		select {
		case <-ack:
		case <-r.Context().Done():
			return
		case <-time.After(30 * time.Second):
		}
	}
}

// ackChannel returns the ack channel of an /sse stream id, made on first use.
func (u *upstream) ackChannel(id string) chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	ch, ok := u.acks[id]
	if !ok {
		ch = make(chan struct{}, 64)
		u.acks[id] = ch
	}
	return ch
}

// trailers answers a body, then the trailers X-Up-Trailer and
// X-Echo-Trailer (the request's trailer X-Req-Trailer, echoed), and the
// body's checksum as X-Body-SHA256 in the trailer too.
func (u *upstream) trailers(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sum := sha256.Sum256(body)
	w.Header().Set("Trailer", "X-Up-Trailer, X-Echo-Trailer, X-Body-SHA256")
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "body before trailers\n")
	w.Header().Set("X-Up-Trailer", "from-"+u.name)
	w.Header().Set("X-Echo-Trailer", r.Trailer.Get("X-Req-Trailer"))
	w.Header().Set("X-Body-SHA256", hex.EncodeToString(sum[:]))
}

// earlyHints sends 103 Early Hints with a Link field, then 200.
func (u *upstream) earlyHints(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Link", "</style.css>; rel=preload; as=style")
	w.WriteHeader(http.StatusEarlyHints)
	w.Header().Del("Link")
	_, _ = io.WriteString(w, "after hints\n")
}

// slow answers after ?delay= (a duration), or never (until the client goes)
// when it is "forever".
func (u *upstream) slow(w http.ResponseWriter, r *http.Request) {
	d, err := time.ParseDuration(r.URL.Query().Get("delay"))
	if err != nil {
		d = time.Hour
	}
	select {
	case <-time.After(d):
		_, _ = io.WriteString(w, "slow answer\n")
	case <-r.Context().Done():
	}
}

// gated echoes the request once the gate is open: while control
// /hold?on=1 holds it closed, requests wait (counted in Waiting) until
// /hold?on=0 opens it, or their client goes.
func (u *upstream) gated(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	gate := u.gate
	u.mu.Unlock()
	if gate != nil {
		u.waiting.Add(1)
		select {
		case <-gate:
		case <-r.Context().Done():
		}
		u.waiting.Add(-1)
	}
	u.echo(w, r)
}

// setGate closes the gate of /gated (hold) or opens it, releasing every
// waiting request.
func (u *upstream) setGate(hold bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case hold && u.gate == nil:
		u.gate = make(chan struct{})
	case !hold && u.gate != nil:
		close(u.gate)
		u.gate = nil
	}
}

// stall announces ?size= bytes (Content-Length), sends the first half,
// then stalls until the client goes: a response cut off mid-body.
func (u *upstream) stall(w http.ResponseWriter, r *http.Request) {
	size, err := strconv.Atoi(r.URL.Query().Get("size"))
	if err != nil || size < 2 {
		http.Error(w, "bad size", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(size))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(bytes.Repeat([]byte{'s'}, size/2))
	_ = http.NewResponseController(w).Flush()
	<-r.Context().Done()
}

// download streams ?size= bytes of downloadPattern; ?chunked=1 sends them
// without Content-Length.
func (u *upstream) download(w http.ResponseWriter, r *http.Request) {
	size, err := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
	if err != nil || size < 0 {
		http.Error(w, "bad size", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if r.URL.Query().Get("chunked") != "1" {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	}
	_, _ = io.Copy(w, io.LimitReader(newPatternReader(), size))
}

// upload reads the body and answers its length and SHA-256 as JSON
// (echoReply without the body).
func (u *upstream) upload(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, "upstream: reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	reply := echoReply{Server: u.name, Method: r.Method, Target: r.RequestURI, Host: r.Host, Proto: r.Proto,
		Header: r.Header, Trailer: r.Trailer, ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
		BodyLen: n, BodySHA256: hex.EncodeToString(h.Sum(nil))}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}

// closeAfterBody reads the whole request body, then closes the connection
// without an answer: a request that reached the upstream and failed.
func (u *upstream) closeAfterBody(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	c, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // h2: reset the stream
	}
	c.Close()
}

// dieMidBody sends a 200 head and 1000 of the 2000 body bytes it
// announced, then aborts the connection: a failure after response bytes
// went out.
func (u *upstream) dieMidBody(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "2000")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(bytes.Repeat([]byte{'d'}, 1000))
	_ = http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}

// websocket accepts a WebSocket and echoes every message, type and bytes,
// until the client closes.
func (u *upstream) websocket(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(16 << 20)
	ctx := context.Background()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

// patternReader yields a deterministic byte stream: byte i is the low byte
// of i*7 + i/4096 (so that a shifted or dropped block shows).
type patternReader struct{ off int64 }

func newPatternReader() *patternReader { return &patternReader{} }

func (p *patternReader) Read(b []byte) (int, error) {
	for i := range b {
		o := p.off + int64(i)
		b[i] = byte(o*7 + o/4096)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// controlMux serves the test's side door.
func (u *upstream) controlMux() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("/counts", func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		c := upstreamCounts{Paths: map[string]int64{}, Conns: u.conns.Load(), Bytes: u.bytes.Load(), Heads: maps.Clone(u.heads),
			Waiting: u.waiting.Load()}
		for p, n := range u.paths {
			c.Paths[p] = n
			c.Total += n
		}
		u.mu.Unlock()
		_ = json.NewEncoder(w).Encode(c)
	})
	m.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		u.healthy.Store(r.URL.Query().Get("ok") == "1")
	})
	m.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		u.setGate(r.URL.Query().Get("on") == "1")
	})
	m.HandleFunc("/sse-ack", func(w http.ResponseWriter, r *http.Request) {
		u.ackChannel(r.URL.Query().Get("id")) <- struct{}{}
	})
	return m
}

// Canned answers of the raw listener, by request path. After a malformed
// one the connection stays open, and the next request on it gets
// rawPoison: a proxy that reuses such a connection passes POISON on.
var rawAnswers = map[string]string{
	"/ok":         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok",
	"/bad-status": "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok",
	"/bad-chunk":  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
	"/two-cl":     "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
	"/too-long":   "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" + rawPoison,
	"/hop": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Hop-Resp\r\nX-Hop-Resp: secret\r\n" +
		"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nX-Kept: yes\r\n\r\nok",
	"/hints-hop": "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nConnection: X-Hop-Hint\r\nX-Hop-Hint: secret\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
}

// rawPoison is a whole response smuggled behind /too-long's body.
const rawPoison = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON"

// rawGood lists the canned answers that are well-formed.
var rawGood = map[string]bool{"/ok": true, "/hop": true, "/hints-hop": true}

// serveRaw answers each connection of ln with rawAnswers.
func (u *upstream) serveRaw(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go u.rawConn(c)
	}
}

// rawConn reads requests on c and writes the canned answer of each path;
// it records each request's head as written on the wire.
func (u *upstream) rawConn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	poisoned := false
	for {
		path, err := u.readRawRequest(br)
		if err != nil {
			return
		}
		u.count(path)
		answer, ok := rawAnswers[path]
		switch {
		case poisoned:
			answer = rawPoison
		case !ok:
			answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
		}
		poisoned = poisoned || !rawGood[path]
		if _, err := io.WriteString(c, answer); err != nil {
			return
		}
	}
}

// readRawRequest reads one request from br: its head line by line
// (recorded in u.heads under its path), then its body as its framing
// says (Content-Length, or chunked with trailer lines). A head that Go's
// parser refuses ends the connection.
func (u *upstream) readRawRequest(br *bufio.Reader) (string, error) {
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		head.WriteString(line)
		if line == "\r\n" || line == "\n" {
			break
		}
	}
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head.String())))
	if err != nil {
		u.recordHead("(unparsable)", head.String())
		return "", err
	}
	u.recordHead(req.URL.Path, head.String())
	switch {
	case len(req.TransferEncoding) > 0:
		if _, err := io.Copy(io.Discard, httputil.NewChunkedReader(br)); err != nil {
			return "", err
		}
		for { // the trailer section, up to its empty line
			line, err := br.ReadString('\n')
			if err != nil {
				return "", err
			}
			if line == "\r\n" || line == "\n" {
				break
			}
		}
	case req.ContentLength > 0:
		if _, err := io.CopyN(io.Discard, br, req.ContentLength); err != nil {
			return "", err
		}
	}
	return req.URL.Path, nil
}

// recordHead keeps head as the last request head seen for path.
func (u *upstream) recordHead(path, head string) {
	u.mu.Lock()
	u.heads[path] = head
	u.mu.Unlock()
}

// grpcServer is a grpc-go server with the interop TestService and the
// standard health service (serving).
func (u *upstream) grpcServer(opts ...grpc.ServerOption) *grpc.Server {
	s := grpc.NewServer(opts...)
	testgrpc.RegisterTestServiceServer(s, testService{name: u.name})
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, h)
	return s
}

// testService implements UnaryCall (echo, or the asked status) and
// StreamingOutputCall (one message per ResponseParameters).
type testService struct {
	testgrpc.UnimplementedTestServiceServer
	name string
}

func (s testService) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if st := req.GetResponseStatus(); st != nil && st.GetCode() != 0 {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return &testgrpc.SimpleResponse{Payload: req.GetPayload(), Hostname: s.name}, nil
}

func (s testService) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	for i, p := range req.GetResponseParameters() {
		body := make([]byte, p.GetSize())
		for j := range body {
			body[j] = byte(i + j)
		}
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: body}}); err != nil {
			return err
		}
	}
	if st := req.GetResponseStatus(); st != nil && st.GetCode() != 0 {
		return status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return nil
}
