package proxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// uploadSize is the size of the large uploads below: far more than the
// socket buffers hold, so that an upstream that stops reading blocks the
// client's writes.
const uploadSize = 64 << 20

// patternReader produces size bytes (byte i is i%251), counting how many
// it produced.
type patternReader struct {
	size     int64
	produced atomic.Int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	off := r.produced.Load()
	left := r.size - off
	if left <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), left)]
	for i := range p {
		p[i] = byte((off + int64(i)) % 251)
	}
	r.produced.Add(int64(len(p)))
	return len(p), nil
}

// patternSum is the SHA-256 of what a patternReader of size produces.
func patternSum(size int64) string {
	h := sha256.New()
	io.Copy(h, &patternReader{size: size})
	return fmt.Sprintf("%x", h.Sum(nil))
}

// upload returns a POST of a patternReader's size bytes, chunked or with
// its Content-Length.
func upload(size int64, chunked bool, h *message.Header) (*outRequest, *patternReader) {
	body := &patternReader{size: size}
	n := size
	if chunked {
		n = -1
	}
	if h == nil {
		h = new(message.Header)
	}
	return &outRequest{Method: "POST", Target: "/upload", Host: "up.test", Header: h, Body: body, ContentLength: n}, body
}

// doAsync runs do on another goroutine, so that the test can bound the
// wait for its result.
func doAsync(t *testing.T, c *h1Client, req *outRequest) (exchangeResult, error) {
	t.Helper()
	type result struct {
		res exchangeResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := do(t, c, req)
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		return r.res, r.err
	case <-time.After(safetyNet):
		t.Fatal("the round trip never ended")
		return exchangeResult{}, nil
	}
}

// earlyAnswerUpstream reads the head of its first connection's request,
// writes interim (if any) and a 413 with a small body, and reads nothing
// more until the test ends. Its later connections read each request
// whole and answer 200 with the content's SHA-256.
func earlyAnswerUpstream(t *testing.T, interim string) *rawUpstream {
	stop := make(chan struct{})
	up := newRawUpstream(t, "tcp", func(n int64, c net.Conn) {
		br := bufio.NewReader(c)
		if n == 1 {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, interim+"HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\n\r\ntoo large")
			<-stop
			return
		}
		serveSums(br, c)
	})
	t.Cleanup(func() { close(stop) }) // runs before up's own cleanup
	return up
}

// serveSums answers each request on c with 200 and its content's
// SHA-256, after reading all of it.
func serveSums(br *bufio.Reader, c net.Conn) {
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		h := sha256.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			return
		}
		sum := fmt.Sprintf("%x", h.Sum(nil))
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(sum), sum)
	}
}

func TestH1ClientEarlyAnswerStopsTheUpload(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run("chunked="+strconv.FormatBool(chunked), func(t *testing.T) {
			checkNoLeaks(t)
			up := earlyAnswerUpstream(t, "")
			c := testClient(up.addr(), defaultTestOptions)
			defer c.closeIdle()
			req, body := upload(uploadSize, chunked, nil)
			res, err := doAsync(t, c, req)
			if err != nil || res.status != 413 || res.body != "too large" {
				t.Fatalf("%v %d %q, want the upstream's early 413", err, res.status, res.body)
			}
			if n := body.produced.Load(); n >= uploadSize {
				t.Errorf("the client read the whole body (%d bytes) although the upstream had answered", n)
			}
			if n := c.idleCount(); n != 0 {
				t.Errorf("%d connections pooled after a request whose body was cut short", n)
			}
			// The next request needs a connection of its own.
			req, _ = upload(1<<20, chunked, nil)
			res, err = doAsync(t, c, req)
			if err != nil || res.status != 200 || res.body != patternSum(1<<20) {
				t.Fatalf("next request: %v %d %q", err, res.status, res.body)
			}
			if n := up.accepts.Load(); n != 2 {
				t.Errorf("the upstream accepted %d connections, want 2 (the cut one not reused)", n)
			}
		})
	}
}

func TestH1ClientUploadReadWholeThenAnswered(t *testing.T) {
	checkNoLeaks(t)
	up := newRawUpstream(t, "tcp", func(_ int64, c net.Conn) { serveSums(bufio.NewReader(c), c) })
	c := testClient(up.addr(), defaultTestOptions)
	defer c.closeIdle()
	want := patternSum(uploadSize)
	for _, chunked := range []bool{false, true, false} {
		req, _ := upload(uploadSize, chunked, nil)
		res, err := doAsync(t, c, req)
		if err != nil || res.status != 200 || res.body != want {
			t.Fatalf("chunked=%v: %v %d %q, want the content's sum %s", chunked, err, res.status, res.body, want)
		}
	}
	if n := up.accepts.Load(); n != 1 {
		t.Errorf("the upstream accepted %d connections for 3 uploads, want 1 (reused)", n)
	}
}

// An upstream that sends its 200 head before it has read the content,
// then reads it all, still gets it all: only an error or redirect stops
// the content.
func TestH1ClientEarlySuccessStillGetsTheWholeUpload(t *testing.T) {
	checkNoLeaks(t)
	up := newRawUpstream(t, "tcp", func(_ int64, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			h := sha256.New()
			if _, err := io.Copy(h, r.Body); err != nil {
				return
			}
			sum := fmt.Sprintf("%x", h.Sum(nil))
			fmt.Fprintf(c, "%x\r\n%s\r\n0\r\n\r\n", len(sum), sum)
		}
	})
	c := testClient(up.addr(), defaultTestOptions)
	defer c.closeIdle()
	for _, chunked := range []bool{false, true} {
		req, _ := upload(uploadSize, chunked, nil)
		res, err := doAsync(t, c, req)
		if err != nil || res.status != 200 || res.body != patternSum(uploadSize) {
			t.Fatalf("chunked=%v: %v %d %q", chunked, err, res.status, res.body)
		}
	}
	if n := up.accepts.Load(); n != 1 {
		t.Errorf("the upstream accepted %d connections, want 1 (reused)", n)
	}
}

func TestH1ClientExpectContinueLargeUpload(t *testing.T) {
	checkNoLeaks(t)
	up := newRawUpstream(t, "tcp", func(_ int64, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if r.Header.Get("Expect") != "100-continue" {
				io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 9\r\n\r\nno expect")
				return
			}
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
			h := sha256.New()
			if _, err := io.Copy(h, r.Body); err != nil {
				return
			}
			sum := fmt.Sprintf("%x", h.Sum(nil))
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(sum), sum)
		}
	})
	c := testClient(up.addr(), defaultTestOptions)
	defer c.closeIdle()
	for _, chunked := range []bool{false, true} {
		var interims []int
		req, _ := upload(uploadSize, chunked, headerOf("Expect", "100-continue"))
		req.Interim = func(s int, _ *message.Header) { interims = append(interims, s) }
		res, err := doAsync(t, c, req)
		if err != nil || res.status != 200 || res.body != patternSum(uploadSize) || fmt.Sprint(interims) != "[100]" {
			t.Fatalf("chunked=%v: %v %d %q interims %v", chunked, err, res.status, res.body, interims)
		}
	}
	if n := up.accepts.Load(); n != 1 {
		t.Errorf("the upstream accepted %d connections, want 1 (reused)", n)
	}
}

func TestH1ClientInterimBeforeEarlyAnswerIsForwarded(t *testing.T) {
	t.Run("103 then 413 while the body streams", func(t *testing.T) {
		checkNoLeaks(t)
		up := earlyAnswerUpstream(t, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n")
		c := testClient(up.addr(), defaultTestOptions)
		defer c.closeIdle()
		var interims []string
		req, _ := upload(uploadSize, false, nil)
		req.Interim = func(s int, h *message.Header) { interims = append(interims, fmt.Sprint(s, " ", h.Get("Link"))) }
		res, err := doAsync(t, c, req)
		if err != nil || res.status != 413 || res.body != "too large" {
			t.Fatalf("%v %d %q", err, res.status, res.body)
		}
		if want := "[103 </s.css>; rel=preload]"; fmt.Sprint(interims) != want {
			t.Errorf("interim responses %q, want %s", interims, want)
		}
		if res.header.Has("Link") {
			t.Errorf("the 103's fields leaked into the final response: %v", res.header.Fields())
		}
	})
	t.Run("100, part of the body, 102 then 401", func(t *testing.T) {
		checkNoLeaks(t)
		stop := make(chan struct{})
		up := newRawUpstream(t, "tcp", func(_ int64, c net.Conn) {
			br := bufio.NewReader(c)
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
			if _, err := io.CopyN(io.Discard, r.Body, 1<<20); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 102 Processing\r\n\r\n"+
				"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\nContent-Length: 6\r\n\r\nwho?\r\n")
			<-stop
		})
		t.Cleanup(func() { close(stop) })
		c := testClient(up.addr(), defaultTestOptions)
		defer c.closeIdle()
		var interims []int
		req, body := upload(uploadSize, true, headerOf("Expect", "100-continue"))
		req.Interim = func(s int, _ *message.Header) { interims = append(interims, s) }
		res, err := doAsync(t, c, req)
		if err != nil || res.status != 401 || res.body != "who?\r\n" || res.header.Get("WWW-Authenticate") != "Basic" {
			t.Fatalf("%v %d %q", err, res.status, res.body)
		}
		if fmt.Sprint(interims) != "[100 102]" {
			t.Errorf("interim responses %v, want [100 102]", interims)
		}
		if n := body.produced.Load(); n >= uploadSize {
			t.Errorf("the client read the whole body (%d bytes) although the upstream had answered", n)
		}
		if n := c.idleCount(); n != 0 {
			t.Errorf("%d connections pooled after a request whose body was cut short", n)
		}
	})
}

// A streamed upload whose upstream closes the connection without an
// answer fails as before, and a cancelled context ends it.
func TestH1ClientStreamedUploadFailures(t *testing.T) {
	t.Run("upstream closes without answering", func(t *testing.T) {
		checkNoLeaks(t)
		up := newRawUpstream(t, "tcp", func(_ int64, c net.Conn) {
			br := bufio.NewReader(c)
			if r, err := http.ReadRequest(br); err == nil {
				io.CopyN(io.Discard, r.Body, 1<<20)
			}
		})
		c := testClient(up.addr(), defaultTestOptions)
		defer c.closeIdle()
		req, _ := upload(uploadSize, false, nil)
		_, err := doAsync(t, c, req)
		if err == nil || errors.Is(err, errRequestBody) {
			t.Fatalf("err %v, want the upstream's failure", err)
		}
	})
	t.Run("context cancelled while the upstream stalls", func(t *testing.T) {
		checkNoLeaks(t)
		stop := make(chan struct{})
		stalled := make(chan struct{})
		up := newRawUpstream(t, "tcp", func(_ int64, c net.Conn) {
			if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				close(stalled)
			}
			<-stop
		})
		t.Cleanup(func() { close(stop) })
		c := testClient(up.addr(), defaultTestOptions)
		defer c.closeIdle()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			<-stalled
			cancel()
		}()
		req, _ := upload(uploadSize, true, nil)
		done := make(chan error, 1)
		go func() {
			resp, err := c.roundTrip(ctx, req)
			if err == nil {
				c.recycle(resp)
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v after the cancel, want the context's", err)
			}
		case <-time.After(safetyNet):
			t.Fatal("a cancelled streamed upload never returned")
		}
	})
}
