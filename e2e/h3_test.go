package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// TestAltSvc: every h1 and h2 response, found or not, advertises h3 on the
// https port.
func TestAltSvc(t *testing.T) {
	t.Parallel()
	s := harness.Start(t, harness.Options{})
	want := fmt.Sprintf(`h3=":%d"; ma=2592000`, s.HTTPSPort)
	for _, p := range []harness.Proto{harness.H1, harness.H2} {
		for _, path := range []string{"/hello.txt", "/no-such-file"} {
			r := s.Get(p, path)
			if r.Err != nil {
				t.Errorf("%s GET %s: %v", p, path, r.Err)
				continue
			}
			if got := r.Header.Values("Alt-Svc"); len(got) != 1 || got[0] != want {
				t.Errorf("%s GET %s (status %d): Alt-Svc %q, want [%q]", p, path, r.Status, got, want)
			}
		}
	}
}

// TestH3Curl: a real curl built with HTTP/3 gets 200 and the exact bytes
// over h3 only, checking the certificate against anx's root.
func TestH3Curl(t *testing.T) {
	t.Parallel()
	curl := harness.Peer(t, "curl-h3")
	s := harness.Start(t, harness.Options{})
	out := filepath.Join(t.TempDir(), "out")
	r := runCurl(t, s, curl, "--http3-only", "-o", out, "-w", "%{http_code} %{http_version}", s.URL("/data.bin"))
	if r.Stdout != "200 3" {
		t.Errorf("curl --http3-only -w '%%{http_code} %%{http_version}': got %q, want %q", r.Stdout, "200 3")
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "/data.bin over h3 (curl)", got, s.File("data.bin"))
}

// TestH3GTLSClient: ngtcp2's gtlsclient downloads the 20 files of /dl/ over
// one QUIC connection, byte-identical. Its exit code says nothing, so the
// files are what is checked, and its qlog (--qlog-dir: one file per
// connection) counts the connections: one, carrying 20 request streams.
func TestH3GTLSClient(t *testing.T) {
	t.Parallel()
	gtls := harness.Peer(t, "gtlsclient")
	s := harness.Start(t, harness.Options{})
	dir, qlogs := t.TempDir(), t.TempDir()
	args := []string{"--exit-on-all-streams-close", "--no-quic-dump", "--no-http-dump", "--qlog-dir", qlogs,
		"--download", dir, "-n", strconv.Itoa(harness.DownloadCount), "127.0.0.1", strconv.Itoa(s.HTTPSPort)}
	for i := 1; i <= harness.DownloadCount; i++ {
		args = append(args, s.URL(fmt.Sprintf("/dl/f%02d.bin", i)))
	}
	r := harness.RunCmd(t, s.Dir, harness.PeerTimeout, gtls, args...)
	if r.TimedOut {
		t.Errorf("gtlsclient still running after %v", harness.PeerTimeout)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != harness.DownloadCount {
		t.Errorf("gtlsclient saved %d files, want %d\nstdout: %s\nstderr: %s",
			len(entries), harness.DownloadCount, tail(r.Stdout, 2000), tail(r.Stderr, 2000))
	}
	for i := 1; i <= harness.DownloadCount; i++ {
		name := fmt.Sprintf("f%02d.bin", i)
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("gtlsclient: %v", err)
			continue
		}
		sameBytes(t, "/dl/"+name+" over h3 (gtlsclient)", got, s.File("dl/"+name))
	}
	checkOneQUICConnection(t, qlogs, harness.DownloadCount)
}

// qlogStreamID matches a stream id in an ngtcp2 qlog event.
var qlogStreamID = regexp.MustCompile(`"stream_id":(\d+)`)

// checkOneQUICConnection fails t unless the qlog dir of a gtlsclient run
// holds exactly one connection's qlog, on which the client opened streams
// request streams: client-initiated bidirectional streams, whose ids are
// multiples of 4 (RFC 9000, section 2.1).
func checkOneQUICConnection(t *testing.T, qlogs string, streams int) {
	t.Helper()
	entries, err := os.ReadDir(qlogs)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("gtlsclient wrote %d qlogs (one per QUIC connection), want 1", len(entries))
		return
	}
	b, err := os.ReadFile(filepath.Join(qlogs, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int]bool{}
	for _, m := range qlogStreamID.FindAllSubmatch(b, -1) {
		if id, err := strconv.Atoi(string(m[1])); err == nil && id%4 == 0 {
			ids[id] = true
		}
	}
	if len(ids) != streams {
		t.Errorf("the QUIC connection carried %d client-initiated bidirectional streams, want %d (one per file)", len(ids), streams)
	}
}

// TestH3Chromium: headless Chromium, forced onto QUIC for the origin and
// pinned to the leaf's SPKI, loads a page whose script reports the
// navigation's nextHopProtocol; it must be h3.
func TestH3Chromium(t *testing.T) {
	t.Parallel()
	chromium := harness.Peer(t, "chromium")
	s := harness.Start(t, harness.Options{})
	origin := "localhost:" + strconv.Itoa(s.HTTPSPort)
	args := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + t.TempDir(),
		"--origin-to-force-quic-on=" + origin, "--ignore-certificate-errors-spki-list=" + leafSPKI(t, s),
		"--host-resolver-rules=MAP localhost 127.0.0.1", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--virtual-time-budget=10000", "--dump-dom", s.URL(harness.H3Page)}
	r := harness.RunCmd(t, t.TempDir(), harness.PeerTimeout, chromium, args...)
	const want = "nextHopProtocol=h3"
	if !strings.Contains(r.Stdout, want) {
		t.Errorf("chromium --dump-dom: want %q in the DOM (exit %d, timed out %v)\nDOM: %s\nstderr: %s",
			want, r.ExitCode, r.TimedOut, tail(r.Stdout, 2000), tail(r.Stderr, 3000))
	}
}

// leafSPKI returns base64(sha256(SubjectPublicKeyInfo)) of the leaf that the
// https port presents for localhost.
func leafSPKI(t *testing.T, s *harness.Server) string {
	t.Helper()
	c := s.DialTLS("h2")
	defer c.Close()
	leaf := c.ConnectionState().PeerCertificates[0]
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
