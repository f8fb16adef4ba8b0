package e2e

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
)

// slowHead writes head to c one byte per interval (then 'a's, forever) and
// watches for the server to close: it returns how long after start the
// close was seen, or false if limit passed first. Any response bytes
// (a 408, say) are read and ignored.
func slowHead(c net.Conn, head []byte, start time.Time, interval, limit time.Duration) (time.Duration, bool) {
	buf := make([]byte, 512)
	for i := 0; time.Since(start) < limit; i++ {
		b := byte('a')
		if i < len(head) {
			b = head[i]
		}
		_ = c.SetWriteDeadline(time.Now().Add(interval))
		if _, err := c.Write([]byte{b}); err != nil {
			return time.Since(start), true
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
			return time.Since(start), true // EOF, reset: cut off
		}
	}
	return time.Since(start), false
}

// slowHeadText is a request head that never ends.
const slowHeadText = "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Slow: "

// TestSlowHeaderCutOff: with read_header = 2s, a client sending its head
// one byte per second is cut off within a few seconds, over TLS and plain.
func TestSlowHeaderCutOff(t *testing.T) {
	t.Parallel()
	s := harness.Start(t, harness.Options{Config: harness.Config{
		HTTPMode: "serve", Timeouts: map[string]string{"read_header": "2s"}}.TOML()})
	var wg sync.WaitGroup
	for _, name := range []string{"tls", "plain"} {
		wg.Go(func() {
			c, err := s.Dial(name)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			took, closed := slowHead(c, []byte(slowHeadText), time.Now(), time.Second, 15*time.Second)
			if !closed || took > 5*time.Second {
				t.Errorf("%s: slow head (1 byte/s, read_header 2s): closed %v after %v, want closed within 5s", name, closed, took.Round(time.Millisecond))
			}
			t.Logf("%s: cut off after %v", name, took.Round(time.Millisecond))
		})
	}
	wg.Wait()
}

// TestIdleKeepAliveTimeout: with idle = 2s, a kept-alive connection that
// stays idle after its response is closed by the server within a few seconds.
func TestIdleKeepAliveTimeout(t *testing.T) {
	t.Parallel()
	s := harness.Start(t, harness.Options{Config: harness.Config{
		HTTPMode: "serve", Timeouts: map[string]string{"idle": "2s"}}.TOML()})
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
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
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
			idle := time.Now()
			rest, closed, err := harness.ReadUntilClose(readerConn{c, br}, 8*time.Second)
			took := time.Since(idle)
			if !closed || took < time.Second || took > 5*time.Second || len(rest) > 0 {
				t.Errorf("%s: idle keep-alive conn (idle 2s): closed %v after %v (err %v, %d more bytes), want closed in 1s..5s with nothing sent",
					name, closed, took.Round(time.Millisecond), err, len(rest))
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
// normal clients (plain h1, TLS h1, h2, h3) from being served within 1s
// each; read_header and handshake then cut every slow one off.
func TestSlowClientsDoNotBlock(t *testing.T) {
	t.Parallel()
	const readHeader, handshake = 6 * time.Second, 4 * time.Second
	s := harness.Start(t, harness.Options{Config: harness.Config{HTTPMode: "serve",
		Timeouts: map[string]string{"read_header": readHeader.String(), "handshake": handshake.String()}}.TOML()})
	// The slack covers CPU contention on a shared 2-core machine, where even
	// Go's net/http fires a 6s deadline up to 2s late.
	limit := readHeader + 6*time.Second
	f := startSlowFleet(s, limit)
	t.Logf("slow clients: %d connected in %v (%d dial errors)", f.connected, f.dialTime.Round(time.Millisecond), f.dialErrors)
	if f.dialErrors > 0 {
		t.Errorf("%d of %d slow clients could not connect", f.dialErrors, f.total)
	}
	open := f.total - int(f.closed.Load()) - f.dialErrors
	checkServedFast(t, s, 5)
	if open < f.total*9/10 {
		t.Errorf("only %d of %d slow clients were still connected while normal clients were served", open, f.total)
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
		t.Errorf("%d slow clients were not cut off within %v of connecting (read_header %v, handshake %v)", n, limit, readHeader, handshake)
	}
}

// slowFleet is a set of slow clients, each with its own goroutine.
type slowFleet struct {
	total, connected, dialErrors int
	dialTime                     time.Duration
	closed, notCut               atomic.Int64
	wg                           sync.WaitGroup // the trickling goroutines
	mu                           sync.Mutex
	cutAfter                     map[string][]time.Duration // by kind: when each was cut
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
		took, cut := slowHead(c, head, time.Now(), time.Second, limit)
		if !cut {
			f.notCut.Add(1)
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
		return net.DialTimeout("tcp", s.HTTPS, 5*time.Second)
	}
	return s.Dial(kind)
}

// checkServedFast makes n requests on new connections over plain h1, TLS h1,
// h2 and h3 and fails t if any fails or takes 1s or more.
func checkServedFast(t *testing.T, s *harness.Server, n int) {
	t.Helper()
	var worst time.Duration
	for i := range n {
		for _, p := range []string{"plain", "h1", "h2", "h3"} {
			start := time.Now()
			status, err := normalGet(t, s, p)
			took := time.Since(start)
			worst = max(worst, took)
			if err != nil || status != http.StatusOK || took >= time.Second {
				t.Errorf("normal request %d over %s: status %d, err %v, took %v; want 200 in < 1s", i+1, p, status, err, took.Round(time.Millisecond))
			}
		}
	}
	t.Logf("normal requests: slowest %v", worst.Round(time.Millisecond))
}

// normalGet GETs /hello.txt over p on a new connection.
func normalGet(t *testing.T, s *harness.Server, p string) (int, error) {
	if p == "plain" {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
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

// slowhttptestClosed and slowhttptestAvailable read slowhttptest's status.
var (
	ansi                  = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)
	slowhttptestClosed    = regexp.MustCompile(`closed:\s+(\d+)`)
	slowhttptestAvailable = regexp.MustCompile(`service available:\s+(\S+)`)
)

// TestSlowloris runs slowhttptest -H (300 connections, 6s) against plain
// HTTP with read_header = 2s: the service stays available all along and
// the server closes slow connections (slowhttptest reports closed ones, or
// ends early with "No open connections left").
func TestSlowloris(t *testing.T) {
	t.Parallel()
	bin := harness.Peer(t, "slowhttptest")
	s := harness.Start(t, harness.Options{Config: harness.Config{
		HTTPMode: "serve", Timeouts: map[string]string{"read_header": "2s"}}.TOML()})
	r := harness.RunCmd(t, t.TempDir(), 30*time.Second, bin, "-H", "-c", "300", "-r", "150", "-i", "1", "-l", "6",
		"-x", "8", "-p", "2", "-u", "http://"+s.HTTP+"/hello.txt")
	out := ansi.ReplaceAllString(r.Stdout+r.Stderr, "")
	if r.TimedOut || r.ExitCode != 0 {
		t.Fatalf("slowhttptest: exit %d, timed out %v:\n%s", r.ExitCode, r.TimedOut, tail(out, 3000))
	}
	avail := slowhttptestAvailable.FindAllStringSubmatch(out, -1)
	closed := slowhttptestClosed.FindAllStringSubmatch(out, -1)
	if len(avail) == 0 || len(closed) == 0 {
		t.Fatalf("slowhttptest printed no status:\n%s", tail(out, 3000))
	}
	for _, a := range avail {
		if a[1] != "YES" {
			t.Errorf("slowhttptest: service available: %s during the test:\n%s", a[1], tail(out, 3000))
			break
		}
	}
	n, _ := strconv.Atoi(closed[len(closed)-1][1])
	if n == 0 && !strings.Contains(out, "No open connections left") {
		t.Errorf("slowhttptest: no slow connection closed by the server (read_header 2s, test 6s):\n%s", tail(out, 1500))
	}
	t.Logf("slowhttptest final: %s", strings.TrimSpace(tail(out, 400)))
}
