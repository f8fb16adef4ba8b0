package static_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/static"
	"github.com/anx-gateway/anx/core/static/statictest"
)

// benchWriter is what a front end's writer costs at least: it reuses its
// header and drops the body. With sendfile set it offers
// message.FileWriter, whose send it does not perform.
type benchWriter struct {
	header message.Header
	status int
	bytes  int64
}

func (w *benchWriter) Header() *message.Header { return &w.header }
func (w *benchWriter) WriteHeader(status int)  { w.status = status }
func (w *benchWriter) Write(p []byte) (int, error) {
	w.bytes += int64(len(p))
	return len(p), nil
}

type sendfileWriter struct{ benchWriter }

func (w *sendfileWriter) WriteFile(_ *os.File, _, length int64) (int64, error) {
	w.bytes += length
	return length, nil
}

var _ message.FileWriter = (*sendfileWriter)(nil)

// benchSite writes the fixture plus kib.txt, a 1 KiB file.
func benchSite(b testing.TB) string {
	root, err := statictest.WriteSite(b.(interface{ TempDir() string }).TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "kib.txt"), []byte(strings.Repeat("x", 1023)+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	return root
}

// kibETag asks a Handler for the ETag of kib.txt.
func kibETag(b *testing.B, root string) string {
	h, err := static.New(static.Config{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	rec := serve(b, h, "HEAD", "/kib.txt")
	return strings.Join(rec.values("ETag"), "")
}

type benchRequest struct {
	name   string
	target string
	header []statictest.Field
	status int
}

func BenchmarkServe(b *testing.B) {
	root := benchSite(b)
	requests := []benchRequest{
		{"1KiB", "/kib.txt", nil, 200},
		{"1KiB-browser-headers", "/kib.txt", []statictest.Field{
			{Name: "Accept", Value: "text/html,application/xhtml+xml,*/*;q=0.8"},
			{Name: "Accept-Encoding", Value: "gzip, deflate, br, zstd"},
			{Name: "Accept-Language", Value: "en-US,en;q=0.5"},
			{Name: "User-Agent", Value: "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"},
		}, 200},
		{"1KiB-conditional-200", "/kib.txt", []statictest.Field{{Name: "If-None-Match", Value: `"x", "y"`}, {Name: "If-Modified-Since", Value: "Tue, 02 Jan 2024 03:04:05 GMT"}}, 200},
		{"1KiB-304", "/kib.txt", []statictest.Field{{Name: "If-None-Match", Value: kibETag(b, root)}}, 304},
		{"css-br-variant", "/a.css", []statictest.Field{{Name: "Accept-Encoding", Value: "gzip, deflate, br, zstd"}}, 200},
		{"range", "/digits.txt", []statictest.Field{{Name: "Range", Value: "bytes=10-19"}}, 206},
		{"deep-path", "/docs/guide.txt", nil, 200},
		{"404", "/missing.txt", nil, 404},
	}
	for _, cache := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", time.Hour}, {"uncached", -1}} {
		h, err := static.New(static.Config{Root: root, CacheTTL: cache.ttl})
		if err != nil {
			b.Fatal(err)
		}
		for _, req := range requests {
			for _, sendfile := range []bool{true, false} {
				name := cache.name + "/" + req.name + "/copy"
				if sendfile {
					name = cache.name + "/" + req.name + "/sendfile"
				}
				b.Run(name, func(b *testing.B) { benchServe(b, h, req, sendfile) })
			}
		}
		h.Close()
	}
}

func benchServe(b *testing.B, h *static.Handler, req benchRequest, sendfile bool) {
	r := newRequest(b, statictest.Request{Method: "GET", Target: req.target, Header: req.header})
	var w message.ResponseWriter
	var bw *benchWriter
	if sendfile {
		sw := &sendfileWriter{}
		w, bw = sw, &sw.benchWriter
	} else {
		bw = &benchWriter{}
		w = bw
	}
	b.ReportAllocs()
	for b.Loop() {
		bw.header.Reset()
		h.Serve(w, r)
	}
	if bw.status != req.status {
		b.Fatalf("status %d, want %d", bw.status, req.status)
	}
}

// BenchmarkServeParallel is the cached 1 KiB GET from every core at once.
func BenchmarkServeParallel(b *testing.B) {
	root := benchSite(b)
	h, err := static.New(static.Config{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := newRequest(b, statictest.Request{Method: "GET", Target: "/kib.txt"})
		w := &sendfileWriter{}
		for pb.Next() {
			w.header.Reset()
			h.Serve(w, r)
		}
	})
}

// The common case, a GET of a cached file, allocates nothing.
func TestCachedGetDoesNotAllocate(t *testing.T) {
	root := benchSite(t)
	h := newHandler(t, static.Config{Root: root, CacheTTL: time.Hour})
	for _, sendfile := range []bool{true, false} {
		r := newRequest(t, statictest.Request{Method: "GET", Target: "/kib.txt",
			Header: []statictest.Field{{Name: "Accept-Encoding", Value: "gzip, br"}}})
		w := &sendfileWriter{}
		var rw message.ResponseWriter = w
		if !sendfile {
			rw = &w.benchWriter
		}
		h.Serve(rw, r) // fill the cache
		allocs := testing.AllocsPerRun(100, func() {
			w.header.Reset()
			h.Serve(rw, r)
		})
		if w.status != 200 || allocs != 0 {
			t.Errorf("sendfile %v: status %d, %v allocations per cached GET, want 200 and 0", sendfile, w.status, allocs)
		}
	}
}
