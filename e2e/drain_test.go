package e2e

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
)

// drainSize and drainRate make each download take about 4s.
const (
	drainSize = 12 << 20
	drainRate = "3M"
)

// TestGracefulStop: downloads throttled by curl --limit-rate over h1, h2
// and h3 are under way when anx gets SIGTERM; the https port then refuses
// new connections, every download completes byte-identical, and anx exits 0.
func TestGracefulStop(t *testing.T) {
	t.Parallel()
	curl, curlH3 := harness.Peer(t, "curl"), harness.Peer(t, "curl-h3")
	s := harness.Start(t, harness.Options{
		Config: harness.Config{Timeouts: map[string]string{"drain": "30s"}}.TOML(),
		Site: func(t testing.TB, root string) {
			harness.WriteSite(t, root)
			harness.WriteFile(t, filepath.Join(root, "big.bin"), harness.Noise("big.bin", drainSize))
		},
	})
	dir := t.TempDir()
	downloads := map[string][]string{
		"h1": {curl, "--http1.1"},
		"h2": {curl, "--http2"},
		"h3": {curlH3, "--http3-only"},
	}
	results := map[string]<-chan harness.Result{}
	for name, cmd := range downloads {
		args := append(curlArgs(s), cmd[1], "--limit-rate", drainRate, "-o", filepath.Join(dir, name), s.URL("/big.bin"))
		results[name] = harness.GoCmd(t, dir, 60*time.Second, cmd[0], args...)
	}
	waitStarted(t, dir, downloads)
	if err := s.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sigterm := time.Now()
	checkRefused(t, s.HTTPS, 3*time.Second)
	want := s.File("big.bin")
	for name, ch := range results {
		r := <-ch
		if r.ExitCode != 0 || r.TimedOut {
			t.Errorf("%s download after SIGTERM: curl exit %d (timed out %v): %s", name, r.ExitCode, r.TimedOut, r.Stderr)
		}
		got, _ := os.ReadFile(filepath.Join(dir, name))
		sameBytes(t, name+" download across SIGTERM", got, want)
	}
	code, err := s.Wait(40 * time.Second)
	if err != nil || code != 0 {
		t.Errorf("anx after SIGTERM: exit %d, err %v; want 0", code, err)
	}
	t.Logf("downloads finished and anx exited %v after SIGTERM", time.Since(sigterm).Round(time.Millisecond))
}

// waitStarted waits (up to 10s) until every download has written bytes, so
// that each is in flight when the signal comes.
func waitStarted(t *testing.T, dir string, downloads map[string][]string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for name := range downloads {
		for {
			st, err := os.Stat(filepath.Join(dir, name))
			if err == nil && st.Size() > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s download has not started after 10s", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// checkRefused fails t unless a TCP dial to addr is refused within limit.
func checkRefused(t *testing.T, addr string, limit time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Logf("new connections refused %v after SIGTERM: %v", time.Since(start).Round(time.Millisecond), err)
			return
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("%s still accepts TCP connections %v after SIGTERM", addr, limit)
}

// TestGracefulStopSIGINT is TestGracefulStop with SIGINT and the Go clients
// (no peers: it runs under -short): bodies read at about 4 MiB/s over h1,
// h2 and h3 complete after the signal, and anx exits 0.
func TestGracefulStopSIGINT(t *testing.T) {
	t.Parallel()
	const size = 8 << 20
	s := harness.Start(t, harness.Options{
		Config: harness.Config{Timeouts: map[string]string{"drain": "30s"}}.TOML(),
		Site: func(t testing.TB, root string) {
			harness.WriteSite(t, root)
			harness.WriteFile(t, filepath.Join(root, "big.bin"), harness.Noise("big.bin", size))
		},
	})
	want := s.File("big.bin")
	started := make(chan struct{}, len(harness.Protos))
	results := make(chan harness.Response, len(harness.Protos))
	for _, p := range harness.Protos {
		c := s.Client(p)
		c.Timeout = 60 * time.Second
		go func() { results <- slowDownload(c, p, s.URL("/big.bin"), started) }()
	}
	for range harness.Protos {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("downloads have not started after 10s")
		}
	}
	if err := s.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range harness.Protos {
		r := <-results
		if r.Err != nil || r.Status != 200 {
			t.Errorf("%s download across SIGINT: status %d, err %v", r.Proto, r.Status, r.Err)
		}
		sameBytes(t, string(r.Proto)+" download across SIGINT", r.Body, want)
	}
	if code, err := s.Wait(40 * time.Second); err != nil || code != 0 {
		t.Errorf("anx after SIGINT: exit %d, err %v; want 0", code, err)
	}
}

// slowDownload GETs url with c and reads the body in 64 KiB steps at about
// 4 MiB/s, signalling started after the first step.
func slowDownload(c *http.Client, p harness.Proto, url string, started chan<- struct{}) harness.Response {
	res, err := c.Get(url)
	if err != nil {
		started <- struct{}{}
		return harness.Response{Proto: p, Err: err}
	}
	defer res.Body.Close()
	var body bytes.Buffer
	buf := make([]byte, 64<<10)
	signalled := false
	for {
		n, err := io.ReadFull(res.Body, buf)
		body.Write(buf[:n])
		if !signalled {
			started <- struct{}{}
			signalled = true
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return harness.Response{Proto: p, Status: res.StatusCode, Body: body.Bytes()}
		}
		if err != nil {
			return harness.Response{Proto: p, Status: res.StatusCode, Body: body.Bytes(), Err: err}
		}
		time.Sleep(15 * time.Millisecond)
	}
}
