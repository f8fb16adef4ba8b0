package encode

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// decode returns the content of a whole stream in coding c.
func decode(t *testing.T, c Coding, stream []byte) []byte {
	t.Helper()
	r := decoder(t, c, bytes.NewReader(stream))
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%v: decoding: %v", c, err)
	}
	return out
}

func decoder(t *testing.T, c Coding, src io.Reader) io.Reader {
	t.Helper()
	switch c {
	case Zstd:
		d, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		return d
	case Brotli:
		return brotli.NewReader(src)
	case Gzip:
		d, err := gzip.NewReader(src)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	t.Fatalf("no decoder for %v", c)
	return nil
}

// TestPoolRoundTrip compresses with pooled writers, twice each so that
// the second comes from the pool after a Put, at both levels, and checks
// that the streams decode to what went in.
func TestPoolRoundTrip(t *testing.T) {
	content := []byte(strings.Repeat("anx compresses what it sends. ", 2000))
	for _, level := range []Level{Streaming, Stored} {
		p := NewPool(level)
		for _, c := range preference {
			for range 2 {
				var out bytes.Buffer
				w := p.Get(c, &out)
				if w.Coding() != c {
					t.Fatalf("Get(%v) returned a %v writer", c, w.Coding())
				}
				if _, err := w.Write(content); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				p.Put(w)
				if out.Len() >= len(content)/4 {
					t.Errorf("%v level %d: %d bytes from %d: not compressed", c, level, out.Len(), len(content))
				}
				if got := decode(t, c, out.Bytes()); !bytes.Equal(got, content) {
					t.Errorf("%v level %d: round trip differs", c, level)
				}
			}
		}
	}
}

// TestFlushDelivers checks that what was written before Flush can be
// decoded from the output so far, before the stream ends: what a
// streamed response relies on.
func TestFlushDelivers(t *testing.T) {
	p := NewPool(Streaming)
	for _, c := range preference {
		pr, pw := io.Pipe()
		w := p.Get(c, pw)
		got := make(chan []byte, 1)
		go func() {
			d := decoder(t, c, pr)
			buf := make([]byte, 5)
			_, err := io.ReadFull(d, buf)
			if err != nil {
				buf = []byte(err.Error())
			}
			got <- buf
			_, _ = io.Copy(io.Discard, pr) // take the rest so Close does not block
		}()
		done := make(chan error, 1)
		go func() {
			if _, err := w.Write([]byte("event")); err != nil {
				done <- err
				return
			}
			done <- w.Flush()
		}()
		if b := <-got; string(b) != "event" {
			t.Errorf("%v: after Flush the reader got %q, want \"event\"", c, b)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		_ = w.Close()
		pw.Close()
		p.Put(w)
	}
}
