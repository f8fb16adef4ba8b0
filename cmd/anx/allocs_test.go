//go:build linux && !race

package main

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	if err := os.WriteFile(filepath.Join(root, "a.css"), []byte(strings.Repeat("x", 1024)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig()
	cfg.HTTPS, cfg.HTTP, cfg.Data = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.Sites = []siteConfig{{Hosts: []string{"localhost"}, Root: root, HTTPMode: httpServe}}
	gw, err := newGateway(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw.start(); err != nil {
		t.Fatal(err)
	}
	defer gw.shutdown()

	c, err := net.Dial("tcp", gw.httpAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	req := []byte("GET /a.css HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n")
	// The first answer tells the length of every answer (Date, ETag and
	// Last-Modified have fixed widths).
	c.Write(req)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 || resp.ContentLength != 1024 {
		t.Fatalf("status %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	out := make([]byte, headLength(t, gw.httpAddr(), req)+1024)
	exchange := func() {
		c.Write(req)
		if _, err := io.ReadFull(c, out); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 { // warm the pools and the loop's exchange
		exchange()
	}
	if allocs := testing.AllocsPerRun(2000, exchange); allocs != 0 {
		t.Errorf("a keep-alive request for a cached file allocates %v times, want 0", allocs)
	}
	if string(out[:15]) != "HTTP/1.1 200 OK" {
		t.Errorf("answer starts %q", out[:15])
	}
}

// headLength returns the length of the head of the answer to req.
func headLength(t *testing.T, addr string, req []byte) int {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(req)
	var head []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		head = append(head, buf[:n]...)
		if i := strings.Index(string(head), "\r\n\r\n"); i >= 0 {
			return i + 4
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
