package h1

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/anx-gateway/anx/core/message"
)

// testFile writes n random bytes to a temporary file and returns it open,
// with its contents.
func testFile(t *testing.T, n int) (*os.File, []byte) {
	t.Helper()
	return testFileAt(t, t.TempDir(), n)
}

// fileHandler serves /off/len regions of f with WriteFile, declaring the
// length unless the query says "chunked".
func fileHandler(f *os.File, errs chan<- error) handlerFunc {
	return func(w mrw, r *mreq) {
		parts := strings.Split(strings.TrimPrefix(r.Path, "/"), "/")
		off, _ := strconv.ParseInt(parts[0], 10, 64)
		n, _ := strconv.ParseInt(parts[1], 10, 64)
		if r.RawQuery != "chunked" {
			w.Header().Set("Content-Length", parts[1])
		}
		fw, ok := w.(message.FileWriter)
		if !ok {
			errs <- errors.New("the response writer is not a FileWriter")
			return
		}
		sent, err := fw.WriteFile(f, off, n)
		if err == nil && sent != n {
			err = errors.New("short WriteFile without an error")
		}
		errs <- err
	}
}

func TestWriteFile(t *testing.T) {
	f, data := testFile(t, 3<<20)
	errs := make(chan error, 100)
	for _, tc := range []struct {
		name    string
		dialTLS bool
	}{{"plain TCP: sendfile", false}, {"TLS: copy", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{Handler: fileHandler(f, errs)}
			var get func(path string) (string, string)
			if tc.dialTLS {
				dialTLS := serveTLS(t, s)
				c, br := dialTLS()
				get = func(path string) (string, string) {
					send(t, c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n")
					resp, body := readResponse(t, br, "GET")
					return strings.Join(resp.TransferEncoding, ",") + resp.Header.Get("Content-Length"), body
				}
			} else {
				c, br := dial(t, serve(t, s))
				get = func(path string) (string, string) {
					send(t, c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n")
					resp, body := readResponse(t, br, "GET")
					return strings.Join(resp.TransferEncoding, ",") + resp.Header.Get("Content-Length"), body
				}
			}
			cases := []struct {
				off, n  int
				chunked bool
			}{
				{0, 100, false},            // small: with the head, in one write
				{12345, 2 << 20, false},    // large: sendfile or copy
				{1 << 20, 1<<20 + 7, true}, // large, chunked
				{5, 0, false},              // empty region
				{3<<20 - 10, 10, true},     // small, chunked, at the end
			}
			for _, c := range cases {
				path := "/" + strconv.Itoa(c.off) + "/" + strconv.Itoa(c.n)
				if c.chunked {
					path += "?chunked"
				}
				framing, body := get(path)
				if err := <-errs; err != nil {
					t.Errorf("%s: WriteFile: %v", path, err)
				}
				want := data[c.off : c.off+c.n]
				if !bytes.Equal([]byte(body), want) {
					t.Errorf("%s: body of %d bytes differs from the file region of %d", path, len(body), len(want))
				}
				if wantFraming := map[bool]string{true: "chunked", false: strconv.Itoa(c.n)}[c.chunked]; c.n > 0 && framing != wantFraming {
					t.Errorf("%s: framing %q, want %q", path, framing, wantFraming)
				}
			}
			if pos, _ := f.Seek(0, io.SeekCurrent); pos != 0 {
				t.Errorf("WriteFile moved the file offset to %d", pos)
			}
		})
	}
}

func TestWriteFileConcurrentlyFromOneFile(t *testing.T) {
	// core/static shares open files between requests: WriteFile must not
	// depend on, or move, the file's offset.
	f, data := testFile(t, 1<<20)
	errs := make(chan error, 100)
	addr := serve(t, &Server{Handler: fileHandler(f, errs)})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := i * 1000
			c, br := dial(t, addr)
			for range 5 {
				send(t, c, "GET /"+strconv.Itoa(off)+"/500000 HTTP/1.1\r\nHost: h\r\n\r\n")
				_, body := readResponse(t, br, "GET")
				if !bytes.Equal([]byte(body), data[off:off+500000]) {
					t.Errorf("connection %d: wrong bytes", i)
				}
			}
		}()
	}
	wg.Wait()
	for range 8 * 5 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestWriteFileShorterThanAsked(t *testing.T) {
	f, data := testFile(t, 100<<10)
	errs := make(chan error, 10)
	addr := serve(t, &Server{Handler: fileHandler(f, errs)})
	out := exchange(t, addr, "GET /0/200000 HTTP/1.1\r\nHost: h\r\n\r\nGET /0/1 HTTP/1.1\r\nHost: h\r\n\r\n")
	// On a goroutine WriteFile finds the short file itself; on the loop,
	// sendfile finds it after WriteFile has returned and closes the
	// connection: the client sees the same either way.
	if err := <-errs; !errors.Is(err, io.ErrUnexpectedEOF) && *serveMode != "fast" {
		t.Errorf("WriteFile past the end: %v, want io.ErrUnexpectedEOF", err)
	}
	want := "HTTP/1.1 200 OK\r\nDate: X\r\nServer: anx\r\nContent-Length: 200000\r\n\r\n" + string(data)
	if out != want {
		t.Errorf("got %d bytes, want the head, the %d bytes of the file and a close", len(out), len(data))
	}
}
