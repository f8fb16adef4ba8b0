//go:build linux && !race

package main

import (
	"bufio"
	"bytes"
	"github.com/anx-gateway/anx/cmd/anx/internal/config"
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
	file := []byte(strings.Repeat("x", 1024))
	if err := os.WriteFile(filepath.Join(root, "a.css"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.HTTPS, cfg.HTTP, cfg.Data = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.Sites = []config.Site{{Hosts: []string{"localhost"}, Root: root, HTTPMode: config.HTTPServe}}
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
