//go:build linux && !race

package h2

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/anx-gateway/anx/core/message"
)

// cachedFile answers like core/static for a file in its cache: fixed
// fields and a body from memory, on the loop (NonBlocking).
type cachedFile struct{ body []byte }

func (h cachedFile) NonBlocking() bool { return true }

func (h cachedFile) Serve(w message.ResponseWriter, r *message.Request) {
	hd := w.Header()
	hd.Set("Content-Type", "text/css; charset=utf-8")
	hd.Set("Content-Length", "1024")
	hd.Set("Etag", `"5f3a-400"`)
	hd.Set("Last-Modified", "Sat, 05 Dec 2026 10:00:00 GMT")
	hd.Set("Accept-Ranges", "bytes")
	w.Write(h.body)
}

// TestCachedSmallFileAllocatesNothing counts the allocations of the
// whole process (server and this raw client) per request on a
// connection in steady state: the HPACK tables hold the fields, streams
// come from the pool, frames are read in place and written from a pooled
// buffer. (-race allocates on its own: the file is left out of race
// builds.)
func TestCachedSmallFileAllocatesNothing(t *testing.T) {
	body := []byte(strings.Repeat("x", 1024))
	if allocs := cachedFileAllocs(t, &Server{Handler: cachedFile{body: body}}, len(body)); allocs != 0 {
		t.Errorf("a request for a cached file allocates %v times, want 0", allocs)
	}
}

// countingObserver counts the exchanges it sees, as cheaply as an
// Observer can.
type countingObserver struct{ n atomic.Int64 }

func (o *countingObserver) Observe(*message.Request, *message.Outcome) { o.n.Add(1) }

func TestObservedCachedSmallFileAllocatesNothing(t *testing.T) {
	// An Observer adds no allocation: the request and the Outcome it
	// sees are the stream's and the connection's own, reused.
	body := []byte(strings.Repeat("x", 1024))
	obs := &countingObserver{}
	if allocs := cachedFileAllocs(t, &Server{Handler: cachedFile{body: body}, Observer: obs}, len(body)); allocs != 0 {
		t.Errorf("an observed request for a cached file allocates %v times, want 0", allocs)
	}
	if obs.n.Load() == 0 {
		t.Error("the Observer saw no exchange")
	}
}

// cachedFileAllocs serves srv, whose handler answers bodyLen bytes, over
// a raw h2c connection and returns the allocations of the whole process
// per request in steady state.
func cachedFileAllocs(t *testing.T, srv *Server, bodyLen int) float64 {
	t.Helper()
	addr := startH2C(t, srv)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var hello bytes.Buffer
	hello.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&hello, nil)
	fr.WriteSettings()
	fr.WriteWindowUpdate(0, 1<<30)
	if _, err := c.Write(hello.Bytes()); err != nil {
		t.Fatal(err)
	}
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	encode := func() []byte {
		blk.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "localhost"}, {":path", "/a.css"}, {"user-agent", "test"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		return bytes.Clone(blk.Bytes())
	}
	first, steady := encode(), encode() // the second is all indexed
	frame := make([]byte, 9+len(first))
	in := make([]byte, 64<<10)
	have := 0
	var id uint32 = 1
	bodyBytes := 0
	exchange := func() {
		block := steady
		if id == 1 {
			block = first
		}
		frame = frame[:9+len(block)]
		frame[0], frame[1], frame[2] = byte(len(block)>>16), byte(len(block)>>8), byte(len(block))
		frame[3], frame[4] = byte(http2.FrameHeaders), byte(http2.FlagHeadersEndHeaders|http2.FlagHeadersEndStream)
		binary.BigEndian.PutUint32(frame[5:], id)
		copy(frame[9:], block)
		c.SetDeadline(time.Now().Add(hangTimeout))
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
		bodyBytes = 0
		for done := false; !done; {
			for have >= 9 {
				n := 9 + (int(in[0])<<16 | int(in[1])<<8 | int(in[2]))
				if have < n {
					break
				}
				typ, flags, sid := http2.FrameType(in[3]), http2.Flags(in[4]), binary.BigEndian.Uint32(in[5:])
				if typ == http2.FrameData && sid == id {
					bodyBytes += n - 9
				}
				if sid == id && flags&http2.FlagDataEndStream != 0 && (typ == http2.FrameData || typ == http2.FrameHeaders) {
					done = true
				}
				if typ == http2.FrameRSTStream || typ == http2.FrameGoAway {
					t.Fatalf("server sent %v", typ)
				}
				have = copy(in, in[n:have])
			}
			if done {
				break
			}
			k, err := c.Read(in[have:])
			if err != nil && err != io.EOF {
				t.Fatal(err)
			}
			have += k
		}
		id += 2
	}
	for range 100 {
		exchange()
	}
	if bodyBytes != bodyLen {
		t.Fatalf("got %d body bytes, want %d", bodyBytes, bodyLen)
	}
	return testing.AllocsPerRun(2000, exchange)
}
