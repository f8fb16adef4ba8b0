//go:build !race

// TestLoopTLSIdleMemory measures the process's memory, which the race
// detector's shadow memory would dominate: it is left out of -race builds
// rather than skipped. make test runs it without -race (the purego run of
// h1).

package h1

import (
	"crypto/tls"
	"runtime"
	"runtime/debug"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/anx-gateway/anx/internal/testproc"
)

// TestLoopTLSIdleMemory opens 2000 TLS connections that have each done a
// handshake and one small keep-alive request, and measures what the
// server process grew by while they sit idle: the loops' connections,
// their tls.Conns (which keep their record buffers) and whatever the
// idle connections fail to give back. The clients run in a process of
// their own (this test binary, started as runIdleClients), so that
// their memory does not count.
func TestLoopTLSIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2000 TLS connections")
	}
	const n = 2000
	ensureDescriptors(t, n+200) // the client process inherits the limit
	l := serveLoopTLS(t, &Server{Handler: nonBlocking{handlerFunc(describe)}})

	// A first round warms up what the server keeps whatever the number of
	// connections: the loops' buffers, the pools, the session ticket keys.
	runClients(t, l.addr, 50).stop(t)

	runtime.GC()
	debug.FreeOSMemory()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rss0 := testproc.VmRSS(t)
	clients := runClients(t, l.addr, n)
	defer clients.stop(t)
	runtime.GC()
	runtime.ReadMemStats(&after)
	rss1 := testproc.VmRSS(t)
	debug.FreeOSMemory() // scavenges what the handshakes used and freed
	rss2 := testproc.VmRSS(t)

	heap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	objects := float64(int64(after.HeapObjects)-int64(before.HeapObjects)) / n
	rss := float64(rss1-rss0) / n
	scavenged := float64(rss2-rss0) / n
	t.Logf("per idle TLS connection: RSS %.0f B (%.0f B after FreeOSMemory), heap %.0f B in %.1f objects "+
		"(unsafe.Sizeof: loopConn %d B, tls.Conn %d B)",
		rss, scavenged, heap, objects, unsafe.Sizeof(loopConn{}), unsafe.Sizeof(tls.Conn{}))
	if rss > 40<<10 {
		t.Errorf("RSS per idle TLS connection %.0f B, want < 40 KiB", rss)
	}
}

// ensureDescriptors raises RLIMIT_NOFILE to at least n if it is lower
// (the os package raised the soft limit to the hard one at start; root
// may raise the hard one too), or fails the test saying why.
func ensureDescriptors(t *testing.T, n uint64) {
	t.Helper()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	want := unix.Rlimit{Cur: n, Max: max(lim.Max, n)}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err != nil {
		t.Fatalf("RLIMIT_NOFILE is %d (hard %d) and raising it to %d failed: %v; the test needs that many descriptors",
			lim.Cur, lim.Max, n, err)
	}
}
