package static_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/anx-gateway/anx/core/encode"
	"github.com/anx-gateway/anx/core/static"
	"github.com/anx-gateway/anx/core/static/statictest"
)

// decodeBody decodes a response body sent with the given Content-Encoding.
func decodeBody(t testing.TB, contentEncoding string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	switch contentEncoding {
	case "":
		return body
	case "zstd":
		d, err := zstd.NewReader(bytes.NewReader(body), zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		r = d
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "gzip":
		d, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = d
	default:
		t.Fatalf("unexpected Content-Encoding %q", contentEncoding)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", contentEncoding, err)
	}
	return out
}

// textOf returns size bytes of compressible text.
func textOf(size int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, ".rule-%d { color: #%06x; margin: %dpx; }\n", i, i*2654435761%0xffffff, i%17)
	}
	return b.Bytes()[:size]
}

func writeFile(t testing.TB, root, name string, content []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, name), content, 0o644); err != nil {
		t.Fatal(err)
	}
}

func compressingHandler(t testing.TB, root string) *static.Handler {
	return newHandler(t, static.Config{Root: root, Compress: encode.DefaultSet, CacheTTL: -1})
}

func header1(rec *recorder, name string) string { return strings.Join(rec.values(name), ", ") }

// checkVariant checks a 200 in coding want ("" for identity) that decodes
// to content and carries the fields a variant needs.
func checkVariant(t *testing.T, rec *recorder, want string, content []byte) {
	t.Helper()
	if rec.status != 200 {
		t.Fatalf("status %d, want 200", rec.status)
	}
	if got := header1(rec, "Content-Encoding"); got != want {
		t.Errorf("Content-Encoding %q, want %q", got, want)
	}
	if got := header1(rec, "Vary"); got != "Accept-Encoding" {
		t.Errorf("Vary %q, want Accept-Encoding", got)
	}
	if got := header1(rec, "Content-Length"); got != strconv.Itoa(rec.body.Len()) {
		t.Errorf("Content-Length %s for a body of %d bytes", got, rec.body.Len())
	}
	if got := decodeBody(t, want, rec.body.Bytes()); !bytes.Equal(got, content) {
		t.Errorf("decoded body differs from the file (%d bytes, want %d)", len(got), len(content))
	}
}

// A small file is compressed in the first request that wants it, in the
// coding the client prefers, each with its own ETag; identity keeps the
// file's.
func TestCompressSmallFile(t *testing.T) {
	root := t.TempDir()
	content := textOf(3000)
	writeFile(t, root, "site.css", content)
	h := compressingHandler(t, root)
	etags := map[string]string{}
	for _, tc := range []struct{ accept, want string }{
		{"gzip, deflate, br, zstd", "zstd"},
		{"gzip, deflate, br", "br"},
		{"gzip", "gzip"},
		{"zstd;q=0.5, gzip", "gzip"},
		{"identity", ""},
		{"*;q=0", ""},
	} {
		rec := serve(t, h, "GET", "/site.css", statictest.Field{Name: "Accept-Encoding", Value: tc.accept})
		checkVariant(t, rec, tc.want, content)
		etag := header1(rec, "ETag")
		if prev, seen := etags[tc.want]; seen && prev != etag {
			t.Errorf("%s: ETag %s, then %s", tc.want, prev, etag)
		}
		etags[tc.want] = etag
		if tc.want != "" && !strings.HasSuffix(etag, "-"+map[string]string{"zstd": "zstd", "br": "br", "gzip": "gzip"}[tc.want]+`"`) {
			t.Errorf("%s: ETag %s does not name the coding", tc.want, etag)
		}
	}
	if len(etags) != 4 || etags["zstd"] == etags[""] || etags["br"] == etags["gzip"] {
		t.Errorf("ETags are not one per variant: %v", etags)
	}
	// No Accept-Encoding: identity, still marked as varying.
	rec := serve(t, h, "GET", "/site.css")
	checkVariant(t, rec, "", content)
	if got := header1(rec, "ETag"); got != etags[""] {
		t.Errorf("identity ETag %s, want %s", got, etags[""])
	}
}

// HEAD gets the variant's fields, GET's, without the body; a
// conditional request with the variant's ETag gets 304 with it.
func TestCompressHeadAndConditional(t *testing.T) {
	root := t.TempDir()
	content := textOf(2000)
	writeFile(t, root, "a.json", content)
	h := compressingHandler(t, root)
	ae := statictest.Field{Name: "Accept-Encoding", Value: "br"}
	get := serve(t, h, "GET", "/a.json", ae)
	checkVariant(t, get, "br", content)
	head := serve(t, h, "HEAD", "/a.json", ae)
	for _, name := range []string{"Content-Encoding", "Content-Length", "ETag", "Vary", "Content-Type"} {
		if g, hv := header1(get, name), header1(head, name); g != hv {
			t.Errorf("%s: GET %q, HEAD %q", name, g, hv)
		}
	}
	if head.body.Len() != 0 {
		t.Errorf("HEAD sent %d body bytes", head.body.Len())
	}
	etag := header1(get, "ETag")
	rec := serve(t, h, "GET", "/a.json", ae, statictest.Field{Name: "If-None-Match", Value: etag})
	if rec.status != 304 || header1(rec, "ETag") != etag || header1(rec, "Vary") != "Accept-Encoding" {
		t.Errorf("If-None-Match the variant's tag: %d ETag %q Vary %q, want 304 %s Accept-Encoding", rec.status, header1(rec, "ETag"), header1(rec, "Vary"), etag)
	}
	// The variant's tag does not match the identity representation.
	rec = serve(t, h, "GET", "/a.json", statictest.Field{Name: "If-None-Match", Value: etag})
	checkVariant(t, rec, "", content)
}

// A Range request gets a range of the file itself, never of a variant.
func TestCompressRangeGetsIdentity(t *testing.T) {
	root := t.TempDir()
	content := textOf(3000)
	writeFile(t, root, "r.txt", content)
	h := compressingHandler(t, root)
	ae := statictest.Field{Name: "Accept-Encoding", Value: "zstd, br, gzip"}
	serve(t, h, "GET", "/r.txt", ae) // the variant is cached now
	rec := serve(t, h, "GET", "/r.txt", ae, statictest.Field{Name: "Range", Value: "bytes=10-19"})
	if rec.status != 206 || header1(rec, "Content-Encoding") != "" || rec.body.String() != string(content[10:20]) {
		t.Errorf("Range: %d Content-Encoding %q body %q, want 206, identity, %q", rec.status, header1(rec, "Content-Encoding"), rec.body.String(), content[10:20])
	}
	if got := header1(rec, "Vary"); got != "Accept-Encoding" {
		t.Errorf("Range: Vary %q, want Accept-Encoding", got)
	}
}

// A precompressed sidecar the client accepts wins over compressing on
// the fly; a coding it has no sidecar for is still compressed on the fly.
func TestCompressSidecarWins(t *testing.T) {
	root := t.TempDir()
	content := textOf(3000)
	writeFile(t, root, "app.js", content)
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(content)
	zw.Close()
	writeFile(t, root, "app.js.gz", gz.Bytes())
	h := compressingHandler(t, root)
	rec := serve(t, h, "GET", "/app.js", statictest.Field{Name: "Accept-Encoding", Value: "gzip, zstd"})
	checkVariant(t, rec, "gzip", content)
	if !bytes.Equal(rec.body.Bytes(), gz.Bytes()) {
		t.Error("gzip was not the sidecar's bytes")
	}
	if etag := header1(rec, "ETag"); strings.HasSuffix(etag, `-gzip"`) {
		t.Errorf("ETag %s is an on-the-fly variant's, not the sidecar's", etag)
	}
	rec = serve(t, h, "GET", "/app.js", statictest.Field{Name: "Accept-Encoding", Value: "zstd"})
	checkVariant(t, rec, "zstd", content)
}

// A large file is served uncompressed while it is compressed off the
// request, then from the cache.
func TestCompressLargeFileLater(t *testing.T) {
	root := t.TempDir()
	content := textOf(300 << 10)
	writeFile(t, root, "big.html", content)
	h := compressingHandler(t, root)
	ae := statictest.Field{Name: "Accept-Encoding", Value: "gzip"}
	checkVariant(t, serve(t, h, "GET", "/big.html", ae), "", content)
	h.WaitForCompressions()
	rec := serve(t, h, "GET", "/big.html", ae)
	checkVariant(t, rec, "gzip", content)
	if rec.body.Len() > len(content)/3 {
		t.Errorf("variant of %d bytes for %d of text", rec.body.Len(), len(content))
	}
}

// Files that are not worth it are sent as they are, without Vary: a type
// that is compressed already, or one under the minimum size.
func TestCompressSkips(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "i.png", textOf(3000))
	writeFile(t, root, "tiny.css", textOf(100))
	writeFile(t, root, "w.woff2", textOf(3000))
	h := compressingHandler(t, root)
	for _, name := range []string{"/i.png", "/tiny.css", "/w.woff2"} {
		rec := serve(t, h, "GET", name, statictest.Field{Name: "Accept-Encoding", Value: "gzip, br, zstd"})
		if rec.status != 200 || header1(rec, "Content-Encoding") != "" || header1(rec, "Vary") != "" {
			t.Errorf("%s: %d Content-Encoding %q Vary %q, want 200 as it is", name, rec.status, header1(rec, "Content-Encoding"), header1(rec, "Vary"))
		}
	}
	off := newHandler(t, static.Config{Root: root})
	writeFile(t, root, "s.css", textOf(3000))
	rec := serve(t, off, "GET", "/s.css", statictest.Field{Name: "Accept-Encoding", Value: "gzip"})
	if header1(rec, "Content-Encoding") != "" || header1(rec, "Vary") != "" {
		t.Error("compression off, yet the response is compressed or varies")
	}
}

// Content that does not shrink is sent as it is, and not compressed
// again for the next request.
func TestCompressIncompressible(t *testing.T) {
	root := t.TempDir()
	noise := make([]byte, 3000)
	for i := range noise {
		noise[i] = byte(rand.Uint32())
	}
	writeFile(t, root, "noise.txt", noise)
	h := compressingHandler(t, root)
	for range 2 {
		rec := serve(t, h, "GET", "/noise.txt", statictest.Field{Name: "Accept-Encoding", Value: "gzip"})
		checkVariant(t, rec, "", noise)
	}
	if n, _ := h.CompressedVariants(); n != 1 {
		t.Errorf("%d variants cached, want 1 (the mark that gzip does not pay)", n)
	}
}

// The cache stays within its bytes, dropping the least recently used
// variant, and a changed file gets a new variant.
func TestCompressCacheBounds(t *testing.T) {
	root := t.TempDir()
	const limit = 32 << 10 // files up to 4 KiB are compressed, at once
	h := newHandler(t, static.Config{Root: root, Compress: encode.DefaultSet, CacheTTL: -1, CompressCacheBytes: limit})
	ae := statictest.Field{Name: "Accept-Encoding", Value: "gzip"}
	files := make([][]byte, 40)
	for i := range files {
		files[i] = textOf(1000 + 70*i)
		writeFile(t, root, fmt.Sprintf("f%d.txt", i), files[i])
	}
	hot := "/f0.txt"
	for i := range files {
		checkVariant(t, serve(t, h, "GET", fmt.Sprintf("/f%d.txt", i), ae), "gzip", files[i])
		serve(t, h, "GET", hot, ae) // kept recent
		if _, used := h.CompressedVariants(); used > limit {
			t.Fatalf("after %d files the variants take %d bytes, over %d", i+1, used, limit)
		}
	}
	n, _ := h.CompressedVariants()
	if n >= len(files) {
		t.Fatalf("%d variants cached for %d files within %d bytes: nothing was dropped", n, len(files), limit)
	}
	before, _ := h.CompressedVariants()
	checkVariant(t, serve(t, h, "GET", hot, ae), "gzip", files[0]) // still there: no new one
	if after, _ := h.CompressedVariants(); after != before {
		t.Errorf("the most recently used variant was dropped (%d, then %d variants)", before, after)
	}
	// A change of content is a new key: the new bytes come back.
	changed := textOf(3500)
	writeFile(t, root, "f0.txt", changed)
	future := time.Now().Add(-time.Minute) // a modification time unlike the first
	if err := os.Chtimes(filepath.Join(root, "f0.txt"), future, future); err != nil {
		t.Fatal(err)
	}
	checkVariant(t, serve(t, h, "GET", hot, ae), "gzip", changed)
	// A file larger than an eighth of the cache is not compressed.
	writeFile(t, root, "large.txt", textOf(limit/8+1))
	rec := serve(t, h, "GET", "/large.txt", ae)
	if header1(rec, "Content-Encoding") != "" {
		t.Error("a file over an eighth of the cache was compressed")
	}
}

// BenchmarkServeCompressed is a GET of a cached file whose compressed
// variant is cached: the cost of on-the-fly compression once it paid.
func BenchmarkServeCompressed(b *testing.B) {
	root := b.TempDir()
	writeFile(b, root, "small.css", textOf(3000))
	writeFile(b, root, "large.js", textOf(200<<10))
	h, err := static.New(static.Config{Root: root, Compress: encode.DefaultSet, CacheTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	for _, target := range []string{"/small.css", "/large.js"} {
		for _, accept := range []string{"gzip, deflate, br, zstd", "gzip"} {
			r := newRequest(b, statictest.Request{Method: "GET", Target: target,
				Header: []statictest.Field{{Name: "Accept-Encoding", Value: accept}}})
			w := &benchWriter{}
			h.Serve(w, r)
			h.WaitForCompressions()
			b.Run(target[1:]+"/"+strings.ReplaceAll(accept, " ", ""), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					w.header.Reset()
					h.Serve(w, r)
				}
				if w.status != 200 || w.header.Get("Content-Encoding") == "" {
					b.Fatalf("status %d, Content-Encoding %q: not a compressed variant", w.status, w.header.Get("Content-Encoding"))
				}
			})
		}
	}
}

// Serving a cached variant allocates nothing, as a cached file does not.
func TestCompressedGetDoesNotAllocate(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "small.css", textOf(3000))
	h := newHandler(t, static.Config{Root: root, Compress: encode.DefaultSet, CacheTTL: time.Hour})
	r := newRequest(t, statictest.Request{Method: "GET", Target: "/small.css",
		Header: []statictest.Field{{Name: "Accept-Encoding", Value: "gzip, deflate, br, zstd"}}})
	w := &benchWriter{}
	h.Serve(w, r)
	allocs := testing.AllocsPerRun(100, func() {
		w.header.Reset()
		h.Serve(w, r)
	})
	if w.status != 200 || w.header.Get("Content-Encoding") != "zstd" || allocs != 0 {
		t.Errorf("status %d, Content-Encoding %q, %v allocations per GET, want 200 zstd 0", w.status, w.header.Get("Content-Encoding"), allocs)
	}
}

// The variant's key outlives the request: a front end's request path may
// point into its input buffer, which the next request overwrites, and the
// variant must still be found.
func TestCompressKeyOutlivesRequestPath(t *testing.T) {
	root := t.TempDir()
	content := textOf(3000)
	writeFile(t, root, "k.css", content)
	h := compressingHandler(t, root)
	input := []byte("/k.css")
	r := newRequest(t, statictest.Request{Method: "GET", Target: "/k.css",
		Header: []statictest.Field{{Name: "Accept-Encoding", Value: "gzip"}}})
	r.Path = unsafe.String(&input[0], len(input))
	rec := &recorder{t: t}
	h.Serve(rec, r)
	checkVariant(t, rec, "gzip", content)
	copy(input, "/xxxxx") // the front end reads the next request into its buffer
	n, _ := h.CompressedVariants()
	rec = serve(t, h, "GET", "/k.css", statictest.Field{Name: "Accept-Encoding", Value: "gzip"})
	checkVariant(t, rec, "gzip", content)
	if after, _ := h.CompressedVariants(); after != n {
		t.Errorf("%d variants, then %d: the second request did not find the first's", n, after)
	}
}
