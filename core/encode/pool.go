package encode

import (
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Level is how hard a Pool's encoders work.
type Level uint8

const (
	// Streaming suits responses compressed as they are sent (a proxied
	// body): zstd's default speed (about level 3), br 4, gzip 5, which
	// keep up with a fast upstream on one core.
	Streaming Level = iota
	// Stored suits a variant compressed once and then served many times
	// (a static file): zstd's "better" speed (about level 7), br 7,
	// gzip 6 (gzip 9 took six times as long for 4% less on 64 KiB of
	// text here).
	Stored
)

// zstdWindow bounds the memory of a zstd stream, and the window a
// decoder must keep, to 512 KiB, as Caddy does with its 128 KiB: browsers
// refuse windows over 8 MiB, and a small window costs little ratio for web
// content.
const zstdWindow = 512 << 10

// Pool keeps encoders of one Level for reuse: making one costs memory
// (br's and zstd's hash tables) that a pooled one has already. It is safe
// for concurrent use; its zero value is not, use NewPool.
type Pool struct {
	level Level
	pools [codingCount]sync.Pool // of *Writer, by coding
}

// NewPool returns a pool of encoders at level.
func NewPool(level Level) *Pool { return &Pool{level: level} }

// Writer compresses what is written to it into the writer given to Get.
type Writer struct {
	coding Coding
	zstd   *zstd.Encoder
	br     *brotli.Writer
	gzip   *gzip.Writer
}

// Get returns a Writer that compresses into dst with coding c (not
// Identity), from the pool or new. The caller closes it to end the
// stream, and gives it back with Put once done, closed or not.
func (p *Pool) Get(c Coding, dst io.Writer) *Writer {
	if w, ok := p.pools[c].Get().(*Writer); ok {
		w.reset(dst)
		return w
	}
	return p.newWriter(c, dst)
}

// Put returns w to the pool; it must not be used after.
func (p *Pool) Put(w *Writer) {
	w.reset(nil) // let go of the destination
	p.pools[w.coding].Put(w)
}

func (p *Pool) newWriter(c Coding, dst io.Writer) *Writer {
	w := &Writer{coding: c}
	switch c {
	case Zstd:
		level := zstd.SpeedDefault
		if p.level == Stored {
			level = zstd.SpeedBetterCompression
		}
		// Concurrency 1 encodes on the caller's goroutine: a Writer
		// starts none of its own.
		w.zstd, _ = zstd.NewWriter(dst, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(zstdWindow), zstd.WithZeroFrames(true))
	case Brotli:
		level := 4
		if p.level == Stored {
			level = 7
		}
		w.br = brotli.NewWriterLevel(dst, level)
	case Gzip:
		level := 5
		if p.level == Stored {
			level = gzip.DefaultCompression
		}
		w.gzip, _ = gzip.NewWriterLevel(dst, level)
	default:
		panic("encode: no encoder for " + c.String())
	}
	return w
}

func (w *Writer) reset(dst io.Writer) {
	switch w.coding {
	case Zstd:
		w.zstd.Reset(dst)
	case Brotli:
		w.br.Reset(dst)
	case Gzip:
		w.gzip.Reset(dst)
	}
}

// Coding returns the coding w produces.
func (w *Writer) Coding() Coding { return w.coding }

// Write compresses p; output reaches the destination as the encoder's
// blocks fill, or at Flush and Close.
func (w *Writer) Write(p []byte) (int, error) {
	switch w.coding {
	case Zstd:
		return w.zstd.Write(p)
	case Brotli:
		return w.br.Write(p)
	}
	return w.gzip.Write(p)
}

// Flush writes everything written so far to the destination in a form
// the client can decode at once, without ending the stream.
func (w *Writer) Flush() error {
	switch w.coding {
	case Zstd:
		return w.zstd.Flush()
	case Brotli:
		return w.br.Flush()
	}
	return w.gzip.Flush()
}

// Close ends the stream, writing what remains to the destination.
func (w *Writer) Close() error {
	switch w.coding {
	case Zstd:
		return w.zstd.Close()
	case Brotli:
		return w.br.Close()
	}
	return w.gzip.Close()
}
