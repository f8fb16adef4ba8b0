package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/internal/testpki"
)

// The tests of this file run TLS on the event loops (tls/onloop) whatever
// -h1.serve says: that flag chooses how serve runs plain HTTP, and Serve
// on a net.Listener has no TLS of its own (tls_test.go covers ServeConn
// with a *tls.Conn). Each test says whether its handler is NonBlocking
// (requests without a body served on the loop) or mayBlock (every request
// served detached, on a goroutine).

// Names in the test certificate: the first is the clients' default SNI.
const (
	tlsName      = "example.test"
	tlsOtherName = "other.test"
)

// loopTLS is a Server running TLS on its event loops (serveLoopTLS).
type loopTLS struct {
	addr string
	pki  *testpki.PKI
}

// serveLoopTLS starts s on loopback with Listen and Start, with a TLS
// configuration offering h2 and http/1.1 by ALPN and a certificate for
// tlsName and tlsOtherName. At cleanup it closes s, checks that it
// stopped cleanly and that every goroutine started since has ended, as
// serve does.
func serveLoopTLS(t *testing.T, s *Server) *loopTLS {
	t.Helper()
	before := goleak.IgnoreCurrent()
	pki := testpki.New(t, tlsName, tlsOtherName)
	s.TLSConfig = pki.ServerConfig("h2", "http/1.1")
	return &loopTLS{addr: serveLoops(t, s, before), pki: pki}
}

// config returns a client configuration that trusts the test CA, sends
// tlsName as SNI and offers protos by ALPN.
func (l *loopTLS) config(protos ...string) *tls.Config { return l.pki.ClientConfig(protos...) }

// dial connects with the default client configuration, offering
// http/1.1, and completes the handshake.
func (l *loopTLS) dial(t *testing.T) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	return l.dialConfig(t, l.config("http/1.1"), 0)
}

// dialConfig connects with cfg and completes the handshake. A rcvbuf
// above zero fixes the client's socket receive buffer (no autotuning), so
// that a client that reads slowly, or not at all, makes the server's
// output back up soon. The connection is closed at cleanup; each read or
// write on it fails after hangTimeout without progress rather than hang.
func (l *loopTLS) dialConfig(t *testing.T, cfg *tls.Config, rcvbuf int) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	nc := rawDial(t, l.addr, rcvbuf)
	c := tls.Client(nc, cfg)
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// rawDial opens a TCP connection to addr, with a fixed receive buffer
// when rcvbuf > 0, closed at cleanup, whose reads and writes fail after
// hangTimeout without progress (progressConn).
func rawDial(t *testing.T, addr string, rcvbuf int) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: hangTimeout}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc := &progressConn{Conn: raw}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// servedOn tells, from a handler, where h1 runs it: "loop" (on the event
// loop's goroutine, loopConn.serve), "goroutine" (detached,
// loopConn.runDetached) or "?".
func servedOn() string {
	buf := make([]byte, 64<<10)
	st := string(buf[:runtime.Stack(buf, false)])
	switch {
	case strings.Contains(st, "h1.(*loopConn).runDetached("):
		return "goroutine"
	case strings.Contains(st, "h1.(*loopConn).serve("):
		return "loop"
	}
	return "?"
}

// goroutinesIn counts the goroutines whose stack mentions fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte(fn)) {
			count++
		}
	}
	return count
}

// Functions whose goroutines a TLS connection on the loop may hold.
const (
	detachedFn  = "h1.(*loopConn).runDetached("
	handshakeFn = "netpoll.(*TLSConn).Handshake."
)

// describe is a handler that answers with what it saw of the request,
// its body included, and where it ran.
func describe(w mrw, r *mreq) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	w.Header().Set("X-On", servedOn())
	fmt.Fprintf(w, "%s %s tls=%v sni=%q body=%s", r.Method, r.Path, r.TLS, r.ServerName, body)
}

// handlerKinds are the two ways a handler runs on the loops.
var handlerKinds = []struct {
	name string
	wrap func(message.Handler) message.Handler
	on   string // where requests without a body run
}{
	{"NonBlocking", func(h message.Handler) message.Handler { return nonBlocking{h} }, "loop"},
	{"mayBlock", func(h message.Handler) message.Handler { return mayBlock{h} }, "goroutine"},
}

func TestLoopTLSKeepAlive(t *testing.T) {
	for _, kind := range handlerKinds {
		t.Run(kind.name, func(t *testing.T) {
			l := serveLoopTLS(t, &Server{Handler: kind.wrap(handlerFunc(describe))})
			for _, tc := range []struct {
				name       string
				sni        string // sent as SNI ("" for none)
				maxVersion uint16
			}{
				{"TLS 1.3", tlsName, 0},
				{"TLS 1.3 other name", tlsOtherName, 0},
				{"TLS 1.2", tlsName, tls.VersionTLS12},
				{"no SNI", "", 0},
			} {
				t.Run(tc.name, func(t *testing.T) {
					cfg := l.config("http/1.1")
					cfg.MaxVersion = tc.maxVersion
					cfg.ServerName = tc.sni
					if tc.sni == "" {
						// Without SNI, check the certificate against tlsName ourselves.
						cfg.InsecureSkipVerify = true
						cfg.VerifyConnection = func(cs tls.ConnectionState) error {
							return cs.PeerCertificates[0].VerifyHostname(tlsName)
						}
					}
					c, br := l.dialConfig(t, cfg, 0)
					for i, path := range []string{"/one", "/two", "/three", "/four"} {
						send(t, c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n")
						resp, body := readResponse(t, br, "GET")
						want := fmt.Sprintf("GET %s tls=true sni=%q body=", path, tc.sni)
						if resp.StatusCode != 200 || body != want || resp.Close {
							t.Errorf("request %d: %d %q close=%v, want 200 %q keep-alive", i, resp.StatusCode, body, resp.Close, want)
						}
						if on := resp.Header.Get("X-On"); on != kind.on {
							t.Errorf("request %d served on %q, want %q", i, on, kind.on)
						}
						// Between requests the connection is back on the loop
						// and holds no goroutine: not the handshake's, not a
						// detached one's.
						waitFor(t, func() bool { return goroutinesIn(detachedFn)+goroutinesIn(handshakeFn) == 0 })
					}
				})
			}
		})
	}
}

func TestLoopTLSPipelining(t *testing.T) {
	for _, kind := range handlerKinds {
		t.Run(kind.name, func(t *testing.T) {
			l := serveLoopTLS(t, &Server{Handler: kind.wrap(handlerFunc(describe))})
			paths := []string{"/a", "/b", "/c", "/d", "/e", "/f"}
			var raw strings.Builder
			for _, p := range paths {
				raw.WriteString("GET " + p + " HTTP/1.1\r\nHost: h\r\n\r\n")
			}
			check := func(t *testing.T, br *bufio.Reader) {
				t.Helper()
				for _, p := range paths {
					resp, body := readResponse(t, br, "GET")
					if want := "GET " + p + ` tls=true sni="example.test" body=`; body != want || resp.Close {
						t.Errorf("got %q close=%v, want %q in order, keep-alive", body, resp.Close, want)
					}
				}
			}
			t.Run("one write", func(t *testing.T) {
				c, br := l.dial(t)
				send(t, c, raw.String()) // one TLS record
				check(t, br)
			})
			t.Run("one record per byte", func(t *testing.T) {
				// Every byte in its own record: heads split across records
				// and reads, kept decrypted between OnReads.
				c, br := l.dial(t)
				done := make(chan struct{})
				go func() { // ends with the writes, or when the connection closes
					defer close(done)
					for i := range raw.Len() {
						if _, err := c.Write([]byte{raw.String()[i]}); err != nil {
							return
						}
					}
				}()
				check(t, br)
				<-done
			})
			t.Run("one record for many requests, split mid-head", func(t *testing.T) {
				c, br := l.dial(t)
				s := raw.String()
				for cut := 0; cut < len(s); {
					next := min(cut+37, len(s)) // records that end mid-head
					send(t, c, s[cut:next])
					cut = next
				}
				check(t, br)
			})
		})
	}
}

func TestLoopTLSRequestBodies(t *testing.T) {
	// A request with a body goes off the loop to a goroutine that reads it
	// through the tls.Conn; the connection comes back to the loop after,
	// with whatever crypto/tls already read from the socket.
	l := serveLoopTLS(t, &Server{Handler: nonBlocking{handlerFunc(describe)}})
	c, br := l.dial(t)
	get := func(t *testing.T) {
		t.Helper()
		send(t, c, "GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
		resp, body := readResponse(t, br, "GET")
		if want := `GET /after tls=true sni="example.test" body=`; body != want || resp.Close {
			t.Errorf("GET after a body: %q close=%v, want %q", body, resp.Close, want)
		}
		if on := resp.Header.Get("X-On"); on != "loop" {
			t.Errorf("GET after a body served on %q, want the loop", on)
		}
	}
	post := func(t *testing.T, wantBody string) {
		t.Helper()
		resp, body := readResponse(t, br, "POST")
		if want := `POST /p tls=true sni="example.test" body=` + wantBody; body != want || resp.Close {
			t.Errorf("POST: %d bytes %.60q close=%v, want %d bytes %.60q",
				len(body), body, resp.Close, len(want), want)
		}
		if on := resp.Header.Get("X-On"); on != "goroutine" {
			t.Errorf("POST served on %q, want a goroutine", on)
		}
	}
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB: many records and reads

	t.Run("Content-Length", func(t *testing.T) {
		send(t, c, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world")
		post(t, "hello world")
		get(t)
	})
	t.Run("chunked", func(t *testing.T) {
		send(t, c, "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
		post(t, "hello world")
		get(t)
	})
	t.Run("chunked in pieces", func(t *testing.T) {
		send(t, c, "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
		send(t, c, "5\r\nhel")
		send(t, c, "lo\r\n")
		send(t, c, "6\r\n world\r\n0\r\n\r\n")
		post(t, "hello world")
		get(t)
	})
	t.Run("large Content-Length", func(t *testing.T) {
		send(t, c, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: "+strconv.Itoa(len(big))+"\r\n\r\n"+big)
		post(t, big)
		get(t)
	})
	t.Run("head alone, body later", func(t *testing.T) {
		send(t, c, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n")
		send(t, c, "later")
		post(t, "later")
		get(t)
	})
	t.Run("Expect 100-continue", func(t *testing.T) {
		send(t, c, "POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("got %q, %v; want 100 Continue", line, err)
		}
		if blank, _ := br.ReadString('\n'); blank != "\r\n" {
			t.Fatalf("100 Continue followed by %q", blank)
		}
		send(t, c, "ping")
		post(t, "ping")
		get(t)
	})
	t.Run("GET pipelined behind the body", func(t *testing.T) {
		// The GET is decrypted with the body, or left in crypto/tls's
		// buffer for the loop to decrypt when the connection is back.
		send(t, c, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: "+strconv.Itoa(len(big))+"\r\n\r\n"+big+
			"GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
		post(t, big)
		resp, body := readResponse(t, br, "GET")
		if want := `GET /next tls=true sni="example.test" body=`; body != want || resp.Close {
			t.Errorf("pipelined GET: %q close=%v, want %q", body, resp.Close, want)
		}
		get(t)
	})
	waitFor(t, func() bool { return goroutinesIn(detachedFn) == 0 })
}

// clientHello returns the first flight of a TLS client: its ClientHello
// record.
func clientHello(t *testing.T, cfg *tls.Config) []byte {
	t.Helper()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() { // ends when the pipe closes
		defer close(done)
		tls.Client(client, cfg).Handshake()
	}()
	defer func() { server.Close(); <-done }()
	server.SetDeadline(time.Now().Add(hangTimeout))
	head := make([]byte, 5)
	if _, err := io.ReadFull(server, head); err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, 5+int(head[3])<<8|int(head[4]))
	copy(rec, head)
	if _, err := io.ReadFull(server, rec[5:]); err != nil {
		t.Fatal(err)
	}
	if rec[0] != 22 || rec[5] != 1 { // handshake record, ClientHello
		t.Fatalf("first flight %x is not a ClientHello", rec[:6])
	}
	return rec
}

func TestLoopTLSALPN(t *testing.T) {
	preface := "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	type seen struct {
		complete bool
		proto    string
		sni      string
		onLoop   bool
		preface  string
		readErr  error
		closeErr error
		reply    string
	}
	got := make(chan seen, 1)
	h2 := func(tc *tls.Conn) {
		var s seen
		defer func() { got <- s }()
		tc.SetDeadline(time.Now().Add(hangTimeout))
		st := tc.ConnectionState()
		s.complete, s.proto, s.sni = st.HandshakeComplete, st.NegotiatedProtocol, st.ServerName
		buf := make([]byte, 64<<10)
		s.onLoop = strings.Contains(string(buf[:runtime.Stack(buf, false)]), "netpoll.(*Loop).run")
		p := make([]byte, len(preface))
		if _, s.readErr = io.ReadFull(tc, p); s.readErr != nil {
			tc.Close()
			return
		}
		s.preface = string(p)
		io.WriteString(tc, "hello from h2\n")
		br := bufio.NewReader(tc)
		s.reply, s.readErr = br.ReadString('\n')
		s.closeErr = tc.Close()
	}
	s := &Server{Handler: nonBlocking{handlerFunc(describe)}, TLSProtocols: map[string]func(*tls.Conn){"h2": h2}}
	l := serveLoopTLS(t, s)

	h2Exchange := func(t *testing.T, c *tls.Conn, br *bufio.Reader) {
		t.Helper()
		// At once after the handshake, as an HTTP/2 client does: in
		// TLS 1.3 it may come with the client's Finished.
		send(t, c, preface)
		line, err := br.ReadString('\n')
		if err != nil || line != "hello from h2\n" {
			t.Fatalf("got %q, %v; want the h2 server's line", line, err)
		}
		send(t, c, "bye\n")
		if rest, err := io.ReadAll(br); len(rest) > 0 || err != nil {
			t.Errorf("after the h2 server closed: %q, %v; want EOF", rest, err)
		}
		var s seen
		select {
		case s = <-got:
		case <-time.After(hangTimeout):
			t.Fatal("the h2 server was not called")
		}
		want := seen{complete: true, proto: "h2", sni: tlsName, preface: preface, reply: "bye\n"}
		if s != want {
			t.Errorf("the h2 server saw %+v, want %+v", s, want)
		}
	}
	for _, tc := range []struct {
		name       string
		protos     []string
		maxVersion uint16
		want       string // negotiated
	}{
		{"h2", []string{"h2", "http/1.1"}, 0, "h2"},
		{"h2 over TLS 1.2", []string{"h2", "http/1.1"}, tls.VersionTLS12, "h2"},
		{"http/1.1 preferred by client", []string{"http/1.1", "h2"}, 0, "h2"}, // the server's order wins
		{"http/1.1 only", []string{"http/1.1"}, 0, "http/1.1"},
		{"no ALPN", nil, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := l.config(tc.protos...)
			cfg.MaxVersion = tc.maxVersion
			c, br := l.dialConfig(t, cfg, 0)
			if p := c.ConnectionState().NegotiatedProtocol; p != tc.want {
				t.Fatalf("negotiated %q, want %q", p, tc.want)
			}
			if tc.want == "h2" {
				h2Exchange(t, c, br)
				return
			}
			for range 2 {
				send(t, c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
				if _, body := readResponse(t, br, "GET"); body != `GET / tls=true sni="example.test" body=` {
					t.Errorf("body %q", body)
				}
			}
		})
	}
	t.Run("h2 without a server speaks HTTP/1.1", func(t *testing.T) {
		l := serveLoopTLS(t, &Server{Handler: nonBlocking{handlerFunc(describe)}})
		c, br := l.dialConfig(t, l.config("h2"), 0)
		if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Fatalf("negotiated %q, want h2", p)
		}
		send(t, c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		if _, body := readResponse(t, br, "GET"); body != `GET / tls=true sni="example.test" body=` {
			t.Errorf("body %q", body)
		}
	})
	t.Run("Close ends a handed-off connection", func(t *testing.T) {
		reading := make(chan struct{})
		readErr := make(chan error, 1)
		s := &Server{TLSProtocols: map[string]func(*tls.Conn){"h2": func(tc *tls.Conn) {
			defer tc.Close()
			close(reading)
			// A deadline past the test's wait: only Close can end this
			// Read before the test gives up.
			tc.SetDeadline(time.Now().Add(2 * hangTimeout))
			_, err := tc.Read(make([]byte, 10))
			readErr <- err
		}}}
		l := serveLoopTLS(t, s)
		l.dialConfig(t, l.config("h2"), 0) // sends nothing after the handshake
		<-reading
		s.Close()
		select {
		case err := <-readErr:
			if err == nil {
				t.Error("the h2 server's Read returned nil after Close, want an error")
			}
		case <-time.After(hangTimeout):
			t.Fatal("Close left the h2 server blocked in Read")
		}
	})
}

// testFileAt writes n random bytes to a new file in dir and returns it
// open, with its contents; it is closed at cleanup.
func testFileAt(t *testing.T, dir string, n int) (*os.File, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	path := filepath.Join(dir, "f")
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

// openCount counts the process's descriptors open on path; on error
// (no /proc) it fails t and returns -1. It may run on any goroutine.
func openCount(t *testing.T, path string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Errorf("counting the descriptors open on %s: %v", path, err)
		return -1
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == path {
			n++
		}
	}
	return n
}

// multipart is the body of fileRoutes' /multi: Writes and WriteFiles
// (large, small, large) in turn on one response.
var multipart = []struct {
	text    string
	off, n  int64 // a file region when text is ""
	isFile  bool
	comment string
}{
	{text: "--b\r\nContent-Type: application/octet-stream\r\n\r\n"},
	{off: 3, n: 5<<20 + 3, isFile: true, comment: "large, through the backlog"},
	{text: "\r\n--b\r\n\r\n"},
	{off: 17, n: 100, isFile: true, comment: "small, copied with the output behind the backlog"},
	{off: 9 << 20, n: 4 << 20, isFile: true, comment: "large again"},
	{text: "\r\n--b--\r\n"},
}

// multipartBody returns what /multi sends of data.
func multipartBody(data []byte) []byte {
	var b []byte
	for _, p := range multipart {
		if p.isFile {
			b = append(b, data[p.off:p.off+p.n]...)
		} else {
			b = append(b, p.text...)
		}
	}
	return b
}

// fileRoutes is a NonBlocking handler that sends f with WriteFile:
//
//	/file     all of it, with Content-Length
//	/chunked  all of it, chunked
//	/own      all of it from its own descriptor, closed when WriteFile returns
//	/small    1000 bytes from offset 100
//	/multi    multipart; ?cl declares the length
//	other     "ok"
//
// It reports where it ran in X-On and fails t on a WriteFile error.
func fileRoutes(t *testing.T, f *os.File, size int64) message.Handler {
	return nonBlocking{handlerFunc(func(w mrw, r *mreq) {
		fw := w.(message.FileWriter)
		w.Header().Set("X-On", servedOn())
		writeFile := func(f *os.File, off, n int64) {
			if sent, err := fw.WriteFile(f, off, n); err != nil || sent != n {
				t.Errorf("%s: WriteFile(%d, %d) = %d, %v", r.Path, off, n, sent, err)
			}
		}
		switch r.Path {
		case "/file":
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
			writeFile(f, 0, size)
		case "/chunked":
			writeFile(f, 0, size)
		case "/own":
			own, err := os.Open(f.Name())
			if err != nil {
				t.Error(err)
				return
			}
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
			writeFile(own, 0, size)
			own.Close() // the loop keeps a duplicate while it sends
		case "/small":
			w.Header().Set("Content-Length", "1000")
			writeFile(f, 100, 1000)
		case "/multi":
			if r.RawQuery == "cl" {
				n := int64(0)
				for _, p := range multipart {
					n += p.n + int64(len(p.text))
				}
				w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			}
			for _, p := range multipart {
				if p.isFile {
					writeFile(f, p.off, p.n)
				} else if _, err := io.WriteString(w, p.text); err != nil {
					t.Errorf("/multi: Write: %v", err)
				}
			}
		default:
			io.WriteString(w, "ok")
		}
	})}
}

// readBodySlowly reads a response's body the way a slow client does:
// 64 KiB, then a pause, a few times, then the rest at once.
func readBodySlowly(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var out bytes.Buffer
	buf := make([]byte, 64<<10)
	for range 6 {
		n, err := io.ReadFull(r, buf)
		out.Write(buf[:n])
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return out.Bytes()
		}
		if err != nil {
			t.Fatalf("reading the body after %d bytes: %v", out.Len(), err)
		}
		time.Sleep(10 * time.Millisecond) // slowness, not synchronisation
	}
	if _, err := io.Copy(&out, r); err != nil {
		t.Fatalf("reading the body after %d bytes: %v", out.Len(), err)
	}
	return out.Bytes()
}

// checkBytes compares a body with what it should be, reporting the first
// difference.
func checkBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: got %d bytes, want %d; first difference at byte %d", what, len(got), len(want), i)
}

// getFile sends GET path on c and reads the response slowly, checking
// that the body is want, served on the loop, framed as framing
// ("chunked" or a length).
func getFile(t *testing.T, c *tls.Conn, br *bufio.Reader, path string, want []byte, framing string) {
	t.Helper()
	send(t, c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n")
	readFileResponse(t, br, path, want, framing)
}

// readFileResponse reads a response to GET path as getFile does.
func readFileResponse(t *testing.T, br *bufio.Reader, path string, want []byte, framing string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("%s: reading response: %v", path, err)
	}
	body := readBodySlowly(t, resp.Body)
	checkBytes(t, path, body, want)
	if got := strings.Join(resp.TransferEncoding, ",") + resp.Header.Get("Content-Length"); got != framing {
		t.Errorf("%s: framing %q, want %q", path, got, framing)
	}
	if on := resp.Header.Get("X-On"); on != "loop" {
		t.Errorf("%s: served on %q, want the loop", path, on)
	}
	if resp.Close {
		t.Errorf("%s: Connection: close", path)
	}
}

func TestLoopTLSFileBodies(t *testing.T) {
	const size = 20 << 20
	f, data := testFileAt(t, t.TempDir(), size)
	l := serveLoopTLS(t, &Server{Handler: fileRoutes(t, f, size)})
	multi := multipartBody(data)
	sizeStr, multiLen := strconv.Itoa(size), strconv.Itoa(len(multi))

	t.Run("keep-alive", func(t *testing.T) {
		// A small receive buffer: the pump has to wait for the client
		// again and again.
		c, br := l.dialConfig(t, l.config("http/1.1"), 128<<10)
		getFile(t, c, br, "/file", data, sizeStr)
		getFile(t, c, br, "/small", data[100:1100], "1000")
		getFile(t, c, br, "/chunked", data, "chunked")
		getFile(t, c, br, "/multi", multi, "chunked")
		getFile(t, c, br, "/multi?cl", multi, multiLen)
		getFile(t, c, br, "/own", data, sizeStr)
		getFile(t, c, br, "/", []byte("ok"), "chunked")
		send(t, c, "HEAD /file HTTP/1.1\r\nHost: h\r\n\r\n")
		if resp, body := readResponse(t, br, "HEAD"); resp.ContentLength != size || body != "" {
			t.Errorf("HEAD: Content-Length %d, body of %d bytes", resp.ContentLength, len(body))
		}
		getFile(t, c, br, "/small", data[100:1100], "1000")
	})
	t.Run("pipelined", func(t *testing.T) {
		// The requests behind a file body wait, decrypted, until the
		// backlog has gone out.
		c, br := l.dialConfig(t, l.config("http/1.1"), 128<<10)
		send(t, c, "GET /own HTTP/1.1\r\nHost: h\r\n\r\nGET /multi HTTP/1.1\r\nHost: h\r\n\r\n"+
			"GET /small HTTP/1.1\r\nHost: h\r\n\r\nGET /chunked HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
		readFileResponse(t, br, "/own", data, sizeStr)
		readFileResponse(t, br, "/multi", multi, "chunked")
		readFileResponse(t, br, "/small", data[100:1100], "1000")
		readFileResponse(t, br, "/chunked", data, "chunked")
		readFileResponse(t, br, "/", []byte("ok"), "chunked")
	})
	t.Run("concurrent", func(t *testing.T) {
		for _, path := range []string{"/own", "/multi", "/chunked", "/file"} {
			t.Run(path, func(t *testing.T) {
				t.Parallel()
				c, br := l.dialConfig(t, l.config("http/1.1"), 256<<10)
				want := map[bool][]byte{true: multi, false: data}[path == "/multi"]
				framing := map[string]string{"/own": sizeStr, "/multi": "chunked", "/chunked": "chunked", "/file": sizeStr}[path]
				for range 2 {
					getFile(t, c, br, path, want, framing)
				}
			})
		}
	})
	// The duplicates the loop took of the handler's files are closed once
	// sent: only the test's own descriptor is left.
	waitFor(t, func() bool { return openCount(t, f.Name()) == 1 })
}

// TestLoopTLSPipelinedBehindFileSentAtOnce pipelines requests behind file
// bodies that go on the TLS backlog (larger than the output buffer) and
// that the socket can take whole, so that the pump sends all of one in
// the batch that queued it. The requests behind it must then be served in
// that batch: nothing else will resume them, since the socket never
// backed up (no EPOLLOUT is awaited) and the client sends nothing more.
// The smallest size stalls every time if they are not; the larger one
// takes two steps of the pump, and the socket may or may not take it all.
func TestLoopTLSPipelinedBehindFileSentAtOnce(t *testing.T) {
	const pumpStep = 64 << 10 // the file bytes tls/onloop's pump sends per step
	for _, size := range []int{writeBufSize + 1, pumpStep + 1} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			f, data := testFileAt(t, t.TempDir(), size)
			l := serveLoopTLS(t, &Server{Handler: fileRoutes(t, f, int64(size))})
			c, br := l.dial(t)
			get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n" }
			send(t, c, get("/file")+get("/chunked")+get("/own")+get("/small")+get("/"))
			readFileResponse(t, br, "/file", data, strconv.Itoa(size))
			readFileResponse(t, br, "/chunked", data, "chunked")
			readFileResponse(t, br, "/own", data, strconv.Itoa(size))
			readFileResponse(t, br, "/small", data[100:1100], "1000")
			readFileResponse(t, br, "/", []byte("ok"), "chunked")
		})
	}
}

// TestLoopTLSCloseBehindFileBody ends connections whose last response
// has a file body on the TLS backlog: the body must go out whole before
// the close_notify and the close, whether the socket takes it at once
// (the smaller size) or the client reads it slowly through a small
// receive buffer (the larger one, more than the socket buffers can hold:
// Linux's tcp_wmem allows 4 MiB by default). The client's records (the
// request and its close_notify) leave in one write, so that the server
// reads them together, before the larger body has gone out.
func TestLoopTLSCloseBehindFileBody(t *testing.T) {
	const get = "GET /file HTTP/1.1\r\nHost: h\r\n"
	for _, size := range []int{writeBufSize + 1, 16 << 20} {
		f, data := testFileAt(t, t.TempDir(), size)
		l := serveLoopTLS(t, &Server{Handler: fileRoutes(t, f, int64(size))})
		for _, tc := range []struct {
			name       string
			raw        string
			closeWrite bool // the client sends close_notify after raw
			close      bool // the response says Connection: close
		}{
			{"Connection: close", get + "Connection: close\r\n\r\n", false, true},
			{"HTTP/1.0", "GET /file HTTP/1.0\r\n\r\n", false, true},
			// The request behind is not answered (lingering close).
			{"pipelined behind Connection: close", get + "Connection: close\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", false, true},
			{"close_notify after the request", get + "\r\n", true, false},
		} {
			t.Run(fmt.Sprintf("%d/%s", size, tc.name), func(t *testing.T) {
				nc := &heldConn{Conn: rawDial(t, l.addr, 128<<10)}
				c := tls.Client(nc, l.config("http/1.1"))
				if err := c.Handshake(); err != nil {
					t.Fatalf("handshake: %v", err)
				}
				nc.holding = true
				send(t, c, tc.raw)
				if tc.closeWrite {
					if err := c.CloseWrite(); err != nil {
						t.Fatal(err)
					}
				}
				if err := nc.release(); err != nil {
					t.Fatal(err)
				}
				br := bufio.NewReader(c)
				resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
				if err != nil {
					t.Fatalf("reading response: %v", err)
				}
				checkBytes(t, "body", readBodySlowly(t, resp.Body), data)
				if resp.Close != tc.close {
					t.Errorf("Connection: close %v, want %v", resp.Close, tc.close)
				}
				expectEOF(t, br)
			})
		}
	}
}

// heldConn holds what is written to it while holding is set, and sends it
// in one write at release: a TLS client's records, to reach the server in
// one read. Used by one goroutine.
type heldConn struct {
	net.Conn
	holding bool
	held    []byte
}

func (c *heldConn) Write(p []byte) (int, error) {
	if c.holding {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// release sends what was held and stops holding. It clears the write
// deadline first: tls.Conn.CloseWrite leaves it at the time it sent
// close_notify (here, held).
func (c *heldConn) release() error {
	c.holding = false
	c.Conn.SetWriteDeadline(time.Time{})
	_, err := c.Conn.Write(c.held)
	c.held = nil
	return err
}

func TestLoopTLSColdFile(t *testing.T) {
	// A file that is not in the page cache: ReadNoWait finds it cold and
	// the pump waits for a file worker to read it in (netpoll.Warm).
	// /var/tmp, not the test's temporary directory, which may be on
	// tmpfs, whose pages cannot leave the page cache.
	dir, err := os.MkdirTemp("/var/tmp", "h1-test-")
	if err != nil {
		t.Fatalf("the test needs a directory in /var/tmp, on a disk file system: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	const size = 8 << 20
	f, data := testFileAt(t, dir, size)
	w, err := os.OpenFile(f.Name(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = w.Sync()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	drop := func(t *testing.T) {
		t.Helper()
		if err := netpoll.DropCache(f, 0, size); err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < size; off += 1 << 20 {
			if resident, err := netpoll.Resident(f, off, 4096); err != nil || resident {
				t.Fatalf("the page at %d is still cached after DropCache (Resident: %v, %v): the file system of /var/tmp keeps it, or the page cache cannot be read here; the test needs a disk file system",
					off, resident, err)
			}
		}
	}
	// Check that a cold read would block here, on a file of its own (a
	// failed RWF_NOWAIT read may start readahead).
	probe, _ := testFileAt(t, t.TempDir(), 1<<20)
	probe.Sync()
	netpoll.DropCache(probe, 0, 1<<20)
	if resident, _ := netpoll.Resident(probe, 0, 4096); !resident {
		if _, err := netpoll.ReadNoWait(probe, make([]byte, 4096), 0); err != netpoll.ErrWouldBlock {
			t.Logf("ReadNoWait on a cold page: %v, not ErrWouldBlock: the pump will read on the loop", err)
		}
	}

	l := serveLoopTLS(t, &Server{Handler: fileRoutes(t, f, size)})
	t.Run("whole file", func(t *testing.T) {
		drop(t)
		c, br := l.dialConfig(t, l.config("http/1.1"), 128<<10)
		getFile(t, c, br, "/own", data, strconv.Itoa(size))
		if resident, _ := netpoll.Resident(f, 0, size); !resident {
			t.Log("the file is not all cached after it was sent")
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		drop(t)
		for _, path := range []string{"/file", "/chunked", "/own"} {
			t.Run(path, func(t *testing.T) {
				t.Parallel()
				c, br := l.dial(t)
				framing := map[bool]string{true: "chunked", false: strconv.Itoa(size)}[path == "/chunked"]
				getFile(t, c, br, path, data, framing)
			})
		}
	})
	waitFor(t, func() bool { return openCount(t, f.Name()) == 1 })
}

func TestLoopTLSHandshakeTimeout(t *testing.T) {
	// A connection whose handshake has not ended HandshakeTimeout after
	// the accept is closed, not before, with nothing or an alert; the
	// upper bound is the read's safety net.
	const hst = 300 * time.Millisecond
	l := serveLoopTLS(t, &Server{Handler: nonBlocking{handlerFunc(describe)}, HandshakeTimeout: hst,
		ReadHeaderTimeout: notUnderTest, IdleTimeout: notUnderTest})
	hello := clientHello(t, l.config("http/1.1"))
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"nothing", nil},
		{"half a ClientHello", hello[:len(hello)/2]},
		{"a record header", hello[:5]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// An attempt is inconclusive when the machine was too slow to
			// see the handshake goroutine before the timeout ended it.
			for deadline := time.Now().Add(hangTimeout); !handshakeTimesOut(t, l.addr, tc.send, hst); {
				if time.Now().After(deadline) {
					t.Fatalf("no attempt saw the handshake goroutine within %v of the accept", hst)
				}
				t.Logf("the handshake goroutine was not seen within %v: the machine is slow; again", hst)
			}
		})
	}
	t.Run("not after the handshake", func(t *testing.T) {
		// The handshake timeout is over once the handshake is: the
		// connection then waits ReadHeaderTimeout for its first request.
		c, br := dialWithin(t, l, hst)
		time.Sleep(2 * hst) // the state under test, not synchronisation; slowness only lengthens it
		send(t, c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		if _, body := readResponse(t, br, "GET"); body != `GET / tls=true sni="example.test" body=` {
			t.Errorf("body %q", body)
		}
	})
	t.Run("plaintext HTTP", func(t *testing.T) {
		// Not TLS at all: the handshake fails and the connection closes
		// at once, with at most an alert. The server's handshake timeout
		// cannot fire before the test gives up: the close can only be the
		// failed handshake's.
		l := serveLoopTLS(t, &Server{Handler: nonBlocking{handlerFunc(describe)}, HandshakeTimeout: notUnderTest})
		nc := rawDial(t, l.addr, 0)
		io.WriteString(nc, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		out, err := io.ReadAll(nc)
		if err != nil && !isReset(err) {
			t.Errorf("waiting for the close: %v", err)
		}
		if len(out) > 0 && out[0] != 21 {
			t.Errorf("got %q, want nothing or an alert", out)
		}
	})
}

// handshakeTimesOut connects to addr, sends first (part of a handshake,
// or nothing) and checks that the connection closes, with nothing or an
// alert, not before hst after the accept, and that a handshake goroutine
// waits meanwhile if first is not empty (none otherwise), then ends. It
// reports false, having failed nothing, when the goroutine was not seen
// before hst had passed: the timeout may then have come first.
func handshakeTimesOut(t *testing.T, addr string, first []byte, hst time.Duration) bool {
	t.Helper()
	start := time.Now() // before the accept, which starts the server's clock
	nc := rawDial(t, addr, 0)
	defer nc.Close()
	if len(first) > 0 {
		if _, err := nc.Write(first); err != nil {
			t.Fatal(err)
		}
		// The handshake goroutine starts with the first bytes, and
		// waits for the rest.
		for goroutinesIn(handshakeFn) != 1 {
			if time.Since(start) >= hst {
				io.ReadAll(nc) // let this attempt end before the next
				waitFor(t, func() bool { return goroutinesIn(handshakeFn) == 0 })
				return false
			}
			time.Sleep(time.Millisecond)
		}
	} else if n := goroutinesIn(handshakeFn); n != 0 {
		t.Errorf("%d handshake goroutines for a client that sent nothing", n)
	}
	out, err := io.ReadAll(nc)
	elapsed := time.Since(start)
	if err != nil && !isReset(err) {
		t.Errorf("waiting for the close: %v", err)
	}
	if len(out) > 0 && out[0] != 21 { // nothing, or an alert
		t.Errorf("got %x, want nothing or an alert", out)
	}
	if elapsed < hst {
		t.Errorf("closed after %v, want not before %v", elapsed, hst)
	}
	waitFor(t, func() bool { return goroutinesIn(handshakeFn) == 0 })
	return true
}

// dialWithin connects to l and completes a handshake, which must end
// within the server's handshake timeout hst: an attempt that fails after
// hst has passed (the machine was too slow) is made again, one that fails
// sooner fails the test.
func dialWithin(t *testing.T, l *loopTLS, hst time.Duration) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	for deadline := time.Now().Add(hangTimeout); ; {
		start := time.Now()
		nc := rawDial(t, l.addr, 0)
		c := tls.Client(nc, l.config("http/1.1"))
		err := c.Handshake()
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c, bufio.NewReader(c)
		}
		nc.Close()
		if time.Since(start) < hst || time.Now().After(deadline) {
			t.Fatalf("handshake: %v", err)
		}
		t.Logf("handshake: %v after %v, longer than the handshake timeout: the machine is slow; again", err, time.Since(start))
	}
}

func TestLoopTLSReadHeaderAndIdleTimeouts(t *testing.T) {
	// Each timeout closes the connection not before it has run; the upper
	// bound is the read's safety net. Each server has only the timeout
	// under test short: the others cannot fire, so that a close can only
	// be that timeout's, and a slow client cannot expire a gap the test
	// does not measure.
	const rht, idle = 300 * time.Millisecond, 400 * time.Millisecond
	expectClose := func(t *testing.T, br *bufio.Reader, want string, after time.Duration, start time.Time) {
		t.Helper()
		out, err := io.ReadAll(br)
		elapsed := time.Since(start)
		if err != nil && !isReset(err) {
			t.Errorf("waiting for the close: %v", err)
		}
		if got := maskDate(string(out)); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		if elapsed < after {
			t.Errorf("closed after %v, want not before %v", elapsed, after)
		}
	}
	for _, kind := range handlerKinds {
		t.Run(kind.name, func(t *testing.T) {
			headTimeout := serveLoopTLS(t, &Server{Handler: kind.wrap(handlerFunc(describe)), ReadHeaderTimeout: rht,
				IdleTimeout: notUnderTest, HandshakeTimeout: notUnderTest})
			idleTimeout := serveLoopTLS(t, &Server{Handler: kind.wrap(handlerFunc(describe)), ReadHeaderTimeout: notUnderTest,
				IdleTimeout: idle, HandshakeTimeout: notUnderTest})
			t.Run("partial head", func(t *testing.T) {
				start := time.Now() // before the handshake, which starts the clock of the first head
				c, br := headTimeout.dial(t)
				send(t, c, "GET / HTTP/1.1\r\nHost: h\r\n")
				expectClose(t, br, errorResponse(408, ""), rht, start)
			})
			t.Run("partial second head", func(t *testing.T) {
				// The first request's head is due ReadHeaderTimeout after
				// the accept, handshake included: that gap is not under
				// test here, so a machine too slow to make it dials again.
				var c net.Conn
				var br *bufio.Reader
				for try := 1; ; try++ {
					c, br = headTimeout.dial(t)
					send(t, c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
					resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
					if err == nil && resp.StatusCode == 200 {
						io.Copy(io.Discard, resp.Body)
						break
					}
					if try == 20 {
						t.Fatalf("the first request never beat its head timeout in %d dials (last: %v, %v)", try, resp, err)
					}
					t.Logf("dial %d: the first request missed its head timeout (%v); dialing again", try, err)
					c.Close()
				}
				start := time.Now() // before the head's first byte
				send(t, c, "GET /2 HTTP/1.1\r\nHo")
				expectClose(t, br, errorResponse(408, ""), rht, start)
			})
			t.Run("no request", func(t *testing.T) {
				// Handshake done, then silence: a quiet close after
				// ReadHeaderTimeout.
				start := time.Now()
				_, br := headTimeout.dial(t)
				expectClose(t, br, "", rht, start)
			})
			t.Run("idle keep-alive", func(t *testing.T) {
				// Two requests in one write (no idle gap between them for
				// a slow client to stretch), then the idle close.
				c, br := idleTimeout.dial(t)
				start := time.Now() // before the responses, which start the idle clock
				send(t, c, strings.Repeat("GET / HTTP/1.1\r\nHost: h\r\n\r\n", 2))
				for range 2 {
					readResponse(t, br, "GET")
				}
				expectClose(t, br, "", idle, start)
			})
		})
	}
}

func TestLoopTLSWriteTimeoutCutsOffAStalledReader(t *testing.T) {
	const size = 20 << 20
	f, _ := testFileAt(t, t.TempDir(), size)
	// The connection is cut off not before WriteTimeout after its last
	// progress; the upper bound is the safety net of the wait.
	const wt = 300 * time.Millisecond
	// The loop's duplicate of the file is open while the body is being
	// sent, and closed when the stalled connection is cut off. The count
	// is taken on the loop when the handler has returned, before the
	// loop can cut anything off.
	files := fileRoutes(t, f, size)
	sending := make(chan int, 1)
	handler := nonBlocking{handlerFunc(func(w mrw, r *mreq) {
		files.Serve(w, r)
		sending <- openCount(t, f.Name())
	})}
	l := serveLoopTLS(t, &Server{Handler: handler, WriteTimeout: wt,
		ReadHeaderTimeout: notUnderTest, IdleTimeout: notUnderTest, HandshakeTimeout: notUnderTest})
	c, br := l.dialConfig(t, l.config("http/1.1"), 64<<10)
	start := time.Now() // before any progress of the response
	send(t, c, "GET /own HTTP/1.1\r\nHost: h\r\n\r\n")
	if n := <-sending; n != 2 {
		t.Errorf("%d descriptors on the file while the body is sent, want the test's and the loop's", n)
	}
	waitFor(t, func() bool { return openCount(t, f.Name()) == 1 })
	if elapsed := time.Since(start); elapsed < wt {
		t.Errorf("cut off after %v, want not before %v", elapsed, wt)
	}
	n, err := io.Copy(io.Discard, br)
	if n >= size {
		t.Errorf("read %d bytes, %v: want the body cut short", n, err)
	}
}

func TestLoopTLSShutdown(t *testing.T) {
	const size = 20 << 20
	f, data := testFileAt(t, t.TempDir(), size)
	// The timeouts cannot fire during the test: the idle connections can
	// only be closed by Shutdown.
	s := &Server{Handler: fileRoutes(t, f, size), HandshakeTimeout: notUnderTest,
		ReadHeaderTimeout: notUnderTest, IdleTimeout: notUnderTest}
	l := serveLoopTLS(t, s)

	// A download in flight, read slowly. (A connection in the middle of
	// its handshake: TestLoopTLSShutdownDuringHandshake.)
	dl, dlBR := l.dialConfig(t, l.config("http/1.1"), 128<<10)
	send(t, dl, "GET /file HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(dlBR, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	// An idle keep-alive connection, one that has done its handshake and
	// sent nothing, and one that has sent nothing at all.
	idle, idleBR := l.dial(t)
	send(t, idle, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	readResponse(t, idleBR, "GET")
	_, freshBR := l.dial(t)
	silent := rawDial(t, l.addr, 0)

	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(context.Background()) }()
	// At once: within the reads' safety net, far shorter than their timeouts.
	for name, r := range map[string]io.Reader{"idle": idleBR, "fresh": freshBR, "silent": silent} {
		if out, err := io.ReadAll(r); len(out) > 0 || err != nil && !isReset(err) {
			t.Errorf("%s connection: got %q, %v; want a close", name, out, err)
		}
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with a download in flight", err)
	default:
	}
	if _, err := net.DialTimeout("tcp", l.addr, hangTimeout); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dialing after Shutdown: %v, want connection refused", err)
	}

	// The download goes on to its end, then the connection closes.
	body := append(first, readBodySlowly(t, resp.Body)...)
	checkBytes(t, "download", body, data)
	if rest, err := io.ReadAll(dlBR); len(rest) > 0 || err != nil && !isReset(err) {
		t.Errorf("after the download: %q, %v; want a close", rest, err)
	}
	select {
	case err := <-shutdown:
		if err != nil {
			t.Errorf("Shutdown = %v", err)
		}
	case <-time.After(hangTimeout):
		t.Fatal("Shutdown did not return after the download")
	}
}

func TestLoopTLSShutdownDuringHandshake(t *testing.T) {
	// A connection whose handshake is under way when Shutdown begins is
	// closed at once, and its handshake goroutine ends.
	// The handshake timeout cannot end it first.
	s := &Server{Handler: nonBlocking{handlerFunc(describe)}, HandshakeTimeout: notUnderTest}
	l := serveLoopTLS(t, s)
	nc := rawDial(t, l.addr, 0)
	if _, err := nc.Write(clientHello(t, l.config("http/1.1"))[:20]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return goroutinesIn(handshakeFn) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if out, err := io.ReadAll(nc); len(out) > 0 && out[0] != 21 || err != nil && !isReset(err) {
		t.Errorf("got %q, %v; want a close", out, err)
	}
	waitFor(t, func() bool { return goroutinesIn(handshakeFn) == 0 })
}

func TestLoopTLSShutdownAnswersAHeadInProgress(t *testing.T) {
	// A head arriving when Shutdown begins is served, with
	// Connection: close, and the connection closes (loopConn.onDrain).
	for _, tc := range []struct {
		name    string
		handler func(message.Handler) message.Handler
		method  string
		rest    string // the rest of the head, and the body
	}{
		{"NonBlocking GET", handlerKinds[0].wrap, "GET", "Host: h\r\n\r\n"},
		{"mayBlock GET", handlerKinds[1].wrap, "GET", "Host: h\r\n\r\n"},
		{"NonBlocking POST", handlerKinds[0].wrap, "POST", "Host: h\r\nContent-Length: 4\r\n\r\nbody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One loop, and timeouts that cannot fire during the test.
			s := &Server{Handler: tc.handler(handlerFunc(describe)), Loops: 1,
				ReadHeaderTimeout: notUnderTest, IdleTimeout: notUnderTest}
			l := serveLoopTLS(t, s)
			// An idle connection beside the one under test: the loop
			// closes it in the same pass (netpoll's beginDrain) as it
			// tells the other that Shutdown has begun.
			_, witness := l.dial(t)
			c, br := l.dial(t)
			send(t, c, tc.method+" /p HTTP/1.1\r\n")
			waitConsumed(t, c.NetConn()) // the half head is with the loop before Shutdown
			shutdown := make(chan error, 1)
			ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
			defer cancel()
			go func() { shutdown <- s.Shutdown(ctx) }()
			expectEOF(t, witness) // Shutdown has begun on the loop
			send(t, c, tc.rest)
			resp, body := readResponse(t, br, tc.method)
			want := tc.method + ` /p tls=true sni="example.test" body=`
			if tc.method == "POST" {
				want += "body"
			}
			if body != want || !resp.Close {
				t.Errorf("got %q close=%v, want %q with Connection: close", body, resp.Close, want)
			}
			expectEOF(t, br)
			if err := <-shutdown; err != nil {
				t.Errorf("Shutdown = %v", err)
			}
		})
	}
}

func TestLoopTLSRefusedRequests(t *testing.T) {
	// The refusals of the parser table, over TLS: the answer, then a
	// close without reading the request behind.
	for _, kind := range handlerKinds {
		t.Run(kind.name, func(t *testing.T) {
			rec := &recorder{}
			l := serveLoopTLS(t, &Server{Handler: kind.wrap(rec)})
			const next = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
			for _, tc := range refusedRequests {
				c, br := l.dial(t)
				send(t, c, tc.raw+next)
				out, err := io.ReadAll(br)
				if err != nil && !isReset(err) {
					t.Errorf("%s: reading: %v", tc.name, err)
				}
				if got, want := maskDate(string(out)), errorResponse(tc.status, ""); got != want {
					t.Errorf("%s:\n%q\ngot  %q\nwant %q", tc.name, trimForLog(tc.raw), trimForLog(got), want)
				}
				c.Close()
			}
			if seen := rec.requests(); len(seen) > 0 {
				t.Errorf("the handler served %q; every request should have been refused", seen)
			}
		})
	}
}

func TestLoopTLSLingeringClose(t *testing.T) {
	// The client keeps sending after a request the server refuses: the
	// server sends its answer, close_notify and a FIN, and reads and
	// drops the rest, so that the client can read the answer.
	junk := strings.Repeat("x", 16<<10)
	for _, tc := range []struct {
		name, raw string
		status    int
	}{
		// Refused on the loop, before any handler.
		{"bad head", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
		{"bad request line", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		// Refused by the goroutine that serves a request with a body.
		{"body too large", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n", 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := serveLoopTLS(t, &Server{Handler: nonBlocking{&recorder{}}, MaxBodyBytes: 1000})
			c, br := l.dial(t)
			send(t, c, tc.raw)
			writing := make(chan struct{})
			go func() { // sends 200 KiB more, or less if the server has closed
				defer close(writing)
				for range 12 {
					if _, err := io.WriteString(c, junk); err != nil {
						return
					}
				}
			}()
			waitPeerClosed(t, c.NetConn()) // the answer and the close arrive before we read
			out, err := io.ReadAll(br)
			if got, want := maskDate(string(out)), errorResponse(tc.status, ""); got != want || err != nil {
				t.Errorf("got %q, %v; want %q and a clean close", got, err, want)
			}
			c.NetConn().Close()
			<-writing
		})
	}
}

func TestLoopTLSManyClients(t *testing.T) {
	// Connections on several loops at once, each with requests on the
	// loop and with bodies, for the race detector.
	l := serveLoopTLS(t, &Server{Handler: nonBlocking{handlerFunc(describe)}, Loops: 2})
	for i := range 16 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			c, br := l.dial(t)
			for j := range 5 {
				if j%2 == 0 {
					send(t, c, fmt.Sprintf("GET /%d/%d HTTP/1.1\r\nHost: h\r\n\r\n", i, j))
					if _, body := readResponse(t, br, "GET"); body != fmt.Sprintf(`GET /%d/%d tls=true sni="example.test" body=`, i, j) {
						t.Errorf("body %q", body)
					}
					continue
				}
				send(t, c, fmt.Sprintf("POST /%d/%d HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n%02d", i, j, j))
				if _, body := readResponse(t, br, "POST"); body != fmt.Sprintf(`POST /%d/%d tls=true sni="example.test" body=%02d`, i, j, j) {
					t.Errorf("body %q", body)
				}
			}
		})
	}
}

func TestLoopTLSOutputBound(t *testing.T) {
	// A handler on the loop that writes more than maxLoopOutput without
	// waiting is refused (errLoopOutput) rather than let it fill memory:
	// also when its Writes queue behind a file body on the TLS backlog.
	f, _ := testFileAt(t, t.TempDir(), 1<<20)
	for _, tc := range []struct {
		name      string
		fileFirst bool
	}{
		{"Writes", false},
		{"Writes behind a WriteFile", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var werr error
			wrote := 0
			done := make(chan struct{})
			l := serveLoopTLS(t, &Server{Handler: nonBlocking{handlerFunc(func(w mrw, r *mreq) {
				defer close(done)
				if tc.fileFirst {
					w.(message.FileWriter).WriteFile(f, 0, 1<<20)
				}
				chunk := make([]byte, 64<<10)
				for range 256 { // 16 MiB
					n, err := w.Write(chunk)
					wrote += n
					if err != nil {
						werr = err
						return
					}
				}
			})}})
			c, br := l.dialConfig(t, l.config("http/1.1"), 64<<10)
			send(t, c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			<-done
			if !errors.Is(werr, errLoopOutput) {
				t.Errorf("the handler wrote %d bytes, the last Write returned %v; want errLoopOutput past %d bytes",
					wrote, werr, maxLoopOutput)
			}
			io.Copy(io.Discard, br) // the partial response, then the close
		})
	}
}

func TestLoopWriteAfterLargeWriteFile(t *testing.T) {
	// A NonBlocking handler writes a file region larger than maxLoopOutput
	// and then a few bytes: they are body bytes, not queued output, and
	// must arrive, over TLS (the backlog) as over plain TCP (sendfile).
	const size = 16 << 20
	f, data := testFileAt(t, t.TempDir(), size)
	handler := nonBlocking{handlerFunc(func(w mrw, r *mreq) {
		w.Header().Set("Content-Length", strconv.Itoa(5+size+5))
		io.WriteString(w, "head;")
		if _, err := w.(message.FileWriter).WriteFile(f, 0, size); err != nil {
			t.Errorf("WriteFile: %v", err)
		}
		if _, err := io.WriteString(w, ";tail"); err != nil {
			t.Errorf("Write after WriteFile: %v", err)
		}
	})}
	want := append(append([]byte("head;"), data...), ";tail"...)
	t.Run("TLS", func(t *testing.T) {
		l := serveLoopTLS(t, &Server{Handler: handler})
		c, br := l.dialConfig(t, l.config("http/1.1"), 64<<10)
		send(t, c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatal(err)
		}
		checkBytes(t, "body", readBodySlowly(t, resp.Body), want)
	})
	t.Run("plain", func(t *testing.T) {
		addr := serve(t, &Server{Handler: handler})
		c := rawDial(t, addr, 64<<10)
		br := bufio.NewReader(c)
		send(t, c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatal(err)
		}
		checkBytes(t, "body", readBodySlowly(t, resp.Body), want)
	})
}

func TestLoopTLSCloseNotifyAfterRequest(t *testing.T) {
	// A client that sends its request and then close_notify (closing its
	// sending side) still gets its answer, then the server closes.
	for _, kind := range handlerKinds {
		t.Run(kind.name, func(t *testing.T) {
			l := serveLoopTLS(t, &Server{Handler: kind.wrap(handlerFunc(describe))})
			for _, req := range []string{
				"GET /g HTTP/1.1\r\nHost: h\r\n\r\n",
				"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody",
			} {
				c, br := l.dial(t)
				send(t, c, req)
				if err := c.CloseWrite(); err != nil {
					t.Fatal(err)
				}
				method, _, _ := strings.Cut(req, " ")
				resp, body := readResponse(t, br, method)
				if !strings.HasPrefix(body, method+" /") || resp.StatusCode != 200 {
					t.Errorf("%s: %d %q", method, resp.StatusCode, body)
				}
				expectEOF(t, br)
			}
		})
	}
}

func TestLoopTLSClientGoneMidDownload(t *testing.T) {
	// A client that goes away in the middle of a file body: the loop
	// drops the backlog and closes its duplicate of the file.
	const size = 20 << 20
	f, _ := testFileAt(t, t.TempDir(), size)
	l := serveLoopTLS(t, &Server{Handler: fileRoutes(t, f, size)})
	for _, path := range []string{"/own", "/multi"} {
		c, br := l.dialConfig(t, l.config("http/1.1"), 64<<10)
		send(t, c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n")
		if _, err := io.ReadFull(br, make([]byte, 256<<10)); err != nil {
			t.Fatal(err)
		}
		if n := openCount(t, f.Name()); n < 2 {
			t.Errorf("%s: %d descriptors on the file during the download, want the test's and the loop's", path, n)
		}
		c.NetConn().Close()
		waitFor(t, func() bool { return openCount(t, f.Name()) == 1 })
	}
}

// A GetCertificate that waits (an on-demand certificate being obtained)
// is cancelled through hello.Context() when the handshake times out, so
// that neither it nor the handshake goroutine outlives the connection.
// The cancellation comes not before HandshakeTimeout after the accept;
// the upper bound is the safety net.
func TestLoopTLSHandshakeTimeoutCancelsGetCertificate(t *testing.T) {
	const hst = 300 * time.Millisecond
	before := goleak.IgnoreCurrent()
	pki := testpki.New(t, tlsName)
	cancelled := make(chan time.Time, 1) // when the context ended; the zero time if it did not
	cfg := pki.ServerConfig("http/1.1")
	cfg.Certificates = nil
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		select {
		case <-hello.Context().Done():
			cancelled <- time.Now()
			return nil, hello.Context().Err()
		case <-time.After(2 * hangTimeout): // past the test's waits
			cancelled <- time.Time{}
			return nil, errors.New("not cancelled")
		}
	}
	s := &Server{Handler: nonBlocking{handlerFunc(describe)}, HandshakeTimeout: hst, TLSConfig: cfg}
	addr := serveLoops(t, s, before)
	start := time.Now() // before the accept, which starts the handshake's clock
	nc := rawDial(t, addr, 0)
	if _, err := nc.Write(clientHello(t, pki.ClientConfig("http/1.1"))); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(nc); err != nil && !isReset(err) {
		t.Errorf("waiting for the close: %v", err)
	}
	if at := <-cancelled; at.IsZero() || at.Sub(start) < hst {
		t.Errorf("GetCertificate's context cancelled %v after the connection (zero: never), want not before %v",
			at.Sub(start), hst)
	}
	waitFor(t, func() bool { return goroutinesIn(handshakeFn) == 0 })
}
