package limit

import (
	"slices"
	"sync"
)

// shard is one part of a limiter's table of keys: an index and a
// segmented LRU of slots. Every field is guarded by mu; the padding
// keeps two shards' locks off one cache line.
type shard struct {
	mu    sync.Mutex
	index map[uint64]int32 // key → its slot
	// slots[probation] and slots[protected] head the two segments'
	// circular lists (most recent first); the keys' slots follow.
	slots     []slot
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

// init readies an empty shard for capacity keys; the slots and the index
// grow as keys arrive, up to it.
func (s *shard) init(capacity int) {
	s.capacity = int32(max(capacity, 1))
	s.protCap = max(s.capacity*4/5, 1)
	s.index = map[uint64]int32{}
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
	if i, ok := s.index[key]; ok {
		s.touch(i)
		return i, true
	}
	var i int32
	if len(s.index) < int(s.capacity) {
		s.grow()
		s.slots = append(s.slots, slot{})
		i = int32(len(s.slots) - 1)
	} else {
		i = s.victim()
		s.unlink(i)
		delete(s.index, s.slots[i].key)
		if s.slots[i].protected {
			s.protCount--
		}
	}
	s.slots[i] = slot{key: key, last: now}
	s.pushFront(probation, i)
	s.index[key] = i
	return i, false
}

// grow makes room for one more slot: twice as many, but never more than
// the shard's capacity, so that a full shard holds no slack.
func (s *shard) grow() {
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
