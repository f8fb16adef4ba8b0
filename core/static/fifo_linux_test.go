package static_test

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/static"
)

// A FIFO in the tree is not a file to serve: 404 at once, without
// blocking on the open (which would wait for a writer).
func TestFIFOIsNotFound(t *testing.T) {
	root := newSite(t)
	if err := syscall.Mkfifo(filepath.Join(root, "fifo.txt"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	h := newHandler(t, static.Config{Root: root})
	done := make(chan *recorder, 1)
	go func() { done <- serve(t, h, "GET", "/fifo.txt") }()
	select {
	case rec := <-done:
		expect(t, rec, 404, "404 Not Found\n")
	case <-time.After(safetyNet): // blocked: it would wait for ever
		t.Fatal("GET of a FIFO blocked")
	}
}
