package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
)

// slowHead writes head to c one byte per interval (then 'a's, forever) and
// watches for the server to close: it returns how long after start the
// close was seen, or cut false if limit passed first. A close is an EOF,
// or a reset (ECONNRESET) or a broken pipe (EPIPE, writing after the
// server's close); any other error is returned as err, with cut false.
// Any response bytes (a 408, say) are read and ignored.
func slowHead(c net.Conn, head []byte, start time.Time, interval, limit time.Duration) (took time.Duration, cut bool, err error) {
	buf := make([]byte, 512)
	for i := 0; time.Since(start) < limit; i++ {
		b := byte('a')
		if i < len(head) {
			b = head[i]
		}
		// The write's deadline is only the trickle's end: a one-byte
		// write never fills the socket, and a deadline of one interval
		// failed it when a loaded machine ran this goroutine late.
		_ = c.SetWriteDeadline(start.Add(limit))
		if _, err := c.Write([]byte{b}); err != nil {
			return time.Since(start), isClose(err), unlessClose(err)
		}
		next := time.Now().Add(interval)
		for {
			_ = c.SetReadDeadline(next)
			_, err := c.Read(buf)
			if err == nil {
				continue
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			return time.Since(start), isClose(err), unlessClose(err)
		}
	}
	return time.Since(start), false, nil
}

// isClose reports whether err is how a client sees the server close the
// connection: EOF, ECONNRESET or EPIPE.
func isClose(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// unlessClose returns err unless it is a close (isClose).
func unlessClose(err error) error {
	if isClose(err) {
		return nil
	}
	return err
}

// slowHeadText is a request head that never ends.
const slowHeadText = "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Slow: "

// cutOffLimit is the safety net of the tests whose subject is a timeout of
// a few seconds: the cut must come, but a slow machine may bring it late.
const cutOffLimit = time.Minute

// TestSlowHeaderCutOff: with read_header = 2s, a client sending its head
// one byte per second is cut off, over TLS and plain: not before 2s after
// it started connecting (the server's clock starts at the earliest there),
// and within the safety net cutOffLimit.
func TestSlowHeaderCutOff(t *testing.T) {
	t.Parallel()
	const readHeader = 2 * time.Second
	s := harness.Start(t, harness.Options{Config: harness.Config{
		HTTPMode: "serve", Timeouts: map[string]string{"read_header": readHeader.String()}}.TOML()})
	var wg sync.WaitGroup
	for _, name := range []string{"tls", "plain"} {
		wg.Go(func() {
			start := time.Now()
			c, err := s.Dial(name)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			took, cut, err := slowHead(c, []byte(slowHeadText), start, time.Second, cutOffLimit)
			switch {
			case err != nil:
				t.Errorf("%s: slow head (1 byte/s, read_header %v): %v after %v, want EOF or a reset", name, readHeader, err, took.Round(time.Millisecond))
			case !cut:
				t.Errorf("%s: slow head (1 byte/s, read_header %v): still open after %v", name, readHeader, took.Round(time.Millisecond))
			case took < readHeader:
				t.Errorf("%s: slow head (1 byte/s, read_header %v): cut off after %v, before read_header", name, readHeader, took.Round(time.Millisecond))
			default:
				t.Logf("%s: cut off after %v", name, took.Round(time.Millisecond))
			}
		})
	}
	wg.Wait()
}

// TestIdleKeepAliveTimeout: with idle = 2s, a kept-alive connection that
// stays idle after its response is closed by the server, with nothing
// sent: not before 2s after the request was written (the server's idle
// clock starts after its response), and within the safety net cutOffLimit.
func TestIdleKeepAliveTimeout(t *testing.T) {
	t.Parallel()
	const idle = 2 * time.Second
	s := harness.Start(t, harness.Options{Config: harness.Config{
		HTTPMode: "serve", Timeouts: map[string]string{"idle": idle.String()}}.TOML()})
	var wg sync.WaitGroup
	for _, name := range []string{"tls", "plain"} {
		wg.Go(func() {
			c, err := s.Dial(name)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			_ = c.SetDeadline(time.Now().Add(cutOffLimit))
			start := time.Now()
			if _, err := io.WriteString(c, "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
				t.Errorf("%s: write: %v", name, err)
				return
			}
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Errorf("%s: response: %v", name, err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			rest, closed, err := harness.ReadUntilClose(readerConn{c, br}, cutOffLimit)
			took := time.Since(start)
			if !closed || took < idle || len(rest) > 0 {
				t.Errorf("%s: idle keep-alive conn (idle %v): closed %v %v after the request (err %v, %d more bytes), want closed after at least %v with nothing sent",
					name, idle, closed, took.Round(time.Millisecond), err, len(rest), idle)
			}
		})
	}
	wg.Wait()
}

// readerConn is a net.Conn whose reads go through a bufio.Reader first.
type readerConn struct {
	net.Conn
	r *bufio.Reader
}

func (c readerConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// slowKinds are the kinds of slow client: a plain or a TLS client trickling
// its request head, and a TLS client trickling its ClientHello record.
var slowKinds = []struct {
	name, conn string // conn: harness.Server.Dial kind, or "tcp-https"
	head       []byte
	n          int
}{
	{"plain head", "plain", []byte(slowHeadText), 3000},
	{"tls head", "tls", []byte(slowHeadText), 500},
	{"tls handshake", "tcp-https", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, 500},
}

// TestSlowClientsDoNotBlock: 4000 slow clients (slowKinds) do not stop
// normal clients (plain h1, TLS h1, h2, h3) from being served while the
// slow ones hold their connections; read_header and handshake then cut
// every slow one off. The
// timeouts are long next to the time the fleet takes to connect (about 2s
// idle, 11s for a -race anx on a busy 2-core machine), so that the slow
// clients are still connected when the normal ones come, however slow the
// machine: with 4s and 6s, most were cut before the fleet was complete.
func TestSlowClientsDoNotBlock(t *testing.T) {
	t.Parallel()
	const readHeader, handshake = 40 * time.Second, 30 * time.Second
	s := harness.Start(t, harness.Options{Config: harness.Config{HTTPMode: "serve",
		Timeouts: map[string]string{"read_header": readHeader.String(), "handshake": handshake.String()}}.TOML()})
	// A safety net: the cuts must come, a busy machine may bring them late.
	limit := readHeader + cutOffLimit
	f := startSlowFleet(s, limit)
	t.Logf("slow clients: %d connected in %v (%d dial errors)", f.connected, f.dialTime.Round(time.Millisecond), f.dialErrors)
	if f.dialErrors > 0 {
		t.Errorf("%d of %d slow clients could not connect", f.dialErrors, f.total)
	}
	checkServed(t, s, 5)
	// The normal clients were served while the slow ones held their
	// connections: counted once the normal ones are done. A tenth may have
	// gone: on a busy machine the first of the fleet can reach read_header
	// before the last has connected.
	if open := f.total - int(f.closed.Load()) - f.dialErrors; open < f.total*9/10 {
		t.Errorf("only %d of %d slow clients were still connected once the normal clients were served", open, f.total)
	}
	f.wg.Wait()
	for _, k := range slowKinds {
		d := f.cutAfter[k.name]
		slices.Sort(d)
		if len(d) > 0 {
			t.Logf("slow clients (%s): %d cut off after min %v, median %v, max %v", k.name, len(d),
				d[0].Round(time.Millisecond), d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
		}
	}
	if n := f.notCut.Load(); n > 0 {
		t.Errorf("%d slow clients were not cut off (by EOF or a reset) within %v of connecting (read_header %v, handshake %v); %d of them ended with another error (the last: %v)",
			n, limit, readHeader, handshake, f.errors.Load(), f.lastError)
	}
}

// slowFleet is a set of slow clients, each with its own goroutine.
type slowFleet struct {
	total, connected, dialErrors int
	dialTime                     time.Duration
	closed, notCut               atomic.Int64
	errors                       atomic.Int64   // of notCut: ended by an error other than a close
	wg                           sync.WaitGroup // the trickling goroutines
	mu                           sync.Mutex
	cutAfter                     map[string][]time.Duration // by kind: when each was cut
	lastError                    error                      // the last of errors, for the report
}

// startSlowFleet connects the slowKinds clients (64 dials at a time) and
// starts trickling on each, for at most limit; it returns once all dials
// are done.
func startSlowFleet(s *harness.Server, limit time.Duration) *slowFleet {
	f := &slowFleet{cutAfter: map[string][]time.Duration{}}
	start := time.Now()
	sem := make(chan struct{}, 64)
	var dials sync.WaitGroup
	for _, k := range slowKinds {
		f.total += k.n
		for range k.n {
			sem <- struct{}{}
			dials.Go(func() {
				defer func() { <-sem }()
				c, err := dialSlow(s, k.conn)
				f.add(k.name, k.head, limit, c, err)
			})
		}
	}
	dials.Wait()
	f.dialTime = time.Since(start)
	return f
}

// add counts a dialled slow client and starts its trickle.
func (f *slowFleet) add(kind string, head []byte, limit time.Duration, c net.Conn, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.dialErrors++
		return
	}
	f.connected++
	f.wg.Go(func() {
		defer c.Close()
		took, cut, err := slowHead(c, head, time.Now(), time.Second, limit)
		if !cut {
			f.notCut.Add(1)
			if err != nil {
				f.errors.Add(1)
				f.mu.Lock()
				f.lastError = err
				f.mu.Unlock()
			}
			return
		}
		f.closed.Add(1)
		f.mu.Lock()
		f.cutAfter[kind] = append(f.cutAfter[kind], took)
		f.mu.Unlock()
	})
}

// dialSlow opens a connection for a slow client: a harness.Server.Dial
// kind, or "tcp-https" (plain TCP to the https port).
func dialSlow(s *harness.Server, kind string) (net.Conn, error) {
	if kind == "tcp-https" {
		return net.DialTimeout("tcp", s.HTTPS, harness.SafetyNet)
	}
	return s.Dial(kind)
}

// checkServed makes n requests on new connections over plain h1, TLS h1,
// h2 and h3 and fails t if any fails. How long they took is logged, not
// checked: that is a benchmark's business.
func checkServed(t *testing.T, s *harness.Server, n int) {
	t.Helper()
	var worst time.Duration
	for i := range n {
		for _, p := range []string{"plain", "h1", "h2", "h3"} {
			start := time.Now()
			status, err := normalGet(t, s, p)
			took := time.Since(start)
			worst = max(worst, took)
			if err != nil || status != http.StatusOK {
				t.Errorf("normal request %d over %s: status %d, err %v, took %v; want 200", i+1, p, status, err, took.Round(time.Millisecond))
			}
		}
	}
	t.Logf("normal requests: slowest %v", worst.Round(time.Millisecond))
}

// normalGet GETs /hello.txt over p on a new connection.
func normalGet(t *testing.T, s *harness.Server, p string) (int, error) {
	if p == "plain" {
		c := &http.Client{Timeout: harness.SafetyNet, Transport: &http.Transport{DisableKeepAlives: true}}
		res, err := c.Get("http://" + s.HTTP + "/hello.txt")
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		_, err = io.Copy(io.Discard, res.Body)
		return res.StatusCode, err
	}
	r := s.Get(harness.Proto(p), "/hello.txt")
	return r.Status, r.Err
}

// ansi matches the terminal escapes in slowhttptest's output;
// slowhttptestAvailable and slowhttptestErrors read its status lines.
var (
	ansi                  = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)
	slowhttptestAvailable = regexp.MustCompile(`service available:\s+(\S+)`)
	slowhttptestErrors    = regexp.MustCompile(`error:\s+(\d+)`)
)

// slowlorisConns is how many slow connections slowhttptest opens.
const slowlorisConns = 300

// slowhttptestAllClosed is how slowhttptest says that it ended because the
// server had closed every connection (its other end: "Hit test time limit").
const slowhttptestAllClosed = "Exit status: No open connections left"

// TestSlowloris runs slowhttptest -H (300 connections opened at 150/s,
// each sending a header line every second) against plain HTTP with
// read_header = 2s: the service stays available all along, no connection
// fails (in the statuses it prints), and the server closes every slow
// connection, so that slowhttptest ends with "No open connections left"
// before its time limit (60s: a safety net; it ends after about 4s). Its
// CSV report (-g) gives the
// counts of each second.
func TestSlowloris(t *testing.T) {
	t.Parallel()
	bin := harness.Peer(t, "slowhttptest")
	s := harness.Start(t, harness.Options{Config: harness.Config{
		HTTPMode: "serve", Timeouts: map[string]string{"read_header": "2s"}}.TOML()})
	stats := filepath.Join(t.TempDir(), "stats")
	r := harness.RunCmd(t, t.TempDir(), 2*time.Minute, bin, "-H", "-c", strconv.Itoa(slowlorisConns), "-r", "150", "-i", "1",
		"-l", "60", "-x", "8", "-p", "2", "-g", "-o", stats, "-u", "http://"+s.HTTP+"/hello.txt")
	out := ansi.ReplaceAllString(r.Stdout+r.Stderr, "")
	if r.TimedOut || r.ExitCode != 0 {
		t.Fatalf("slowhttptest: exit %d, timed out %v:\n%s", r.ExitCode, r.TimedOut, tail(out, 3000))
	}
	avail := slowhttptestAvailable.FindAllStringSubmatch(out, -1)
	if len(avail) == 0 {
		t.Fatalf("slowhttptest printed no status:\n%s", tail(out, 3000))
	}
	for _, a := range avail {
		if a[1] != "YES" {
			t.Errorf("slowhttptest: service available: %s during the test:\n%s", a[1], tail(out, 3000))
			break
		}
	}
	for _, e := range slowhttptestErrors.FindAllStringSubmatch(out, -1) {
		if e[1] != "0" {
			t.Errorf("slowhttptest: %s connections failed (error: %s), want none:\n%s", e[1], e[1], tail(out, 3000))
			break
		}
	}
	if !strings.Contains(out, slowhttptestAllClosed) {
		t.Errorf("slowhttptest did not end with %q: the server left slow connections open (read_header 2s):\n%s",
			slowhttptestAllClosed, tail(out, 1500))
	}
	checkSlowlorisStats(t, stats+".csv")
	t.Logf("slowhttptest final: %s", strings.TrimSpace(tail(out, 400)))
}

// checkSlowlorisStats reads slowhttptest's CSV report (Seconds, Closed,
// Pending, Connected, Service Available: the last is 0 when the service
// was not available, else the number of connections; connections still
// initializing and failed ones are in no column) and fails t unless the
// service was available each second; its stdout prints a status, with the
// failed connections, only now and then.
func checkSlowlorisStats(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("slowhttptest's CSV report: %v", err)
	}
	rows := lines(string(b))
	if len(rows) < 2 {
		t.Fatalf("slowhttptest's CSV report has no rows:\n%s", b)
	}
	for _, row := range rows[1:] {
		var sec, closed, pending, connected, available int
		if _, err := fmt.Sscanf(row, "%d,%d,%d,%d,%d", &sec, &closed, &pending, &connected, &available); err != nil {
			t.Fatalf("slowhttptest's CSV report: row %q: %v", row, err)
		}
		if available == 0 {
			t.Errorf("slowhttptest: service not available at second %d (%d closed, %d pending, %d connected)", sec, closed, pending, connected)
		}
	}
	t.Logf("slowhttptest's last row: %s", rows[len(rows)-1])
}
