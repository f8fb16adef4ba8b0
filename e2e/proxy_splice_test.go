package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
)

// spliceGreeting is what the tunnel upstream sends in the same write as
// its 101 when asked to (the prefixed case).
const spliceGreeting = "first bytes of the new protocol"

// TestProxyTunnelSplice: a plain HTTP/1.1 Upgrade through anx to a raw TCP
// upstream that echoes; 64 MiB go up and come back byte-identical, the
// client's half-close reaches the upstream and the upstream's comes back
// as EOF. anx moves the bytes with splice(2): its read and write system
// calls (/proc/PID/io, which splice does not count) stay a handful, where
// a copy makes two per buffer. That holds too when the upstream's first
// bytes come in the same write as the 101 (core/proxy then wraps the
// upstream connection to give those bytes first, and the wrapper passes
// ReadFrom and WriteTo on to the socket).
func TestProxyTunnelSplice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		prefixed bool
	}{
		{"plain", false},
		{"prefixed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := startEchoTunnelUpstream(t, tc.prefixed)
			s := startProxy(t, proxyConfig("", "http_mode = \"serve\"\n"+route("/", proxyTo("http://"+up))))
			c, br := openUpgrade(t, s.HTTP)
			if tc.prefixed {
				g := make([]byte, len(spliceGreeting))
				if _, err := io.ReadFull(br, g); err != nil || string(g) != spliceGreeting {
					t.Fatalf("the bytes sent with the 101: %q, %v; want %q", g, err, spliceGreeting)
				}
			}
			before := readWriteCalls(t, s.PID())
			echoThrough(t, c, br)
			calls := readWriteCalls(t, s.PID()) - before
			t.Logf("anx made %d read and write system calls for 64 MiB each way", calls)
			// A copy through a 32 KiB buffer makes 8192 here.
			if calls > 256 {
				t.Errorf("anx made %d read and write system calls while 64 MiB went each way: it copies instead of splicing", calls)
			}
		})
	}
}

// startEchoTunnelUpstream listens on loopback and serves one connection:
// it answers the Upgrade request with 101 (and spliceGreeting in the same
// write when prefixed), echoes what it reads until EOF and then closes its
// write half. It returns the address; the listener and connection close
// in t.Cleanup.
func startEchoTunnelUpstream(t *testing.T, prefixed bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() { // owns the accepted connection; ends once it is served or the listener closes
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c := nc.(*net.TCPConn)
		defer c.Close()
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil || req.Header.Get("Upgrade") == "" {
			return
		}
		head := "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + req.Header.Get("Upgrade") + "\r\n\r\n"
		if prefixed {
			head += spliceGreeting
		}
		if _, err := c.Write([]byte(head)); err != nil {
			return
		}
		var r io.Reader = c
		if br.Buffered() > 0 {
			r = io.MultiReader(io.LimitReader(br, int64(br.Buffered())), c)
		}
		if _, err := io.Copy(c, r); err == nil {
			_ = c.CloseWrite()
		}
		// Wait for the proxy to close its side, so that the close is not a reset.
		_, _ = io.Copy(io.Discard, c)
	}()
	return ln.Addr().String()
}

// openUpgrade connects to addr (anx's plain HTTP port) and asks for an
// Upgrade; it returns the connection and its reader once the 101 is read.
func openUpgrade(t *testing.T, addr string) (*net.TCPConn, *bufio.Reader) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, harness.SafetyNet)
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*net.TCPConn)
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(harness.SafetyNet)) // a safety net only
	req := "GET /tunnel HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer to the Upgrade: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(res.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("answer to the Upgrade: %s, Upgrade %q; want 101, websocket", res.Status, res.Header.Get("Upgrade"))
	}
	return c, br
}

// echoThrough sends 64 MiB on c, half-closes it, and checks that br
// returns the same bytes and then EOF.
func echoThrough(t *testing.T, c *net.TCPConn, br *bufio.Reader) {
	t.Helper()
	chunk := harness.Noise("splice", 8<<20)
	const chunks = 8
	want := sha256.New()
	for range chunks {
		want.Write(chunk)
	}
	werr := make(chan error, 1)
	go func() { // ends when the 64 MiB are written or the connection fails
		for range chunks {
			if _, err := c.Write(chunk); err != nil {
				werr <- err
				return
			}
		}
		werr <- c.CloseWrite()
	}()
	got := sha256.New()
	n, err := io.Copy(got, br)
	if err != nil {
		t.Fatalf("reading the echo: %v after %d bytes", err, n)
	}
	if err := <-werr; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if n != chunks*int64(len(chunk)) || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("echo: %d bytes, sha256 %x; want the %d bytes sent, sha256 %x", n, got.Sum(nil), chunks*len(chunk), want.Sum(nil))
	}
}

// readWriteCalls returns syscr + syscw of process pid.
func readWriteCalls(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	found := 0
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
		if k == "syscr" || k == "syscw" {
			c, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("/proc/%d/io: %s: %v", pid, line, err)
			}
			n += c
			found++
		}
	}
	if found != 2 {
		t.Fatalf("/proc/%d/io has no syscr and syscw:\n%s", pid, b)
	}
	return n
}
