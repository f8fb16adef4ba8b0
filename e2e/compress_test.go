package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/anx-gateway/anx/e2e/harness"
)

// The on-the-fly compression of static files and proxied responses, seen
// by real curl (its own --compressed decoding, and raw bodies of each
// coding decoded here) over h1, h2 and h3, and by Go clients reading a
// compressed event stream as it comes.

// compressText returns size bytes of text that compresses well and is
// the same on every call.
func compressText(seed, size int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "line %d of %d: the quick brown fox jumps over the lazy dog %x\n", i, seed, (i*seed)%4099)
	}
	return b.Bytes()[:size]
}

// compressSite is the static side: small.css is compressed in the first
// request, big.js off the request, side.js has a gzip sidecar (made at
// another level than anx's, so its bytes are recognisable), logo.png is
// not compressed.
func compressSite(t testing.TB, root string) {
	files := map[string][]byte{
		"small.css": compressText(1, 3000),
		"big.js":    compressText(2, 300<<10),
		"side.js":   compressText(3, 5000),
	}
	noise := make([]byte, 4000)
	for i := range noise {
		noise[i] = byte(rand.Uint32())
	}
	files["logo.png"] = noise
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.HuffmanOnly)
	zw.Write(files["side.js"])
	zw.Close()
	files["side.js.gz"] = gz.Bytes()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// compressUpstream serves /text (100 KiB of text/plain with a
// Content-Length; Range honoured), /chunked (JSON without one) and
// /events (an event stream: the first event, then the second once
// released through gate). It runs in the test process, on loopback.
type compressUpstream struct {
	*httptest.Server
	text, json []byte
	mu         sync.Mutex
	gates      map[string]chan struct{} // guarded by mu
}

func startCompressUpstream(t *testing.T) *compressUpstream {
	u := &compressUpstream{text: compressText(4, 100<<10), json: []byte(strings.Repeat(`{"k":"v","n":12345},`, 2000)),
		gates: map[string]chan struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("ETag", `"text-v1"`)
		http.ServeContent(w, r, "", time.Unix(1700000000, 0), bytes.NewReader(u.text))
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for i := 0; i < len(u.json); i += 8 << 10 {
			w.Write(u.json[i:min(i+8<<10, len(u.json))])
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-u.gate(r.URL.Query().Get("id")):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: second\n\n")
	})
	u.Server = httptest.NewServer(mux)
	t.Cleanup(u.Close)
	return u
}

func (u *compressUpstream) gate(id string) chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.gates[id] == nil {
		u.gates[id] = make(chan struct{})
	}
	return u.gates[id]
}

func startCompressServer(t *testing.T, up *compressUpstream) *harness.Server {
	site := "root = \"{{.Root}}\"\nhttp_mode = \"serve\"\n" + route("/up/", proxyTo(up.URL), "strip_prefix = true")
	return harness.Start(t, harness.Options{Config: proxyConfig("", site), Site: compressSite})
}

// decodeAs decodes a whole body in the named coding ("" for none).
func decodeAs(t *testing.T, coding string, body []byte) []byte {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	switch coding {
	case "":
		return body
	case "zstd":
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		r = d
	case "br":
		r = brotli.NewReader(r)
	case "gzip":
		d, err := gzip.NewReader(r)
		if err != nil {
			t.Errorf("gzip: %v", err)
			return nil
		}
		r = d
	default:
		t.Errorf("unexpected Content-Encoding %q", coding)
		return nil
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Errorf("decoding %s: %v", coding, err)
	}
	return out
}

// compressedFetch is what curl got: status, the last head's fields, the body.
type compressedFetch struct {
	status int
	head   string
	body   []byte
}

func (f compressedFetch) field(name string) string { return strings.Join(headerIn(f.head, name), ", ") }

func curlFetch(t *testing.T, s *harness.Server, curl, flag, url string, args ...string) compressedFetch {
	t.Helper()
	dir := t.TempDir()
	h, b := filepath.Join(dir, "head"), filepath.Join(dir, "body")
	r := runCurl(t, s, curl, append([]string{flag, "-D", h, "-o", b, "-w", "%{http_code}"}, append(args, url)...)...)
	head, _ := os.ReadFile(h)
	body, _ := os.ReadFile(b)
	status, _ := strconv.Atoi(r.Stdout)
	return compressedFetch{status: status, head: string(head), body: body}
}

// compressedPeers are curl for h1 and h2 (with zstd, br and gzip) and
// the HTTP/3 curl (gzip only: its libcurl has zlib alone), each with the
// coding its --compressed makes anx choose.
func compressedPeers(t *testing.T) []struct{ proto, curl, flag, auto string } {
	t.Helper()
	curl, curlH3 := harness.Peer(t, "curl"), harness.Peer(t, "curl-h3")
	return []struct{ proto, curl, flag, auto string }{
		{"h1", curl, "--http1.1", "zstd"}, {"h2", curl, "--http2", "zstd"}, {"h3", curlH3, "--http3-only", "gzip"},
	}
}

// checkCompressed checks a 200 in coding want whose body decodes to content.
func checkCompressed(t *testing.T, what string, f compressedFetch, want string, content []byte) {
	t.Helper()
	if f.status != 200 {
		t.Errorf("%s: status %d, want 200\n%s", what, f.status, f.head)
		return
	}
	if got := f.field("Content-Encoding"); got != want {
		t.Errorf("%s: Content-Encoding %q, want %q", what, got, want)
	}
	if !strings.Contains(f.field("Vary"), "Accept-Encoding") {
		t.Errorf("%s: Vary %q lacks Accept-Encoding", what, f.field("Vary"))
	}
	if cl := f.field("Content-Length"); cl != "" && cl != strconv.Itoa(len(f.body)) {
		t.Errorf("%s: Content-Length %s for %d bytes", what, cl, len(f.body))
	}
	sameBytes(t, what, decodeAs(t, want, f.body), content)
}

// checkDecodedByCurl checks a 200 sent in coding want that curl
// (--compressed) decoded to content.
func checkDecodedByCurl(t *testing.T, what string, f compressedFetch, want string, content []byte) {
	t.Helper()
	if f.status != 200 {
		t.Errorf("%s: status %d, want 200\n%s", what, f.status, f.head)
		return
	}
	if got := f.field("Content-Encoding"); got != want {
		t.Errorf("%s: Content-Encoding %q, want %q", what, got, want)
	}
	if !strings.Contains(f.field("Vary"), "Accept-Encoding") {
		t.Errorf("%s: Vary %q lacks Accept-Encoding", what, f.field("Vary"))
	}
	sameBytes(t, what, f.body, content)
}

// TestCompressStaticCurl: curl gets a static file's exact bytes back in
// every coding, decoded by itself (--compressed) or here (an explicit
// Accept-Encoding), over h1, h2 and h3; a Range request gets identity;
// the gzip sidecar is sent as it is on disk; a PNG is not compressed; a
// large file is sent as it is until its variant is ready, then
// compressed.
func TestCompressStaticCurl(t *testing.T) {
	t.Parallel()
	peers := compressedPeers(t)
	s := startCompressServer(t, startCompressUpstream(t))
	small, side, png := s.File("small.css"), s.File("side.js"), s.File("logo.png")
	for _, p := range peers {
		f := curlFetch(t, s, p.curl, p.flag, s.URL("/small.css"), "--compressed")
		checkDecodedByCurl(t, p.proto+" --compressed /small.css", f, p.auto, small)
		for _, coding := range []string{"zstd", "br", "gzip"} {
			f := curlFetch(t, s, p.curl, p.flag, s.URL("/small.css"), "-H", "Accept-Encoding: "+coding)
			checkCompressed(t, p.proto+" "+coding+" /small.css", f, coding, small)
		}
		f = curlFetch(t, s, p.curl, p.flag, s.URL("/small.css"), "-H", "Accept-Encoding: zstd, br, gzip", "-r", "100-199")
		if f.status != 206 || f.field("Content-Encoding") != "" || !bytes.Equal(f.body, small[100:200]) {
			t.Errorf("%s Range: %d Content-Encoding %q, %d bytes; want 206, identity, bytes 100-199", p.proto, f.status, f.field("Content-Encoding"), len(f.body))
		}
		f = curlFetch(t, s, p.curl, p.flag, s.URL("/side.js"), "-H", "Accept-Encoding: gzip, zstd")
		checkCompressed(t, p.proto+" sidecar", f, "gzip", side)
		sameBytes(t, p.proto+" sidecar bytes", f.body, s.File("side.js.gz"))
		f = curlFetch(t, s, p.curl, p.flag, s.URL("/logo.png"), "-H", "Accept-Encoding: zstd, br, gzip")
		if f.field("Content-Encoding") != "" || !bytes.Equal(f.body, png) {
			t.Errorf("%s PNG: Content-Encoding %q, %d bytes; want it as it is", p.proto, f.field("Content-Encoding"), len(f.body))
		}
	}
	big := s.File("big.js")
	curl := peers[0].curl
	for deadline := time.Now().Add(harness.SafetyNet); ; {
		f := curlFetch(t, s, curl, "--http1.1", s.URL("/big.js"), "-H", "Accept-Encoding: br")
		if f.field("Content-Encoding") == "br" {
			break
		}
		checkCompressed(t, "big.js before its variant is ready", f, "", big)
		if time.Now().After(deadline) {
			t.Fatal("big.js was never compressed")
		}
	}
	for _, p := range peers {
		f := curlFetch(t, s, p.curl, p.flag, s.URL("/big.js"), "-H", "Accept-Encoding: br")
		checkCompressed(t, p.proto+" br /big.js", f, "br", big)
		// Other codings are compressed at their first request: identity
		// or the coding, the bytes are the file's either way.
		f = curlFetch(t, s, p.curl, p.flag, s.URL("/big.js"), "--compressed")
		if got := f.field("Content-Encoding"); got == "" {
			checkDecodedByCurl(t, p.proto+" --compressed /big.js (not ready)", f, "", big)
		} else {
			checkDecodedByCurl(t, p.proto+" --compressed /big.js", f, p.auto, big)
		}
	}
}

// TestCompressProxyCurl: curl gets a proxied response's exact bytes back
// in every coding, with and without the upstream's Content-Length, over
// h1 (TLS, and plain HTTP where the proxy answers on its event loop), h2
// and h3; a Range request is passed to the upstream and its 206 comes
// back uncompressed.
func TestCompressProxyCurl(t *testing.T) {
	t.Parallel()
	peers := compressedPeers(t)
	up := startCompressUpstream(t)
	s := startCompressServer(t, up)
	type target struct {
		path    string
		content []byte
	}
	targets := []target{{"/up/text", up.text}, {"/up/chunked", up.json}}
	plain := struct{ proto, curl, flag, auto string }{"h1 plain", peers[0].curl, "--http1.1", "zstd"}
	for _, p := range append(peers, plain) {
		url := s.URL
		if p.proto == "h1 plain" {
			url = s.HTTPURL
		}
		for _, tg := range targets {
			f := curlFetch(t, s, p.curl, p.flag, url(tg.path), "--compressed")
			checkDecodedByCurl(t, p.proto+" --compressed "+tg.path, f, p.auto, tg.content)
			for _, coding := range []string{"zstd", "br", "gzip"} {
				f := curlFetch(t, s, p.curl, p.flag, url(tg.path), "-H", "Accept-Encoding: "+coding)
				checkCompressed(t, p.proto+" "+coding+" "+tg.path, f, coding, tg.content)
				if f.field("Content-Length") != "" {
					t.Errorf("%s %s %s: Content-Length %s kept", p.proto, coding, tg.path, f.field("Content-Length"))
				}
			}
		}
		f := curlFetch(t, s, p.curl, p.flag, url("/up/text"), "-H", "Accept-Encoding: gzip")
		if etag := f.field("ETag"); etag != `W/"text-v1"` {
			t.Errorf("%s: ETag %s, want the upstream's made weak", p.proto, etag)
		}
		f = curlFetch(t, s, p.curl, p.flag, url("/up/text"), "-H", "Accept-Encoding: zstd, br, gzip", "-r", "0-99")
		if f.status != 206 || f.field("Content-Encoding") != "" || !bytes.Equal(f.body, up.text[:100]) {
			t.Errorf("%s Range: %d Content-Encoding %q, %d bytes; want 206, identity, bytes 0-99", p.proto, f.status, f.field("Content-Encoding"), len(f.body))
		}
	}
}

// TestCompressProxyStreamFlushes: a compressed event stream still
// streams: the client decodes the first event while the upstream holds
// the second back, over h1 (whose proxy runs on the event loop), h2 and
// h3, in zstd, br and gzip respectively.
func TestCompressProxyStreamFlushes(t *testing.T) {
	t.Parallel()
	up := startCompressUpstream(t)
	s := startCompressServer(t, up)
	codings := map[harness.Proto]string{harness.H1: "zstd", harness.H2: "br", harness.H3: "gzip"}
	for _, p := range harness.Protos {
		coding := codings[p]
		id := string(p)
		ctx, cancel := context.WithTimeout(context.Background(), harness.SafetyNet)
		req, err := http.NewRequestWithContext(ctx, "GET", s.URL("/up/events?id="+id), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept-Encoding", coding)
		resp, err := s.Client(p).Do(req)
		if err != nil {
			cancel()
			t.Fatalf("%s: %v", p, err)
		}
		if got := resp.Header.Get("Content-Encoding"); got != coding {
			t.Errorf("%s: Content-Encoding %q, want %s", p, got, coding)
		}
		d := streamDecoder(t, coding, resp.Body)
		first := make([]byte, len("data: first\n\n"))
		if _, err := io.ReadFull(d, first); err != nil || string(first) != "data: first\n\n" {
			t.Errorf("%s: the first event decodes to %q (%v) while the second is held", p, first, err)
		}
		close(up.gate(id))
		rest, err := io.ReadAll(d)
		if err != nil || string(rest) != "data: second\n\n" {
			t.Errorf("%s: the rest decodes to %q (%v), want the second event", p, rest, err)
		}
		resp.Body.Close()
		cancel()
	}
}

// streamDecoder decodes a response body as it arrives.
func streamDecoder(t *testing.T, coding string, body io.Reader) io.Reader {
	t.Helper()
	switch coding {
	case "zstd":
		d, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		return d
	case "br":
		return brotli.NewReader(body)
	}
	d, err := gzip.NewReader(body)
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	return d
}
