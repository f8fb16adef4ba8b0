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

// drainSize and drainRate make each download take about 12s: long next to
// the time it takes to start all three and send the signal (they are
// checked to be in flight when it is sent), short next to the drain
// timeout (30s). curl's throttle is the state under test: a slower
// machine makes the downloads no faster.
const (
	drainSize = 12 << 20
	drainRate = "1M"
)

// drainLimit is the safety net of the waits for a drain to finish.
const drainLimit = 2 * time.Minute

// TestGracefulStop: downloads throttled by curl --limit-rate over h1, h2
// and h3 are under way when anx gets SIGTERM (each has written some bytes
// and not all); the https port then refuses new connections, every
// download completes byte-identical, and anx exits 0.
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
		results[name] = harness.GoCmd(t, dir, drainLimit, cmd[0], args...)
	}
	waitStarted(t, dir, downloads)
	if err := s.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sigterm := time.Now()
	checkInFlight(t, dir, downloads)
	checkRefused(t, s.HTTPS, drainLimit)
	want := s.File("big.bin")
	for name, ch := range results {
		r := <-ch
		if r.ExitCode != 0 || r.TimedOut {
			t.Errorf("%s download after SIGTERM: curl exit %d (timed out %v): %s", name, r.ExitCode, r.TimedOut, r.Stderr)
		}
		got, _ := os.ReadFile(filepath.Join(dir, name))
		sameBytes(t, name+" download across SIGTERM", got, want)
	}
	code, err := s.Wait(drainLimit)
	if err != nil || code != 0 {
		t.Errorf("anx after SIGTERM: exit %d, err %v; want 0", code, err)
	}
	t.Logf("downloads finished and anx exited %v after SIGTERM", time.Since(sigterm).Round(time.Millisecond))
}

// waitStarted polls (every 20ms, up to the safety net drainLimit) until
// every download has written bytes, so that each is under way when the
// signal comes.
func waitStarted(t *testing.T, dir string, downloads map[string][]string) {
	t.Helper()
	deadline := time.Now().Add(drainLimit)
	for name := range downloads {
		for downloaded(dir, name) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s download has not started after %v", name, drainLimit)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// checkInFlight fails t unless every download, read just after the signal
// was sent, had not finished: the signal came while each was under way.
func checkInFlight(t *testing.T, dir string, downloads map[string][]string) {
	t.Helper()
	for name := range downloads {
		if n := downloaded(dir, name); n >= drainSize {
			t.Errorf("%s download had all its %d bytes when the signal was sent: not in flight", name, n)
		}
	}
}

// downloaded returns the size of the download name in dir so far.
func downloaded(dir, name string) int64 {
	st, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		return 0
	}
	return st.Size()
}

// checkRefused polls (every 50ms) until a TCP dial to addr is refused,
// and fails t if that does not happen within limit, a safety net.
func checkRefused(t *testing.T, addr string, limit time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		c, err := net.DialTimeout("tcp", addr, harness.SafetyNet)
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
// (no peers: it runs under -short): over h1, h2 and h3, each client reads
// the first 64 KiB of the body, then waits for the signal to be sent, so
// that every download is in flight then; the bodies, read on at about
// 4 MiB/s, complete, and anx exits 0.
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
	signalled := make(chan struct{})
	results := make(chan harness.Response, len(harness.Protos))
	for _, p := range harness.Protos {
		c := s.Client(p)
		c.Timeout = drainLimit
		go func() { results <- slowDownload(c, p, s.URL("/big.bin"), started, signalled) }()
	}
	for range harness.Protos {
		select {
		case <-started:
		case <-time.After(drainLimit):
			t.Fatalf("downloads have not started after %v", drainLimit)
		}
	}
	err := s.Signal(syscall.SIGINT)
	close(signalled)
	if err != nil {
		t.Fatal(err)
	}
	for range harness.Protos {
		r := <-results
		if r.Err != nil || r.Status != 200 {
			t.Errorf("%s download across SIGINT: status %d, err %v", r.Proto, r.Status, r.Err)
		}
		sameBytes(t, string(r.Proto)+" download across SIGINT", r.Body, want)
	}
	if code, err := s.Wait(drainLimit); err != nil || code != 0 {
		t.Errorf("anx after SIGINT: exit %d, err %v; want 0", code, err)
	}
}

// slowDownload GETs url with c and reads the body in 64 KiB steps,
// signalling started after the first step and then waiting for signalled
// to be closed, then on at about 4 MiB/s (a slow client: the state under
// test; a slower machine makes it no faster).
func slowDownload(c *http.Client, p harness.Proto, url string, started chan<- struct{}, signalled <-chan struct{}) harness.Response {
	res, err := c.Get(url)
	if err != nil {
		started <- struct{}{}
		return harness.Response{Proto: p, Err: err}
	}
	defer res.Body.Close()
	var body bytes.Buffer
	buf := make([]byte, 64<<10)
	told := false
	for {
		n, err := io.ReadFull(res.Body, buf)
		body.Write(buf[:n])
		if !told {
			started <- struct{}{}
			told = true
			<-signalled
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
