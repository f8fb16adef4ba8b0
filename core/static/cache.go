package static

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// shardSize is the number of entries a cache shard is sized for. A shard's
// map is copied on every change, so it is kept small.
const shardSize = 64

// fileCache keeps recently resolved entries, open files included, for a
// short time (like nginx's open_file_cache), so that a hit costs no open,
// stat or close and no formatting of header values. A change on disk shows
// once the entry is dropped, within 1.5 ttl.
//
// Reading the cache takes no lock and writes no shared memory but the
// entry's reference count: each shard publishes an immutable map, which
// writers (a miss, the sweeper) replace by a modified copy.
//
// The goroutine started by newFileCache (sweep) only expires entries; it
// exits when close is called.
type fileCache struct {
	ttl    time.Duration
	limit  int // entries per shard
	seed   maphash.Seed
	shards []cacheShard
	stop   chan struct{} // closed by close
	done   chan struct{} // closed when sweep returns
}

type cacheShard struct {
	entries atomic.Pointer[map[string]*entry] // each entry holds one reference for the cache
	mu      sync.Mutex                        // serializes writers
	closed  bool                              // guarded by mu
	_       [40]byte                          // keep shards on separate cache lines
}

func newFileCache(ttl time.Duration, maxEntries int) *fileCache {
	shards := 1
	for shards*shardSize < maxEntries {
		shards *= 2
	}
	c := &fileCache{
		ttl:    ttl,
		limit:  max(1, maxEntries/shards),
		seed:   maphash.MakeSeed(),
		shards: make([]cacheShard, shards),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	for i := range c.shards {
		c.shards[i].entries.Store(&map[string]*entry{})
	}
	go c.sweep()
	return c
}

func (c *fileCache) shard(key string) *cacheShard {
	return &c.shards[maphash.String(c.seed, key)&uint64(len(c.shards)-1)]
}

// get returns the entry for key with a reference taken, or nil. It does
// not read the clock: expired entries are dropped by sweep, so an entry
// lives from ttl to 1.5 ttl.
func (c *fileCache) get(key string) *entry {
	e := (*c.shard(key).entries.Load())[key]
	if e == nil || !e.tryAcquire() {
		return nil
	}
	return e
}

// put stores e under key, taking a reference for the cache, unless the
// cache is closed. It replaces an entry already there (expired, or
// resolved by a concurrent request), and makes room in a full shard by
// dropping expired entries, then arbitrary ones.
func (c *fileCache) put(key string, e *entry, now time.Time) {
	e.expires = now.Add(c.ttl)
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	old := *s.entries.Load()
	next := make(map[string]*entry, min(len(old)+1, c.limit))
	var dropped []*entry
	for k, v := range old {
		if k == key || !now.Before(v.expires) || len(next) >= c.limit-1 {
			dropped = append(dropped, v)
			continue
		}
		next[k] = v
	}
	e.acquire()
	next[key] = e
	s.entries.Store(&next)
	releaseAll(dropped)
}

// sweep drops expired entries every half ttl: it bounds how long a change
// on disk goes unseen, and closes the files of an idle server.
func (c *fileCache) sweep() {
	defer close(c.done)
	ticker := time.NewTicker(max(c.ttl/2, time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-ticker.C:
			for i := range c.shards {
				c.shards[i].dropExpired(now)
			}
		}
	}
}

func (s *cacheShard) dropExpired(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.entries.Load()
	var dropped []*entry
	for _, e := range old {
		if !now.Before(e.expires) {
			dropped = append(dropped, e)
		}
	}
	if dropped == nil {
		return
	}
	next := make(map[string]*entry, len(old)-len(dropped))
	for k, e := range old {
		if now.Before(e.expires) {
			next[k] = e
		}
	}
	s.entries.Store(&next)
	releaseAll(dropped)
}

// close stops the sweeper and releases every entry; requests still using
// one keep it open until they finish.
func (c *fileCache) close() {
	close(c.stop)
	<-c.done
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.closed = true
		old := *s.entries.Load()
		s.entries.Store(&map[string]*entry{})
		for _, e := range old {
			e.release()
		}
		s.mu.Unlock()
	}
}

// releaseAll drops the cache's reference to entries that are no longer
// published; a reader that found one in an older map either took its
// reference before this or fails tryAcquire.
func releaseAll(entries []*entry) {
	for _, e := range entries {
		e.release()
	}
}
