package static_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/anx-gateway/anx/core/static"
	"github.com/anx-gateway/anx/core/static/statictest"
)

// Finds says yes exactly where Serve answers with something of the root's
// (200 or a directory's 301), cached or not, and no once closed.
func TestFindsAgreesWithServe(t *testing.T) {
	root := t.TempDir()
	for name, text := range map[string]string{
		"a.txt": "a", "dir/index.html": "<p>", "empty/.keep": "", ".env": "secret", "sp ace.txt": "s",
	} {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		method, target string
		finds          bool
	}{
		{"GET", "/a.txt", true},
		{"HEAD", "/a.txt", true},
		{"GET", "/a.txt?v=2", true},
		{"GET", "/%61.txt", true},
		{"GET", "/sp%20ace.txt", true},
		{"GET", "/dir/", true},
		{"GET", "/dir", true}, // Serve redirects to /dir/
		{"GET", "/", false},   // no index.html at the root
		{"GET", "/empty/", false},
		{"GET", "/missing", false},
		{"GET", "/a.txt/x", false},
		{"GET", "/.env", false},
		{"GET", "/dir/../a.txt", false},
		{"GET", "/dir%2Findex.html", false},
		{"GET", "*", false},
		{"POST", "/a.txt", false},
		{"PUT", "/a.txt", false},
		{"OPTIONS", "/a.txt", false},
	}
	for _, ttl := range []int{0, -1} {
		h := newHandler(t, static.Config{Root: root})
		if ttl < 0 {
			h = newHandler(t, static.Config{Root: root, CacheTTL: -1})
		}
		for _, c := range cases {
			r := newRequest(t, statictest.Request{Method: c.method, Target: c.target})
			path := r.Path
			if got := h.Finds(r); got != c.finds {
				t.Errorf("cache ttl %d: %s %s: Finds %v, want %v", ttl, c.method, c.target, got, c.finds)
			}
			if r.Path != path {
				t.Errorf("%s: Finds changed the path to %q", c.target, r.Path)
			}
			rec := &recorder{t: t}
			h.Serve(rec, newRequest(t, statictest.Request{Method: c.method, Target: c.target}))
			if served := rec.status == 200 || rec.status == 301; served != c.finds {
				t.Errorf("cache ttl %d: %s %s: Serve answered %d, which disagrees with Finds %v", ttl, c.method, c.target, rec.status, c.finds)
			}
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		if h.Finds(newRequest(t, statictest.Request{Method: "GET", Target: "/a.txt"})) {
			t.Error("a closed handler finds /a.txt")
		}
	}
}
