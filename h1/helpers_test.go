package h1

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/anx-gateway/anx/core/message"
)

// TestMain fails the run if goroutines started by the tests are still
// alive once every test has passed; serve checks each test on its own.
// With clientsEnv set, the binary is instead the client process of
// TestLoopTLSIdleMemory.
func TestMain(m *testing.M) {
	if env := os.Getenv(clientsEnv); env != "" {
		os.Exit(runIdleClients(env))
	}
	goleak.VerifyTestMain(m)
}

// serveMode is how serve runs a Server: "loop" on the event loops with
// the handler as it is (a handler that does not say it is NonBlocking
// gets every request on a goroutine: the detached path), "fast" on the
// loops with the handler declared NonBlocking (requests without content
// are served on the loop), or "goroutine" with Serve on a net.Listener.
// make test runs the package in every mode.
var serveMode = flag.String("h1.serve", "fast", "how serve runs the server: fast, loop or goroutine")

// serve starts s on loopback and returns its address. At cleanup it
// closes s, checks that it stopped cleanly and that every goroutine
// started since serve was called has ended.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	before := goleak.IgnoreCurrent()
	if *serveMode == "goroutine" {
		return serveGoroutines(t, s, before)
	}
	if _, declared := s.Handler.(message.NonBlocking); *serveMode == "fast" && s.Handler != nil && !declared {
		s.Handler = nonBlocking{s.Handler}
	}
	return serveLoops(t, s, before)
}

// timeoutsNotUnderTest sets the timeouts s leaves at zero, whose defaults
// (10 to 60 s) a slow enough machine could reach, to notUnderTest: a test
// sets the timeouts it exercises.
func timeoutsNotUnderTest(s *Server) {
	for _, d := range []*time.Duration{&s.ReadHeaderTimeout, &s.IdleTimeout, &s.WriteTimeout, &s.BodyReadTimeout, &s.HandshakeTimeout} {
		if *d == 0 {
			*d = notUnderTest
		}
	}
}

// serveLoops runs s on its event loops on loopback and returns its
// address; at cleanup it closes s and checks that every goroutine started
// since before has ended. The timeouts s leaves at zero are notUnderTest.
func serveLoops(t *testing.T, s *Server, before goleak.Option) string {
	t.Helper()
	timeoutsNotUnderTest(s)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		goleak.VerifyNone(t, before)
	})
	return s.Addr().String()
}

// nonBlocking declares a test's handler NonBlocking.
type nonBlocking struct{ message.Handler }

func (nonBlocking) NonBlocking() bool { return true }

// mayBlock declares that a test's handler blocks or streams large bodies,
// so that serve never runs it on a loop.
type mayBlock struct{ message.Handler }

func (mayBlock) NonBlocking() bool { return false }

// serveGoroutines runs s with Serve on a loopback listener. The timeouts s
// leaves at zero are notUnderTest.
func serveGoroutines(t *testing.T, s *Server, before goleak.Option) string {
	timeoutsNotUnderTest(s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		goleak.VerifyNone(t, before)
	})
	return ln.Addr().String()
}

// hangTimeout bounds every wait of a test for an event: a safety net
// against a hang, never what a test measures. It is sized for -race on a
// busy 2-core machine and for qemu emulation, where an event that comes
// at all comes long before it.
const hangTimeout = 2 * time.Minute

// notUnderTest is what a test sets the server's timeouts that it does not
// exercise to: longer than hangTimeout, so that however slow the machine,
// they cannot fire while the test waits for something else, and a close
// the test sees can only have the cause it is about.
const notUnderTest = time.Hour

// dial connects to addr; the connection is closed at cleanup and each
// read or write on it fails after hangTimeout without progress rather
// than hang (progressConn).
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, hangTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c := &progressConn{Conn: nc}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// progressConn is a test's client connection: each Read and Write fails
// after hangTimeout without progress, rather than hang, however much the
// connection carries in all. A deadline the test sets itself replaces
// that safety net.
type progressConn struct {
	net.Conn
	readDeadline, writeDeadline atomic.Int64 // set by the test, in Unix nanoseconds; 0 for none
}

func (c *progressConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(deadlineOr(&c.readDeadline))
	return c.Conn.Read(p)
}

func (c *progressConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(deadlineOr(&c.writeDeadline))
	return c.Conn.Write(p)
}

func (c *progressConn) SetDeadline(t time.Time) error {
	c.readDeadline.Store(unixNanos(t))
	c.writeDeadline.Store(unixNanos(t))
	return c.Conn.SetDeadline(t)
}

func (c *progressConn) SetReadDeadline(t time.Time) error {
	c.readDeadline.Store(unixNanos(t))
	return c.Conn.SetReadDeadline(t)
}

func (c *progressConn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline.Store(unixNanos(t))
	return c.Conn.SetWriteDeadline(t)
}

// deadlineOr returns the deadline the test set, or hangTimeout from now.
func deadlineOr(set *atomic.Int64) time.Time {
	if ns := set.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Now().Add(hangTimeout)
}

// unixNanos is t in Unix nanoseconds, 0 for the zero time (no deadline).
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// send writes raw to c.
func send(t *testing.T, c net.Conn, raw string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("writing request: %v", err)
	}
}

// readResponse reads one response (to a request of the given method) and
// its whole body.
func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	return resp, string(body)
}

// expectEOF checks that the server closes the connection without sending
// anything more.
func expectEOF(t *testing.T, br *bufio.Reader) {
	t.Helper()
	rest, err := io.ReadAll(br)
	if err != nil && !isReset(err) {
		t.Errorf("waiting for the server to close: %v", err)
	}
	if len(rest) > 0 {
		t.Errorf("server sent %q after the last response, want nothing", rest)
	}
}

// isReset reports whether err is a connection reset.
func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// exchange sends raw on a new connection and returns all the server sends
// until it closes the connection, with the Date value masked.
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, br := dial(t, addr)
	send(t, c, raw)
	out, err := io.ReadAll(br)
	if err != nil && !isReset(err) {
		t.Fatalf("reading: %v (got %q)", err, out)
	}
	return maskDate(string(out))
}

// expectExchange checks that raw, sent on a new connection, gets exactly
// want (with the Date value masked) before the server closes the
// connection.
func expectExchange(t *testing.T, addr, raw, want string) {
	t.Helper()
	if got := exchange(t, addr, raw); got != want {
		t.Errorf("%q:\ngot  %q\nwant %q", raw, got, want)
	}
}

// maskDate replaces the value of every Date field with "X".
func maskDate(s string) string {
	return dateField.ReplaceAllString(s, "Date: X\r\n")
}

var dateField = regexp.MustCompile(`Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n`)

// recorder is a handler that remembers what it served and answers with a
// description of the request.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (rec *recorder) Serve(w message.ResponseWriter, r *message.Request) {
	body, err := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.seen = append(rec.seen, r.Method+" "+r.Path)
	rec.mu.Unlock()
	if err != nil {
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, r.Method+" "+r.Path+" q="+r.RawQuery+" host="+r.Host+" body="+string(body))
}

// requests returns what the recorder served.
func (rec *recorder) requests() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.seen...)
}

// Short names for handler signatures in test tables.
type (
	mrw         = message.ResponseWriter
	mreq        = message.Request
	handlerFunc = message.HandlerFunc
)

// waitFor polls cond until it holds, failing the test after hangTimeout
// (a safety net: cond is an event the test knows will come).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(hangTimeout); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", hangTimeout)
		}
	}
}

// tcpEstablished is the ESTABLISHED state in /proc/net/tcp
// (include/net/tcp_states.h).
const tcpEstablished = 0x01

// tcpSocket is what /proc/net/tcp tells of one socket.
type tcpSocket struct {
	state   int // TCP state: tcpEstablished, 0x08 for CLOSE_WAIT...
	txQueue int // bytes sent and not yet acknowledged by the peer
	rxQueue int // bytes received and not yet read
}

// tcpTable is /proc/net/tcp as read once: the state and queues fields of
// its sockets by "local remote" address pair, written as procAddr does.
// The server's sockets and the test's are in the same network namespace.
type tcpTable map[string][2]string

// readTCPTable reads /proc/net/tcp (IPv4).
func readTCPTable(t *testing.T) tcpTable {
	t.Helper()
	raw, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	table := tcpTable{}
	for _, line := range strings.Split(string(raw), "\n")[1:] { // after the header
		if f := strings.Fields(line); len(f) >= 5 {
			table[f[1]+" "+f[2]] = [2]string{f[3], f[4]}
		}
	}
	return table
}

// from returns the socket from local to remote; ok is false when there is
// none (the table is no snapshot: a socket may be missing from one read).
func (table tcpTable) from(t *testing.T, local, remote net.Addr) (s tcpSocket, ok bool) {
	t.Helper()
	f, ok := table[procAddr(t, local)+" "+procAddr(t, remote)]
	if !ok {
		return s, false
	}
	tx, rx, _ := strings.Cut(f[1], ":")
	_, err1 := fmt.Sscanf(f[0], "%x", &s.state)
	_, err2 := fmt.Sscanf(tx, "%x", &s.txQueue)
	_, err3 := fmt.Sscanf(rx, "%x", &s.rxQueue)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatalf("/proc/net/tcp fields %q: %v", f, err)
	}
	return s, true
}

// procAddr writes an IPv4 address as /proc/net/tcp does: the address as
// a host-order (little-endian) hex word, a colon, the port in hex.
func procAddr(t *testing.T, a net.Addr) string {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil || !ap.Addr().Is4() {
		t.Fatalf("address %v: not IPv4 (%v)", a, err)
	}
	ip := ap.Addr().As4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ap.Port())
}

// waitConsumed waits until the server has read everything written on c:
// its kernel has acknowledged every byte (c's send queue is empty) and
// it has taken them all from its socket (the receive queue of the other
// end is empty). It fails at once if the connection is no longer
// established. (A socket missing from one read of /proc/net/tcp, which
// is no snapshot, is looked for again.)
func waitConsumed(t *testing.T, c net.Conn) {
	t.Helper()
	waitFor(t, func() bool {
		table := readTCPTable(t)
		client, ok1 := table.from(t, c.LocalAddr(), c.RemoteAddr())
		server, ok2 := table.from(t, c.RemoteAddr(), c.LocalAddr())
		if ok1 && client.state != tcpEstablished {
			t.Fatalf("waiting for the server to read: the connection is in TCP state %#x", client.state)
		}
		return ok1 && ok2 && client.txQueue == 0 && server.rxQueue == 0
	})
}

// waitPeerClosed waits until the server's FIN has reached c (its socket
// is in CLOSE_WAIT), and with it, in order, everything the server sent
// before; or until the socket is gone (reset), which the test's next read
// reports.
func waitPeerClosed(t *testing.T, c net.Conn) {
	t.Helper()
	waitFor(t, func() bool {
		s, ok := readTCPTable(t).from(t, c.LocalAddr(), c.RemoteAddr())
		return !ok || s.state != tcpEstablished
	})
}
