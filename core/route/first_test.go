package route

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/static"
)

// TryFirst serves what the static handler finds and passes the rest on;
// a front end may keep the file requests on its loop.
func TestTryFirstFilesElseFallback(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "app.css"), []byte("css"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := static.New(static.Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	h := TryFirst{Primary: files, Fallback: pathEcho("app")}
	cases := []struct {
		method, path, body string
		nonBlocking        bool
	}{
		{"GET", "/app.css", "css", true},
		{"HEAD", "/app.css", "", true},
		{"GET", "/login", "app /login", false},
		{"POST", "/app.css", "app /app.css", false},
		{"GET", "/", "app /", false},
	}
	for _, c := range cases {
		r := &message.Request{Method: c.method, Path: c.path, Body: nil}
		if got := message.IsNonBlockingFor(h, r); got != c.nonBlocking {
			t.Errorf("%s %s: IsNonBlockingFor %v, want %v", c.method, c.path, got, c.nonBlocking)
		}
		if w := serve(h, r); w.body.String() != c.body {
			t.Errorf("%s %s: body %q, want %q", c.method, c.path, w.body.String(), c.body)
		}
	}
	if h.NonBlocking() {
		t.Error("TryFirst with a blocking fallback says NonBlocking")
	}
	if !(TryFirst{Primary: files, Fallback: Fixed{}}).NonBlocking() {
		t.Error("TryFirst over two non-blocking handlers says it may block")
	}
}
