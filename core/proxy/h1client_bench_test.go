package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// fixedUpstream answers every GET on every connection with a 200 whose
// content is size bytes, without allocating per request, so that the
// allocations measured are the client's.
func fixedUpstream(tb testing.TB, size int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
		itoa(size) + "\r\n\r\n" + strings.Repeat("x", size))
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go serveFixed(c, answer)
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// serveFixed answers each request head read from c with answer.
func serveFixed(c net.Conn, answer []byte) {
	buf := make([]byte, 8192)
	n := 0
	for {
		k, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += k
		for {
			end := bytes.Index(buf[:n], []byte("\r\n\r\n"))
			if end < 0 {
				break
			}
			if _, err := c.Write(answer); err != nil {
				return
			}
			n = copy(buf, buf[end+4:n])
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// pooledRoundTrip sends req on c and reads the whole body into buf: the
// steady state of a proxied keep-alive request.
func pooledRoundTrip(ctx context.Context, c *h1Client, req *outRequest, buf []byte) (int, error) {
	resp, err := c.roundTrip(ctx, req)
	if err != nil {
		return 0, err
	}
	total := 0
	for {
		n, err := resp.Body.Read(buf)
		total += n
		if err == io.EOF {
			break
		}
		if err != nil {
			return total, err
		}
	}
	resp.Body.Close()
	c.recycle(resp)
	return total, nil
}

func benchRequest() *outRequest {
	h := new(message.Header)
	h.Add("User-Agent", "bench")
	h.Add("X-Forwarded-For", "192.0.2.1")
	return &outRequest{Method: "GET", Target: "/bench", Host: "up.test", Header: h}
}

func BenchmarkH1ClientPooledRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"background", func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }},
		{"cancelable", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			addr := fixedUpstream(b, 1024)
			c := testClient(addr, h1ClientOptions{keepAlive: 4, keepAliveTimeout: time.Hour,
				responseHeaderTimeout: time.Minute, readTimeout: time.Minute})
			defer c.closeIdle()
			req := benchRequest()
			buf := make([]byte, 4096)
			ctx, cancel := bc.ctx()
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pooledRoundTrip(ctx, c, req, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNetHTTPClientRoundTrip is the same exchange through net/http's
// Transport, for comparison.
func BenchmarkNetHTTPClientRoundTrip(b *testing.B) {
	addr := fixedUpstream(b, 1024)
	tr := &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest("GET", "http://"+addr+"/bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("X-Forwarded-For", "192.0.2.1")
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := resp.Body.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		resp.Body.Close()
	}
}

// FuzzParseResponseHead checks that the response head parser never
// panics, that what it accepts is a head whose every field is a token
// name and a clean value, and that net/http reads the same status.
func FuzzParseResponseHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.0 404 Not Found\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5, max=100\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
		"HTTP/1.1 200\r\nX:  y \r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n := scanResponseHead([]byte(in), 0)
		if n == 0 {
			return
		}
		var resp inResponse
		var info h1RespInfo
		if err := parseResponseHead(in[:n], &resp, &info); err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("%q: error %v does not wrap errMalformed", in[:n], err)
			}
			return
		}
		if resp.Status < 100 || resp.Status > 599 {
			t.Fatalf("%q: status %d", in[:n], resp.Status)
		}
		for _, fl := range resp.Header.Fields() {
			if !h1IsToken(fl.Name) || !h1ValidValue(fl.Value) || strings.TrimSpace(fl.Value) != fl.Value && strings.Trim(fl.Value, " \t") != fl.Value {
				t.Fatalf("%q: accepted field %q", in[:n], fl)
			}
		}
		kind, length, err := responseFraming("GET", resp.Status, &info)
		if err == nil && kind == h1BodyLength && length <= 0 {
			t.Fatalf("%q: length framing with length %d", in[:n], length)
		}
		if err != nil {
			return
		}
		// net/http, a lenient reader, reads what we accept to the same
		// status and, where we frame by length, the same length.
		hr, herr := http.ReadResponse(bufio.NewReader(strings.NewReader(in[:n])), nil)
		if herr != nil {
			t.Fatalf("%q: accepted here, net/http says %v", in[:n], herr)
		}
		if hr.StatusCode != resp.Status {
			t.Fatalf("%q: status %d here, %d for net/http", in[:n], resp.Status, hr.StatusCode)
		}
		if kind == h1BodyLength && hr.ContentLength != length {
			t.Fatalf("%q: length %d here, %d for net/http", in[:n], length, hr.ContentLength)
		}
	})
}
