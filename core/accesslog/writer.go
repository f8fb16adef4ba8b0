package accesslog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBufferBytes is a Writer's buffer when none is given: lines
// waiting to be written beyond it are dropped.
const DefaultBufferBytes = 1 << 20

// Timing of a Writer's goroutine.
const (
	// gatherDelay is how long the goroutine lets lines gather before it
	// writes them, unless a batch's worth came sooner, so that a light
	// load is not one write per line and a heavy one is not held back.
	gatherDelay = 20 * time.Millisecond
	// batchBytes is a batch's worth (less for a small buffer: a quarter
	// of it). Few large writes matter: a write(2) that blocks longer than
	// the Go scheduler's sysmon tick (20 µs) makes sysmon hand its P
	// over, and keeps sysmon polling every 20 µs; with 64 KiB, sysmon took
	// 4% of anx's CPU under wrk (perf), with 256 KiB 1.8%.
	batchBytes = 256 << 10
	// writeChunk is the most one write(2) takes (cut at a line's end),
	// so that a write to a healthy disk ends within a sysmon tick.
	writeChunk = 32 << 10
	// reportEvery is how often dropped lines are reported, when there
	// were any.
	reportEvery = 10 * time.Second
	// closeWait bounds how long Close waits for the last write, so that a
	// destination that takes nothing (a pipe nobody reads) cannot hold up
	// a stop.
	closeWait = 5 * time.Second
)

// Writer writes lines to one destination (a file, or a stream such as
// stderr) off the caller's goroutine. Append copies a line into a bounded
// buffer and never waits for the destination; a goroutine of the Writer's
// own writes the buffer in batches. A line that does not fit, or that a
// failed write lost, is counted in Dropped and reported in the log every
// reportEvery while there are new ones. The goroutine is the Writer's: it
// exits once Close was called and its last write has ended.
type Writer struct {
	path      string // the file's path; "" for a stream
	limit     int    // the buffer's capacity
	logger    *slog.Logger
	closeWait time.Duration // how long Close waits: the constant closeWait, shorter in tests

	// Guarded by mu: the callers of Append and the goroutine share them.
	mu      sync.Mutex
	buf     []byte // lines waiting, at most limit bytes
	reopen  bool   // Reopen asked to reopen the file before the next write
	closing bool   // Close asked the goroutine to write what is left and stop

	wake    chan struct{} // one token: buf has lines
	full    chan struct{} // one token: buf has a batch's worth
	urgent  chan struct{} // one token: reopen or closing is set
	batch   int           // a batch's worth of bytes
	done    chan struct{} // closed when the goroutine has stopped
	dropped atomic.Uint64

	// Owned by the goroutine.
	spare    []byte // the empty buffer take swaps in
	out      io.Writer
	file     *os.File // out when it is a file this Writer opened; nil for a stream
	reported uint64   // dropped as last reported
}

// OpenFile starts a Writer that appends to the file at path (created if
// missing, mode 0644), with a buffer of bufferBytes (DefaultBufferBytes
// when 0 or less). Problems are logged to logger.
func OpenFile(path string, bufferBytes int, logger *slog.Logger) (*Writer, error) {
	f, err := openLog(path)
	if err != nil {
		return nil, err
	}
	w := newWriter(path, f, bufferBytes, logger)
	w.file = f
	go w.run()
	return w, nil
}

// NewStream starts a Writer to out, a stream it does not open or close
// (stderr). Reopen does nothing to it.
func NewStream(out io.Writer, bufferBytes int, logger *slog.Logger) *Writer {
	w := newWriter("", out, bufferBytes, logger)
	go w.run()
	return w
}

func newWriter(path string, out io.Writer, bufferBytes int, logger *slog.Logger) *Writer {
	if bufferBytes <= 0 {
		bufferBytes = DefaultBufferBytes
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Writer{
		path: path, limit: bufferBytes, logger: logger, out: out, closeWait: closeWait,
		buf: make([]byte, 0, bufferBytes), spare: make([]byte, 0, bufferBytes),
		wake: make(chan struct{}, 1), full: make(chan struct{}, 1), urgent: make(chan struct{}, 1), done: make(chan struct{}),
		batch: min(batchBytes, bufferBytes/4),
	}
}

// openLog opens a log file for appending.
func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("accesslog: %w", err)
	}
	return f, nil
}

// Path is the file the Writer appends to; "" for a stream.
func (w *Writer) Path() string { return w.path }

// Dropped counts the lines that were not written: the buffer was full, a
// write failed, or the Writer was closed.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Append queues line (whole lines, newline included) to be written. It
// never waits for the destination: when the buffer has no room for line,
// line is dropped and counted, and Append reports false. It does not keep
// line.
func (w *Writer) Append(line []byte) bool {
	w.mu.Lock()
	if w.closing || len(w.buf)+len(line) > w.limit {
		w.mu.Unlock()
		w.dropped.Add(uint64(max(lineCount(line), 1)))
		return false
	}
	before := len(w.buf)
	w.buf = append(w.buf, line...)
	after := len(w.buf)
	w.mu.Unlock()
	w.signalGrowth(before, after)
	return true
}

// signalGrowth tells the goroutine that the buffer grew from before to
// after bytes: lines came (it was empty), or a batch's worth is there.
func (w *Writer) signalGrowth(before, after int) {
	if before == 0 {
		notify(w.wake)
	}
	if before < w.batch && after >= w.batch {
		notify(w.full)
	}
}

// lineCount counts the lines of b.
func lineCount(b []byte) int { return bytes.Count(b, []byte{'\n'}) }

// notify puts a token in c unless one is there.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Reopen makes the Writer open its file again before it writes any line
// appended after Reopen returns (logrotate moved the file away). It does
// not wait: a failure is logged, and the Writer goes on with the file it
// had. It does nothing to a stream.
func (w *Writer) Reopen() {
	if w.path == "" {
		return
	}
	w.mu.Lock()
	w.reopen = true
	w.mu.Unlock()
	notify(w.urgent)
}

// Close writes what is queued, closes the file and stops the goroutine;
// lines appended after it are dropped. It waits for the last write, at
// most closeWait: a destination stuck that long keeps the goroutine in its
// write (it ends when the write does) and Close logs it and returns.
// Closing twice, or from two goroutines, is harmless.
func (w *Writer) Close() {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	notify(w.urgent)
	t := time.NewTimer(w.closeWait)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
		w.logger.Warn("accesslog: the destination took no lines for a while; closing without the last ones", "dest", w.dest(), "waited", w.closeWait)
	}
}

// dest names the destination in messages.
func (w *Writer) dest() string {
	if w.path == "" {
		return "stream"
	}
	return w.path
}

// run is the Writer's goroutine: it writes the queued lines as batches
// until Close.
func (w *Writer) run() {
	defer close(w.done)
	report := time.NewTicker(reportEvery)
	defer report.Stop()
	gather := time.NewTimer(gatherDelay)
	gather.Stop()
	for {
		select {
		case <-w.wake:
			w.gather(gather)
		case <-w.urgent:
		case <-report.C:
			w.reportDrops()
			continue
		}
		batch, reopen, closing := w.take(w.spare)
		if reopen {
			w.reopenFile()
		}
		w.write(batch)
		w.spare = batch[:0]
		if closing {
			w.finish()
			return
		}
	}
}

// take swaps the buffer for empty and returns the lines it held, with the
// requests to reopen and to close.
func (w *Writer) take(empty []byte) (batch []byte, reopen, closing bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	batch, w.buf = w.buf, empty
	reopen, closing = w.reopen, w.closing
	w.reopen = false
	select { // a batch's worth announced is in this batch
	case <-w.full:
	default:
	}
	return batch, reopen, closing
}

// gather lets lines gather for gatherDelay, or until a batch's worth is
// there, or a Reopen or a Close comes (take reads their flags).
func (w *Writer) gather(gather *time.Timer) {
	w.mu.Lock()
	enough := len(w.buf) >= w.batch
	w.mu.Unlock()
	if enough {
		return
	}
	gather.Reset(gatherDelay)
	select {
	case <-gather.C:
	case <-w.full:
		gather.Stop()
	case <-w.urgent:
		gather.Stop()
	}
}

// write writes a batch; lines a failed write lost are counted as dropped.
func (w *Writer) write(batch []byte) {
	if len(batch) == 0 {
		return
	}
	n, err := 0, error(nil)
	for n < len(batch) && err == nil {
		var k int
		k, err = w.out.Write(batch[n:chunkEnd(batch, n)])
		n += k
	}
	if err != nil {
		lost := lineCount(batch[n:])
		w.dropped.Add(uint64(lost))
		w.logger.Warn("accesslog: write failed; lines dropped", "path", w.path, "lines", lost, "err", err)
	}
}

// chunkEnd is where the write of batch from n ends: after at most
// writeChunk bytes, at the end of a line when one ends in them, so that
// another process appending to the same file (the new one of a binary
// upgrade) never lands inside a line.
func chunkEnd(batch []byte, n int) int {
	end := n + writeChunk
	if end >= len(batch) {
		return len(batch)
	}
	if i := bytes.LastIndexByte(batch[n:end], '\n'); i >= 0 {
		return n + i + 1
	}
	return end
}

// reopenFile opens the path again and closes the file it replaces. On
// failure the old file stays.
func (w *Writer) reopenFile() {
	f, err := openLog(w.path)
	if err != nil {
		w.logger.Error("accesslog: reopen failed; still writing to the file as it was", "path", w.path, "err", err)
		return
	}
	old := w.file
	w.file, w.out = f, f
	if err := old.Close(); err != nil {
		w.logger.Warn("accesslog: closing the old file", "path", w.path, "err", err)
	}
}

// finish closes the file and reports the last drops.
func (w *Writer) finish() {
	if w.file != nil {
		if err := w.file.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			w.logger.Warn("accesslog: close", "path", w.path, "err", err)
		}
	}
	w.reportDrops()
}

// reportDrops logs how many lines were dropped since the last report, if
// any.
func (w *Writer) reportDrops() {
	total := w.dropped.Load()
	if total == w.reported {
		return
	}
	w.logger.Warn("accesslog: lines dropped (buffer full or write failed)", "dest", w.dest(), "dropped", total-w.reported, "total", total)
	w.reported = total
}
