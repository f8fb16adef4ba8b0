package static_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/core/static"
	"github.com/anx-gateway/anx/core/static/statictest"
)

// spaIndex is the fallback file of the single-page application tests.
const spaIndex = "<!doctype html>\n<title>app</title>\n<div id=app></div>\n"

// browserAccept is what a browser sends when it navigates to a page.
var browserAccept = statictest.Field{Name: "Accept", Value: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}

func spaHandler(t *testing.T, cfg static.Config) *static.Handler {
	t.Helper()
	cfg.Root = listingTree(t, map[string]string{"index.html": spaIndex, "app.js": "run()", "assets/": ""})
	cfg.Fallback = "/index.html"
	return newHandler(t, cfg)
}

// A page the application routes itself gets the fallback file with 200;
// files that exist are still themselves.
func TestFallbackServesIndexForPages(t *testing.T) {
	h := spaHandler(t, static.Config{})
	for _, target := range []string{"/users/42", "/settings", "/deep/a/b/c", "/nowhere/", "/users/42?tab=2"} {
		rec := serve(t, h, "GET", target, browserAccept)
		expect(t, rec, 200, spaIndex)
		if got := strings.Join(rec.values("Vary"), ", "); got != "Accept" {
			t.Errorf("GET %s: Vary %q, want Accept", target, got)
		}
		if got := rec.values("Content-Type"); len(got) != 1 || got[0] != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", target, got)
		}
	}
	expect(t, serve(t, h, "GET", "/app.js", browserAccept), 200, "run()")
	expect(t, serve(t, h, "GET", "/", browserAccept), 200, spaIndex)
	head := serve(t, h, "HEAD", "/users/42", browserAccept)
	if head.status != 200 || head.body.Len() != 0 || head.values("Content-Length")[0] != strconv.Itoa(len(spaIndex)) {
		t.Errorf("HEAD: %d, %d bytes, Content-Length %q; want 200, none, %d", head.status, head.body.Len(), head.values("Content-Length"), len(spaIndex))
	}
}

// A request that is not for a page (its Accept does not list text/html,
// or its last segment has an extension) still gets 404 for a missing
// file, as do paths refused before the file system is asked.
func TestFallbackKeeps404ForAssets(t *testing.T) {
	h := spaHandler(t, static.Config{})
	for _, c := range []struct {
		target string
		accept string // "" sends no Accept
	}{
		{"/missing.js", browserAccept.Value},
		{"/assets/logo.png", browserAccept.Value},
		{"/style.css", "text/css,*/*;q=0.1"},
		{"/api/users", "application/json"},
		{"/api/users", "*/*"},
		{"/api/users", ""},
		{"/users/42", "text/html;q=0"},
		{"/.env", browserAccept.Value},
		{"/a/../b", browserAccept.Value},
	} {
		var header []statictest.Field
		if c.accept != "" {
			header = append(header, statictest.Field{Name: "Accept", Value: c.accept})
		}
		expect(t, serve(t, h, "GET", c.target, header...), 404, "404 Not Found\n")
	}
	if got := serve(t, h, "GET", "/api/users", statictest.Field{Name: "Accept", Value: "*/*"}).values("Vary"); len(got) != 1 || got[0] != "Accept" {
		t.Errorf("404 decided by Accept: Vary %q, want Accept", got)
	}
	expect(t, serve(t, h, "POST", "/users/42", browserAccept), 405, "405 Method Not Allowed\n")
}

// Range, If-None-Match and If-Range on the fallback behave as on the
// file itself.
func TestFallbackConditionalAndRange(t *testing.T) {
	h := spaHandler(t, static.Config{CacheControl: "no-cache"})
	direct := serve(t, h, "GET", "/index.html", browserAccept)
	etag := direct.values("ETag")[0]
	fallback := serve(t, h, "GET", "/users/42", browserAccept)
	if got := fallback.values("ETag"); len(got) != 1 || got[0] != etag {
		t.Errorf("fallback ETag %q, the file's %q", got, etag)
	}
	if got := fallback.values("Last-Modified"); len(got) != 1 || got[0] != direct.values("Last-Modified")[0] {
		t.Errorf("fallback Last-Modified %q, the file's %q", got, direct.values("Last-Modified"))
	}
	if got := fallback.values("Cache-Control"); len(got) != 1 || got[0] != "no-cache" {
		t.Errorf("fallback Cache-Control %q, want the site's no-cache", got)
	}

	notModified := serve(t, h, "GET", "/users/42", browserAccept, statictest.Field{Name: "If-None-Match", Value: etag})
	expect(t, notModified, 304, "")
	if got := notModified.values("ETag"); len(got) != 1 || got[0] != etag {
		t.Errorf("304 ETag %q, want %q", got, etag)
	}
	expect(t, serve(t, h, "GET", "/users/42", browserAccept, statictest.Field{Name: "If-None-Match", Value: `"other"`}), 200, spaIndex)

	part := serve(t, h, "GET", "/users/42", browserAccept, statictest.Field{Name: "Range", Value: "bytes=0-14"})
	expect(t, part, 206, spaIndex[:15])
	if got := part.values("Content-Range"); len(got) != 1 || got[0] != "bytes 0-14/54" {
		t.Errorf("Content-Range %q, want bytes 0-14/54", got)
	}
	stale := serve(t, h, "GET", "/users/42", browserAccept,
		statictest.Field{Name: "Range", Value: "bytes=0-14"}, statictest.Field{Name: "If-Range", Value: `"other"`})
	expect(t, stale, 200, spaIndex)
	expect(t, serve(t, h, "GET", "/users/42", browserAccept, statictest.Field{Name: "Range", Value: "bytes=100-"}), 416, "416 Range Not Satisfiable\n")
}

// With Browse too, an existing directory is listed and a missing one
// gets the fallback.
func TestFallbackWithBrowse(t *testing.T) {
	h := spaHandler(t, static.Config{Browse: true, Index: []string{}})
	if rec := serve(t, h, "GET", "/assets/", browserAccept); rec.status != 200 || !strings.Contains(rec.body.String(), "Index of /assets/") {
		t.Errorf("GET /assets/: %d %q, want its listing", rec.status, rec.body.String())
	}
	expect(t, serve(t, h, "GET", "/nowhere/", browserAccept), 200, spaIndex)
}

// Finds agrees with Serve about the fallback.
func TestFindsFallback(t *testing.T) {
	h := spaHandler(t, static.Config{})
	for _, c := range []struct {
		target string
		header []statictest.Field
		want   bool
	}{
		{"/users/42", []statictest.Field{browserAccept}, true},
		{"/users/42", nil, false},
		{"/missing.js", []statictest.Field{browserAccept}, false},
	} {
		if got := h.Finds(newRequest(t, statictest.Request{Method: "GET", Target: c.target, Header: c.header})); got != c.want {
			t.Errorf("Finds(%s, %v) = %v, want %v", c.target, c.header, got, c.want)
		}
	}
}

// New refuses a fallback that is no plain path, or names no regular file
// under the root (a link out of the root included, unless allowed).
func TestFallbackRejected(t *testing.T) {
	outside := listingTree(t, map[string]string{"secret.html": "secret"})
	root := listingTree(t, map[string]string{"index.html": spaIndex, "dir/": "", ".hidden.html": "x"})
	symlink(t, filepath.Join(outside, "secret.html"), filepath.Join(root, "out.html"))
	for _, c := range []struct {
		fallback string
		want     string
	}{
		{"index.html", `static: fallback "index.html": want a path starting with "/"`},
		{"/dir/", `static: fallback "/dir/": want a file, not a directory`},
		{"/../index.html", "not a plain path"},
		{"/.hidden.html", "not a plain path"},
		{"//index.html", "not a plain path"},
		{"/a\\b", "not a plain path"},
		{"/missing.html", "static: fallback /missing.html: no such file under " + root},
		{"/dir", "static: fallback /dir: a directory, not a file"},
		{"/out.html", "static: fallback /out.html: no such file under"},
	} {
		_, err := static.New(static.Config{Root: root, Fallback: c.fallback})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Fallback %q: got %v, want %q", c.fallback, err, c.want)
		}
	}
	h := newHandler(t, static.Config{Root: root, Fallback: "/out.html", AllowSymlinksOutside: true})
	expect(t, serve(t, h, "GET", "/page", browserAccept), 200, "secret")
}

// A fallback file removed after start gives 404, read afresh without
// the cache.
func TestFallbackRemovedLater(t *testing.T) {
	root := listingTree(t, map[string]string{"index.html": spaIndex})
	h := newHandler(t, static.Config{Root: root, Fallback: "/index.html", CacheTTL: -1})
	expect(t, serve(t, h, "GET", "/page", browserAccept), 200, spaIndex)
	if err := os.Remove(filepath.Join(root, "index.html")); err != nil {
		t.Fatal(err)
	}
	expect(t, serve(t, h, "GET", "/page", browserAccept), 404, "404 Not Found\n")
}
