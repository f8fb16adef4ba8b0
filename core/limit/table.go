package limit

import (
	"math/bits"
	"slices"
	"sync"
)

// shard is one part of a limiter's table of keys: an index and a
// segmented LRU of slots. Every field is guarded by mu; the padding
// keeps two shards' locks off one cache line.
type shard struct {
	mu sync.Mutex
	// cells is the index: an open-addressing hash table (linear
	// probing) of slot numbers, 0 for an empty cell (slots 0 and 1 are
	// the lists' heads, never a key's). Its length is a power of two,
	// kept at most 4/5 full; it doubles as keys arrive, up to what the
	// capacity needs.
	cells []int32
	shift uint8 // 64 - log2(len(cells)): home takes the hash's top bits
	// slots[probation] and slots[protected] head the two segments'
	// circular lists (most recent first); the keys' slots follow.
	slots     []slot
	count     int32 // keys tracked
	capacity  int32 // keys at most
	protCap   int32 // keys at most in the protected segment
	protCount int32 // keys in the protected segment now
	_         [64]byte
}

// slot is one key's bucket and its place in its segment's list.
type slot struct {
	key        uint64
	last       int64 // when the bucket was last accounted, ms on the limiter's clock
	excess     int64 // the bucket's level, in thousandths of a request
	prev, next int32 // in the segment's list
	protected  bool  // in the protected segment, else in probation
}

// The heads of the two segments' lists.
const (
	probation int32 = 0
	protected int32 = 1
)

// minCells is the index's size in an empty shard.
const minCells = 16

// init readies an empty shard for capacity keys; the slots and the index
// grow as keys arrive, up to it.
func (s *shard) init(capacity int) {
	s.capacity = int32(max(capacity, 1))
	s.protCap = max(s.capacity*4/5, 1)
	s.setCells(minCells)
	s.slots = make([]slot, 2, 2+min(int(s.capacity), 64))
	for _, h := range []int32{probation, protected} {
		s.slots[h].prev, s.slots[h].next = h, h
	}
}

// find returns key's slot and true when the key is tracked, moving it up
// its LRU (into the protected segment when it was on probation); else it
// makes the key a slot on probation, evicting the least recently used key
// when the shard is full, and returns it with false. The caller holds mu
// and fills a new slot's bucket.
func (s *shard) find(key uint64, now int64) (int32, bool) {
	cell, ok := s.lookup(key)
	if ok {
		i := s.cells[cell]
		s.touch(i)
		return i, true
	}
	var i int32
	if s.count < s.capacity {
		if s.growIndex() {
			cell, _ = s.lookup(key)
		}
		s.growSlots()
		s.slots = append(s.slots, slot{})
		i = int32(len(s.slots) - 1)
		s.count++
	} else {
		i = s.victim()
		s.unlink(i)
		if s.slots[i].protected {
			s.protCount--
		}
		old, _ := s.lookup(s.slots[i].key)
		s.remove(old)
		cell, _ = s.lookup(key) // the removal may have moved cells
	}
	s.slots[i] = slot{key: key, last: now}
	s.pushFront(probation, i)
	s.cells[cell] = i
	return i, false
}

// home returns the cell where key's probe starts: the top bits of a
// multiplicative hash (the low bits chose the shard).
func (s *shard) home(key uint64) int {
	return int((key * 0x9e3779b97f4a7c15) >> s.shift)
}

// lookup returns key's cell and true, or the empty cell where it would go
// and false.
func (s *shard) lookup(key uint64) (int, bool) {
	mask := len(s.cells) - 1
	for c := s.home(key); ; c = (c + 1) & mask {
		i := s.cells[c]
		if i == 0 {
			return c, false
		}
		if s.slots[i].key == key {
			return c, true
		}
	}
}

// remove empties cell c, moving back the cells after it that probed past
// it (backward-shift deletion: the index keeps no tombstones).
func (s *shard) remove(c int) {
	mask := len(s.cells) - 1
	for {
		s.cells[c] = 0
		next := c
		for {
			next = (next + 1) & mask
			i := s.cells[next]
			if i == 0 {
				return
			}
			// The key in next may fill c if c is on its probe path: as far
			// from next, going back, as its home is or nearer.
			if (next-s.home(s.slots[i].key))&mask >= (next-c)&mask {
				s.cells[c] = i
				c = next
				break
			}
		}
	}
}

// growIndex doubles the index when one more key would fill it beyond 4/5,
// and reports whether it did.
func (s *shard) growIndex() bool {
	if int(s.count+1)*5 <= len(s.cells)*4 {
		return false
	}
	s.setCells(2 * len(s.cells))
	for i := int32(2); i < int32(len(s.slots)); i++ {
		c, _ := s.lookup(s.slots[i].key)
		s.cells[c] = i
	}
	return true
}

// setCells makes the index an empty table of n cells, a power of two.
func (s *shard) setCells(n int) {
	s.cells = make([]int32, n)
	s.shift = uint8(64 - bits.TrailingZeros(uint(n)))
}

// growSlots makes room for one more slot: twice as many, but never more
// than the shard's capacity, so that a full shard holds no slack.
func (s *shard) growSlots() {
	if len(s.slots) < cap(s.slots) {
		return
	}
	want := min(2*cap(s.slots), int(s.capacity)+2)
	s.slots = slices.Grow(s.slots, want-len(s.slots))
}

// victim returns the slot to evict: the least recently used of
// probation, else of the protected segment.
func (s *shard) victim() int32 {
	if tail := s.slots[probation].prev; tail != probation {
		return tail
	}
	return s.slots[protected].prev
}

// touch moves slot i to the front of the protected segment, demoting that
// segment's least recently used key to probation when it is full.
func (s *shard) touch(i int32) {
	e := &s.slots[i]
	if e.protected {
		if s.slots[protected].next != i {
			s.unlink(i)
			s.pushFront(protected, i)
		}
		return
	}
	s.unlink(i)
	e.protected = true
	s.pushFront(protected, i)
	s.protCount++
	if s.protCount > s.protCap {
		tail := s.slots[protected].prev
		s.unlink(tail)
		s.slots[tail].protected = false
		s.pushFront(probation, tail)
		s.protCount--
	}
}

func (s *shard) unlink(i int32) {
	e := &s.slots[i]
	s.slots[e.prev].next = e.next
	s.slots[e.next].prev = e.prev
}

func (s *shard) pushFront(head, i int32) {
	first := s.slots[head].next
	s.slots[i].prev, s.slots[i].next = head, first
	s.slots[first].prev = i
	s.slots[head].next = i
}
