// Package static is anx's protocol-neutral static-file server. A Handler
// answers GET and HEAD requests from a directory tree, over any front end
// that speaks core/message, following RFC 9110: validators and conditional
// requests (sections 8.8 and 13), byte ranges (section 14), content-coding
// negotiation over precompressed sidecar files (section 12.5.3), and the
// status codes of section 15.
//
// Files are opened through os.Root, so that no request path and no
// symbolic link can reach outside the root; dot files, encoded separators
// and every spelling of ".." are refused before the file system is
// touched. Opened files and their metadata are kept for a short time (see
// Config.CacheTTL), so that a hit costs no system call but the send, and
// bodies go out through message.FileWriter (sendfile) when the front end
// offers it, or through a buffer borrowed from core/pool.
//
// Because cached files are shared by concurrent requests, the handler
// reads them only at explicit offsets (pread), and a message.FileWriter
// it is given must do the same: send with an explicit offset, never
// through or by moving the file's own offset.
package static

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anx-gateway/anx/core/encode"
	"github.com/anx-gateway/anx/core/message"
)

// Config configures a Handler. Its zero value, given a Root, serves that
// directory with index.html as index file and a one-second file cache.
type Config struct {
	// Root is the directory served. It must exist when New is called.
	Root string

	// Index lists the file names tried, in order, for a path that ends
	// in "/". Nil means {"index.html"}; a non-nil empty slice turns
	// index files off. A directory without an index file is 404, or
	// its listing with Browse.
	Index []string

	// Browse answers a GET or HEAD for a directory ("/" at the end)
	// that has no index file with a listing of it, read at that moment:
	// HTML, or JSON when the request's Accept prefers application/json
	// (see listing.go). Off, such a directory is 404.
	Browse bool

	// Fallback, when not empty, is the path under Root of a file (such
	// as "/index.html") served with 200 for a GET or HEAD that finds no
	// file, as single-page applications want; but only when the
	// request's Accept lists text/html and its last path segment has no
	// extension, so that a missing script or image is still 404. New
	// fails unless the file exists.
	Fallback string

	// AllowSymlinksOutside lets symbolic links inside Root point
	// anywhere, by opening files through the plain file system instead
	// of os.Root. The request path is still confined (no "..", no dot
	// files), but anyone who can create a symbolic link under Root can
	// then expose any file the server can read. By default such links,
	// and absolute links (which os.Root always refuses), are 404.
	AllowSymlinksOutside bool

	// CacheControl, when not empty, is sent as the Cache-Control field
	// of every 200, 206 and 304 response.
	CacheControl string

	// CacheTTL is how long an opened file and its metadata are reused
	// before the file is opened and examined again: a change on disk
	// shows within one and a half times this (entries are dropped by a
	// sweep every half TTL, so a hit does not read the clock). Zero
	// means one second; a negative value turns the cache off.
	CacheTTL time.Duration

	// CacheEntries bounds the number of cached files; each holds up to
	// four open descriptors (the file and its .br, .zst and .gz
	// sidecars). Zero means 1024.
	CacheEntries int

	// Compress is the set of codings files are compressed in on the
	// fly, when the client accepts one and no precompressed sidecar it
	// accepts exists (see compress.go). Zero: no compression on the fly.
	Compress encode.Set

	// CompressMinSize is the smallest file compressed on the fly. Zero
	// means encode.DefaultMinSize (512 bytes).
	CompressMinSize int64

	// CompressCacheBytes bounds the memory of the compressed variants
	// kept, least recently used dropped first; a file larger than an
	// eighth of it is not compressed. Zero means 64 MiB.
	CompressCacheBytes int64
}

const (
	defaultCacheTTL     = time.Second
	defaultCacheEntries = 1024
)

// Validate reports a configuration that New would refuse, without
// touching the file system.
func (c *Config) Validate() error {
	if c.Root == "" {
		return errors.New("static: no root directory")
	}
	for _, name := range c.Index {
		if name == "" || name[0] == '.' || strings.ContainsAny(name, "/\\\x00") {
			return fmt.Errorf("static: index %q: not a plain file name", name)
		}
	}
	if strings.ContainsFunc(c.CacheControl, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
		return fmt.Errorf("static: CacheControl %q: control character", c.CacheControl)
	}
	if c.CacheEntries < 0 {
		return errors.New("static: negative CacheEntries")
	}
	return checkFallbackPath(c.Fallback)
}

func (c *Config) index() []string {
	if c.Index == nil {
		return []string{"index.html"}
	}
	return c.Index
}

func (c *Config) cacheTTL() time.Duration {
	if c.CacheTTL == 0 {
		return defaultCacheTTL
	}
	return c.CacheTTL
}

func (c *Config) cacheEntries() int {
	if c.CacheEntries == 0 {
		return defaultCacheEntries
	}
	return c.CacheEntries
}

// Handler serves the files under a root directory. It is a
// message.Handler and is safe for concurrent use. Close releases it.
type Handler struct {
	root         *os.Root // nil with AllowSymlinksOutside
	dir          string   // absolute path of the root
	index        []string
	cacheControl string
	browse       bool
	fallback     string        // Config.Fallback without its leading "/"; empty: none
	cache        *fileCache    // nil when the cache is off
	variants     *variantCache // nil when compression is off
	closed       atomic.Bool
	closeOnce    sync.Once
	closeErr     error
}

var _ message.Handler = (*Handler)(nil)

// New returns a Handler serving cfg.Root. It fails when the configuration
// is invalid or the root is not a directory it can open, with an error such
// as "static: root /x: no such directory".
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, &rootError{path: cfg.Root, reason: err.Error(), err: err}
	}
	if err := checkDirectory(dir); err != nil {
		return nil, err
	}
	h := &Handler{
		dir:          dir,
		index:        slices.Clone(cfg.index()),
		cacheControl: cfg.CacheControl,
		browse:       cfg.Browse,
		fallback:     strings.TrimPrefix(cfg.Fallback, "/"),
	}
	if !cfg.AllowSymlinksOutside {
		if h.root, err = os.OpenRoot(dir); err != nil {
			return nil, rootErrorOf(dir, err)
		}
	}
	if ttl := cfg.cacheTTL(); ttl > 0 {
		h.cache = newFileCache(ttl, cfg.cacheEntries())
	}
	h.variants = newVariantCache(&cfg)
	if err := h.checkFallbackFile(); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// checkDirectory fails unless dir is a directory.
func checkDirectory(dir string) error {
	info, err := os.Stat(dir)
	if err != nil {
		return rootErrorOf(dir, err)
	}
	if !info.IsDir() {
		return &rootError{path: dir, reason: "not a directory", err: fs.ErrInvalid}
	}
	return nil
}

// rootError says why the root cannot be served; it wraps the cause, so
// errors.Is(err, fs.ErrNotExist) works.
type rootError struct {
	path, reason string
	err          error
}

func (e *rootError) Error() string { return "static: root " + e.path + ": " + e.reason }
func (e *rootError) Unwrap() error { return e.err }

func rootErrorOf(dir string, err error) error {
	reason := err.Error()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		reason = "no such directory"
	case errors.Is(err, fs.ErrPermission):
		reason = "permission denied"
	default:
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			reason = pathErr.Err.Error()
		}
	}
	return &rootError{path: dir, reason: reason, err: err}
}

// Close releases the cached files and the root. Requests still being
// served finish with the files they hold; later requests get 503.
func (h *Handler) Close() error {
	h.closeOnce.Do(func() {
		h.closed.Store(true)
		if h.cache != nil {
			h.cache.close()
		}
		h.variants.close()
		if h.root != nil {
			h.closeErr = h.root.Close()
		}
	})
	return h.closeErr
}

// NonBlocking reports true: Serve never reads the request content and
// sends file bodies through message.FileWriter when the front end offers
// it, so an event-loop front end can run it on its loop. It does open and
// stat files on a cache miss, as nginx's event loop does, and with Browse
// reads a directory for its listing (at most maxListing names).
func (h *Handler) NonBlocking() bool { return true }

// Serve answers r. It never reads the request content.
func (h *Handler) Serve(w message.ResponseWriter, r *message.Request) {
	switch r.Method {
	case "GET", "HEAD":
	case "OPTIONS":
		serveOptions(w)
		return
	default:
		w.Header().Set("Allow", allowedMethods)
		writeStatus(w, r, 405)
		return
	}
	clean, status := decodePath(r.Path)
	if status != 0 {
		writeStatus(w, r, status)
		return
	}
	var clk clock
	e, status := h.find(clean[1:], &clk)
	switch {
	case status == 301:
		redirectToDirectory(w, r)
		return
	case status == 404 && h.serveMissing(w, r, clean, &clk):
		return
	case status != 0:
		writeStatus(w, r, status)
		return
	}
	defer e.release()
	h.serveEntry(w, r, e, &clk)
}

// clock reads the time at most once per request, and only when needed: a
// cache hit for a request without date fields needs none.
type clock struct{ t time.Time }

func (c *clock) now() time.Time {
	if c.t.IsZero() {
		c.t = time.Now()
	}
	return c.t
}

// find returns the entry for key, from the cache or freshly resolved,
// with a reference taken, or a status.
func (h *Handler) find(key string, clk *clock) (*entry, int) {
	if h.closed.Load() {
		return nil, 503
	}
	if h.cache != nil {
		if e := h.cache.get(key); e != nil {
			return e, 0
		}
	}
	e, status := h.resolve(key, clk.now())
	if e != nil && e.cacheable && h.cache != nil {
		h.cache.put(strings.Clone(key), e, clk.now())
	}
	return e, status
}
