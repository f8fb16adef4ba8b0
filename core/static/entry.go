package static

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// representation is one byte sequence the handler can send for a
// resource: the file itself or one of its precompressed sidecars. Header
// values are formatted once, when the entry is made.
type representation struct {
	file          *os.File // nil when the resource has no such variant
	size          int64
	modTime       time.Time // the file's, but never later than when the entry was made
	modSeconds    int64     // modTime in Unix seconds, as date validators see it
	lastModified  string
	etag          string
	contentLength string
	body          []byte // the whole content of a file of at most inlineBody bytes; nil otherwise
}

// inlineBody is the largest file whose content an entry keeps in memory,
// so that a response for it is one write of head and body together (on
// HTTP/1.1, one system call instead of a head write and a file read or
// sendfile). Small files are the most requested (icons, scripts, styles,
// API-like JSON), and the cache bounds how many entries there are, so
// this costs at most inlineBody per cached entry and variant.
const inlineBody = 4 << 10

// entry is a resolved resource: an open regular file, its open sidecars
// and their metadata. It is shared by the requests that use it and by the
// cache; refs counts them, and the last release closes the files. Its
// fields do not change once the entry is made, except refs.
type entry struct {
	refs        atomic.Int32
	expires     time.Time // when the cache must stop handing it out
	cacheable   bool      // false when a modification time lay in the future
	contentType string
	hasVariants bool     // a sidecar exists or fly is set, so responses vary on Accept-Encoding
	fly         *fileKey // set when the file is compressed on the fly (compress.go)
	available   [codingCount]bool
	reps        [codingCount]representation
}

// acquire takes a reference, for a holder of one.
func (e *entry) acquire() { e.refs.Add(1) }

// tryAcquire takes a reference unless the last one is gone already and
// the files are closed, which can happen to an entry found in a cache map
// that has since been replaced.
func (e *entry) tryAcquire() bool {
	for {
		n := e.refs.Load()
		if n <= 0 {
			return false
		}
		if e.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference; the last one closes the files.
func (e *entry) release() {
	if e.refs.Add(-1) != 0 {
		return
	}
	for i := range e.reps {
		if f := e.reps[i].file; f != nil {
			f.Close()
		}
	}
}

// newEntry makes an entry, holding one reference, for the regular file f
// opened as name, and opens the sidecars found next to it.
func (h *Handler) newEntry(name string, f *os.File, info fs.FileInfo, now time.Time) *entry {
	e := &entry{contentType: contentTypeOf(name), cacheable: true}
	e.refs.Store(1)
	e.set(identity, f, info, now)
	for _, c := range precompressed {
		sidecar, info, ok := h.openSidecar(name + c.fileSuffix())
		if !ok {
			continue
		}
		e.set(c, sidecar, info, now)
		e.hasVariants = true
	}
	h.markCompressible(e, name, info)
	return e
}

func (e *entry) set(c coding, f *os.File, info fs.FileInfo, now time.Time) {
	modTime := info.ModTime()
	if modTime.After(now) {
		// RFC 9110 section 8.8.2.1: a Last-Modified in the future is
		// replaced by the time of the response, so this entry must
		// not outlive the request.
		modTime, e.cacheable = now, false
	}
	e.available[c] = true
	e.reps[c] = representation{
		file:          f,
		size:          info.Size(),
		modTime:       modTime,
		modSeconds:    modTime.Unix(),
		lastModified:  formatHTTPDate(modTime),
		etag:          makeETag(info.ModTime(), info.Size(), c.etagSuffix()),
		contentLength: strconv.FormatInt(info.Size(), 10),
		body:          readSmall(f, info.Size()),
	}
}

// readSmall returns the content of a file of at most inlineBody bytes, or
// nil when it is larger or the read falls short (the file changed: the
// response then reads the file itself, as for a large one).
func readSmall(f *os.File, size int64) []byte {
	if size == 0 || size > inlineBody {
		return nil
	}
	body := make([]byte, size)
	if n, err := f.ReadAt(body, 0); int64(n) != size && err != nil {
		return nil
	}
	return body
}

// openSidecar opens a precompressed variant; any failure means there is
// none.
func (h *Handler) openSidecar(name string) (*os.File, fs.FileInfo, bool) {
	f, err := h.open(name)
	if err != nil {
		return nil, nil, false
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, false
	}
	return f, info, true
}

// openFlags opens read-only and without blocking, so that a FIFO planted in
// the tree cannot stall the request; O_NONBLOCK does not change reads of
// regular files.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK

// open opens name, relative to the root, with os.Root, which refuses any
// path or symbolic link that leads out of the root, or, with
// AllowSymlinksOutside, through the plain file system.
func (h *Handler) open(name string) (*os.File, error) {
	if h.root != nil {
		return h.root.OpenFile(name, openFlags, 0)
	}
	return os.OpenFile(h.dir+"/"+name, openFlags, 0)
}

// statusForError maps an error from opening or stat-ing a file to a
// response status. Missing files and names that cannot be files are 404;
// permission errors 403. os.Root reports a name that escapes the root
// with an error that is not an errno (the os package does not export it),
// so any such error is a refused name and 404 as well. A closed handler
// is 503; anything else, such as EIO or EMFILE, is 500.
func statusForError(err error) int {
	var errno syscall.Errno
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 404
	case errors.Is(err, fs.ErrPermission):
		return 403
	case errors.Is(err, os.ErrClosed):
		return 503
	case !errors.As(err, &errno):
		return 404
	}
	switch errno {
	case syscall.ENOTDIR, syscall.ELOOP, syscall.ENAMETOOLONG, syscall.EISDIR:
		return 404
	}
	return 500
}

// resolve opens the resource that key names. key is the cleaned path
// without its leading slash; a key that is empty or ends in a slash names
// a directory, answered by its index file. It returns 301 for a directory
// named without the trailing slash.
func (h *Handler) resolve(key string, now time.Time) (*entry, int) {
	if key == "" || key[len(key)-1] == '/' {
		return h.resolveIndex(key, now)
	}
	f, err := h.open(key)
	if err != nil {
		return nil, statusForError(err)
	}
	info, err := f.Stat()
	switch {
	case err != nil:
		f.Close()
		return nil, statusForError(err)
	case info.Mode().IsRegular():
		return h.newEntry(key, f, info, now), 0
	case info.IsDir():
		f.Close()
		return nil, 301
	}
	f.Close()
	return nil, 404 // a device, FIFO or socket
}

// resolveIndex opens the first index file of dir (empty or ending in a
// slash) that exists and is a regular file. A directory without one is
// 404 (which Serve may turn into a listing or the fallback).
func (h *Handler) resolveIndex(dir string, now time.Time) (*entry, int) {
	for _, index := range h.index {
		name := dir + index
		f, err := h.open(name)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, statusForError(err)
		}
		info, err := f.Stat()
		if err == nil && info.Mode().IsRegular() {
			return h.newEntry(name, f, info, now), 0
		}
		f.Close()
		if err != nil {
			return nil, statusForError(err)
		}
	}
	return nil, 404
}
