package accesslog

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitFor polls cond until it holds; the deadline is only a safety net.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readFile returns the file's content, "" when it is missing.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// recordingHandler keeps the messages logged through it.
type recordingHandler struct {
	mu   sync.Mutex
	logs []string
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	h.logs = append(h.logs, b.String())
	h.mu.Unlock()
	return nil
}

func (h *recordingHandler) all() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.logs, "\n")
}

func TestWriterCloseWritesEveryLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	w, err := OpenFile(path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 10000
	for i := range n {
		if !w.Append(fmt.Appendf(nil, "line %d\n", i)) {
			t.Fatalf("line %d dropped with a 1 MiB buffer", i)
		}
	}
	w.Close()
	lines := strings.Split(strings.TrimSuffix(readFile(t, path), "\n"), "\n")
	if len(lines) != n || lines[n-1] != fmt.Sprintf("line %d", n-1) {
		t.Fatalf("the file has %d lines, the last %q; want %d, the last \"line %d\"", len(lines), lines[len(lines)-1], n, n-1)
	}
	if w.Dropped() != 0 {
		t.Errorf("Dropped = %d, want 0", w.Dropped())
	}
	if w.Append([]byte("late\n")) || w.Dropped() != 1 {
		t.Errorf("a line after Close: want it dropped and counted, Dropped = %d", w.Dropped())
	}
}

// TestWriterStuckDestinationDropsAndCounts writes to a pipe nobody reads:
// the goroutine's write blocks, and Append must go on returning, dropping
// and counting what does not fit.
func TestWriterStuckDestinationDropsAndCounts(t *testing.T) {
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer wr.Close()
	logs := &recordingHandler{}
	w := NewStream(wr, 4096, slog.New(logs))
	line := []byte(strings.Repeat("x", 99) + "\n")
	var refused uint64
	const n = 100000 // 10 MB: far more than the pipe (64 KiB) and the buffer hold
	for range n {
		if !w.Append(line) {
			refused++
		}
	}
	if refused == 0 || w.Dropped() != refused {
		t.Fatalf("%d of %d lines refused, Dropped = %d: want some refused, all counted", refused, n, w.Dropped())
	}
	rd.Close() // the goroutine's write fails (EPIPE): Close can finish
	w.Close()
	if !strings.Contains(logs.all(), "lines dropped") {
		t.Errorf("the drops were not reported; the log:\n%s", logs.all())
	}
}

// TestWriterCloseGivesUpOnStuckDestination: Close does not wait forever
// for a destination that takes nothing.
func TestWriterCloseGivesUpOnStuckDestination(t *testing.T) {
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer wr.Close()
	logs := &recordingHandler{}
	w := NewStream(wr, 1<<20, slog.New(logs))
	w.closeWait = 50 * time.Millisecond
	line := []byte(strings.Repeat("z", 1023) + "\n")
	for range 1000 { // 1 MB: more than the pipe holds
		w.Append(line)
	}
	w.Close() // returns although the goroutine is stuck in its write
	if !strings.Contains(logs.all(), "closing without the last ones") {
		t.Errorf("the stuck close was not logged:\n%s", logs.all())
	}
	rd.Close() // the write fails (EPIPE) and the goroutine ends
	<-w.done
}

// TestWriterFullFilesystem writes to a file on a 64 KiB tmpfs: writes fail
// with ENOSPC, and the lost lines are counted.
func TestWriterFullFilesystem(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): TestWriterStuckDestinationDropsAndCounts covers a stuck destination", err)
	}
	defer syscall.Unmount(dir, 0)
	logs := &recordingHandler{}
	w, err := OpenFile(filepath.Join(dir, "access.log"), 0, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("y", 199) + "\n")
	const n = 5000 // 1 MB into 64 KiB
	for range n {
		w.Append(line)
	}
	w.Close()
	if w.Dropped() < n-64<<10/200 {
		t.Errorf("Dropped = %d, want at least %d (no more than 64 KiB fit)", w.Dropped(), n-64<<10/200)
	}
	if !strings.Contains(logs.all(), "no space left on device") {
		t.Errorf("the failed write was not logged:\n%s", logs.all())
	}
}

// TestWriterReopen does what logrotate does: move the file away, then ask
// for a reopen; later lines go to a new file at the path.
func TestWriterReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	w, err := OpenFile(path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Append([]byte("before\n"))
	waitFor(t, "the first line in the file", func() bool { return readFile(t, path) == "before\n" })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	w.Reopen()
	w.Append([]byte("after\n"))
	waitFor(t, "the line after Reopen in a new file", func() bool { return readFile(t, path) == "after\n" })
	if got := readFile(t, path+".1"); got != "before\n" {
		t.Errorf("the moved file has %q, want only the line before the reopen", got)
	}
}

func TestWriterReopenFailureKeepsTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "access.log")
	os.Mkdir(filepath.Dir(path), 0o755)
	logs := &recordingHandler{}
	w, err := OpenFile(path, 0, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(dir, "moved")
	if err := os.Rename(filepath.Dir(path), moved); err != nil {
		t.Fatal(err)
	}
	w.Reopen() // the directory is gone: the reopen fails
	w.Append([]byte("still logged\n"))
	w.Close()
	if got := readFile(t, filepath.Join(moved, "access.log")); got != "still logged\n" {
		t.Errorf("the old file has %q, want the line", got)
	}
	if !strings.Contains(logs.all(), "reopen failed") {
		t.Errorf("the failed reopen was not logged:\n%s", logs.all())
	}
}

func TestWriterStreamBatchesWholeLines(t *testing.T) {
	var out lockedBuffer
	w := NewStream(&out, 0, nil)
	var want bytes.Buffer
	for i := range 1000 {
		line := fmt.Appendf(nil, "%d\n", i)
		w.Append(line)
		want.Write(line)
	}
	w.Close()
	if out.String() != want.String() {
		t.Errorf("the stream got %d bytes, want %d in order", len(out.String()), want.Len())
	}
}

// lockedBuffer is a bytes.Buffer safe for the Writer's goroutine and the
// test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestChunksEndAtLineEnds(t *testing.T) {
	line := strings.Repeat("x", 999) + "\n"
	batch := []byte(strings.Repeat(line, 100)) // 100 kB: several chunks
	for n := 0; n < len(batch); {
		end := chunkEnd(batch, n)
		if end-n > writeChunk || end <= n || batch[end-1] != '\n' {
			t.Fatalf("chunk [%d, %d): want at most %d bytes ending with a newline", n, end, writeChunk)
		}
		n = end
	}
	long := []byte(strings.Repeat("y", 3*writeChunk) + "\n") // a line longer than a chunk is cut
	if end := chunkEnd(long, 0); end != writeChunk {
		t.Errorf("a line longer than a chunk: first chunk ends at %d, want %d", end, writeChunk)
	}
}
