package netpoll

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// goroutineEcho is the comparison: net.Conn with a goroutine per
// connection, as h1 serves today.
func goroutineEcho(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // accept loop: exits when the listener closes
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { // one per connection: exits when the client closes
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// pingPong runs b.N round trips of size bytes spread over conns client
// connections.
func pingPong(b *testing.B, addr string, conns, size int) {
	b.SetParallelism((conns + 1) / 2) // GOMAXPROCS is 2 here
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		msg := make([]byte, size)
		got := make([]byte, size)
		for pb.Next() {
			if _, err := c.Write(msg); err != nil {
				b.Error(err)
				return
			}
			if _, err := io.ReadFull(c, got); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func loopEcho(b *testing.B, lock bool) string {
	s := &Server{Handler: &funcs{}, LockOSThread: lock}
	if err := s.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s.Addr().String()
}

// BenchmarkEcho compares round trips of 1 KiB on the loops with a
// goroutine per connection. The clients run in the same process and share
// the CPUs, so the ratio understates what a separate load generator sees.
func BenchmarkEcho(b *testing.B) {
	for _, conns := range []int{2, 64} {
		b.Run("loop/conns="+itoa(conns), func(b *testing.B) { pingPong(b, loopEcho(b, false), conns, 1024) })
		b.Run("loop-locked/conns="+itoa(conns), func(b *testing.B) { pingPong(b, loopEcho(b, true), conns, 1024) })
		b.Run("goroutine/conns="+itoa(conns), func(b *testing.B) { pingPong(b, goroutineEcho(b), conns, 1024) })
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// BenchmarkServerSideAllocs measures what the loop allocates per echoed
// request (the client's allocations are counted too: a net.Conn round
// trip allocates nothing in steady state).
func BenchmarkLoopWriteRead(b *testing.B) {
	pingPong(b, loopEcho(b, false), 1, 64)
}

// BenchmarkResident measures Resident's ways of asking whether a cached
// 2 MiB region is in the page cache: cachestat(2) (where the kernel has it
// and lets this process use it), mincore(2) on a mapping of the region
// (where cachestat is missing), and reading the region with preadv2(2)
// RWF_NOWAIT into a scratch page (a process that may not write the file).
// Each answer must be true: a way that stopped early at a missing page
// would measure nothing.
func BenchmarkResident(b *testing.B) {
	const size = 2 << 20
	f, err := os.CreateTemp(diskTempDir(b), "resident")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(randomBytes(size)); err != nil { // cached by the write
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil { // clean pages, as a deployed file's
		b.Fatal(err)
	}
	if in, all := residentPages(b, f, 0, size); in != all {
		b.Fatalf("%d of %d pages of the region cached, want all", in, all)
	}
	ways := []struct {
		name string
		ask  func(f *os.File, off, n int64) (bool, error)
	}{
		{"cachestat", residentByCachestat},
		{"mincore", residentByMincore},
		{"reading", residentByReading},
	}
	if _, err := residentByCachestat(f, 0, size); err != nil {
		b.Logf("cachestat(2): %v: not measured", err)
		ways = ways[1:]
	}
	for _, way := range ways {
		b.Run(way.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(size)
			for b.Loop() {
				if resident, err := way.ask(f, 0, size); !resident || err != nil {
					b.Fatalf("%s(f, 0, %d) = %v, %v; want true, nil", way.name, size, resident, err)
				}
			}
		})
	}
}
