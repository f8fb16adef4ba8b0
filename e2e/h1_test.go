package e2e

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// TestH1CurlExactBytes: real curl over HTTP/1.1 gets 200 and the exact bytes.
func TestH1CurlExactBytes(t *testing.T) {
	t.Parallel()
	curl := harness.Peer(t, "curl")
	s := harness.Start(t, harness.Options{})
	out := filepath.Join(t.TempDir(), "out")
	r := runCurl(t, s, curl, "--http1.1", "-o", out, "-w", "%{http_code} %{http_version}", s.URL("/data.bin"))
	if r.Stdout != "200 1.1" {
		t.Errorf("curl -w '%%{http_code} %%{http_version}': got %q, want %q", r.Stdout, "200 1.1")
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "/data.bin over h1 (curl)", got, s.File("data.bin"))
}

// TestH1CurlReuse: two URLs on one curl command share one connection.
func TestH1CurlReuse(t *testing.T) {
	t.Parallel()
	curl := harness.Peer(t, "curl")
	s := harness.Start(t, harness.Options{})
	dir := t.TempDir()
	o1, o2 := filepath.Join(dir, "1"), filepath.Join(dir, "2")
	r := runCurl(t, s, curl, "-v", "--http1.1", "-w", "%{num_connects}\n",
		"-o", o1, s.URL("/hello.txt"), "-o", o2, s.URL("/data.bin"))
	if r.Stdout != "1\n0\n" {
		t.Errorf("num_connects per URL: got %q, want %q", r.Stdout, "1\n0\n")
	}
	if !strings.Contains(r.Stderr, "Re-using existing") {
		t.Errorf("curl -v does not say it re-used the connection (want \"Re-using existing\"):\n%s", r.Stderr)
	}
	if !strings.Contains(r.Stderr, "Connection #0") || strings.Contains(r.Stderr, "Connection #1") {
		t.Errorf("want only Connection #0 in curl -v output:\n%s", r.Stderr)
	}
	for _, f := range []struct{ out, name string }{{o1, "hello.txt"}, {o2, "data.bin"}} {
		got, err := os.ReadFile(f.out)
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, "/"+f.name, got, s.File(f.name))
	}
}

// TestH1Pipelining: three requests written at once on one TLS socket are
// answered in order, the last (Connection: close) closing the connection.
func TestH1Pipelining(t *testing.T) {
	t.Parallel()
	s := harness.Start(t, harness.Options{})
	c := s.DialTLS("http/1.1")
	raw := "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n" +
		"HEAD /data.bin HTTP/1.1\r\nHost: localhost\r\n\r\n" +
		"GET /sub/note.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
	got, closed, err := harness.Exchange(c, []byte(raw), harness.SafetyNet)
	if err != nil {
		t.Fatalf("exchange: %v (read %q)", err, got)
	}
	if !closed {
		t.Errorf("connection still open %v after a request with Connection: close", harness.SafetyNet)
	}
	res, rest := harness.ParseResponses(got, "GET", "HEAD", "GET")
	want := []struct {
		body []byte
		cl   string
	}{
		{s.File("hello.txt"), ""},
		{nil, "204800"},
		{s.File("sub/note.txt"), ""},
	}
	if len(res) != len(want) || len(rest) > 0 {
		t.Fatalf("got %d responses (+%d unparsed bytes), want %d:\n%q", len(res), len(rest), len(want), got)
	}
	for i, w := range want {
		if res[i].Status != http.StatusOK || !bytes.Equal(res[i].Body, w.body) {
			t.Errorf("response %d: got %d %q, want 200 %q", i+1, res[i].Status, clip(res[i].Body, 0), clip(w.body, 0))
		}
		if w.cl != "" && res[i].Header.Get("Content-Length") != w.cl {
			t.Errorf("response %d (HEAD): Content-Length %q, want %q", i+1, res[i].Header.Get("Content-Length"), w.cl)
		}
	}
}
