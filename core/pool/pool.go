// Package pool is anx's memory pool: size-classed byte buffers that
// connections borrow only while they have work and give back at once, so
// that an idle connection holds no buffer and a busy server reuses the same
// memory instead of making garbage.
//
// Buffers are handed out as *[]byte so that returning one to the pool does
// not allocate. The benchmarks in pool_test.go show what the pool saves
// against plain allocation at each class.
package pool

import (
	"math/bits"
	"sync"
)

// The size classes are powers of two from MinSize to MaxSize.
const (
	MinSize = 1 << minShift // smallest buffer handed out
	MaxSize = 1 << maxShift // largest pooled buffer; larger requests are plain allocations

	minShift = 11 // 2 KiB
	maxShift = 20 // 1 MiB
)

// classes holds one sync.Pool per size class. It is the package's only
// state: a process has one memory pool, as it has one heap.
var classes [maxShift - minShift + 1]sync.Pool

// Get borrows a buffer of at least size bytes; len and cap are the class
// size. Give it back with Put when the work is done. Sizes above MaxSize are
// allocated and not pooled.
func Get(size int) *[]byte {
	c := class(size)
	if c < 0 {
		b := make([]byte, size)
		return &b
	}
	if b, ok := classes[c].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 1<<(c+minShift))
	return &b
}

// Put returns a buffer borrowed with Get. The caller must not use it after.
// Buffers whose capacity is not a class size are dropped.
func Put(b *[]byte) {
	n := cap(*b)
	c := class(n)
	if c < 0 || 1<<(c+minShift) != n {
		return
	}
	*b = (*b)[:n]
	classes[c].Put(b)
}

// class returns the index of the smallest class holding size bytes, or -1
// when size is above MaxSize.
func class(size int) int {
	if size > MaxSize {
		return -1
	}
	if size <= MinSize {
		return 0
	}
	return bits.Len(uint(size-1)) - minShift
}
