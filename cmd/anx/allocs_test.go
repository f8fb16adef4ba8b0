//go:build linux && !race

package main

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"
)

// TestKeepAliveStaticFileAllocatesNothing runs the whole gateway and
// counts the allocations of the process per plain HTTP/1.1 keep-alive
// request for a small file that core/static has cached: the event loop
// parses the head in place, the route table and the file cache answer
// from memory, and the response goes out of a pooled buffer. (-race
// allocates on its own: this file is left out of race builds.)
func TestKeepAliveStaticFileAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gateway")
	}
	root := t.TempDir()
	file := []byte(strings.Repeat("x", 1024))
	if err := os.WriteFile(filepath.Join(root, "a.css"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	gw, c := startLocalGateway(t, config.Site{Hosts: []string{"localhost"}, Root: root, HTTPMode: config.HTTPServe})
	req := []byte("GET /a.css HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n")
	// The first answer, checked, is what every answer must be but for
	// its Date value (Date, ETag and Last-Modified have fixed widths).
	first := firstAnswer(t, gw.httpAddr(), req, file)
	dateAt := bytes.Index(first, []byte("\r\nDate: ")) + len("\r\nDate: ")
	out := make([]byte, len(first))
	answers, wrong := 0, 0 // answers read, and those unlike first
	exchange := func() {
		answers++
		c.SetDeadline(time.Now().Add(2 * time.Minute)) // a safety net against a hang
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out[:dateAt], first[:dateAt]) || !bytes.Equal(out[dateAt+imfFixdateLen:], first[dateAt+imfFixdateLen:]) {
			wrong++
		}
	}
	for range 100 { // warm the pools and the loop's exchange
		exchange()
	}
	if allocs := testing.AllocsPerRun(2000, exchange); allocs != 0 {
		t.Errorf("a keep-alive request for a cached file allocates %v times, want 0", allocs)
	}
	if wrong > 0 {
		t.Errorf("%d answers of %d differ from the first but for the date; the last:\n%q\nthe first:\n%q", wrong, answers, out, first)
	}
}

// imfFixdateLen is the length of the Date value, an IMF-fixdate such as
// "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 section 5.6.7).
const imfFixdateLen = 29

// firstAnswer sends req to addr on a connection of its own and returns
// the raw answer, which must be 200 with body as its content and a Date
// value that is an IMF-fixdate.
// startLocalGateway runs the gateway with site alone on loopback ports,
// stopped in t.Cleanup, and returns it with a plain-HTTP connection to it.
func startLocalGateway(t *testing.T, site config.Site) (*gateway, net.Conn) {
	t.Helper()
	cfg := config.Default()
	cfg.HTTPS, cfg.HTTP, cfg.Data = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.Sites = []config.Site{site}
	gw, err := newGateway(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.shutdown() })
	c, err := net.Dial("tcp", gw.httpAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return gw, c
}

func firstAnswer(t *testing.T, addr string, req, body []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute)) // a safety net against a hang
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(c, &raw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("status %d, body of %d bytes (%v); want 200 and the file's %d bytes", resp.StatusCode, len(got), err, len(body))
	}
	if _, err := time.Parse(http.TimeFormat, resp.Header.Get("Date")); err != nil {
		t.Fatalf("Date %q: %v", resp.Header.Get("Date"), err)
	}
	if raw.Len() != bytes.Index(raw.Bytes(), []byte("\r\n\r\n"))+4+len(body) {
		t.Fatalf("the answer is %d bytes, not its head and the body: %q", raw.Len(), raw.Bytes())
	}
	return raw.Bytes()
}

// cannedUpstream is an HTTP/1.1 upstream that answers every request head
// it reads with the same response, allocating nothing once running, so
// that the allocations a test counts in the process are the proxy's.
func cannedUpstream(t *testing.T, body []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go answerHeads(c, answer)
		}
	}()
	return "http://" + ln.Addr().String()
}

// answerHeads writes answer for each request head (no content) read from c.
func answerHeads(c net.Conn, answer []byte) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	have := 0
	for {
		n, err := c.Read(buf[have:])
		if err != nil {
			return
		}
		have += n
		for {
			end := bytes.Index(buf[:have], []byte("\r\n\r\n"))
			if end < 0 {
				break
			}
			if _, err := c.Write(answer); err != nil {
				return
			}
			have = copy(buf, buf[end+4:have])
		}
	}
}

// TestKeepAliveProxiedRequestAllocations runs the whole gateway with a
// site proxied to an upstream and counts the allocations of the process
// per plain HTTP/1.1 keep-alive request through the proxy: served on the
// event loop (core/proxy's loop.go), the request head written to a pooled
// upstream connection of the same loop, the response relayed from its
// input as it arrives. None: the exchanges on both sides are recycled, and
// the response's fields go out before the upstream's input is reused, so
// they are not copied.
func TestKeepAliveProxiedRequestAllocations(t *testing.T) {
	if _, allocs := proxiedKeepAliveAllocs(t, config.Route{}); allocs != 0 {
		t.Errorf("a proxied keep-alive request allocates %v times, want 0", allocs)
	}
}

// proxiedKeepAliveAllocs starts the gateway with one site whose route
// (route, with its path and proxy set here) proxies every path to an
// upstream with a canned 1 KiB answer, and returns the gateway and the
// allocations of the process per plain HTTP/1.1 keep-alive request through
// it, after 100 to warm up; every answer must end with the upstream's
// body.
func proxiedKeepAliveAllocs(t *testing.T, route config.Route) (*gateway, float64) {
	t.Helper()
	file := []byte(strings.Repeat("x", 1024))
	route.Path, route.Proxy = "/", []config.Upstream{{URL: cannedUpstream(t, file)}}
	gw, c := startLocalGateway(t, config.Site{Hosts: []string{"localhost"}, HTTPMode: config.HTTPServe, Routes: []config.Route{route}})
	req := []byte("GET /a.css HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n")
	first := firstAnswer(t, gw.httpAddr(), req, file)
	out := make([]byte, len(first))
	exchange := func() {
		c.SetDeadline(time.Now().Add(2 * time.Minute)) // a safety net against a hang
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, out); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(out, file) {
			t.Fatalf("an answer ends %q, want the upstream's body", out[max(0, len(out)-len(file)):])
		}
	}
	for range 100 {
		exchange()
	}
	return gw, testing.AllocsPerRun(2000, exchange)
}
