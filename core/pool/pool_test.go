package pool

import (
	"fmt"
	"testing"
)

func TestGetReturnsClassSizedBuffers(t *testing.T) {
	cases := []struct{ size, want int }{
		{0, MinSize}, {1, MinSize}, {MinSize, MinSize}, {MinSize + 1, 2 * MinSize},
		{16 << 10, 16 << 10}, {16<<10 + 1, 32 << 10}, {MaxSize, MaxSize}, {MaxSize + 1, MaxSize + 1},
	}
	for _, c := range cases {
		b := Get(c.size)
		if len(*b) != c.want || cap(*b) != c.want {
			t.Errorf("Get(%d): len %d cap %d, want %d", c.size, len(*b), cap(*b), c.want)
		}
		Put(b)
	}
}

func TestPutRestoresLengthAndDropsStrangers(t *testing.T) {
	b := Get(4096)
	*b = (*b)[:10]
	Put(b)
	for range 4 { // sync.Pool may drop items; whatever comes back must be whole
		g := Get(4096)
		if len(*g) != 4096 {
			t.Fatalf("pooled buffer came back with len %d, want 4096", len(*g))
		}
		Put(g)
	}
	odd := make([]byte, 3000)
	Put(&odd) // not a class size: must not enter a pool
	g := Get(3000)
	if cap(*g) != 4096 {
		t.Errorf("Get(3000) after Put of a 3000-byte stranger: cap %d, want 4096", cap(*g))
	}
}

func TestGetPutDoesNotAllocate(t *testing.T) {
	Put(Get(8192))
	if n := testing.AllocsPerRun(1000, func() { Put(Get(8192)) }); n != 0 {
		t.Errorf("Get+Put allocates %v times, want 0", n)
	}
}

// sink keeps the benchmarks' buffers alive so the compiler cannot drop the
// allocation being measured.
var sink []byte

// BenchmarkPool and BenchmarkMake compare a borrowed buffer with a fresh
// allocation of the same size, as a connection uses one per request.
func BenchmarkPool(b *testing.B) {
	for _, size := range []int{4 << 10, 16 << 10, 64 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					buf := Get(size)
					(*buf)[0] = 1
					Put(buf)
				}
			})
		})
	}
}

func BenchmarkMake(b *testing.B) {
	for _, size := range []int{4 << 10, 16 << 10, 64 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					buf := make([]byte, size)
					buf[0] = 1
					sink = buf
				}
			})
		})
	}
}
