package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/anx-gateway/anx/core/encode"
)

// decoderFor reads the content of a stream in the given coding.
func decoderFor(t *testing.T, coding string, stream io.Reader) io.Reader {
	t.Helper()
	switch coding {
	case "zstd":
		d, err := zstd.NewReader(stream, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		return d
	case "br":
		return brotli.NewReader(stream)
	case "gzip":
		d, err := gzip.NewReader(stream)
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		return d
	}
	return stream
}

func jsonOf(size int) []byte {
	var b bytes.Buffer
	b.WriteString("[")
	for i := 0; b.Len() < size-20; i++ {
		fmt.Fprintf(&b, `{"id":%d,"name":"item %d"},`, i, i*7)
	}
	b.WriteString(`{"id":-1}]`)
	return b.Bytes()
}

// answeringUpstream answers every request with content and the given fields.
func answeringUpstream(t *testing.T, status int, content []byte, fields ...string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(fields); i += 2 {
			w.Header().Set(fields[i], fields[i+1])
		}
		w.WriteHeader(status)
		w.Write(content)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func compressingProxy(t *testing.T, url string) *Handler {
	return newHandler(t, Config{Upstreams: []Upstream{{URL: url}}, Compress: encode.DefaultSet})
}

// A compressible response is compressed in the coding the client
// prefers: no Content-Length, Vary added, the ETag made weak, the bytes
// decoding to the upstream's.
func TestCompressProxiedResponse(t *testing.T) {
	content := jsonOf(20 << 10)
	url := answeringUpstream(t, 200, content, "Content-Type", "application/json", "ETag", `"v1"`,
		"Content-Length", strconv.Itoa(len(content)), "Vary", "Origin")
	h := compressingProxy(t, url)
	for _, tc := range []struct{ accept, want string }{
		{"gzip, deflate, br, zstd", "zstd"},
		{"gzip, deflate, br", "br"},
		{"gzip", "gzip"},
		{"br;q=0.5, gzip;q=0.9", "gzip"},
	} {
		rc := serve(h, request("GET", "/items", "", "Accept-Encoding", tc.accept))
		if rc.status != 200 || rc.header.Get("Content-Encoding") != tc.want {
			t.Fatalf("%s: status %d Content-Encoding %q, want 200 %s", tc.accept, rc.status, rc.header.Get("Content-Encoding"), tc.want)
		}
		if rc.header.Has("Content-Length") {
			t.Errorf("%s: Content-Length %s kept", tc.accept, rc.header.Get("Content-Length"))
		}
		if vary := strings.Join(collect(rc.header.Values("Vary")), ", "); vary != "Origin, Accept-Encoding" {
			t.Errorf("%s: Vary %q, want \"Origin, Accept-Encoding\"", tc.accept, vary)
		}
		if etag := rc.header.Get("ETag"); etag != `W/"v1"` {
			t.Errorf("%s: ETag %s, want W/\"v1\"", tc.accept, etag)
		}
		got, err := io.ReadAll(decoderFor(t, tc.want, &rc.body))
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("%s: decoded %d bytes (%v), want the upstream's %d", tc.accept, len(got), err, len(content))
		}
	}
}

func collect(seq func(func(string) bool)) []string {
	var out []string
	for v := range seq {
		out = append(out, v)
	}
	return out
}

// Responses that must not or need not be compressed pass as they came.
func TestCompressSkips(t *testing.T) {
	content := jsonOf(4 << 10)
	gz := func() []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(content)
		w.Close()
		return b.Bytes()
	}()
	cases := []struct {
		name     string
		status   int
		body     []byte
		fields   []string
		method   string
		accept   string
		wantVary bool
	}{
		{"already encoded", 200, gz, []string{"Content-Type", "application/json", "Content-Encoding", "gzip"}, "GET", "zstd, gzip", false},
		{"partial content", 206, content[:100], []string{"Content-Type", "application/json", "Content-Range", "bytes 0-99/4096"}, "GET", "gzip", false},
		{"image", 200, content, []string{"Content-Type", "image/png"}, "GET", "gzip", false},
		{"grpc", 200, content, []string{"Content-Type", "application/grpc"}, "GET", "gzip", false},
		{"small", 200, content[:100], []string{"Content-Type", "application/json"}, "GET", "gzip", false},
		{"no-transform", 200, content, []string{"Content-Type", "application/json", "Cache-Control", "public, no-transform"}, "GET", "gzip", false},
		{"HEAD", 200, nil, []string{"Content-Type", "application/json", "Content-Length", "4096"}, "HEAD", "gzip", true},
		{"client accepts none", 200, content, []string{"Content-Type", "application/json"}, "GET", "", true},
		{"client refuses all", 200, content, []string{"Content-Type", "application/json"}, "GET", "gzip;q=0, *;q=0", true},
		{"not modified", 304, nil, []string{"Content-Type", "application/json"}, "GET", "gzip", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := compressingProxy(t, answeringUpstream(t, tc.status, tc.body, tc.fields...))
			var fields []string
			if tc.accept != "" {
				fields = []string{"Accept-Encoding", tc.accept}
			}
			rc := serve(h, request(tc.method, "/", "", fields...))
			if rc.status != tc.status {
				t.Fatalf("status %d, want %d", rc.status, tc.status)
			}
			wantEncoding := ""
			if tc.name == "already encoded" {
				wantEncoding = "gzip"
			}
			if got := rc.header.Get("Content-Encoding"); got != wantEncoding {
				t.Errorf("Content-Encoding %q, want %q", got, wantEncoding)
			}
			if tc.method != "HEAD" && !bytes.Equal(rc.body.Bytes(), tc.body) {
				t.Errorf("body changed: %d bytes, want the upstream's %d", rc.body.Len(), len(tc.body))
			}
			if got := rc.header.Has("Vary"); got != tc.wantVary {
				t.Errorf("Vary present %v, want %v", got, tc.wantVary)
			}
		})
	}
}

// A streamed response stays streamed when compressed: what the upstream
// sent before it paused reaches the client, decodable, before the
// upstream goes on.
func TestCompressStreamFlushes(t *testing.T) {
	for _, coding := range []string{"zstd", "br", "gzip"} {
		t.Run(coding, func(t *testing.T) {
			release := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "data: one\n\n")
				w.(http.Flusher).Flush()
				<-release
				io.WriteString(w, "data: two\n\n")
			}))
			t.Cleanup(up.Close)
			h := compressingProxy(t, up.URL)
			rc := &recorder{flushed: make(chan string, 10)}
			done := make(chan struct{})
			go func() { h.Serve(rc, request("GET", "/events", "", "Accept-Encoding", coding)); close(done) }()
			first := <-rc.flushed // the upstream is held until release: this is the first event alone
			d := decoderFor(t, coding, strings.NewReader(first))
			event := make([]byte, len("data: one\n\n"))
			if _, err := io.ReadFull(d, event); err != nil || string(event) != "data: one\n\n" {
				t.Errorf("first flush decodes to %q (%v), want the first event", event, err)
			}
			close(release)
			<-done
			if got := rc.header.Get("Content-Encoding"); got != coding {
				t.Fatalf("Content-Encoding %q, want %s", got, coding)
			}
			all, err := io.ReadAll(decoderFor(t, coding, &rc.body))
			if err != nil || string(all) != "data: one\n\ndata: two\n\n" {
				t.Errorf("whole body decodes to %q (%v)", all, err)
			}
		})
	}
}
