package static_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/static"
	"github.com/anx-gateway/anx/core/static/statictest"
)

// recorder is an in-memory message.ResponseWriter. It keeps the header
// as it was when WriteHeader was called, and everything written after.
type recorder struct {
	t      testing.TB
	header message.Header
	status int
	sent   []message.Field
	body   bytes.Buffer
}

func (r *recorder) Header() *message.Header { return &r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status != 0 {
		r.t.Errorf("WriteHeader(%d) after WriteHeader(%d)", status, r.status)
		return
	}
	r.status = status
	r.sent = append(r.sent[:0], r.header.Fields()...)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(200)
	}
	return r.body.Write(p)
}

// values returns the sent values of a field, by case-insensitive name.
func (r *recorder) values(name string) []string {
	var values []string
	for _, f := range r.sent {
		if strings.EqualFold(f.Name, name) {
			values = append(values, f.Value)
		}
	}
	return values
}

func (r *recorder) reset() {
	r.header.Reset()
	r.status = 0
	r.sent = r.sent[:0]
	r.body.Reset()
}

// fileRecorder is a recorder that also offers message.FileWriter, as the
// plain HTTP/1.1 front end does for sendfile. It reads at the given
// offset without touching the file's own offset, as the contract of
// core/static requires.
type fileRecorder struct {
	recorder
	regions int // WriteFile calls
}

func (r *fileRecorder) WriteFile(f *os.File, offset, length int64) (int64, error) {
	if r.status == 0 {
		r.WriteHeader(200)
	}
	r.regions++
	buf := make([]byte, length)
	n, err := f.ReadAt(buf, offset)
	r.body.Write(buf[:n])
	if n == len(buf) {
		err = nil
	}
	return int64(n), err
}

var _ message.FileWriter = (*fileRecorder)(nil)

// unreadBody fails the test if the handler reads the request content.
type unreadBody struct{ t testing.TB }

func (b unreadBody) Read([]byte) (int, error) {
	b.t.Errorf("static read the request body")
	return 0, io.EOF
}

// newRequest builds the message.Request a front end would hand over for
// a case's request.
func newRequest(t testing.TB, req statictest.Request) *message.Request {
	r := &message.Request{
		Method:        req.Method,
		Path:          req.Target,
		Host:          "example.test",
		Proto:         message.HTTP1,
		ProtoMinor:    1,
		Body:          unreadBody{t},
		ContentLength: 0,
	}
	if i := strings.IndexByte(req.Target, '?'); i >= 0 {
		r.Path, r.RawQuery = req.Target[:i], req.Target[i+1:]
	}
	for _, f := range req.Header {
		r.Header.Add(f.Name, f.Value)
	}
	return r
}

// newSite writes the fixture into a temporary directory and returns its
// root.
func newSite(t testing.TB) string {
	t.Helper()
	root, err := statictest.WriteSite(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func newHandler(t testing.TB, cfg static.Config) *static.Handler {
	t.Helper()
	h, err := static.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// TestCases runs the shared table through the Handler, with and without
// the file cache (twice with it, so the second pass is served from the
// cache), once with a writer that offers sendfile and once with one that
// does not; both must send the same bytes.
func TestCases(t *testing.T) {
	root := newSite(t)
	for _, mode := range []struct {
		name   string
		ttl    time.Duration
		passes int
	}{{"cached", time.Hour, 2}, {"uncached", -1, 1}} {
		h := newHandler(t, static.Config{Root: root, CacheTTL: mode.ttl})
		for pass := range mode.passes {
			for _, c := range statictest.Cases() {
				t.Run(mode.name+"/pass"+strconv.Itoa(pass)+"/"+c.Name, func(t *testing.T) {
					runCase(t, h, c)
				})
			}
		}
	}
}

func runCase(t *testing.T, h *static.Handler, c statictest.Case) {
	plain := &recorder{t: t}
	h.Serve(plain, newRequest(t, c.Req))
	withFile := &fileRecorder{recorder: recorder{t: t}}
	h.Serve(withFile, newRequest(t, c.Req))
	for _, w := range []struct {
		name string
		rec  *recorder
	}{{"Write", plain}, {"WriteFile", &withFile.recorder}} {
		if err := c.Verify(w.rec.status, w.rec.values, w.rec.body.Bytes()); err != nil {
			t.Errorf("%s %s via %s:\n%v", c.Req.Method, c.Req.Target, w.name, err)
		}
		if bytes.Contains(w.rec.body.Bytes(), []byte(statictest.SecretText)) {
			t.Errorf("%s %s via %s: the response holds the file outside the root", c.Req.Method, c.Req.Target, w.name)
		}
	}
	if got, want := normalized(&withFile.recorder), normalized(plain); got != want {
		t.Errorf("WriteFile and Write differ:\ngot  %q\nwant %q", got, want)
	}
	sendsFile := c.Req.Method == "GET" && (c.Want.Status == 200 || c.Want.Status == 206) && withFile.body.Len() > 0
	inline := representationSize(&withFile.recorder) <= 4<<10 // the entry holds the content
	switch {
	case sendsFile && !inline && withFile.regions == 0:
		t.Errorf("a file response did not go through message.FileWriter")
	case sendsFile && inline && withFile.regions != 0:
		t.Errorf("a file of at most 4 KiB was read again through message.FileWriter, not sent from memory")
	case !sendsFile && withFile.regions != 0:
		t.Errorf("WriteFile called %d times for a response without file content", withFile.regions)
	}
}

// representationSize returns the size of the file a response's content
// comes from: the length of a 200's body, or the complete length that a
// 206's (first) Content-Range gives.
func representationSize(r *recorder) int {
	if r.status != 206 {
		return r.body.Len()
	}
	cr := r.header.Get("Content-Range")
	if cr == "" { // multipart: the first part's field
		if _, rest, ok := strings.Cut(r.body.String(), "Content-Range: "); ok {
			cr, _, _ = strings.Cut(rest, "\r\n")
		}
	}
	_, total, _ := strings.Cut(cr, "/")
	n, err := strconv.Atoi(total)
	if err != nil {
		r.t.Fatalf("206 without a complete length in Content-Range %q", cr)
	}
	return n
}

// normalized renders a recorded response with the multipart boundary,
// which is random, replaced by a fixed string.
func normalized(r *recorder) string {
	var b strings.Builder
	b.WriteString(string(rune('0'+r.status/100)) + "xx ")
	for _, f := range r.sent {
		b.WriteString(f.Name + ": " + f.Value + "\n")
	}
	b.Write(r.body.Bytes())
	s := b.String()
	if _, boundary, ok := strings.Cut(strings.Join(r.values("Content-Type"), ""), "boundary="); ok {
		s = strings.ReplaceAll(s, boundary, "BOUNDARY")
	}
	return s
}

// TestNewRejectsBadRoots checks the errors New gives for a root it cannot
// serve.
func TestNewRejectsBadRoots(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/file"
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  static.Config
		want string
	}{
		{static.Config{Root: dir + "/missing"}, "static: root " + dir + "/missing: no such directory"},
		{static.Config{Root: file}, "static: root " + file + ": not a directory"},
		{static.Config{}, "static: no root directory"},
		{static.Config{Root: dir, Index: []string{"../index.html"}}, `static: index "../index.html": not a plain file name`},
		{static.Config{Root: dir, Index: []string{".index"}}, `static: index ".index": not a plain file name`},
		{static.Config{Root: dir, CacheControl: "max-age=1\r\nX: y"}, `static: CacheControl "max-age=1\r\nX: y": control character`},
		{static.Config{Root: dir, CacheEntries: -1}, "static: negative CacheEntries"},
	} {
		h, err := static.New(tc.cfg)
		if err == nil {
			h.Close()
			t.Errorf("New(%+v) succeeded, want %q", tc.cfg, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("New(%+v):\ngot  %q\nwant %q", tc.cfg, err, tc.want)
		}
	}
	_, err := static.New(static.Config{Root: dir + "/missing"})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the error for a missing root does not wrap os.ErrNotExist: %v", err)
	}
}
