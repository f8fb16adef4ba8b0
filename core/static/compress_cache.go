package static

import (
	"bytes"
	"strconv"
	"sync"

	"github.com/anx-gateway/anx/core/encode"
)

// variantKey names a compressed variant: the file's content and the
// coding.
type variantKey struct {
	file   fileKey
	coding encode.Coding
}

// variant is a cached compressed variant: its representation (nil when
// compressing did not make the file smaller, so that it is not tried
// again) and its place in the recency list.
type variant struct {
	key        variantKey
	rep        *representation
	cost       int64
	prev, next *variant // toward the most and the least recently used
}

// variantCache keeps compressed variants of files in memory, up to limit
// bytes; past it the least recently used go. It is shared by the requests
// of a Handler (on event loops and goroutines) and by the goroutines that
// compress large files, which it starts (compressLater) and waits for
// (close).
type variantCache struct {
	offered   encode.Set
	minSize   int64
	maxSource int64 // the largest file compressed: an eighth of limit
	limit     int64
	maxJobs   int
	pool      *encode.Pool

	mu      sync.Mutex
	byKey   map[variantKey]*variant // guarded by mu
	newest  *variant                // guarded by mu; head of the recency list
	oldest  *variant                // guarded by mu
	used    int64                   // guarded by mu: the cost of the variants in byKey
	pending map[variantKey]bool     // guarded by mu: being compressed
	closed  bool                    // guarded by mu: no new job starts
	jobs    sync.WaitGroup          // the compressing goroutines
}

// newVariantCache returns the cache of cfg, or nil when cfg compresses
// nothing.
func newVariantCache(cfg *Config) *variantCache {
	if cfg.Compress == 0 {
		return nil
	}
	limit := cfg.compressCacheBytes()
	return &variantCache{
		offered:   cfg.Compress,
		minSize:   cfg.compressMinSize(),
		maxSource: limit / 8,
		limit:     limit,
		maxJobs:   maxCompressJobs(),
		pool:      encode.NewPool(encode.Stored),
		byKey:     map[variantKey]*variant{},
		pending:   map[variantKey]bool{},
	}
}

// worthCompressing reports whether a file of that type and size is
// compressed on the fly.
func (vc *variantCache) worthCompressing(contentType string, size int64) bool {
	return size >= vc.minSize && size <= vc.maxSource && encode.Compressible(contentType)
}

// get returns the variant cached under key and true, marking it the most
// recently used, or false. A nil representation with true means the
// coding does not shrink this file.
func (vc *variantCache) get(key variantKey) (*representation, bool) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	v := vc.byKey[key]
	if v == nil {
		return nil, false
	}
	vc.unlink(v)
	vc.pushNewest(v)
	return v.rep, true
}

// compressNow compresses the file whose content id holds in memory and
// caches the result; it returns the variant, or nil when it is not
// smaller.
func (vc *variantCache) compressNow(key variantKey, id *representation) *representation {
	rep := vc.compress(key, id, id.body)
	vc.put(key, rep)
	return rep
}

// compressLater starts compressing the file of e in coding key.coding
// on a goroutine of its own, unless that is under way, too many are, or
// the cache is closed. The goroutine holds a reference to e, so its file
// stays open, and ends when the variant is cached.
func (vc *variantCache) compressLater(key variantKey, e *entry) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if vc.closed || vc.pending[key] || len(vc.pending) >= vc.maxJobs {
		return
	}
	vc.pending[key] = true
	e.acquire()
	vc.jobs.Go(func() {
		defer e.release()
		vc.compressFile(key, &e.reps[identity])
		vc.mu.Lock()
		delete(vc.pending, key)
		vc.mu.Unlock()
	})
}

// compressFile reads the file of id and caches its variant, unless the
// file changed meanwhile (then the next request's entry has a new key).
func (vc *variantCache) compressFile(key variantKey, id *representation) {
	content := make([]byte, id.size)
	if n, err := id.file.ReadAt(content, 0); int64(n) != id.size && err != nil {
		return
	}
	info, err := id.file.Stat()
	if err != nil || info.Size() != key.file.size || info.ModTime().UnixNano() != key.file.modNanos {
		return
	}
	vc.put(key, vc.compress(key, id, content))
}

// compress returns the variant of content (the file id) in key.coding,
// or nil when it is not smaller than the file.
func (vc *variantCache) compress(key variantKey, id *representation, content []byte) *representation {
	var out bytes.Buffer
	out.Grow(len(content) / 2)
	w := vc.pool.Get(key.coding, &out)
	_, err := w.Write(content)
	if err == nil {
		err = w.Close()
	}
	vc.pool.Put(w)
	if err != nil || out.Len() >= len(content) {
		return nil
	}
	body := bytes.Clone(out.Bytes()) // no spare capacity kept
	return &representation{
		size:          int64(len(body)),
		modTime:       id.modTime,
		modSeconds:    id.modSeconds,
		lastModified:  id.lastModified,
		etag:          variantETag(id.etag, key.coding),
		contentLength: strconv.Itoa(len(body)),
		body:          body,
	}
}

// variantETag is the file's entity-tag with the coding added inside the
// quotes: "…-zstd".
func variantETag(fileETag string, c encode.Coding) string {
	return fileETag[:len(fileETag)-1] + c.ETagSuffix() + `"`
}

// put caches rep (nil: not worth it) under key, dropping the least
// recently used variants past the limit.
func (vc *variantCache) put(key variantKey, rep *representation) {
	v := &variant{key: key, rep: rep, cost: variantOverhead + int64(len(key.file.path))}
	if rep != nil {
		v.cost += rep.size
	}
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if vc.closed || v.cost > vc.limit {
		return
	}
	if old := vc.byKey[key]; old != nil {
		vc.remove(old)
	}
	vc.byKey[key] = v
	vc.pushNewest(v)
	vc.used += v.cost
	for vc.used > vc.limit {
		vc.remove(vc.oldest)
	}
}

// remove drops v from the cache; vc.mu is held.
func (vc *variantCache) remove(v *variant) {
	vc.unlink(v)
	delete(vc.byKey, v.key)
	vc.used -= v.cost
}

// unlink takes v out of the recency list; vc.mu is held.
func (vc *variantCache) unlink(v *variant) {
	if v.prev != nil {
		v.prev.next = v.next
	} else {
		vc.newest = v.next
	}
	if v.next != nil {
		v.next.prev = v.prev
	} else {
		vc.oldest = v.prev
	}
	v.prev, v.next = nil, nil
}

// pushNewest puts v at the head of the recency list; vc.mu is held.
func (vc *variantCache) pushNewest(v *variant) {
	v.next = vc.newest
	if vc.newest != nil {
		vc.newest.prev = v
	}
	vc.newest = v
	if vc.oldest == nil {
		vc.oldest = v
	}
}

// close stops new compressions, waits for those under way, and lets go
// of the variants. A nil cache (compression off) has nothing to close.
func (vc *variantCache) close() {
	if vc == nil {
		return
	}
	vc.mu.Lock()
	vc.closed = true
	vc.mu.Unlock()
	vc.jobs.Wait()
	vc.mu.Lock()
	vc.byKey, vc.newest, vc.oldest, vc.used = map[variantKey]*variant{}, nil, nil, 0
	vc.mu.Unlock()
}
