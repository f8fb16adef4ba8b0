package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/anx-gateway/anx/e2e/harness"
)

// Connection limits (issue 15): [limits] max_conns and max_conns_per_ip
// refuse a connection when it is accepted (TCP: a reset, before any read
// or TLS work) or when its first QUIC packet arrives (CONNECTION_REFUSED,
// before the handshake); a site's max_conns_per_ip refuses the TLS
// handshake with an alert when the ClientHello names the site.

// connFlood is how many connections the flood tests open, and
// floodWorkers how many are being opened at once.
const (
	connFlood    = 4000
	floodWorkers = 128
)

// startConnLimited runs anx with the admin listener, the [limits] given,
// extra [[site]] lines, and an idle timeout long enough that no held
// connection is closed during a test.
func startConnLimited(t *testing.T, limits map[string]int64, site ...string) (*harness.Server, string) {
	t.Helper()
	raiseOpenFiles(t, connFlood+1000)
	adminAddr := "127.0.0.1:" + strconv.Itoa(harness.FreeTCPPort(t))
	cfg := harness.Config{Timeouts: map[string]string{"idle": "10m"}, Limits: limits, Site: site}
	return harness.Start(t, harness.Options{Config: "admin = \"" + adminAddr + "\"\n" + cfg.TOML()}), adminAddr
}

// raiseOpenFiles raises this process's open-files limit to at least n
// (anx, started after, inherits the hard limit Go raises its own soft one
// to), or skips the test when the hard limit is lower.
func raiseOpenFiles(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("open-files hard limit %d is below the %d this test needs", lim.Max, n)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
}

// firstByteConn counts the bytes read from a connection and keeps the
// first one (a TLS record's type: 0x16 handshake, 0x15 alert).
type firstByteConn struct {
	net.Conn
	n     int
	first byte
}

func (c *firstByteConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.n == 0 {
		c.first = b[0]
	}
	c.n += n
	return n, err
}

// attempt is the outcome of one TLS connection: served (held open) or
// not, and what the client got if not.
type attempt struct {
	conn      *tls.Conn // served: open, its request answered 200
	err       error     // not served: why
	bytesRead int       // not served: what the server sent before the end
	first     byte      // not served: the first byte the server sent
}

// tlsGet opens a TLS connection from the local address from (SNI
// localhost, ALPN http/1.1), and gets /hello.txt on it.
func tlsGet(s *harness.Server, from string) attempt {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: harness.SafetyNet}
	raw, err := d.Dial("tcp", s.HTTPS)
	if err != nil {
		return attempt{err: err} // the reset can come before connect(2) returns
	}
	cc := &firstByteConn{Conn: raw}
	tc := tls.Client(cc, s.TLSConfig("http/1.1"))
	tc.SetDeadline(time.Now().Add(harness.SafetyNet))
	if err := tc.Handshake(); err != nil {
		tc.Close()
		return attempt{err: err, bytesRead: cc.n, first: cc.first}
	}
	if _, err := tc.Write([]byte("GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
		tc.Close()
		return attempt{err: err, bytesRead: cc.n}
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		tc.Close()
		return attempt{err: err, bytesRead: cc.n}
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(body) != "hello, anx\n" {
		tc.Close()
		return attempt{err: fmt.Errorf("GET /hello.txt: %d %q %v", resp.StatusCode, body, err), bytesRead: cc.n}
	}
	tc.SetDeadline(time.Time{})
	return attempt{conn: tc}
}

// resetBeforeTLS reports whether a failed attempt was closed by the
// server before it sent anything: a reset or EOF, no byte read (so no
// ServerHello).
func (a attempt) resetBeforeTLS() bool {
	return a.conn == nil && a.bytesRead == 0 &&
		(errors.Is(a.err, syscall.ECONNRESET) || errors.Is(a.err, io.EOF) || errors.Is(a.err, syscall.EPIPE))
}

// flood makes n attempts from the addresses given in turn, floodWorkers at
// once, and returns the served ones (open; closed at the test's end) and
// the count of those reset before TLS. Any other outcome fails t.
func flood(t *testing.T, s *harness.Server, n int, from ...string) (served []*tls.Conn, refused int) {
	t.Helper()
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for range floodWorkers {
		wg.Go(func() { // exits when work closes
			for addr := range work {
				a := tlsGet(s, addr)
				mu.Lock()
				switch {
				case a.conn != nil:
					served = append(served, a.conn)
				case a.resetBeforeTLS():
					refused++
				default:
					t.Errorf("connection from %s: %v after %d bytes from the server; want served, or reset before any byte", addr, a.err, a.bytesRead)
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		work <- from[i%len(from)]
	}
	close(work)
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range served {
			c.Close()
		}
	})
	return served, refused
}

// metric returns the value of one series of anx's /metrics (name with its
// labels as exposed, e.g. `x_total{reason="a"}`), 0 when absent.
func metric(t *testing.T, adminAddr, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+]+)$`)
	m := re.FindSubmatch(scrape(t, adminAddr))
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v
}

// handshakeFailures adds up anx_tls_handshake_failures_total over reasons.
func handshakeFailures(t *testing.T, adminAddr string) float64 {
	t.Helper()
	sum := 0.0
	re := regexp.MustCompile(`(?m)^anx_tls_handshake_failures_total\{[^}]*\} ([0-9.e+]+)$`)
	for _, m := range re.FindAllSubmatch(scrape(t, adminAddr), -1) {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		sum += v
	}
	return sum
}

// waitMetric polls /metrics until series has the value want (a count that
// moves as anx sees connections close), failing after SafetyNet.
func waitMetric(t *testing.T, adminAddr, series string, want float64) {
	t.Helper()
	for deadline := time.Now().Add(harness.SafetyNet); ; {
		got := metric(t, adminAddr, series)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after %v, want %v", series, got, harness.SafetyNet, want)
		}
		time.Sleep(20 * time.Millisecond) // polling a counter, not a wait for time to pass
	}
}

// httpsConns is the series of the TLS connections anx holds past their
// handshake with HTTP/1.1 on them.
const httpsConnsH1 = `anx_connections_open{proto="h1",state="open"}`

// TestConnLimitPerIP: with max_conns_per_ip = 100, 4000 connections from
// 127.0.0.1 get exactly 100 served and held; the 3900 others are reset
// before any TLS work (no byte reaches the client, and anx counts 100
// handshakes, none failed); a client from 127.0.0.2 is served meanwhile;
// once the 100 close, their address gets 100 again.
func TestConnLimitPerIP(t *testing.T) {
	s, adminAddr := startConnLimited(t, map[string]int64{"max_conns_per_ip": 100})
	served, refused := flood(t, s, connFlood, "127.0.0.1")
	if len(served) != 100 || refused != connFlood-100 {
		t.Fatalf("served %d, refused before TLS %d; want 100 and %d", len(served), refused, connFlood-100)
	}
	other, _ := flood(t, s, 10, "127.0.0.2")
	if len(other) != 10 {
		t.Errorf("127.0.0.2 while 127.0.0.1 is at its limit: %d of 10 served", len(other))
	}
	if got := metric(t, adminAddr, "anx_tls_handshakes_total"); got != 110 {
		t.Errorf("TLS handshakes: %v, want 110 (100 + 10 served, none for the refused)", got)
	}
	if got := handshakeFailures(t, adminAddr); got != 0 {
		t.Errorf("TLS handshakes failed: %v, want 0 (the refused never reached TLS)", got)
	}
	if got := metric(t, adminAddr, `anx_connections_refused_total{reason="max_conns_per_ip"}`); got != connFlood-100 {
		t.Errorf("refused by max_conns_per_ip: %v, want %d", got, connFlood-100)
	}
	t.Logf("%d connections from one address: %d served, %d reset before TLS", connFlood, len(served), refused)

	for _, c := range served {
		c.Close()
	}
	waitMetric(t, adminAddr, httpsConnsH1, 10) // the 100 released
	again, refusedAgain := flood(t, s, 101, "127.0.0.1")
	if len(again) != 100 || refusedAgain != 1 {
		t.Errorf("after the 100 closed: served %d, refused %d; want 100 and 1", len(again), refusedAgain)
	}
}

// TestConnLimitGlobal: with max_conns = 100, 4000 connections from four
// addresses get exactly 100 served; the others, whatever their address,
// are reset before TLS; a plain-HTTP connection and an HTTP/3 one count
// against the same limit and are refused too.
func TestConnLimitGlobal(t *testing.T) {
	s, adminAddr := startConnLimited(t, map[string]int64{"max_conns": 100})
	served, refused := flood(t, s, connFlood, "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
	if len(served) != 100 || refused != connFlood-100 {
		t.Fatalf("served %d, refused before TLS %d; want 100 and %d", len(served), refused, connFlood-100)
	}
	if got := metric(t, adminAddr, "anx_tls_handshakes_total"); got != 100 {
		t.Errorf("TLS handshakes: %v, want 100", got)
	}
	if got := handshakeFailures(t, adminAddr); got != 0 {
		t.Errorf("TLS handshakes failed: %v, want 0", got)
	}

	plain, err := net.DialTimeout("tcp", s.HTTP, harness.SafetyNet)
	switch {
	case errors.Is(err, syscall.ECONNRESET): // reset before connect(2) returned
	case err != nil:
		t.Errorf("plain HTTP at the global limit: %v, want a reset", err)
	default:
		got, closed, err := harness.Exchange(plain, []byte("GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"), harness.SafetyNet)
		plain.Close()
		if len(got) != 0 || !closed {
			t.Errorf("plain HTTP at the global limit: got %q, closed %v, %v; want closed with nothing", got, closed, err)
		}
	}
	if err := quicDialFrom(t, s, "127.0.0.5"); !isConnectionRefused(err) {
		t.Errorf("HTTP/3 at the global limit: %v, want CONNECTION_REFUSED", err)
	}
	if got := metric(t, adminAddr, `anx_connections_refused_total{reason="max_conns"}`); got < connFlood-100+2 {
		t.Errorf("refused by max_conns: %v, want at least %d", got, connFlood-100+2)
	}
	t.Logf("%d connections from 4 addresses: %d served, %d reset before TLS", connFlood, len(served), refused)
}

// h3From returns an HTTP/3 client whose QUIC packets leave from the local
// address from; it is closed at the test's end.
func h3From(t *testing.T, s *harness.Server, from string) *http.Client {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(from, "0"))
	if err != nil {
		t.Fatal(err)
	}
	qt := &quic.Transport{Conn: pc}
	rt := &http3.Transport{
		TLSClientConfig: s.TLSConfig(http3.NextProtoH3),
		QUICConfig:      &quic.Config{HandshakeIdleTimeout: harness.SafetyNet, MaxIdleTimeout: harness.SafetyNet},
		Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			udp, err := net.ResolveUDPAddr("udp", s.HTTPS)
			if err != nil {
				return nil, err
			}
			return qt.DialEarly(ctx, udp, tc, qc)
		},
	}
	t.Cleanup(func() {
		rt.Close()
		qt.Close()
		pc.Close()
	})
	return &http.Client{Transport: rt, Timeout: harness.RequestTimeout}
}

// h3Get gets /hello.txt over HTTP/3 with c.
func h3Get(s *harness.Server, c *http.Client) error {
	resp, err := c.Get("https://localhost:" + strconv.Itoa(s.HTTPSPort) + "/hello.txt")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || string(body) != "hello, anx\n" {
		return fmt.Errorf("GET /hello.txt over h3: %d %q %v", resp.StatusCode, body, err)
	}
	return nil
}

// quicDialFrom opens a QUIC connection from the local address from and closes
// it, returning the dial's error. The handshake timeout is SafetyNet, so a
// refusal that did not come would show as a timeout error, not as
// CONNECTION_REFUSED.
func quicDialFrom(t *testing.T, s *harness.Server, from string) error {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(from, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	qt := &quic.Transport{Conn: pc}
	defer qt.Close()
	udp, err := net.ResolveUDPAddr("udp", s.HTTPS)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), harness.SafetyNet)
	defer cancel()
	c, err := qt.Dial(ctx, udp, s.TLSConfig(http3.NextProtoH3), &quic.Config{HandshakeIdleTimeout: harness.SafetyNet})
	if err == nil {
		c.CloseWithError(0, "")
	}
	return err
}

// isConnectionRefused reports whether err is QUIC's CONNECTION_REFUSED
// from the server.
func isConnectionRefused(err error) bool {
	var te *quic.TransportError
	return errors.As(err, &te) && te.ErrorCode == quic.ConnectionRefused && te.Remote
}

// TestConnLimitH3: TCP and QUIC connections count against the same
// max_conns_per_ip: with 2 TLS and 2 HTTP/3 connections held from
// 127.0.0.1 and a limit of 4, a further HTTP/3 connection from there is
// refused with CONNECTION_REFUSED (an error at once, not a timeout) and a
// further TCP one is reset; 127.0.0.2 is served over HTTP/3; when an
// HTTP/3 connection closes, its place is free for a TCP one.
func TestConnLimitH3(t *testing.T) {
	s, adminAddr := startConnLimited(t, map[string]int64{"max_conns_per_ip": 4})
	tcp, _ := flood(t, s, 2, "127.0.0.1")
	if len(tcp) != 2 {
		t.Fatalf("%d of 2 TLS connections served", len(tcp))
	}
	h3a, h3b := h3From(t, s, "127.0.0.1"), h3From(t, s, "127.0.0.1")
	for _, c := range []*http.Client{h3a, h3b} {
		if err := h3Get(s, c); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	err := quicDialFrom(t, s, "127.0.0.1")
	if !isConnectionRefused(err) {
		t.Fatalf("fifth connection from 127.0.0.1 over HTTP/3: %v, want CONNECTION_REFUSED", err)
	}
	t.Logf("HTTP/3 refusal came after %v", time.Since(start))
	if a := tlsGet(s, "127.0.0.1"); !a.resetBeforeTLS() {
		t.Errorf("fifth connection from 127.0.0.1 over TCP: served %v, %v; want a reset before TLS", a.conn != nil, a.err)
	}
	if err := h3Get(s, h3From(t, s, "127.0.0.2")); err != nil {
		t.Errorf("127.0.0.2 over HTTP/3: %v", err)
	}

	h3a.Transport.(*http3.Transport).Close() // its connection ends: a place is free
	waitMetric(t, adminAddr, `anx_connections_open{proto="h3",state="open"}`, 2)
	for deadline := time.Now().Add(harness.SafetyNet); ; {
		// The h3 count drops when http3 is done with the connection; the
		// limiter's release follows when quic-go cancels its context.
		a := tlsGet(s, "127.0.0.1")
		if a.conn != nil {
			a.conn.Close()
			break
		}
		if !a.resetBeforeTLS() || time.Now().After(deadline) {
			t.Fatalf("after an HTTP/3 connection closed, TCP from 127.0.0.1: %v", a.err)
		}
		time.Sleep(20 * time.Millisecond) // waiting for the release, polled
	}
}

// TestConnLimitReload: SIGHUP applies new limits to new connections and
// keeps the count of those open: 10 held at a limit of 10; raised to 20, 10
// more are served and the 21st refused; lowered to 5, the 20 stay open and
// served, and a new one is refused.
func TestConnLimitReload(t *testing.T) {
	s, _ := startConnLimited(t, map[string]int64{"max_conns_per_ip": 10})
	first, refused := flood(t, s, 11, "127.0.0.1")
	if len(first) != 10 || refused != 1 {
		t.Fatalf("limit 10: served %d, refused %d; want 10 and 1", len(first), refused)
	}
	running, err := os.ReadFile(s.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	config := func(perIP int) string {
		return strings.Replace(string(running), "max_conns_per_ip = 10\n", "max_conns_per_ip = "+strconv.Itoa(perIP)+"\n", 1)
	}
	if line := s.Reload(t, config(20)); !strings.Contains(line, "msg=reloaded") {
		t.Fatalf("reload to 20: %s", line)
	}
	more, refused := flood(t, s, 11, "127.0.0.1")
	if len(more) != 10 || refused != 1 {
		t.Fatalf("raised to 20 with 10 open: served %d, refused %d; want 10 and 1", len(more), refused)
	}
	if line := s.Reload(t, config(5)); !strings.Contains(line, "msg=reloaded") {
		t.Fatalf("reload to 5: %s", line)
	}
	if a := tlsGet(s, "127.0.0.1"); !a.resetBeforeTLS() {
		t.Errorf("lowered to 5 with 20 open: a new connection got %v, %v; want a reset", a.conn != nil, a.err)
	}
	for i, c := range append(first, more...) {
		c.SetDeadline(time.Now().Add(harness.SafetyNet))
		if _, err := c.Write([]byte("GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
			t.Fatalf("held connection %d after lowering: %v", i, err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("held connection %d after lowering: %v", i, err)
		}
		resp.Body.Close()
	}
	if strings.Contains(s.Stderr(), `key=limits`) {
		t.Errorf("the reload logged [limits] as restart-only:\n%s", s.Stderr())
	}
}

// TestConnLimitSite: a site's max_conns_per_ip = 3 refuses the fourth
// handshake from one address that names the site, with a TLS alert as the
// server's first record (no ServerHello), counted by the site's reason; a
// client from another address is served.
func TestConnLimitSite(t *testing.T) {
	s, adminAddr := startConnLimited(t, nil, "max_conns_per_ip = 3")
	served, _ := flood(t, s, 3, "127.0.0.1")
	if len(served) != 3 {
		t.Fatalf("%d of 3 served", len(served))
	}
	a := tlsGet(s, "127.0.0.1")
	if a.conn != nil {
		a.conn.Close()
		t.Fatal("a fourth connection naming the site was served")
	}
	const alertRecord = 0x15
	if a.first != alertRecord || !strings.Contains(a.err.Error(), "remote error: tls") {
		t.Errorf("fourth connection: %v, first byte from the server %#x; want a TLS alert record (0x15) and no ServerHello", a.err, a.first)
	}
	if got := metric(t, adminAddr, `anx_connections_refused_total{reason="site_max_conns_per_ip"}`); got != 1 {
		t.Errorf("refused by the site's max_conns_per_ip: %v, want 1", got)
	}
	if other, _ := flood(t, s, 3, "127.0.0.2"); len(other) != 3 {
		t.Errorf("127.0.0.2: %d of 3 served", len(other))
	}
}
