package onloop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/internal/testpki"
)

// hangTimeout is the safety net of every wait: no test run reaches it
// unless something is broken.
const hangTimeout = time.Minute

// testName is the test certificate's name, the clients' SNI.
const testName = "example.test"

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lineProto is the test's Protocol: each line it reads is a command (see
// command), answered with lines that start with its name; an incomplete
// line stays with the layer until the rest comes. It stops reading while
// its output is backed up and goes on in OnWritable, as a real protocol
// does. Its fields are set before the loops start, except the counters.
type lineProto struct {
	name    string
	preface bool     // the connections start with Preface (h2c)
	file    *os.File // what "file" sends
	size    int64

	afterLinger atomic.Int32 // lines read after a lingering close began
	closed      chan error   // OnClose's errors, when not nil
}

// lineConn is a lineProto's state of one connection.
type lineConn struct {
	prefaceSeen bool
	lingering   bool
	detaching   bool
}

func (p *lineProto) OnOpen(c *Conn) {
	c.SetContext(&lineConn{})
	c.Net().SetTimeout(hangTimeout)
}

func (p *lineProto) OnRead(c *Conn, in []byte) int {
	lc := c.Context().(*lineConn)
	consumed := 0
	if p.preface && !lc.prefaceSeen {
		if !bytes.HasPrefix(in, []byte(Preface)) {
			p.write(c, "no preface: %q", in)
			c.Close()
			return len(in)
		}
		lc.prefaceSeen = true
		consumed = len(Preface)
		p.write(c, "preface")
	}
	for c.Buffered() == 0 && !c.Net().Closed() && !c.Lingering() && !lc.detaching {
		line := in[consumed:]
		i := bytes.IndexByte(line, '\n')
		if i < 0 {
			break
		}
		if lc.lingering {
			p.afterLinger.Add(1)
		}
		consumed += i + 1
		p.command(c, lc, string(line[:i]))
	}
	if c.Buffered() > 0 && !c.Net().Closed() && !c.Lingering() {
		c.Pause() // OnWritable resumes
	}
	return consumed
}

// command runs one command line:
//
//	echo X       answers "name: X"
//	info         answers the connection's TLS facts
//	file         answers "file", the file, "end"
//	file-close   the same, then closes
//	detach       serves the next line on a goroutine (Detach, Attach)
//	linger       answers "bye", then closes with a lingering close
func (p *lineProto) command(c *Conn, lc *lineConn, line string) {
	cmd, arg, _ := strings.Cut(line, " ")
	switch cmd {
	case "echo":
		p.write(c, "%s", arg)
	case "info":
		p.write(c, "tls=%v sni=%q alpn=%q", c.TLS(), c.ServerName(), c.ALPN())
	case "file", "file-close":
		p.write(c, "file")
		if err := c.SendFile(p.file, 0, p.size); err != nil {
			p.write(c, "SendFile: %v", err)
		}
		c.Write([]byte("end\n"))
		if cmd == "file-close" {
			c.Close()
		}
	case "detach":
		lc.detaching = true
		c.Pause()
		c.Net().Submit(func() { p.detach(c) })
	case "linger":
		p.write(c, "bye")
		lc.lingering = true
		c.CloseWrite()
	default:
		p.write(c, "unknown %q", line)
	}
}

// detach serves one line on a goroutine with blocking I/O, then gives the
// connection back to the loop, which answers "back".
func (p *lineProto) detach(c *Conn) {
	nc, err := c.Detach()
	if err != nil {
		p.write(c, "Detach: %v", err)
		return
	}
	go func() { // exits once the connection is back on the loop
		fmt.Fprintf(nc, "%s: detached\n", p.name)
		nc.SetReadDeadline(time.Now().Add(hangTimeout))
		line, err := bufio.NewReaderSize(nc, 16).ReadString('\n') // reads no further than the line: nothing after it is sent yet
		if err != nil {
			nc.Close()
			return
		}
		fmt.Fprintf(nc, "%s: off the loop: %s", p.name, line)
		c.Attach(nc, func() {
			c.Context().(*lineConn).detaching = false
			p.write(c, "back")
		})
	}()
}

// write sends one answer line.
func (p *lineProto) write(c *Conn, format string, args ...any) {
	c.Write([]byte(p.name + ": " + fmt.Sprintf(format, args...) + "\n"))
}

func (p *lineProto) OnWritable(c *Conn) { c.Resume() }
func (p *lineProto) OnTimeout(c *Conn)  { c.Net().Timeout() }
func (p *lineProto) OnHangup(c *Conn)   {}
func (p *lineProto) OnDrain(c *Conn)    { c.Close() }
func (p *lineProto) OnClose(c *Conn, err error) {
	if p.closed != nil {
		p.closed <- err
	}
}

// start runs h on loops loops on loopback and returns the server; at
// cleanup it closes every connection and checks that every goroutine
// started since has ended.
func start(t *testing.T, h *Handler, loops int) *netpoll.Server {
	t.Helper()
	before := goleak.IgnoreCurrent()
	srv := &netpoll.Server{Handler: h, Loops: loops}
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	h.Prepare(srv)
	if err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // close what is left at once
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown: %v", err)
		}
		goleak.VerifyNone(t, before)
	})
	return srv
}

// client is a test's connection, plain or TLS, with a reader of its
// answers.
type client struct {
	net.Conn
	raw net.Conn // the TCP connection under Conn
	br  *bufio.Reader
}

// dialRaw opens a TCP connection to srv, closed at cleanup, whose reads
// and writes fail after hangTimeout.
func dialRaw(t *testing.T, srv *netpoll.Server) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", srv.Addr().String(), hangTimeout)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(hangTimeout))
	t.Cleanup(func() { nc.Close() })
	return nc
}

// dialPlain opens a plain connection to srv.
func dialPlain(t *testing.T, srv *netpoll.Server) *client {
	nc := dialRaw(t, srv)
	return &client{Conn: nc, raw: nc, br: bufio.NewReader(nc)}
}

// dialTLS opens a TLS connection to srv with cfg and completes the
// handshake.
func dialTLS(t *testing.T, srv *netpoll.Server, cfg *tls.Config) *client {
	t.Helper()
	nc := dialRaw(t, srv)
	c := tls.Client(nc, cfg)
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return &client{Conn: c, raw: nc, br: bufio.NewReader(c)}
}

// send writes s.
func (c *client) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// expect reads a line and checks it is want.
func (c *client) expect(t *testing.T, want string) {
	t.Helper()
	line, err := c.br.ReadString('\n')
	if err != nil || line != want+"\n" {
		t.Fatalf("read %q, %v; want %q", line, err, want)
	}
}

// expectEOF checks that the server closed after what was read.
func (c *client) expectEOF(t *testing.T) {
	t.Helper()
	if rest, err := io.ReadAll(c.br); len(rest) > 0 || err != nil {
		t.Fatalf("read %q, %v; want EOF", rest, err)
	}
}

func TestPlainAndPriorKnowledge(t *testing.T) {
	h := &Handler{Plain: &lineProto{name: "plain"}, PriorKnowledge: &lineProto{name: "h2c", preface: true}}
	srv := start(t, h, 1)

	c := dialPlain(t, srv)
	c.send(t, "echo a\ninfo\n")
	c.expect(t, "plain: a")
	c.expect(t, `plain: tls=false sni="" alpn=""`)

	// The preface in two parts: the layer waits for the rest to choose.
	c = dialPlain(t, srv)
	c.send(t, Preface[:7])
	c.send(t, Preface[7:]+"echo b\n")
	c.expect(t, "h2c: preface")
	c.expect(t, "h2c: b")

	// A first line that parts from the preface after a common prefix.
	c = dialPlain(t, srv)
	c.send(t, "PRI")
	c.send(t, "nt\necho c\n")
	c.expect(t, `plain: unknown "PRInt"`)
	c.expect(t, "plain: c")

	// A first line that is no HTTP/1.x (its version is not HTTP/ in any
	// case) goes to HTTP/2 as a bad preface; a malformed HTTP/1.x one
	// stays with Plain.
	c = dialPlain(t, srv)
	c.send(t, "INVALID CONNECTION PREFACE\r\n\r\n")
	c.expect(t, `h2c: no preface: "INVALID CONNECTION PREFACE\r\n\r\n"`)
	c = dialPlain(t, srv)
	c.send(t, "GET / http/1.1\r\n")
	c.expect(t, `plain: unknown "GET / http/1.1\r"`)
}

func TestPlainOnly(t *testing.T) {
	// Without PriorKnowledge there is nothing to choose: Plain has the
	// connection at once, before it sends anything, and the preface is
	// its business.
	opened := make(chan struct{})
	p := &openedProto{lineProto: lineProto{name: "plain"}, opened: opened}
	srv := start(t, &Handler{Plain: p}, 1)
	c := dialPlain(t, srv)
	select {
	case <-opened:
	case <-time.After(hangTimeout):
		t.Fatal("Plain was not given the connection before its first bytes")
	}
	c.send(t, Preface+"echo x\n")
	c.expect(t, `plain: unknown "PRI * HTTP/2.0\r"`)
}

// openedProto is a lineProto that tells of each OnOpen.
type openedProto struct {
	lineProto
	opened chan struct{}
}

func (p *openedProto) OnOpen(c *Conn) {
	p.lineProto.OnOpen(c)
	p.opened <- struct{}{}
}

// tlsHandler returns a Handler with TLS, offering protos by ALPN, and
// the PKI of its certificate.
func tlsHandler(t *testing.T, protos ...string) (*Handler, *testpki.PKI) {
	pki := testpki.New(t, testName)
	return &Handler{TLSConfig: pki.ServerConfig(protos...), HandshakeTimeout: hangTimeout}, pki
}

func TestTLSALPN(t *testing.T) {
	h, pki := tlsHandler(t, "x", "d", "h2", "http/1.1")
	h.Protocols = map[string]Protocol{"http/1.1": &lineProto{name: "h1"}, "x": &lineProto{name: "x"}}
	type seen struct {
		complete bool
		alpn     string
		sni      string
		line     string
	}
	detached := make(chan seen, 1)
	h.Detached = map[string]func(*tls.Conn){
		"d": func(tc *tls.Conn) {
			defer tc.Close()
			st := tc.ConnectionState()
			s := seen{complete: st.HandshakeComplete, alpn: st.NegotiatedProtocol, sni: st.ServerName}
			tc.SetDeadline(time.Now().Add(hangTimeout))
			s.line, _ = bufio.NewReader(tc).ReadString('\n')
			io.WriteString(tc, "d: "+s.line)
			detached <- s
		},
		"http/1.1": func(tc *tls.Conn) { t.Error("Detached http/1.1 was used") },
	}
	srv := start(t, h, 1)
	for _, tc := range []struct {
		name   string
		protos []string
		max    uint16
		want   string // the protocol that answers
		alpn   string
	}{
		{"http/1.1", []string{"http/1.1"}, 0, "h1", "http/1.1"},
		{"x", []string{"x", "http/1.1"}, 0, "x", "x"},
		{"x over TLS 1.2", []string{"x"}, tls.VersionTLS12, "x", "x"},
		{"no ALPN", nil, 0, "h1", ""},
		{"h2 without a protocol", []string{"h2"}, 0, "h1", "h2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pki.ClientConfig(tc.protos...)
			cfg.MaxVersion = tc.max
			c := dialTLS(t, srv, cfg)
			// At once after the handshake: in TLS 1.3 it may come with
			// the client's Finished.
			c.send(t, "echo hi\ninfo\n")
			c.expect(t, tc.want+": hi")
			c.expect(t, fmt.Sprintf("%s: tls=true sni=%q alpn=%q", tc.want, testName, tc.alpn))
		})
	}
	for _, max := range []uint16{0, tls.VersionTLS12} {
		t.Run(fmt.Sprintf("Detached, max version %#x", max), func(t *testing.T) {
			cfg := pki.ClientConfig("d")
			cfg.MaxVersion = max
			c := dialTLS(t, srv, cfg)
			c.send(t, "to the goroutine\n")
			c.expect(t, "d: to the goroutine")
			c.expectEOF(t)
			want := seen{complete: true, alpn: "d", sni: testName, line: "to the goroutine\n"}
			if s := <-detached; s != want {
				t.Errorf("the Detached protocol saw %+v, want %+v", s, want)
			}
		})
	}
}

func TestTLSKeepsUnconsumedPlaintext(t *testing.T) {
	h, pki := tlsHandler(t, "http/1.1")
	h.Protocols = map[string]Protocol{"http/1.1": &lineProto{name: "h1"}}
	srv := start(t, h, 1)
	c := dialTLS(t, srv, pki.ClientConfig("http/1.1"))
	// The first record ends in the middle of a line: the answer to its
	// complete line shows that the server has read it, and kept the rest
	// (the protocol consumed only the complete line).
	c.send(t, "echo one\nech")
	c.expect(t, "h1: one")
	c.send(t, "o two\n")
	c.expect(t, "h1: two")
	// A line over several records (16 KiB of plaintext each), in parts.
	long := strings.Repeat("a", 40<<10)
	c.send(t, "echo "+long[:20<<10])
	c.send(t, long[20<<10:]+"\necho three\n")
	c.expect(t, "h1: "+long)
	c.expect(t, "h1: three")
}

// clientHelloStart returns the first bytes of a ClientHello, which start
// a handshake that then waits for the rest.
func clientHelloStart(t *testing.T, cfg *tls.Config) []byte {
	t.Helper()
	client, server := net.Pipe()
	go func() { // exits when the pipe closes
		tls.Client(client, cfg).Handshake()
	}()
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(server, buf, 10)
	server.Close()
	client.Close()
	if err != nil || buf[0] != 22 {
		t.Fatalf("read %x, %v; want the start of a ClientHello", buf[:n], err)
	}
	return buf[:10]
}

// onLoop runs f on loop 0 of srv and waits for it.
func onLoop(t *testing.T, srv *netpoll.Server, f func()) {
	t.Helper()
	done := make(chan struct{})
	if err := srv.Loop(0).Submit(func() { f(); close(done) }); err != nil {
		t.Fatal(err)
	}
	<-done
}

// waitLoopState waits until cond, read on loop 0, holds.
func waitLoopState(t *testing.T, srv *netpoll.Server, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	for {
		var ok bool
		onLoop(t, srv, func() { ok = cond() })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling a counter, not a wait for time to pass
	}
}

func TestMaxHandshakes(t *testing.T) {
	h, pki := tlsHandler(t, "http/1.1")
	h.Protocols = map[string]Protocol{"http/1.1": &lineProto{name: "h1"}}
	h.MaxHandshakes = 1
	srv := start(t, h, 1)
	st := &h.states[0]

	// A client that sends the start of its ClientHello and stops takes
	// the only slot (its handshake goroutine waits for the rest).
	holder := dialRaw(t, srv)
	if _, err := holder.Write(clientHelloStart(t, pki.ClientConfig())); err != nil {
		t.Fatal(err)
	}
	waitLoopState(t, srv, "the first handshake to take the slot", func() bool { return st.handshakes == 1 })

	// A second client waits, paused, with its ClientHello unanswered.
	done := make(chan *client, 1)
	go func() { // exits when its handshake ends: cleanup closes the connection at the latest
		nc, err := net.DialTimeout("tcp", srv.Addr().String(), hangTimeout)
		if err != nil {
			done <- nil
			return
		}
		nc.SetDeadline(time.Now().Add(hangTimeout))
		c := tls.Client(nc, pki.ClientConfig("http/1.1"))
		if c.Handshake() != nil {
			nc.Close()
			done <- nil
			return
		}
		done <- &client{Conn: c, raw: nc, br: bufio.NewReader(c)}
	}()
	waitLoopState(t, srv, "the second handshake to wait", func() bool { return len(st.waiting) == 1 })
	select {
	case <-done:
		t.Fatal("the second handshake ended while the only slot was taken")
	default:
	}
	onLoop(t, srv, func() {
		if st.handshakes != 1 {
			t.Errorf("%d handshakes in flight with MaxHandshakes 1", st.handshakes)
		}
	})

	// The first client goes: the second one's handshake goes on.
	holder.Close()
	c := <-done
	if c == nil {
		t.Fatal("the second handshake failed once the slot was free")
	}
	defer c.Close()
	c.send(t, "echo after\n")
	c.expect(t, "h1: after")
	waitLoopState(t, srv, "every slot to be free", func() bool { return st.handshakes == 0 && len(st.waiting) == 0 })
}

func TestHandshakeTimeout(t *testing.T) {
	h, pki := tlsHandler(t, "http/1.1")
	h.Protocols = map[string]Protocol{"http/1.1": &lineProto{name: "h1"}}
	h.HandshakeTimeout = 100 * time.Millisecond
	srv := start(t, h, 1)
	for _, tc := range []struct {
		name  string
		first []byte
	}{
		{"silent", nil},
		{"half a ClientHello", clientHelloStart(t, pki.ClientConfig())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			began := time.Now()
			nc := dialRaw(t, srv)
			if _, err := nc.Write(tc.first); err != nil {
				t.Fatal(err)
			}
			if n, err := nc.Read(make([]byte, 1)); err == nil {
				t.Fatalf("read %d bytes, want the connection closed", n)
			} else if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the handshake did not time out")
			}
			if took := time.Since(began); took < h.HandshakeTimeout {
				t.Errorf("closed after %v, before the HandshakeTimeout of %v", took, h.HandshakeTimeout)
			}
		})
	}
}

// alertCounter counts the TLS records of type alert (21) read through it:
// in TLS 1.2 the record type of an encrypted alert is in the clear.
type alertCounter struct {
	net.Conn
	header [5]byte // of the record being read
	have   int     // header bytes read
	skip   int     // body bytes of the record still to pass
	alerts int
}

func (a *alertCounter) Read(p []byte) (int, error) {
	n, err := a.Conn.Read(p)
	for b := p[:n]; len(b) > 0; {
		if a.skip > 0 {
			k := min(a.skip, len(b))
			a.skip -= k
			b = b[k:]
			continue
		}
		k := copy(a.header[a.have:], b)
		a.have += k
		b = b[k:]
		if a.have == len(a.header) {
			if a.header[0] == 21 {
				a.alerts++
			}
			a.skip = int(a.header[3])<<8 | int(a.header[4])
			a.have = 0
		}
	}
	return n, err
}

// testFile writes size bytes to a new file and returns it open, and its
// contents.
func testFile(t *testing.T, size int) (*os.File, []byte) {
	t.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i>>10)
	}
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}

func TestTLSFileBacklog(t *testing.T) {
	// File bodies go through the backlog's pump, the bytes written after
	// them wait their turn, the line pipelined behind waits (paused)
	// until the backlog has gone out, and a Close after a file body
	// sends the whole body, then close_notify. The larger file is more
	// than the socket buffers hold, so the pump has to wait for the
	// client; the smaller one goes at once.
	for _, size := range []int{5000, 8 << 20} {
		f, data := testFile(t, size)
		h, pki := tlsHandler(t, "http/1.1")
		h.Protocols = map[string]Protocol{"http/1.1": &lineProto{name: "h1", file: f, size: int64(size)}}
		srv := start(t, h, 1)
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			for _, max := range []uint16{0, tls.VersionTLS12} {
				cfg := pki.ClientConfig("http/1.1")
				cfg.MaxVersion = max
				raw := dialRaw(t, srv)
				counter := &alertCounter{Conn: raw}
				tc := tls.Client(counter, cfg)
				c := &client{Conn: tc, raw: raw, br: bufio.NewReader(tc)}
				c.send(t, "file\necho behind\nfile-close\n")
				// No count of alerts here: crypto/tls reads ahead of the
				// record it returns, so the close_notify of a small answer
				// may already be counted. The count at EOF says that it
				// was the only alert (an early one would make two, or fail
				// the reads).
				c.expectFile(t, data)
				c.expect(t, "h1: behind")
				c.expectFile(t, data)
				c.expectEOF(t)
				if max == tls.VersionTLS12 && counter.alerts != 1 {
					t.Errorf("%d alert records before EOF, want 1 (close_notify)", counter.alerts)
				}
			}
		})
	}
}

// expectFile reads the answer to "file": its line, the file, "end".
func (c *client) expectFile(t *testing.T, data []byte) {
	t.Helper()
	c.expect(t, "h1: file")
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c.br, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the file body: %v, or its bytes differ", err)
	}
	c.expect(t, "end")
}

func TestDetachAttach(t *testing.T) {
	h, pki := tlsHandler(t, "http/1.1")
	h.Protocols = map[string]Protocol{"http/1.1": &lineProto{name: "tls"}}
	tlsSrv := start(t, h, 1)
	plainSrv := start(t, &Handler{Plain: &lineProto{name: "plain"}}, 1)
	for _, tc := range []struct {
		name string
		dial func() *client
	}{
		{"plain", func() *client { return dialPlain(t, plainSrv) }},
		{"tls", func() *client { return dialTLS(t, tlsSrv, pki.ClientConfig("http/1.1")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.dial()
			for range 2 { // and back, twice
				c.send(t, "detach\n")
				c.expect(t, tc.name+": detached")
				c.send(t, "a line\n")
				c.expect(t, tc.name+": off the loop: a line")
				c.expect(t, tc.name+": back")
				c.send(t, "echo on the loop\n")
				c.expect(t, tc.name+": on the loop")
			}
		})
	}
}

func TestCloseWriteLingers(t *testing.T) {
	h, pki := tlsHandler(t, "http/1.1")
	tlsProto := &lineProto{name: "tls", closed: make(chan error, 1)}
	h.Protocols = map[string]Protocol{"http/1.1": tlsProto}
	tlsSrv := start(t, h, 1)
	plainProto := &lineProto{name: "plain", closed: make(chan error, 1)}
	plainSrv := start(t, &Handler{Plain: plainProto}, 1)
	for _, tc := range []struct {
		name  string
		proto *lineProto
		dial  func() *client
	}{
		{"plain", plainProto, func() *client { return dialPlain(t, plainSrv) }},
		{"TLS", tlsProto, func() *client { return dialTLS(t, tlsSrv, pki.ClientConfig("http/1.1")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.dial()
			// The lines behind "linger" are not answered, and those that
			// come after the server's FIN are read and dropped: the
			// connection stays open until the client's FIN.
			c.send(t, "linger\necho dropped\n")
			c.expect(t, tc.proto.name+": bye")
			c.expectEOF(t)
			fin := time.Now()
			late := strings.Repeat("echo late\n", 1000)
			if _, err := io.WriteString(c.raw, late); err != nil {
				t.Fatalf("writing after the server's FIN: %v", err)
			}
			c.raw.(*net.TCPConn).CloseWrite()
			// The server closes at the client's FIN, or at LingerTimeout
			// if this machine took that long to get here.
			if err := <-tc.proto.closed; err != io.EOF && time.Since(fin) < LingerTimeout {
				t.Errorf("OnClose got %v before LingerTimeout, want EOF (the client's FIN)", err)
			}
			if n := tc.proto.afterLinger.Load(); n != 0 {
				t.Errorf("%d lines read after the lingering close began", n)
			}
		})
	}
}
