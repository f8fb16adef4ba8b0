package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/anx-gateway/anx/core/message"
)

// BenchmarkParseHead parses request heads that are already strings: the
// parser proper, which must not allocate. "browser" is a 629-byte browser
// request with a short cookie; "cookie4k" the same with a 4 KiB cookie.
// Run it once as built and once with -tags purego to compare the asm
// kernels with their Go references.
func BenchmarkParseHead(b *testing.B) {
	for _, bc := range []struct{ name, head string }{
		{"browser", browserRequest},
		{"cookie4k", bigCookieRequest()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var req message.Request
			var info headInfo
			lim := limits{maxHeadBytes: 64 << 10, maxFields: 100}
			b.SetBytes(int64(len(bc.head)))
			b.ReportAllocs()
			for b.Loop() {
				req.Header.Reset()
				if err := parseHead(bc.head, &req, &info, lim); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// bigCookieRequest is browserRequest with its Cookie field grown to 4 KiB
// of typical cookie bytes (names, "=", base64-ish values, "; ").
func bigCookieRequest() string {
	var cookie strings.Builder
	for i := 0; cookie.Len() < 4096; i++ {
		cookie.WriteString("c" + strconv.Itoa(i) + "=Zm9vYmFyYmF6cXV4LWFueC1jb29raWUtdmFsdWU_" + strconv.Itoa(i*7919) + "; ")
	}
	return strings.Replace(browserRequest, "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark",
		"Cookie: "+cookie.String()[:4096], 1)
}

// BenchmarkParseRequest does what a connection does per request: find the
// end of the head in the read buffer, turn it into a string (the one
// allocation per request), parse it and decide the framing.
func BenchmarkParseRequest(b *testing.B) {
	buf := []byte(browserRequest)
	var req message.Request
	var info headInfo
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		n, _ := scanHead(buf, 0)
		req.Header.Reset()
		if err := parseHead(string(buf[:n]), &req, &info, testLimits); err != nil {
			b.Fatal(err)
		}
		if _, _, err := info.framing(req.ProtoMinor); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNetHTTPReadRequest is the same work by net/http, for scale.
func BenchmarkNetHTTPReadRequest(b *testing.B) {
	r := strings.NewReader(browserRequest)
	br := bufio.NewReader(r)
	b.SetBytes(int64(len(browserRequest)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(browserRequest)
		br.Reset(r)
		if _, err := http.ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}

// helloHandler answers with a fixed small body and its length.
var helloHandler = handlerFunc(func(w mrw, r *mreq) {
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", "13")
	io.WriteString(w, "Hello, world!")
})

// benchRoundTrips sends the browser request on c, depth at a time, and
// reads the answers, b.N requests in all. Allocations are counted across
// the process, so they include the server's.
func benchRoundTrips(b *testing.B, c net.Conn, depth int) {
	batch := []byte(strings.Repeat(browserRequest, depth))
	if _, err := c.Write(batch[:len(browserRequest)]); err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReaderSize(c, 64<<10)
	respLen := rawResponseLen(b, br) // every answer has this length
	out := make([]byte, respLen*depth)
	b.SetBytes(int64(len(browserRequest)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += depth {
		n := min(depth, b.N-i)
		if _, err := c.Write(batch[:n*len(browserRequest)]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(br, out[:n*respLen]); err != nil {
			b.Fatal(err)
		}
	}
}

// rawResponseLen reads one response with a Content-Length and returns its
// length on the wire.
func rawResponseLen(b *testing.B, br *bufio.Reader) int {
	n, length := 0, -1
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		n += len(line)
		if line == "\r\n" {
			break
		}
		if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length: "); ok {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if length < 0 {
		b.Fatal("response without Content-Length")
	}
	if _, err := br.Discard(length); err != nil {
		b.Fatal(err)
	}
	return n + length
}

// BenchmarkNetHTTPKeepAliveLoopback is BenchmarkKeepAliveLoopback with
// net/http's server, for scale.
func BenchmarkNetHTTPKeepAliveLoopback(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "13")
		io.WriteString(w, "Hello, world!")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	benchRoundTrips(b, c, 1)
}

// BenchmarkKeepAliveLoopback is one request and its response at a time on
// a keep-alive loopback TCP connection: parse, handler, response, the idle
// wait and the system calls.
func BenchmarkKeepAliveLoopback(b *testing.B) {
	benchLoopback(b, 1)
}

// BenchmarkPipelinedLoopback sends 16 requests per write.
func BenchmarkPipelinedLoopback(b *testing.B) {
	benchLoopback(b, 16)
}

func benchLoopback(b *testing.B, depth int) {
	s := &Server{Handler: helloHandler}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	benchRoundTrips(b, c, depth)
	b.StopTimer()
	c.Close()
	s.Close()
	<-done
}

// BenchmarkKeepAlivePipe is the keep-alive round over net.Pipe, without
// the kernel: what h1 itself costs per request.
func BenchmarkKeepAlivePipe(b *testing.B) {
	s := &Server{Handler: helloHandler}
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() { s.ServeConn(server); close(done) }()
	benchRoundTrips(b, client, 1)
	b.StopTimer()
	client.Close()
	<-done
}
