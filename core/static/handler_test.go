package static_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/anx-gateway/anx/core/static"
	"github.com/anx-gateway/anx/core/static/statictest"
)

// serve runs one GET (or the given method) through h and returns the
// recorded response.
func serve(t testing.TB, h *static.Handler, method, target string, header ...statictest.Field) *recorder {
	rec := &recorder{t: t}
	h.Serve(rec, newRequest(t, statictest.Request{Method: method, Target: target, Header: header}))
	return rec
}

func expect(t *testing.T, rec *recorder, status int, body string) {
	t.Helper()
	if rec.status != status || rec.body.String() != body {
		t.Errorf("got %d %q, want %d %q", rec.status, rec.body.String(), status, body)
	}
}

// A cached file is served from the cache until CacheTTL runs out, then
// from disk again.
func TestCacheShowsChangesAfterTTL(t *testing.T) {
	root := newSite(t)
	const ttl = 100 * time.Millisecond
	h := newHandler(t, static.Config{Root: root, CacheTTL: ttl})
	expect(t, serve(t, h, "GET", "/hello.txt"), 200, statictest.HelloText)
	if err := os.WriteFile(filepath.Join(root, "hello.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The cached entry holds the file it opened: the rewrite (same
	// inode, truncated) shows in the bytes but not in the metadata, so
	// within the TTL the response may be cut short; only check that the
	// change shows (the entry lives at most 1.5 TTL, if the sweeper runs
	// on time: waited for up to the safety net).
	eventually(t, h, "/hello.txt", 200, "changed\n")
	if err := os.Remove(filepath.Join(root, "hello.txt")); err != nil {
		t.Fatal(err)
	}
	eventually(t, h, "/hello.txt", 404, "404 Not Found\n")
}

// safetyNet bounds the waits of these tests for an event: not a figure
// they measure, only what ends a test that would otherwise hang, sized for
// -race on a busy 2-core machine and for qemu emulation.
const safetyNet = 2 * time.Minute

// eventually polls target until it answers status and body, failing
// after safetyNet.
func eventually(t *testing.T, h *static.Handler, target string, status int, body string) {
	t.Helper()
	within := safetyNet
	deadline := time.Now().Add(within)
	for {
		rec := serve(t, h, "GET", target)
		if rec.status == status && rec.body.String() == body {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s after %v: %d %q, want %d %q", target, within, rec.status, rec.body.String(), status, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Without the cache every request sees the file system as it is.
func TestUncachedSeesChangesAtOnce(t *testing.T) {
	root := newSite(t)
	h := newHandler(t, static.Config{Root: root, CacheTTL: -1})
	expect(t, serve(t, h, "GET", "/hello.txt"), 200, statictest.HelloText)
	if err := os.Rename(filepath.Join(root, "digits.txt"), filepath.Join(root, "hello.txt")); err != nil {
		t.Fatal(err)
	}
	expect(t, serve(t, h, "GET", "/hello.txt"), 200, statictest.DigitsText)
}

// openFilesUnder counts this process's descriptors open on files under
// dir (Linux /proc).
func openFilesUnder(t *testing.T, dir string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(target, dir+"/") {
			n++
		}
	}
	return n
}

// Close closes every cached file and the root, stops the sweeper, and
// later requests get 503.
func TestCloseReleasesEverything(t *testing.T) {
	root := newSite(t)
	before := goleak.IgnoreCurrent()
	h, err := static.New(static.Config{Root: root, CacheTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/hello.txt", "/a.css", "/docs/", "/big.bin"} {
		serve(t, h, "GET", target, statictest.Field{Name: "Accept-Encoding", Value: "gzip"})
	}
	if n := openFilesUnder(t, root); n < 4 {
		t.Errorf("%d files open under the root with a warm cache, want the cached ones", n)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openFilesUnder(t, root); n != 0 {
		t.Errorf("%d files still open under the root after Close", n)
	}
	expect(t, serve(t, h, "GET", "/hello.txt"), 503, "503 Service Unavailable\n")
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	goleak.VerifyNone(t, before) // the sweeper has stopped
}

// Files leave the cache when their TTL runs out, even with no traffic, so
// a deleted file is not held open.
func TestSweeperClosesExpiredFiles(t *testing.T) {
	root := newSite(t)
	h := newHandler(t, static.Config{Root: root, CacheTTL: 20 * time.Millisecond})
	serve(t, h, "GET", "/hello.txt")
	deadline := time.Now().Add(safetyNet)
	for openFilesUnder(t, root) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d files still open long after the TTL", openFilesUnder(t, root))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Many goroutines on few files, with a TTL short enough that entries are
// replaced under them: every response is whole, and nothing stays open.
func TestConcurrentRequestsShareEntries(t *testing.T) {
	root := newSite(t)
	h, err := static.New(static.Config{Root: root, CacheTTL: time.Millisecond, CacheEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"/hello.txt": statictest.HelloText, "/digits.txt": statictest.DigitsText,
		"/docs/": statictest.DocsHTML, "/big.bin": statictest.BigText()}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				for target, want := range files {
					var rec *recorder
					if (g+i)%2 == 0 {
						fr := &fileRecorder{recorder: recorder{t: t}}
						h.Serve(fr, newRequest(t, statictest.Request{Method: "GET", Target: target}))
						rec = &fr.recorder
					} else {
						rec = serve(t, h, "GET", target)
					}
					if rec.status != 200 || rec.body.String() != want {
						t.Errorf("GET %s: %d with %d bytes, want 200 with %d", target, rec.status, rec.body.Len(), len(want))
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openFilesUnder(t, root); n != 0 {
		t.Errorf("%d files open after Close", n)
	}
}

// RFC 9110 section 8.8.2.1: a modification time in the future is replaced
// by the time of the response.
func TestFutureModTimeIsClamped(t *testing.T) {
	root := newSite(t)
	future := time.Now().Add(48 * time.Hour)
	if err := os.Chtimes(filepath.Join(root, "hello.txt"), future, future); err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, static.Config{Root: root})
	for range 2 { // the second time from the cache, if it were cached
		before := time.Now().Truncate(time.Second)
		rec := serve(t, h, "GET", "/hello.txt")
		after := time.Now()
		lm, err := time.Parse(time.RFC1123, strings.Join(rec.values("Last-Modified"), ""))
		if err != nil || lm.Before(before) || lm.After(after) {
			t.Errorf("Last-Modified %q for a file modified in the future, want the time of the response", rec.values("Last-Modified"))
		}
	}
}

// A file the server may not read is 403. Root reads any file, so as root
// the requests are served on a thread whose file system user id is
// another user's (which also drops CAP_DAC_OVERRIDE from it), and the
// same user gets a readable file (200), so that the 403 is the file's.
func TestPermissionDeniedIs403(t *testing.T) {
	root := newSite(t)
	if err := os.Chmod(filepath.Join(root, "hello.txt"), 0); err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, static.Config{Root: root})
	check := func() {
		expect(t, serve(t, h, "GET", "/hello.txt"), 403, "403 Forbidden\n")
		expect(t, serve(t, h, "GET", "/digits.txt"), 200, statictest.DigitsText)
	}
	if os.Geteuid() != 0 {
		check()
		return
	}
	if err := asUser(nobody, check); err != nil {
		t.Fatal(err)
	}
}

// With AllowSymlinksOutside, links may leave the root (and be absolute);
// the request path itself is still confined.
func TestAllowSymlinksOutside(t *testing.T) {
	root := newSite(t)
	h := newHandler(t, static.Config{Root: root, AllowSymlinksOutside: true})
	expect(t, serve(t, h, "GET", "/link-out.txt"), 200, statictest.SecretText)
	expect(t, serve(t, h, "GET", "/link-abs.txt"), 200, statictest.HelloText)
	expect(t, serve(t, h, "GET", "/docs/"), 200, statictest.DocsHTML)
	expect(t, serve(t, h, "GET", "/../outside/secret.txt"), 404, "404 Not Found\n")
	expect(t, serve(t, h, "GET", "/%2e%2e/outside/secret.txt"), 404, "404 Not Found\n")
	expect(t, serve(t, h, "GET", "/loop-a"), 404, "404 Not Found\n")
}

// A Vary set before the handler runs is kept (RFC 9110 section 12.5.5).
func TestVaryIsAdded(t *testing.T) {
	h := newHandler(t, static.Config{Root: newSite(t)})
	rec := &recorder{t: t}
	rec.header.Add("Vary", "Origin")
	h.Serve(rec, newRequest(t, statictest.Request{Method: "GET", Target: "/a.css"}))
	if got := strings.Join(rec.values("Vary"), ", "); got != "Origin, Accept-Encoding" {
		t.Errorf("Vary: got %q, want %q", got, "Origin, Accept-Encoding")
	}
}

func TestIndexConfig(t *testing.T) {
	root := newSite(t)
	if err := os.WriteFile(filepath.Join(root, "docs", "home.htm"), []byte("home\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, static.Config{Root: root, Index: []string{"missing.html", "home.htm", "index.html"}})
	expect(t, serve(t, h, "GET", "/docs/"), 200, "home\n")
	expect(t, serve(t, h, "GET", "/"), 200, statictest.IndexHTML)
	none := newHandler(t, static.Config{Root: root, Index: []string{}})
	expect(t, serve(t, none, "GET", "/docs/"), 404, "404 Not Found\n")
}

// Cache-Control goes on 200, 206 and 304 (RFC 9110 sections 15.3.7 and
// 15.4.5), not on errors.
func TestCacheControl(t *testing.T) {
	root := newSite(t)
	const cc = "public, max-age=60"
	h := newHandler(t, static.Config{Root: root, CacheControl: cc})
	for _, tc := range []struct {
		header statictest.Field
		status int
		want   bool
	}{
		{statictest.Field{}, 200, true},
		{statictest.Field{Name: "Range", Value: "bytes=0-1"}, 206, true},
		{statictest.Field{Name: "If-None-Match", Value: "*"}, 304, true},
		{statictest.Field{Name: "If-Match", Value: `"x"`}, 412, false},
	} {
		var header []statictest.Field
		if tc.header.Name != "" {
			header = append(header, tc.header)
		}
		rec := serve(t, h, "GET", "/digits.txt", header...)
		got := strings.Join(rec.values("Cache-Control"), ",")
		if rec.status != tc.status || (got == cc) != tc.want {
			t.Errorf("%v: got %d with Cache-Control %q, want %d with it %v", tc.header, rec.status, got, tc.status, tc.want)
		}
	}
	rec := serve(t, h, "GET", "/missing")
	if got := rec.values("Cache-Control"); rec.status != 404 || got != nil {
		t.Errorf("404: got %d with Cache-Control %q", rec.status, got)
	}
}

// FuzzServe sends arbitrary paths to a Handler over the fixture: no
// response is a 5xx, and none carries the file outside the root.
func FuzzServe(f *testing.F) {
	for _, c := range statictest.Cases() {
		f.Add(c.Req.Target)
	}
	root, err := statictest.WriteSite(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	h, err := static.New(static.Config{Root: root})
	if err != nil {
		f.Fatal(err)
	}
	defer h.Close()
	f.Fuzz(func(t *testing.T, target string) {
		for _, method := range []string{"GET", "HEAD"} {
			rec := serve(t, h, method, target)
			switch rec.status {
			case 200, 301, 400, 403, 404:
			default:
				t.Fatalf("%s %q: status %d", method, target, rec.status)
			}
			if strings.Contains(rec.body.String(), statictest.SecretText) {
				t.Fatalf("%s %q: served the file outside the root", method, target)
			}
		}
	})
}
