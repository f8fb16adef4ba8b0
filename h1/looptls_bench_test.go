package h1

import (
	"bufio"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/internal/testpki"
)

// The benchmarks of TLS on the event loops: the loop's decryption and
// encryption (tls/onloop) under h1, one connection, client and server in
// one process (allocations are counted across both).

// benchLoopTLS starts s with TLS on one loop and returns a client
// connection that has done its handshake, offering http/1.1. Everything
// stops at cleanup.
func benchLoopTLS(b *testing.B, s *Server) *tls.Conn {
	b.Helper()
	pki := testpki.New(b, tlsName)
	s.TLSConfig = pki.ServerConfig("http/1.1")
	s.Loops = 1
	timeoutsNotUnderTest(s)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	c, err := tls.Dial("tcp", s.Addr().String(), pki.ClientConfig("http/1.1"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkLoopTLSKeepAlive is BenchmarkKeepAliveLoopback over TLS on
// the event loop: one request and its response at a time, served on the
// loop (the handler is NonBlocking).
func BenchmarkLoopTLSKeepAlive(b *testing.B) {
	c := benchLoopTLS(b, &Server{Handler: nonBlocking{helloHandler}})
	benchRoundTrips(b, c, 1)
}

// BenchmarkLoopTLSPipelined sends 16 requests per write over TLS.
func BenchmarkLoopTLSPipelined(b *testing.B) {
	c := benchLoopTLS(b, &Server{Handler: nonBlocking{helloHandler}})
	benchRoundTrips(b, c, 16)
}

// BenchmarkLoopTLSDetached is the keep-alive round over TLS with a
// handler that may block: every request goes off the loop to a goroutine
// and comes back (Detach, Attach).
func BenchmarkLoopTLSDetached(b *testing.B) {
	c := benchLoopTLS(b, &Server{Handler: mayBlock{helloHandler}})
	benchRoundTrips(b, c, 1)
}

// BenchmarkLoopTLSFile256K downloads a 256 KiB file (in the page cache)
// per request over TLS: the backlog pump reads, encrypts and sends it.
func BenchmarkLoopTLSFile256K(b *testing.B) {
	const size = 256 << 10
	path := filepath.Join(b.TempDir(), "file")
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := nonBlocking{handlerFunc(func(w mrw, r *mreq) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.(message.FileWriter).WriteFile(f, 0, size)
	})}
	c := benchLoopTLS(b, &Server{Handler: h})
	benchFileRounds(b, c, size)
}

// benchFileRounds asks for a file of size bytes b.N times and reads each
// response.
func benchFileRounds(b *testing.B, c net.Conn, size int) {
	req := []byte("GET /file HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReaderSize(c, 64<<10)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if n := rawResponseLen(b, br); n < size {
			b.Fatalf("response of %d bytes, want more than %d", n, size)
		}
	}
}
