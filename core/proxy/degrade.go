package proxy

import (
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// Degradation: when no upstream gives a response (every one is down,
// its breaker open, or every attempt failed), a route may answer with
// the last good response to the same GET URL, kept for StaleIfError (RFC
// 5861's stale-if-error), or else with a fallback file and its status,
// instead of 502, 503 or 504.

// Bounds of what a route keeps for stale-if-error.
const (
	// staleMaxBody is the largest body kept; a larger response is not.
	staleMaxBody = 1 << 20
	// staleMaxBytes bounds the bodies and fields kept by one route; the
	// oldest stored go first.
	staleMaxBytes = 32 << 20
	// staleMaxEntries bounds the URLs one route keeps.
	staleMaxEntries = 16384
	// staleEntryOverhead is what an entry costs besides its bytes: the
	// map slot, the struct, the fields' headers.
	staleEntryOverhead = 256
	// staleRefresh is how often the response to one URL is stored again:
	// a URL served a thousand times a second is copied once a second.
	staleRefresh = time.Second
	// fallbackMaxBytes bounds a fallback file, read whole at start.
	fallbackMaxBytes = 1 << 20
)

// degrader is a route's answer for when no upstream gives one.
// Read-only after newDegrader, except stale, which locks itself.
type degrader struct {
	fallback     []byte        // the fallback file; nil: none
	fallbackType string        // its Content-Type
	status       int           // its status
	stale        *staleCache   // shared with the route of the same name after a reload (Transports.staleFor)
	staleTTL     time.Duration // Protection.StaleIfError
}

// newDegrader reads the fallback file and takes from shared the stale
// cache of the route called route, when it asks for them; nil when it
// asks for neither.
func newDegrader(p *Protection, shared *Transports, route string) (*degrader, error) {
	if p.FallbackFile == "" && p.StaleIfError <= 0 {
		return nil, nil
	}
	d := &degrader{status: p.FallbackStatus}
	if p.FallbackFile != "" {
		body, err := readFallback(p.FallbackFile)
		if err != nil {
			return nil, err
		}
		d.fallback = body
		d.fallbackType = mime.TypeByExtension(filepath.Ext(p.FallbackFile))
		if d.fallbackType == "" {
			d.fallbackType = "application/octet-stream"
		}
	}
	if p.StaleIfError > 0 {
		d.stale, d.staleTTL = shared.staleFor(route), p.StaleIfError
	}
	return d, nil
}

// readFallback reads a fallback file, at most fallbackMaxBytes.
func readFallback(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("proxy: fallback file: %w", err)
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, fallbackMaxBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("proxy: fallback file %s: %w", path, err)
	case len(body) > fallbackMaxBytes:
		return nil, fmt.Errorf("proxy: fallback file %s is larger than %d bytes", path, fallbackMaxBytes)
	}
	return body, nil
}

// answer writes the degraded answer to a request (staleKey 0: not a
// GET or HEAD, or the route keeps nothing): the stale response when one
// is kept for it, else the fallback file. It reports false when it has
// neither.
func (d *degrader) answer(w message.ResponseWriter, isHead bool, staleKey uint64, retryAfter string) bool {
	if staleKey != 0 && d.stale != nil && d.stale.serve(w, isHead, staleKey, time.Now().UnixNano()) {
		return true
	}
	if d.fallback == nil {
		return false
	}
	hdr := w.Header()
	hdr.Set("Content-Type", d.fallbackType)
	hdr.Set("Content-Length", strconv.Itoa(len(d.fallback)))
	hdr.Set("Cache-Control", "no-store")
	if d.status == 503 || d.status == 429 {
		hdr.Set("Retry-After", retryAfter)
	}
	w.WriteHeader(d.status)
	if !isHead {
		_, _ = w.Write(d.fallback)
	}
	return true
}

// staleKey is the key r's response is kept under, for a GET or HEAD to a
// route that keeps responses; else 0. It hashes the host, path and query
// (a 64-bit hash: two URLs of one route sharing one is left to chance)
// without allocating.
func (h *Handler) staleKey(r *message.Request) uint64 {
	if h.degrade == nil || h.degrade.stale == nil || (r.Method != "GET" && r.Method != "HEAD") {
		return 0
	}
	const offset, prime = 14695981039346656037, 1099511628211
	k := uint64(offset)
	for _, s := range [...]string{r.Host, "\x00", r.Path, "?", r.RawQuery} {
		for i := 0; i < len(s); i++ {
			k = (k ^ uint64(s[i])) * prime
		}
	}
	return mix(k) | 1 // never 0
}

// retryAfter is the Retry-After of a 503 when the upstreams are out: the
// breaker's open time, else a health-check interval and a second.
func (h *Handler) retryAfter() string {
	if h.cfg.Protect.Breaker.enabled() {
		return strconv.Itoa(max(int(h.cfg.Protect.Breaker.Open.Seconds()), 1))
	}
	return strconv.Itoa(int(h.cfg.Health.Interval.Seconds()) + 1)
}

// staleCache keeps the last good response of each GET URL of a route,
// within staleMaxEntries and staleMaxBytes, the oldest stored evicted
// first. Safe for concurrent use; everything is guarded by mu.
type staleCache struct {
	mu      sync.Mutex
	entries map[uint64]*staleEntry
	order   []staleRef // store order, oldest first
	bytes   int64      // the sum of the entries' sizes
	seq     uint64     // numbers the stores
}

// staleEntry is one kept response.
type staleEntry struct {
	status  int
	header  []message.Field // the client's fields, without framing and cookies
	body    []byte
	stored  int64 // unix nanoseconds
	expires int64 // unix nanoseconds: served stale until then
	size    int64
	seq     uint64
}

// staleRef names an entry in store order; seq tells a replaced one.
type staleRef struct {
	key, seq uint64
}

// staleRecord collects one response as it is relayed, to be kept if it
// ends whole. Owned by the request's goroutine (or loop).
type staleRecord struct {
	key      uint64
	status   int
	header   []message.Field
	body     []byte
	lifetime time.Duration
	tooBig   bool
}

// wants reports whether a response to key would be stored at now: none
// is kept, or the kept one is older than staleRefresh.
func (s *staleCache) wants(key uint64, now int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	return !ok || now-e.stored >= int64(staleRefresh)
}

// startStale starts recording a response for the stale cache: a GET's
// (key not 0, !isHead) cacheable 2xx (cacheable below). upstream is the
// upstream's header, client the fields about to go to the client. It
// returns nil when the response is not kept.
func (h *Handler) startStale(key uint64, isHead bool, status int, upstream, client *message.Header) *staleRecord {
	if key == 0 || isHead {
		return nil
	}
	s := h.degrade.stale
	lifetime, ok := cacheable(status, upstream, h.degrade.staleTTL)
	if !ok || !s.wants(key, time.Now().UnixNano()) {
		return nil
	}
	rec := &staleRecord{key: key, status: status, lifetime: lifetime}
	for _, f := range client.Fields() {
		switch {
		case message.EqualFold(f.Name, "Set-Cookie"), message.EqualFold(f.Name, "Content-Length"),
			message.EqualFold(f.Name, "Transfer-Encoding"), message.EqualFold(f.Name, "Age"):
			continue
		}
		rec.header = append(rec.header, f)
	}
	ownStrings(rec.header)
	return rec
}

// cacheable reports whether a response may be kept to be served stale,
// and for how long: a 2xx other than 206, without Set-Cookie, Vary or
// Content-Encoding (the key does not tell clients apart), no larger than
// staleMaxBody, whose Cache-Control has none of no-store, private,
// no-cache, must-revalidate and proxy-revalidate. Its own
// "stale-if-error=N" gives the lifetime (N seconds after its max-age),
// else def.
func cacheable(status int, h *message.Header, def time.Duration) (time.Duration, bool) {
	if status < 200 || status > 299 || status == 206 || h.Has("Set-Cookie") || h.Has("Vary") || h.Has("Content-Encoding") {
		return 0, false
	}
	if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && n > staleMaxBody {
		return 0, false
	}
	lifetime, maxAge, sie := def, int64(0), int64(-1)
	for v := range h.Values("Cache-Control") {
		for name, arg := range message.Directives(v) {
			name = strings.ToLower(name)
			switch name {
			case "no-store", "private", "no-cache", "must-revalidate", "proxy-revalidate":
				return 0, false
			case "max-age", "s-maxage", "stale-if-error":
				n, err := strconv.ParseInt(strings.Trim(arg, `"`), 10, 64)
				if err != nil || n < 0 {
					continue
				}
				if name == "stale-if-error" {
					sie = n
				} else if name == "s-maxage" || maxAge == 0 {
					maxAge = n
				}
			}
		}
	}
	if sie >= 0 {
		lifetime = time.Duration(maxAge+sie) * time.Second
	}
	return lifetime, lifetime > 0
}

// add appends body bytes; past staleMaxBody the record is dropped.
func (rec *staleRecord) add(p []byte) {
	if rec.tooBig {
		return
	}
	if len(rec.body)+len(p) > staleMaxBody {
		rec.tooBig, rec.body = true, nil
		return
	}
	rec.body = append(rec.body, p...)
}

// commitStale keeps a response recorded whole; nil does nothing.
func (h *Handler) commitStale(rec *staleRecord) {
	if rec == nil || rec.tooBig {
		return
	}
	h.degrade.stale.store(rec, time.Now().UnixNano())
}

// store keeps rec at now, replacing the key's older entry and evicting
// the oldest entries beyond the bounds.
func (s *staleCache) store(rec *staleRecord, now int64) {
	size := int64(len(rec.body)) + staleEntryOverhead
	for _, f := range rec.header {
		size += int64(len(f.Name)+len(f.Value)) + 32
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remove(rec.key)
	s.seq++
	e := &staleEntry{status: rec.status, header: rec.header, body: rec.body, stored: now,
		expires: now + int64(rec.lifetime), size: size, seq: s.seq}
	s.entries[rec.key] = e
	s.order = append(s.order, staleRef{rec.key, s.seq})
	s.bytes += size
	for len(s.entries) > staleMaxEntries || s.bytes > staleMaxBytes {
		s.evictOldest()
	}
	if len(s.order) > 2*len(s.entries)+64 {
		s.compact()
	}
}

// remove drops key's entry, if any; its place in order goes stale.
// Called with mu held.
func (s *staleCache) remove(key uint64) {
	if e, ok := s.entries[key]; ok {
		s.bytes -= e.size
		delete(s.entries, key)
	}
}

// evictOldest drops the entry stored first. Called with mu held.
func (s *staleCache) evictOldest() {
	for len(s.order) > 0 {
		ref := s.order[0]
		s.order = s.order[1:]
		if e, ok := s.entries[ref.key]; ok && e.seq == ref.seq {
			s.remove(ref.key)
			return
		}
	}
}

// compact drops from order the refs of replaced or removed entries, so
// that it stays within a small multiple of the entries. Called with mu
// held.
func (s *staleCache) compact() {
	kept := make([]staleRef, 0, len(s.entries))
	for _, ref := range s.order {
		if e, ok := s.entries[ref.key]; ok && e.seq == ref.seq {
			kept = append(kept, ref)
		}
	}
	s.order = kept
}

// serve writes the entry kept for key, with its Age, if one is kept and
// has not expired at now.
func (s *staleCache) serve(w message.ResponseWriter, isHead bool, key uint64, now int64) bool {
	s.mu.Lock()
	e, ok := s.entries[key]
	if ok && now >= e.expires {
		s.remove(key)
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		return false
	}
	hdr := w.Header()
	for _, f := range e.header {
		hdr.Add(f.Name, f.Value)
	}
	hdr.Set("Age", strconv.FormatInt(max(now-e.stored, 0)/int64(time.Second), 10))
	hdr.Set("Content-Length", strconv.Itoa(len(e.body)))
	w.WriteHeader(e.status)
	if !isHead {
		_, _ = w.Write(e.body)
	}
	return true
}

// staleSize returns how many entries and bytes the cache holds, for
// tests and metrics.
func (s *staleCache) staleSize() (entries int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries), s.bytes
}

// newStaleCache returns an empty cache.
func newStaleCache() *staleCache { return &staleCache{entries: map[uint64]*staleEntry{}} }

// staleFor returns the stale cache of the route called route, making it
// if no handler holds one: a reloaded route keeps what it had kept.
func (s *Transports) staleFor(route string) *staleCache {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stales.acquire(route, newStaleCache)
}

// releaseStale gives back a stale cache; the last handler's release
// forgets it and what it kept.
func (s *Transports) releaseStale(c *staleCache) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stales.release(c)
}

// teeReader copies what it reads into a staleRecord.
type teeReader struct {
	r   io.Reader
	rec *staleRecord
}

func (t *teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.rec.add(p[:n])
	return n, err
}
