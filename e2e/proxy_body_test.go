package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
)

// sha256Hex returns the hex SHA-256 of b.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// unsized hides a reader's length from the HTTP client, so that it sends
// the body without Content-Length (chunked on h1).
type unsized struct{ r io.Reader }

func (u unsized) Read(b []byte) (int, error) { return u.r.Read(b) }

// TestProxyBodies: over h1, h2 and h3 a 1 MiB upload with Content-Length
// and one without (chunked on h1; an h2/h3 request without
// content-length goes upstream chunked) arrive byte-identical; 3 MiB
// downloads with and without Content-Length arrive byte-identical.
func TestProxyBodies(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()))))
	data := harness.Noise("upload", 1<<20)
	const size = 3 << 20
	want, _ := io.ReadAll(io.LimitReader(newPatternReader(), size))
	for _, p := range harness.Protos {
		c := s.Client(p)
		for _, sized := range []bool{true, false} {
			var body io.Reader = bytes.NewReader(data)
			if !sized {
				body = unsized{body}
			}
			req, err := http.NewRequest(http.MethodPost, s.URL("/upload"), body)
			if err != nil {
				t.Fatal(err)
			}
			what := fmt.Sprintf("%s upload (Content-Length sent: %v)", p, sized)
			e := echoOf(t, what, harness.Send(c, p, req))
			if e.BodyLen != int64(len(data)) || e.BodySHA256 != sha256Hex(data) {
				t.Errorf("%s: upstream got %d bytes (sha256 %s), want %d (%s)", what, e.BodyLen, e.BodySHA256, len(data), sha256Hex(data))
			}
			switch {
			case sized && e.ContentLength != int64(len(data)):
				t.Errorf("%s: upstream saw Content-Length %d, want %d", what, e.ContentLength, len(data))
			case !sized && !slices.Equal(e.TransferEncoding, []string{"chunked"}):
				t.Errorf("%s: upstream saw Transfer-Encoding %q (Content-Length %d), want chunked", what, e.TransferEncoding, e.ContentLength)
			}
		}
		for _, chunked := range []string{"0", "1"} {
			r := get(s, p, c, "/download?size="+fmt.Sprint(size)+"&chunked="+chunked)
			what := fmt.Sprintf("%s download (upstream chunked: %s)", p, chunked)
			if r.Err != nil || r.Status != http.StatusOK {
				t.Errorf("%s: status %d, err %v", what, r.Status, r.Err)
				continue
			}
			sameBytes(t, what, r.Body, want)
			if cl := r.Header.Get("Content-Length"); chunked == "0" && cl != fmt.Sprint(size) && p != harness.H3 {
				t.Errorf("%s: Content-Length %q, want %d", what, cl, size)
			}
		}
	}
}

// TestProxyTrailers: over h1, h2 and h3 (Go clients) a request trailer
// reaches the upstream (which echoes it in its own trailer) and the
// response trailers reach the client.
func TestProxyTrailers(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()))))
	data := harness.Noise("trailers", 100<<10)
	for _, p := range harness.Protos {
		req, err := http.NewRequest(http.MethodPost, s.URL("/trailers"), unsized{bytes.NewReader(data)})
		if err != nil {
			t.Fatal(err)
		}
		req.Trailer = http.Header{"X-Req-Trailer": {"from-client-" + string(p)}}
		res, err := s.Client(p).Do(req)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		body := readAll(t, res)
		if res.StatusCode != http.StatusOK || string(body) != "body before trailers\n" {
			t.Errorf("%s: status %d body %q", p, res.StatusCode, body)
		}
		want := map[string]string{"X-Up-Trailer": "from-app", "X-Echo-Trailer": "from-client-" + string(p), "X-Body-Sha256": sha256Hex(data)}
		for k, v := range want {
			if got := res.Trailer.Get(k); got != v {
				t.Errorf("%s: response trailer %s %q, want %q (trailers %v)", p, k, got, v, res.Trailer)
			}
		}
	}
}

// TestProxySSE: over h1, h2 and h3 each server-sent event reaches the
// client while the upstream's stream is still open: the upstream writes
// the next event only when the client has acknowledged the previous one
// (a proxy that buffers the stream makes the test fail at the upstream's
// 30 s wait). The delay from the upstream's write to the client's read is
// logged beside the 50 ms goal; it is not asserted (a slow machine is not
// a failure).
func TestProxySSE(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()))))
	const n = 10
	for _, p := range harness.Protos {
		id := "stream-" + string(p)
		ctx, cancel := context.WithTimeout(context.Background(), harness.SafetyNet)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL(fmt.Sprintf("/sse?n=%d&id=%s", n, id)), nil)
		res, err := s.Client(p).Do(req)
		if err != nil {
			cancel()
			t.Errorf("%s: %v", p, err)
			continue
		}
		delays, err := readEvents(res.Body, n, func() { up.control(t, "/sse-ack?id="+id, nil) })
		res.Body.Close()
		cancel()
		if err != nil {
			t.Errorf("%s: %v (after %d events)", p, err, len(delays))
			continue
		}
		t.Logf("%s: %d events, delay from the upstream's write to the client's read: max %v, each %v (goal: under 50 ms)",
			p, n, slices.Max(delays), delays)
	}
}

// readEvents reads n server-sent events from r, calling ack after each
// but the last, and returns how long after its write each one was read.
// An event that came in after its successor was written (so it was
// held back) is an error.
func readEvents(r io.Reader, n int, ack func()) ([]time.Duration, error) {
	sc := bufio.NewScanner(r)
	var delays []time.Duration
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		read := time.Now()
		var ev sseEvent
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return delays, fmt.Errorf("event %q: %v", data, err)
		}
		if ev.Seq != len(delays)+1 {
			return delays, fmt.Errorf("event %d came as number %d", ev.Seq, len(delays)+1)
		}
		delays = append(delays, read.Sub(time.Unix(0, ev.Written)))
		if ev.Seq == n {
			return delays, nil
		}
		ack()
	}
	return delays, fmt.Errorf("stream ended after %d of %d events: %v", len(delays), n, sc.Err())
}

// TestProxyLargeBodiesRSS: a 1 GiB upload and a 1 GiB download through
// anx (plain HTTP/1.1 to its http port, http_mode = "serve", max_body_bytes
// raised to 2 GiB) arrive whole,
// and anx's resident set, sampled every 50 ms, grows by less than 200 MiB:
// bodies stream with backpressure instead of being held. The growth and
// the peak are logged.
func TestProxyLargeBodiesRSS(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamConfig{Name: "app"})
	const size = 1 << 30
	limits := fmt.Sprintf("\n[limits]\nmax_body_bytes = %d\n", 2*size)
	s := startProxy(t, proxyConfig(limits, "http_mode = \"serve\"\n"+route("/", proxyTo(up.URL()))))
	c := &http.Client{Timeout: 10 * harness.SafetyNet}
	base, err := processRSS(s.PID())
	if err != nil {
		t.Fatal(err)
	}
	var peak atomic.Int64
	stop := sampleRSS(s.PID(), &peak)
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.HTTP+"/upload", io.LimitReader(newPatternReader(), size))
	req.ContentLength = size
	start := time.Now()
	e := echoOf(t, "1 GiB upload", harness.Send(c, harness.H1, req))
	upTook := time.Since(start)
	h := sha256.New()
	_, _ = io.Copy(h, io.LimitReader(newPatternReader(), size))
	if want := hex.EncodeToString(h.Sum(nil)); e.BodyLen != size || e.BodySHA256 != want {
		t.Errorf("upload: upstream got %d bytes (sha256 %s), want %d (%s)", e.BodyLen, e.BodySHA256, size, want)
	}
	start = time.Now()
	res, err := c.Get("http://" + s.HTTP + "/download?size=" + fmt.Sprint(size))
	if err != nil {
		t.Fatal(err)
	}
	got := &patternChecker{bad: -1}
	n, err := io.Copy(got, res.Body)
	res.Body.Close()
	downTook := time.Since(start)
	stop()
	if err != nil || n != size || got.bad >= 0 {
		t.Errorf("download: %d bytes (err %v), first wrong byte at %d; want %d bytes of the pattern", n, err, got.bad, size)
	}
	growth := peak.Load() - base
	t.Logf("anx RSS: %d MiB before, peak %d MiB (growth %d MiB); upload %v, download %v",
		base>>20, peak.Load()>>20, growth>>20, upTook.Round(time.Millisecond), downTook.Round(time.Millisecond))
	if growth >= 200<<20 {
		t.Errorf("anx RSS grew by %d MiB while 1 GiB went each way, want under 200 MiB", growth>>20)
	}
}

// sampleRSS records the peak resident set of pid every 50 ms until the
// returned stop is called (which waits for the sampler to end).
func sampleRSS(pid int, peak *atomic.Int64) (stop func()) {
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, err := processRSS(pid); err == nil && rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-ended }
}

// patternChecker compares what is written to it with the upstream's
// download pattern; bad is the offset of the first wrong byte, or -1
// (start it at -1).
// It is owned by the goroutine that writes to it (io.Copy's caller).
type patternChecker struct {
	off int64         // bytes checked so far
	bad int64         // offset of the first wrong byte, or -1
	ref patternReader // the expected stream, at off
	buf []byte        // scratch for the expected bytes of one Write
}

func (c *patternChecker) Write(b []byte) (int, error) {
	if cap(c.buf) < len(b) {
		c.buf = make([]byte, len(b))
	}
	want := c.buf[:len(b)]
	_, _ = c.ref.Read(want)
	if c.bad < 0 && !bytes.Equal(b, want) {
		for i := range b {
			if b[i] != want[i] {
				c.bad = c.off + int64(i)
				break
			}
		}
	}
	c.off += int64(len(b))
	return len(b), nil
}

// TestProxyBodiesCurl: curl over h1, h2 and h3 uploads 5 MiB with
// Content-Length and without (chunked on h1; no content-length on h2/h3,
// which goes upstream chunked), and downloads 5 MiB sent with and without
// Content-Length: every body byte-identical.
func TestProxyBodiesCurl(t *testing.T) {
	t.Parallel()
	peers := curlPeers(t)
	up := startUpstream(t, upstreamConfig{Name: "app"})
	s := startProxy(t, proxyConfig("", route("/", proxyTo(up.URL()))))
	data := harness.Noise("curl upload", 5<<20)
	file := filepath.Join(t.TempDir(), "upload")
	harness.WriteFile(t, file, data)
	const size = 5 << 20
	want, _ := io.ReadAll(io.LimitReader(newPatternReader(), size))
	for _, p := range peers {
		unsizedArgs := []string{"-H", "Content-Length:"}
		if p.proto == "h1" {
			unsizedArgs = []string{"-H", "Transfer-Encoding: chunked"}
		}
		for _, extra := range [][]string{nil, unsizedArgs} {
			what := fmt.Sprintf("%s upload %q", p.proto, extra)
			_, body := curlProxied(t, s, p.curl, p.flag, "/upload", append([]string{"--data-binary", "@" + file}, extra...)...)
			var e echoReply
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Errorf("%s: not the upstream's answer: %v (%q)", what, err, clip([]byte(body), 0))
				continue
			}
			if e.BodyLen != int64(len(data)) || e.BodySHA256 != sha256Hex(data) {
				t.Errorf("%s: upstream got %d bytes (sha256 %s), want %d (%s)", what, e.BodyLen, e.BodySHA256, len(data), sha256Hex(data))
			}
			if extra != nil && !slices.Equal(e.TransferEncoding, []string{"chunked"}) {
				t.Errorf("%s: upstream saw Transfer-Encoding %q (Content-Length %d), want chunked", what, e.TransferEncoding, e.ContentLength)
			}
		}
		for _, chunked := range []string{"0", "1"} {
			_, body := curlProxied(t, s, p.curl, p.flag, fmt.Sprintf("/download?size=%d&chunked=%s", size, chunked))
			sameBytes(t, fmt.Sprintf("%s download (upstream chunked: %s)", p.proto, chunked), []byte(body), want)
		}
	}
}
