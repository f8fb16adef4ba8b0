package netpoll

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// diskTempDir returns a new directory on a disk file system, removed when
// the test ends. DropCache cannot evict the pages of a tmpfs file (they
// are its storage), and t.TempDir is on a tmpfs /tmp on many systems;
// /var/tmp is on a disk file system on most (here the root file system,
// ext4). The tests that drop pages also check that the drop took, and
// skip if it did not.
func diskTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "netpoll-test-")
	if err != nil {
		t.Skipf("no directory in /var/tmp: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// coldFile writes data to a new file in dir, syncs it and drops it from
// the page cache (skipping the test if the file system keeps it). It sets
// POSIX_FADV_RANDOM on the file, so that a test's reads bring in only the
// pages they touch and no readahead window (8 MiB on the test machine's
// disk). The file is closed when the test ends, after the servers that
// the test started later have shut down.
func coldFile(t testing.TB, dir, name string, data []byte) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil { // dirty pages cannot be dropped
		t.Fatal(err)
	}
	dropOrSkip(t, f, int64(len(data)))
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	return f
}

// dropOrSkip drops f's first n bytes from the page cache and skips the
// test if any page stays.
func dropOrSkip(t testing.TB, f *os.File, n int64) {
	t.Helper()
	if err := DropCache(f, 0, n); err != nil {
		t.Fatal(err)
	}
	if in, all := residentPages(t, f, 0, n); in > 0 {
		t.Skipf("%d of %d pages still resident after DropCache: the file system keeps them (tmpfs?)", in, all)
	}
}

// residentPages counts the pages of f's region [off, off+n) that are in
// the page cache, with its own mincore(2) call: the check of Resident's
// answers, and a count where Resident has a yes or no.
func residentPages(t testing.TB, f *os.File, off, n int64) (resident, total int) {
	t.Helper()
	start := off &^ (pageSize - 1)
	length := off + n - start
	data, err := unix.Mmap(int(f.Fd()), start, int(length), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	defer unix.Munmap(data)
	vec := make([]byte, (length+pageSize-1)/pageSize)
	_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&data[0])), uintptr(length),
		uintptr(unsafe.Pointer(&vec[0])))
	if e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	for _, v := range vec {
		resident += int(v & 1)
	}
	return resident, len(vec)
}

// goid returns the id of the calling goroutine, so that a test can tell
// whether a callback ran on the loop's goroutine.
func goid() uint64 {
	var buf [64]byte
	s := bytes.TrimPrefix(buf[:runtime.Stack(buf[:], false)], []byte("goroutine "))
	id, _ := strconv.ParseUint(string(s[:bytes.IndexByte(s, ' ')]), 10, 64)
	return id
}

// recv returns the next value from ch, failing the test if none comes
// within safetyNet. Call it from the test's goroutine.
func recv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(safetyNet):
		t.Fatalf("nothing received in %v", safetyNet)
	}
	panic("unreachable")
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestResident(t *testing.T) {
	ps := pageSize
	size := 64*ps + 123 // a partial last page
	f := coldFile(t, diskTempDir(t), "f", randomBytes(int(size)))
	// Bring in pages 8 and 9 only.
	if _, err := f.ReadAt(make([]byte, 2*ps), 8*ps); err != nil {
		t.Fatal(err)
	}
	// Resident, and each of the two ways it asks a process that may write
	// the file (the third, reading, starts readahead: see
	// TestResidentUnwritableFile). Where cachestat is missing, Resident
	// asks mincore, and the test says so.
	_, cerr := residentByCachestat(f, 0, 1)
	if cerr != nil {
		t.Logf("cachestat(2): %v: Resident asks mincore(2)", cerr)
	}
	ways := []struct {
		name string
		ask  func(f *os.File, off, n int64) (bool, error)
	}{
		{"Resident", Resident},
		{"residentByMincore", residentByMincore},
		{"residentByCachestat", residentByCachestat},
	}
	if cerr != nil {
		ways = ways[:2]
	}
	check := func(stage string, cases []residentCase) {
		t.Helper()
		for _, tc := range cases {
			for _, way := range ways {
				if tc.n <= 0 && way.name != "Resident" {
					continue // Resident's own answer
				}
				got, err := way.ask(f, tc.off, tc.n)
				if err != nil || got != tc.want {
					t.Errorf("%s: %s: %s(f, %d, %d) = %v, %v; want %v, nil", stage, tc.name, way.name, tc.off, tc.n, got, err, tc.want)
				}
			}
		}
	}
	check("after reading pages 8-9", []residentCase{
		{"the pages read", 8 * ps, 2 * ps, true},
		{"one byte inside them", 9*ps + 100, 1, true},
		{"unaligned, inside them", 8*ps + 10, ps, true},
		{"first page", 0, 1, false},
		{"the pages read and the next", 8 * ps, 3 * ps, false},
		{"the page before and the pages read", 7*ps + ps - 1, 2, false},
		{"last, partial page", 64 * ps, 123, false},
		{"whole file", 0, size, false},
		{"n = 0", 0, 0, true},
		{"n < 0", 5 * ps, -1, true},
		{"n = 0 past the end", 2 * size, 0, true},
	})
	if in, all := residentPages(t, f, 0, size); in != 2 {
		t.Errorf("%d of %d pages resident, want 2 (readahead despite FADV_RANDOM?)", in, all)
	}
	if _, err := f.ReadAt(make([]byte, size), 0); err != nil {
		t.Fatal(err)
	}
	check("after reading the file", []residentCase{
		{"whole file", 0, size, true},
		{"last, partial page", 64 * ps, 123, true},
		{"first page", 0, 1, true},
	})
	if err := DropCache(f, 8*ps, 2*ps); err != nil {
		t.Fatal(err)
	}
	check("after dropping pages 8-9", []residentCase{
		{"the pages dropped", 8 * ps, 2 * ps, false},
		{"one byte of them", 9 * ps, 1, false},
		{"the pages around them", 0, 8 * ps, true},
		{"the rest", 10 * ps, size - 10*ps, true},
		{"whole file", 0, size, false},
	})
}

// TestResidentUnwritableFile checks Resident as a process that can read
// the file but neither owns it nor may write it: a gateway running as its
// own user, serving files that another user deployed, opened read-only.
// Neither cachestat (EPERM) nor mincore (every page "resident") tells such
// a process the truth, so Resident reads with RWF_NOWAIT. Each step first
// reads the whole file (so that no read, not even the readahead a probe
// starts, is in flight), then drops the step's pages and checks that they
// went, as root, then asks as the other user.
func TestResidentUnwritableFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test takes another file system user id (setfsuid, CAP_SETUID) to be a user " +
			"who may read but not write the file")
	}
	ps := pageSize
	size := 16 * ps
	dir := diskTempDir(t)
	f := coldFile(t, dir, "f", randomBytes(int(size)))
	for path, mode := range map[string]os.FileMode{dir: 0o755, f.Name(): 0o644} { // owned by root, readable by all
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	other := newFsuidThread(t, nobody)
	var theirs *os.File
	var noWay string
	other.do(func() {
		var err error
		if theirs, err = os.Open(f.Name()); err != nil {
			t.Errorf("open as uid %d: %v", nobody, err)
			return
		}
		noWay = residentUnknowable(theirs)
	})
	if theirs == nil {
		t.FailNow()
	}
	defer theirs.Close()
	if noWay != "" {
		t.Logf("Resident cannot tell here, and must say so (false, ErrUnsupported): %s", noWay)
	}
	// A region not cached is false, or true if the read that RWF_NOWAIT
	// starts for it has finished when it looks again (a fast disk: 32 of
	// 1200 regions in 300 runs here), and then the region must be all
	// cached; but at least one must be false.
	dropped, readInTime := 0, 0
	for _, tc := range []struct {
		name     string
		drop     [2]int64 // off, n; n = 0: none
		off, n   int64
		resident bool
	}{
		{name: "a dropped file", drop: [2]int64{0, size}, off: 0, n: size, resident: false},
		{name: "a cached file", off: 0, n: size, resident: true},
		{name: "pages 8-9 dropped: the file", drop: [2]int64{8 * ps, 2 * ps}, off: 0, n: size, resident: false},
		{name: "pages 8-9 dropped: pages 0-7", drop: [2]int64{8 * ps, 2 * ps}, off: 0, n: 8 * ps, resident: true},
		{name: "pages 8-9 dropped: pages 10-15", drop: [2]int64{8 * ps, 2 * ps}, off: 10 * ps, n: 6 * ps, resident: true},
		{name: "pages 8-9 dropped: one byte of page 9", drop: [2]int64{8 * ps, 2 * ps}, off: 9*ps + 10, n: 1, resident: false},
		{name: "pages 8-9 dropped: unaligned, across page 8", drop: [2]int64{8 * ps, 2 * ps}, off: 7*ps + 10, n: ps, resident: false},
	} {
		if _, err := f.ReadAt(make([]byte, size), 0); err != nil {
			t.Fatal(err)
		}
		if tc.drop[1] > 0 {
			if err := DropCache(f, tc.drop[0], tc.drop[1]); err != nil {
				t.Fatal(err)
			}
		}
		if in, _ := residentPages(t, f, 0, size); in != int(size/ps-tc.drop[1]/ps) {
			t.Fatalf("%s: %d pages of the file resident (as root), want %d", tc.name, in, size/ps-tc.drop[1]/ps)
		}
		var got bool
		var err error
		other.do(func() { got, err = Resident(theirs, tc.off, tc.n) })
		want, wantErr := tc.resident, error(nil)
		if noWay != "" {
			want, wantErr = false, ErrUnsupported
		}
		if !want && wantErr == nil {
			dropped++
			if got && err == nil {
				// The read that RWF_NOWAIT started finished before it
				// looked again: true, if the region is now all cached.
				if in, all := residentPages(t, f, tc.off, tc.n); in == all {
					readInTime++
					continue
				}
			}
		}
		if got != want || err != wantErr {
			t.Errorf("%s: Resident(f, %d, %d) as uid %d, who may read but not write the file = %v, %v; want %v, %v",
				tc.name, tc.off, tc.n, nobody, got, err, want, wantErr)
		}
	}
	if readInTime > 0 {
		t.Logf("%d of %d regions not cached were read in time, and Resident said true", readInTime, dropped)
	}
	if dropped > 0 && readInTime == dropped {
		t.Errorf("Resident as uid %d never said false for a region not cached (%d regions)", nobody, dropped)
	}
	other.do(func() {
		if mincoreTellsTruth(theirs) {
			t.Errorf("mincoreTellsTruth as uid %d, who may not write the file: true, want false", nobody)
		}
	})
	if !mincoreTellsTruth(f) {
		t.Error("mincoreTellsTruth as root: false, want true")
	}
}

// residentUnknowable says why Resident has no way to tell whether pages
// of f are cached (cachestat and preadv2 both missing, as under
// qemu-user 7, where mincore would misreport an unwritable file), or
// returns "" when it has one.
func residentUnknowable(f *os.File) string {
	r := unix.CachestatRange{Len: 1}
	var st unix.Cachestat_t
	cerr := unix.Cachestat(uint(f.Fd()), &r, &st, 0)
	var b [1]byte
	iov := unix.Iovec{Base: &b[0]}
	iov.SetLen(1)
	_, _, perr := unix.Syscall6(unix.SYS_PREADV2, f.Fd(), uintptr(unsafe.Pointer(&iov)), 1, 0, 0, unix.RWF_NOWAIT)
	if perr != 0 && cerr != nil && cerr != unix.EPERM {
		return fmt.Sprintf("cachestat(2): %v; preadv2(2) with RWF_NOWAIT: %v; and mincore(2) reports every page of "+
			"a file the caller may not write resident", cerr, perr)
	}
	return ""
}

// nobody is the user id the tests take to be someone who does not own
// the files they make (Debian's nobody).
const nobody = 65534

// fsuidThread is a goroutine locked to an OS thread whose file system user
// id is another user's (and which therefore has lost CAP_FOWNER,
// CAP_DAC_OVERRIDE and the other file system capabilities): the functions
// given to do run there, as that user. The goroutine ends, and with it the
// thread, when the test ends.
type fsuidThread struct {
	t    testing.TB
	work chan func()
	done chan struct{}
}

// newFsuidThread starts a thread whose file system user id is uid; it
// needs root (CAP_SETUID).
func newFsuidThread(t testing.TB, uid int) *fsuidThread {
	t.Helper()
	th := &fsuidThread{t: t, work: make(chan func()), done: make(chan struct{})}
	started := make(chan error, 1)
	go th.run(uid, started)
	if err := recv(t, started); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(th.work)
		<-th.done
	})
	return th
}

// run is the goroutine: it never unlocks the thread, so the runtime ends
// the thread with it rather than reuse it as root.
func (th *fsuidThread) run(uid int, started chan<- error) {
	defer close(th.done)
	runtime.LockOSThread()
	unix.Setfsuid(uid)
	if got, _ := unix.SetfsuidRetUid(-1); got != uid {
		started <- fmt.Errorf("fsuid is %d after setfsuid(%d)", got, uid)
		return
	}
	started <- nil
	for f := range th.work {
		f()
		th.done <- struct{}{}
	}
}

// do runs f on the thread and waits for it.
func (th *fsuidThread) do(f func()) {
	th.t.Helper()
	th.work <- f
	recv(th.t, th.done)
}

type residentCase struct {
	name   string
	off, n int64
	want   bool
}

func TestReadNoWait(t *testing.T) {
	ps := pageSize
	data := randomBytes(int(32 * ps))
	f := coldFile(t, diskTempDir(t), "f", data)
	p := make([]byte, 4*ps)

	for _, empty := range [][]byte{nil, {}} {
		if n, err := ReadNoWait(f, empty, 0); n != 0 || err != nil {
			t.Errorf("ReadNoWait(f, %#v, 0) = %d, %v; want 0, nil", empty, n, err)
		}
	}

	// Dropped pages, 20, 22, ... 30: ErrWouldBlock. Not always: the
	// call starts the read of a page it does not find (readahead, here
	// just that page: FADV_RANDOM) and looks again, and where that read
	// has already finished (a fast disk: 11 of 180 pages in 30 runs
	// here) it returns the page. So
	// at least one of the six must be ErrWouldBlock, and a page returned
	// must be the file's. (Those pages are not used again below.)
	blocked := 0
	for page := int64(20); page < 32; page += 2 {
		n, err := ReadNoWait(f, p[:ps], page*ps)
		switch {
		case err == ErrUnsupported:
			readNoWaitUnsupported(t, f, p)
			return
		case n == 0 && err == ErrWouldBlock:
			blocked++
		case err != nil || n != int(ps) || !bytes.Equal(p[:n], data[page*ps:page*ps+ps]):
			t.Errorf("dropped page %d: ReadNoWait = %d, %v (bytes equal: %v); want 0, ErrWouldBlock, or the page",
				page, n, err, n > 0 && n <= int(ps) && bytes.Equal(p[:n], data[page*ps:page*ps+int64(n)]))
		}
	}
	t.Logf("dropped pages: %d of 6 ErrWouldBlock, the others read in time", blocked)
	if blocked == 0 {
		t.Fatal("dropped pages: ReadNoWait never returned ErrWouldBlock")
	}

	// A cached region: all of it, the file's bytes.
	if _, err := f.ReadAt(make([]byte, 2*ps), 8*ps); err != nil {
		t.Fatal(err)
	}
	n, err := ReadNoWait(f, p[:2*ps], 8*ps)
	if n != int(2*ps) || err != nil {
		t.Fatalf("cached region: ReadNoWait = %d, %v; want %d, nil", n, err, 2*ps)
	}
	if !bytes.Equal(p[:n], data[8*ps:10*ps]) {
		t.Fatal("cached region: bytes differ from the file's")
	}
	// Unaligned, inside the cached pages.
	n, err = ReadNoWait(f, p[:100], 9*ps-50)
	if n != 100 || err != nil || !bytes.Equal(p[:n], data[9*ps-50:9*ps+50]) {
		t.Fatalf("unaligned cached region: ReadNoWait = %d, %v (bytes equal: %v)", n, err, bytes.Equal(p[:n], data[9*ps-50:9*ps+50]))
	}

	// Two cached pages followed by two dropped ones: the cached part.
	clear(p)
	n, err = ReadNoWait(f, p, 8*ps)
	if err != nil || n < int(2*ps) || n > len(p) {
		t.Fatalf("half-cached region: ReadNoWait = %d, %v; want %d to %d bytes", n, err, 2*ps, len(p))
	}
	if !bytes.Equal(p[:n], data[8*ps:8*ps+int64(n)]) {
		t.Fatal("half-cached region: bytes differ from the file's")
	}
	t.Logf("half-cached region: %d of %d bytes", n, len(p))

	// At the end of the file.
	if n, err := ReadNoWait(f, p, int64(len(data))); n != 0 || err != nil {
		t.Errorf("at EOF: ReadNoWait = %d, %v; want 0, nil", n, err)
	}
}

// readNoWaitUnsupported checks ReadNoWait where it returned
// ErrUnsupported: that must be where preadv2 or RWF_NOWAIT is missing
// (qemu-user 7 has no preadv2; Linux before 4.14 no RWF_NOWAIT for
// buffered reads), which the test asks the system call itself, and there
// every read is ErrUnsupported.
func readNoWaitUnsupported(t *testing.T, f *os.File, p []byte) {
	t.Helper()
	why := rwfNoWaitMissing(f)
	if why == "" {
		t.Fatal("ReadNoWait: ErrUnsupported, but preadv2 with RWF_NOWAIT works here")
	}
	t.Logf("ReadNoWait cannot work here, and says so (ErrUnsupported): %s", why)
	for _, off := range []int64{0, 8 * pageSize} {
		if n, err := ReadNoWait(f, p, off); n != 0 || err != ErrUnsupported {
			t.Errorf("ReadNoWait(f, p, %d) = %d, %v; want 0, ErrUnsupported", off, n, err)
		}
	}
}

// rwfNoWaitMissing says why preadv2(2) with RWF_NOWAIT fails on f other
// than with EAGAIN (its answer for a page not cached), or returns "".
func rwfNoWaitMissing(f *os.File) string {
	var b [1]byte
	iov := unix.Iovec{Base: &b[0]}
	iov.SetLen(1)
	for {
		_, _, e := unix.Syscall6(unix.SYS_PREADV2, f.Fd(), uintptr(unsafe.Pointer(&iov)), 1, 0, 0, unix.RWF_NOWAIT)
		switch e {
		case 0, unix.EAGAIN:
			return ""
		case unix.EINTR:
			continue
		}
		return fmt.Sprintf("preadv2(2) with RWF_NOWAIT: %v (errno %d)", e, int(e))
	}
}

// warmResult is what a Warm callback saw.
type warmResult struct {
	err      error
	onLoop   bool // it ran on the goroutine that runs OnRead
	resident bool // the region was Resident when it ran
}

func TestWarm(t *testing.T) {
	ps := pageSize
	size := 3*warmChunk + 5*ps + 7 // several reads of a worker, a partial page
	f := coldFile(t, diskTempDir(t), "f", randomBytes(int(size)))
	type region struct{ off, n int64 }
	regions := make(chan region, 1)
	results := make(chan warmResult, 1)
	var s *Server
	s = &Server{Loops: 1, FileWorkers: 2, Handler: &funcs{read: func(c *Conn, in []byte) int {
		loop := goid()
		r := <-regions
		err := s.Warm(c, f, r.off, r.n, func(err error) {
			res, rerr := Resident(f, r.off, min(r.n, size-r.off))
			if rerr != nil {
				t.Error(rerr)
			}
			results <- warmResult{err: err, onLoop: goid() == loop, resident: res}
		})
		if err != nil {
			t.Errorf("Warm: %v", err)
		}
		return len(in)
	}}}
	c := dial(t, start(t, s))
	warm := func(off, n int64) warmResult {
		t.Helper()
		if res, _ := Resident(f, off, min(n, size-off)); res {
			t.Fatalf("region %d+%d resident before Warm", off, n)
		}
		regions <- region{off, n}
		c.Write([]byte("x"))
		return recv(t, results)
	}

	r := warm(ps+10, 2*warmChunk+3*ps) // an unaligned region of several worker reads
	if r.err != nil || !r.onLoop || !r.resident {
		t.Errorf("Warm of a dropped region: callback got %v, on the loop: %v, region resident: %v; want nil, true, true",
			r.err, r.onLoop, r.resident)
	}
	if res, _ := Resident(f, 0, ps); res {
		t.Error("Warm brought in the page before the region")
	}

	// A region that runs past the end of the file: the read error.
	r = warm(3*warmChunk, 6*ps)
	if !errors.Is(r.err, io.EOF) || !r.onLoop {
		t.Errorf("Warm past EOF: callback got %v, on the loop: %v; want io.EOF, true", r.err, r.onLoop)
	}
}

func TestWarmClosedServer(t *testing.T) {
	f := coldFile(t, diskTempDir(t), "f", randomBytes(int(pageSize)))
	never := &Server{Handler: &funcs{}}
	if err := never.Warm(nil, f, 0, 1, func(error) { t.Error("callback of a refused Warm ran") }); err != ErrServerClosed {
		t.Errorf("Warm before Start: %v, want ErrServerClosed", err)
	}

	conns := make(chan *Conn, 1)
	s := &Server{Loops: 1, Handler: &funcs{open: func(c *Conn) { conns <- c }}}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	dial(t, s.Addr().String())
	c := recv(t, conns)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Warm(c, f, 0, 1, func(error) { t.Error("callback of a refused Warm ran") }); err != ErrServerClosed {
		t.Errorf("Warm after Shutdown: %v, want ErrServerClosed", err)
	}
}

// TestSendFileDropBehind sends a 16 MiB file that is not in the page
// cache to a client that reads it all, and counts the file's pages left
// in the page cache: few with drop-behind, all without.
//
// "All" counts the pages the kernel reclaimed on its own after the send
// brought them in, which cachestat(2) reports as evicted (reclaim leaves
// a shadow entry in the file's page cache; POSIX_FADV_DONTNEED, anx's
// drop, leaves none): the kernel may reclaim any clean page cache page at
// any time, not only under memory pressure. The test machine runs DAMON
// proactive reclaim (kdamond, a paddr "pageout" scheme for unmapped file
// pages in physical regions idle for a minute), which took 2 and 4 pages
// of the 16 MiB in 2 of 20 runs of the package (-race, a core kept busy),
// with no reclaim counted in /proc/vmstat. Where cachestat is missing
// (before Linux 6.5), every page must be resident.
func TestSendFileDropBehind(t *testing.T) {
	const size = 16 << 20
	data := randomBytes(size)
	dir := diskTempDir(t)
	for i, tc := range []struct {
		name       string
		dropBehind int64
		// random sets POSIX_FADV_RANDOM on the file the server sends, so
		// that its page cache holds single pages; otherwise it is opened
		// as a server opens it, and readahead fills the page cache with
		// large folios (ext4 and xfs on recent kernels).
		random   bool
		sockBuf  int // SO_SNDBUF of the server's socket and SO_RCVBUF of the client's; 0: the kernel's
		inFlight int // the client starts reading once the server's socket holds this much; 0: at once
		// holdBack: the client leaves the file's last holdBack bytes unread
		// until the send has ended (OnWritable), so that the sockets hold
		// them when it ends.
		holdBack       int
		minPct, maxPct int // of the file's pages left resident
		// bug marks a case that fails because of a known bug: an expected
		// failure, logged; the case fails if it passes, so that whoever
		// fixed the bug removes the marker.
		bug string
	}{
		// Single pages and socket buffers far below dropStep: what drops
		// behind the send is no longer referenced, and goes.
		{name: "drop-behind, single pages, small socket buffers", dropBehind: 4 << 20, random: true, sockBuf: 64 << 10, maxPct: 5},
		// Large folios: the one in flight when the send ends stays (up to
		// 2 MiB here, measured 6-7% of the 16 MiB).
		{name: "drop-behind, large folios, small socket buffers", dropBehind: 4 << 20, sockBuf: 64 << 10, maxPct: 15},
		// 4 MiB socket buffers (the most tcp_wmem autotunes to by default,
		// and less than a fast long link holds in flight), and a client
		// that starts reading once 4 MiB are in flight, and leaves the last
		// 4 MiB in flight until the send has ended.
		{name: "drop-behind, single pages, 4 MiB in flight", dropBehind: 4 << 20, random: true, sockBuf: 4 << 20,
			inFlight: 4 << 20, holdBack: 4 << 20, maxPct: 5,
			bug: "what the sockets still hold when the send ends is referenced by them when endSend drops the range, " +
				"and nothing drops it later (conn_linux.go, endSend): up to the server's send buffer (SO_SNDBUF 4 MiB, " +
				"which the kernel doubles) and, over loopback, the client's receive queue, which holds the same pages; " +
				"measured 25-36% of the file left resident"},
		{name: "no drop-behind", dropBehind: -1, minPct: 100, maxPct: 100},
		{name: "send below DropBehind", dropBehind: size + 1, minPct: 100, maxPct: 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strconv.Itoa(i)
			f := coldFile(t, dir, name, data)
			if !tc.random {
				var err error
				if f, err = os.Open(filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { f.Close() })
			}
			left := make(chan int64, 1)
			fds := make(chan int, 1)
			s := &Server{Loops: 1, DropBehind: tc.dropBehind, Handler: &funcs{
				open: func(c *Conn) {
					fds <- c.Fd()
					if tc.sockBuf > 0 {
						if err := unix.SetsockoptInt(c.Fd(), unix.SOL_SOCKET, unix.SO_SNDBUF, tc.sockBuf); err != nil {
							t.Error(err)
						}
					}
				},
				read: func(c *Conn, in []byte) int {
					if err := c.SendFile(f, 0, size); err != nil {
						t.Error(err)
					}
					return len(in)
				},
				writable: func(c *Conn) {
					left <- c.Buffered()
					c.Close() // the client reads to EOF: exactly the file
				},
			}}
			c := dial(t, start(t, s))
			if tc.sockBuf > 0 {
				if err := c.(*net.TCPConn).SetReadBuffer(tc.sockBuf); err != nil {
					t.Fatal(err)
				}
			}
			vmBefore := readVmstat(t)
			c.Write([]byte("x"))
			if fd := recv(t, fds); tc.inFlight > 0 {
				// The socket is the loop's until the client has read the
				// file, so asking it from here is safe.
				waitFor(t, func() bool {
					n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
					return err != nil || n >= tc.inFlight
				})
			}
			c.SetReadDeadline(time.Now().Add(safetyNet))
			got := make([]byte, size-tc.holdBack)
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if n := recv(t, left); n != 0 {
				t.Fatalf("OnWritable with %d bytes buffered", n)
			}
			rest, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if got = append(got, rest...); len(got) != size || !bytes.Equal(got, data) {
				t.Fatalf("client got %d bytes (equal: %v), want the file's %d", len(got), bytes.Equal(got, data), size)
			}
			// OnWritable ran after the last sendfile and its DropCache,
			// and before the Close that the client saw as EOF.
			in, all := residentPages(t, f, 0, size)
			reclaimed, err := reclaimedPages(f, size)
			if err != nil {
				t.Logf("cachestat(2): %v: no page may have been reclaimed", err)
			}
			kept := in
			if tc.minPct > 0 { // "all": resident, or reclaimed by the kernel rather than dropped
				kept += reclaimed
			}
			pct := 100 * kept / all
			t.Logf("%d of %d pages resident after the send, %d reclaimed by the kernel (evicted, per cachestat)",
				in, all, reclaimed)
			ok := pct >= tc.minPct && pct <= tc.maxPct
			switch {
			case tc.bug != "" && ok:
				t.Errorf("%d%% of the file resident after the send, within %d%% to %d%%: the known bug is fixed? "+
					"Remove its marker: %s", pct, tc.minPct, tc.maxPct, tc.bug)
			case tc.bug != "":
				t.Logf("expected failure, a known bug: %d%% of the file resident after the send, want %d%% to %d%%: %s",
					pct, tc.minPct, tc.maxPct, tc.bug)
			case !ok:
				t.Errorf("%d%% of the file resident (or reclaimed, where that counts) after the send, want %d%% to %d%%; "+
					"pages not resident: %s; the system's counters during the send: %s", pct, tc.minPct, tc.maxPct,
					missingPages(t, f, 0, size), vmstatDelta(vmBefore, readVmstat(t)))
			}
		})
	}
}

// The measurement of what drop-behind is for: that one large file
// streamed once does not push the small hot files out of the page cache.
// The page cache is shared by the whole machine, so the scenario runs in
// a memory cgroup whose limit makes it small: in a child process (this
// test binary again, with hotChildEnv set) that is placed into the cgroup
// before it starts, since page cache is charged to the cgroup of the
// process that reads it in.
//
// The limit also covers the child's own memory, which is not known in
// advance: about 3 MiB for a plain test binary, 20 MiB and more with
// -race (its shadow memory and per-thread state, more threads on a loaded
// machine), more under qemu. A fixed 32 MiB limit left a -race child 4 MiB
// of page cache for an 8 MiB hot set, so the hot set was evicted whatever
// drop-behind did, and sometimes the cgroup's OOM killer ended the child.
// So the child first does everything but the measurement (the server, a
// connection, a short send), then the test reads what the cgroup holds and
// sets the limit to that plus hotCacheBudget.
const (
	hotChildEnv    = "NETPOLL_TEST_HOT_CHILD" // the child's hotConfig, in JSON
	hotReady       = "netpoll-hot-ready"      // the child's line on stdout once it is set up
	hotResult      = "netpoll-hot-result "    // the child's line of results on stdout
	hotFiles       = 32
	hotFileSize    = 256 << 10 // 32 × 256 KiB: an 8 MiB hot set
	hotCacheBudget = 24 << 20  // the page cache the child may hold: the hot set, and 16 MiB of room
	hotBigSize     = 128 << 20 // streamed: over 5 times hotCacheBudget
	hotWarmupSize  = 8 << 20   // sent before the limit is set, to bring the child to its working size
	hotRoundSize   = 8 << 20   // the hot set is read again every 8 MiB of the stream
	// hotTimeout is the safety net of one child, which streams 136 MiB:
	// under a second natively, seconds with -race or under qemu.
	hotTimeout = 5 * time.Minute
)

// hotConfig is one run of the scenario.
type hotConfig struct {
	Name       string
	Dir        string // of the files
	Cgroup     string // the child's cgroup directory
	CgroupV2   bool
	DropBehind int64 // Server.DropBehind
	SockBuf    int   // SO_SNDBUF of the server's socket and SO_RCVBUF of the client's; 0: the kernel's
	// Random sets POSIX_FADV_RANDOM on the large file, so that its page
	// cache holds single pages rather than the large folios of readahead.
	Random     bool
	MaxMissPct float64 // the test fails if more of the hot set's reads miss; 0: no check
}

// hotStats is what the child measured. Pages of the hot set are counted
// with mincore; a round is one read of the whole hot set during the
// stream, and its misses are the hot pages it found evicted (and read
// back from the disk).
type hotStats struct {
	HotPages    int // in the hot set
	Initial     int // resident after reading the hot set twice, before the stream
	Rounds      int
	Misses      int // summed over the rounds
	MinResident int // the fewest resident at the start of a round
	Final       int // resident after the stream, hotRoundSize after the last round
	BigResident int // pages of the large file resident after the stream
	BigPages    int
	Seconds     float64 // the stream
	OwnBefore   int64   // the child's own memory (anonymous), before and after the stream
	OwnAfter    int64
}

// TestDropBehindKeepsHotFiles streams a file over five times the page
// cache the cgroup leaves the child once per configuration, while a hot
// set of small files is read again and again, and reports how much of the
// hot set the stream evicted. It logs the figures, and fails only where
// drop-behind can drop everything it sent (single pages, socket buffers
// far below dropStep) but the stream still evicts the hot set. It needs a
// memory cgroup it may create (root, and cgroup v1's memory hierarchy or
// v2's with the memory controller enabled for children), and fails
// without one.
func TestDropBehindKeepsHotFiles(t *testing.T) {
	if env := os.Getenv(hotChildEnv); env != "" {
		var cfg hotConfig
		if err := json.Unmarshal([]byte(env), &cfg); err != nil {
			t.Fatal(err)
		}
		hotChild(t, cfg)
		return
	}
	if testing.Short() {
		t.Skip("streams 3 × 136 MiB in a memory cgroup")
	}
	dir := diskTempDir(t)
	for i := range hotFiles {
		coldFile(t, dir, "hot-"+strconv.Itoa(i), randomBytes(hotFileSize))
	}
	// The large file is sparse: its pages are read from holes, at memory
	// speed, but they are page cache pages like any others, charged to the
	// cgroup, reclaimed and dropped the same way.
	big, err := os.Create(filepath.Join(dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	if err := big.Truncate(hotBigSize); err != nil {
		t.Fatal(err)
	}
	for i, cfg := range []hotConfig{
		{Name: "drop-behind", DropBehind: 4 << 20},
		{Name: "no drop-behind", DropBehind: -1},
		{Name: "drop-behind, single pages, 64 KiB socket buffers", DropBehind: 4 << 20, SockBuf: 64 << 10, Random: true, MaxMissPct: 1},
	} {
		cfg.Dir = dir
		// The hot files start each run with no page cached (pages cached
		// before would be charged elsewhere, out of the cgroup's reach).
		for i := range hotFiles {
			f, err := os.Open(filepath.Join(dir, "hot-"+strconv.Itoa(i)))
			if err != nil {
				t.Fatal(err)
			}
			dropOrSkip(t, f, hotFileSize)
			f.Close()
		}
		if err := DropCache(big, 0, hotBigSize); err != nil {
			t.Fatal(err)
		}
		cg := newMemCgroup(t, strconv.Itoa(i))
		cfg.Cgroup, cfg.CgroupV2 = cg.dir, cg.v2
		st, limit := runHotChild(t, cg, cfg)
		missPct := 100 * float64(st.Misses) / float64(max(1, st.Rounds*st.HotPages))
		t.Logf("%s: hot set of %d pages, %d resident before the stream; during it %d rounds, %d misses "+
			"(%.1f%% of the reads), fewest resident %d; %d resident %d MiB after the last round; "+
			"large file: %d of %d pages resident after; stream %.2fs; cgroup %s limit %d MiB, peak %s; "+
			"the child's own memory %d MiB before the stream, %d MiB after",
			cfg.Name, st.HotPages, st.Initial, st.Rounds, st.Misses, missPct, st.MinResident,
			st.Final, hotRoundSize>>20, st.BigResident, st.BigPages, st.Seconds, cg.version(), limit>>20, cg.peak(),
			st.OwnBefore>>20, st.OwnAfter>>20)
		if st.Initial != st.HotPages {
			t.Errorf("%s: only %d of the hot set's %d pages resident before the stream: the limit is too small",
				cfg.Name, st.Initial, st.HotPages)
		}
		if cfg.MaxMissPct > 0 && missPct > cfg.MaxMissPct {
			t.Errorf("%s: the stream evicted %.1f%% of the hot set's reads, want at most %.0f%%", cfg.Name, missPct, cfg.MaxMissPct)
		}
	}
}

// runHotChild runs the scenario in a child process in cg: it starts the
// child, moves it into cg, lets it set up, limits cg to what the child
// then holds plus hotCacheBudget, and lets it measure. It returns the
// child's figures and the limit.
func runHotChild(t *testing.T, cg *memCgroup, cfg hotConfig) (hotStats, int64) {
	t.Helper()
	env, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hotTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDropBehindKeepsHotFiles$", "-test.count=1")
	// (GORACE: a race-enabled binary otherwise sleeps a second at exit.)
	cmd.Env = append(os.Environ(), hotChildEnv+"="+string(env), "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		cmd.Process.Kill()
		rest, _ := io.ReadAll(stdout)
		cmd.Wait()
		t.Fatalf("%s: "+format+"\n%s", append(append([]any{cfg.Name}, args...), rest)...)
	}
	// The child waits for a byte on stdin, so that all the page cache it
	// reads in is charged to the cgroup.
	if err := cg.add(cmd.Process.Pid); err != nil {
		fail("cannot move the child into the memory cgroup %s: %v", cg.dir, err)
	}
	stdin.Write([]byte{1})
	var out bytes.Buffer
	lines := bufio.NewReader(io.TeeReader(stdout, &out))
	for {
		line, err := lines.ReadString('\n')
		if err != nil {
			fail("the child ended before it was set up: %v\n%s", err, out.Bytes())
		}
		if strings.TrimSpace(line) == hotReady {
			break
		}
	}
	held, err := cg.usage()
	if err != nil {
		fail("reading the cgroup's memory use: %v", err)
	}
	limit := held + hotCacheBudget
	if err := cg.limit(limit); err != nil {
		fail("cannot limit the memory cgroup %s: %v", cg.dir, err)
	}
	stdin.Write([]byte{2})
	stdin.Close()
	io.Copy(io.Discard, lines) // the rest, into out
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: child: %v (killed by the cgroup's OOM killer, or hotTimeout?)\n%s", cfg.Name, err, out.Bytes())
	}
	for line := range strings.Lines(out.String()) {
		if rest, ok := strings.CutPrefix(line, hotResult); ok {
			var st hotStats
			if err := json.Unmarshal([]byte(rest), &st); err != nil {
				t.Fatal(err)
			}
			return st, limit
		}
	}
	t.Fatalf("%s: the child printed no result:\n%s", cfg.Name, out.Bytes())
	return hotStats{}, 0
}

// hotChild is the scenario, in the child process.
func hotChild(t *testing.T, cfg hotConfig) {
	var b [1]byte
	if _, err := os.Stdin.Read(b[:]); err != nil { // in the cgroup now
		t.Fatal(err)
	}
	var hot []*os.File
	for i := range hotFiles {
		f, err := os.Open(filepath.Join(cfg.Dir, "hot-"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		hot = append(hot, f)
	}
	buf := make([]byte, hotFileSize)
	readHot := func() {
		for _, f := range hot {
			if _, err := f.ReadAt(buf, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	countHot := func() (resident, total int) {
		for _, f := range hot {
			in, all := residentPages(t, f, 0, hotFileSize)
			resident += in
			total += all
		}
		return resident, total
	}
	big, err := os.Open(filepath.Join(cfg.Dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { big.Close() }) // after the server's Shutdown, registered later

	if cfg.Random {
		if err := unix.Fadvise(int(big.Fd()), 0, 0, unix.FADV_RANDOM); err != nil {
			t.Fatal(err)
		}
	}
	s := &Server{Loops: 1, DropBehind: cfg.DropBehind, Handler: &funcs{
		open: func(c *Conn) {
			if cfg.SockBuf > 0 {
				unix.SetsockoptInt(c.Fd(), unix.SOL_SOCKET, unix.SO_SNDBUF, cfg.SockBuf)
			}
		},
		read: func(c *Conn, in []byte) int {
			size := int64(hotBigSize)
			if in[0] == 'w' {
				size = hotWarmupSize
			}
			if err := c.SendFile(big, 0, size); err != nil {
				t.Error(err)
			}
			return len(in)
		},
		writable: func(c *Conn) { c.Close() },
	}}
	addr := start(t, s)
	stream := func(request byte, each func(got int64)) int64 {
		c := dial(t, addr)
		if cfg.SockBuf > 0 {
			c.(*net.TCPConn).SetReadBuffer(cfg.SockBuf)
		}
		c.Write([]byte{request})
		c.SetReadDeadline(time.Now().Add(hotTimeout))
		var got int64
		for {
			n, err := c.Read(buf)
			got += int64(n)
			each(got)
			if err == io.EOF {
				return got
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	// Set up: everything the measurement does once, before the limit.
	if got := stream('w', func(int64) { countHot() }); got != hotWarmupSize {
		t.Fatalf("warm-up: client got %d bytes, want %d", got, hotWarmupSize)
	}
	if err := DropCache(big, 0, hotBigSize); err != nil {
		t.Fatal(err)
	}
	capHeap()
	fmt.Println(hotReady)
	if _, err := os.Stdin.Read(b[:]); err != nil { // limited now
		t.Fatal(err)
	}

	readHot()
	readHot() // twice: the kernel's active list
	var st hotStats
	st.Initial, st.HotPages = countHot()
	st.MinResident = st.Initial
	st.OwnBefore = cgroupAnon(cfg)
	began := time.Now()
	next := int64(hotRoundSize)
	got := stream('x', func(got int64) {
		if got >= next && got < hotBigSize {
			in, _ := countHot()
			st.Rounds++
			st.Misses += st.HotPages - in
			st.MinResident = min(st.MinResident, in)
			readHot()
			next += hotRoundSize
		}
	})
	st.Seconds = time.Since(began).Seconds()
	if got != hotBigSize {
		t.Fatalf("client got %d bytes, want %d", got, hotBigSize)
	}
	st.Final, _ = countHot()
	st.BigResident, st.BigPages = residentPages(t, big, 0, hotBigSize)
	st.OwnAfter = cgroupAnon(cfg)
	res, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%s\n", hotResult, res)
}

// capHeap collects the child's garbage and caps the Go runtime's memory at
// what it then holds plus 1 MiB (debug.SetMemoryLimit), so that its heap
// does not grow into the page cache budget during the stream: with -race,
// where sync.Pool drops buffers at random and every heap page has shadow
// pages, an uncapped heap grew by 4 MiB and the child's memory by 11 MiB
// during the stream; capped, the child's memory grows by 1-3 MiB.
func capHeap() {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	debug.SetMemoryLimit(int64(ms.Sys-ms.HeapReleased) + 1<<20)
}

// cgroupAnon returns the anonymous memory charged to the child's cgroup
// (its own memory, as opposed to page cache), or -1 if unknown.
func cgroupAnon(cfg hotConfig) int64 {
	g := memCgroup{dir: cfg.Cgroup, v2: cfg.CgroupV2}
	return g.stat(map[bool]string{false: "rss", true: "anon"}[g.v2])
}

// memCgroup is a memory cgroup made for a test.
type memCgroup struct {
	dir string
	v2  bool
}

// newMemCgroup creates a memory cgroup, without a limit yet, removed when
// the test ends. It fails the test when there is no memory controller it
// can use.
func newMemCgroup(t *testing.T, name string) *memCgroup {
	t.Helper()
	parent, v2, err := memCgroupParent()
	if err != nil {
		t.Fatalf("no memory cgroup to run in (the test needs root and a cgroup v1 memory hierarchy or a v2 one "+
			"with the memory controller enabled for children): %v", err)
	}
	g := &memCgroup{dir: filepath.Join(parent, fmt.Sprintf("netpoll-test-%d-%s", os.Getpid(), name)), v2: v2}
	if err := os.Mkdir(g.dir, 0o755); err != nil {
		t.Fatalf("cannot create a memory cgroup (the test needs root): %v", err)
	}
	t.Cleanup(func() {
		// The child has exited and been waited for; its page cache stays
		// charged, to the parent once the cgroup is gone.
		if err := os.Remove(g.dir); err != nil {
			t.Errorf("removing the cgroup: %v", err)
		}
	})
	return g
}

// limit sets the cgroup's memory limit (memory.max in cgroup v2,
// memory.limit_in_bytes in v1).
func (g *memCgroup) limit(n int64) error {
	file := "memory.limit_in_bytes"
	if g.v2 {
		file = "memory.max"
	}
	return writeCgroup(filepath.Join(g.dir, file), strconv.FormatInt(n, 10))
}

// usage returns the memory charged to the cgroup now.
func (g *memCgroup) usage() (int64, error) {
	file := "memory.usage_in_bytes"
	if g.v2 {
		file = "memory.current"
	}
	return readCgroupInt(filepath.Join(g.dir, file))
}

// stat returns one figure of the cgroup's memory.stat, or -1.
func (g *memCgroup) stat(key string) int64 {
	b, err := os.ReadFile(filepath.Join(g.dir, "memory.stat"))
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// add moves the process pid into the cgroup.
func (g *memCgroup) add(pid int) error {
	return writeCgroup(filepath.Join(g.dir, "cgroup.procs"), strconv.Itoa(pid))
}

func (g *memCgroup) version() string {
	if g.v2 {
		return "v2"
	}
	return "v1"
}

// peak returns the cgroup's peak memory use, in MiB.
func (g *memCgroup) peak() string {
	file := "memory.max_usage_in_bytes"
	if g.v2 {
		file = "memory.peak"
	}
	n, err := readCgroupInt(filepath.Join(g.dir, file))
	if err != nil {
		return "unknown"
	}
	return strconv.FormatInt(n>>20, 10) + " MiB"
}

func readCgroupInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

func writeCgroup(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// memCgroupParent finds where to create a memory cgroup: the root of a
// cgroup v2 hierarchy that delegates the memory controller to its
// children, or else this process's own cgroup in the v1 memory
// hierarchy (v1 lets a cgroup with processes have children).
func memCgroupParent() (dir string, v2 bool, err error) {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false, err
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", false, err
	}
	var v1dir string
	for line := range strings.Lines(string(mounts)) {
		// 36 35 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 0 || sep+3 >= len(f) || len(f) < 5 {
			continue
		}
		root, mnt, fstype, opts := f[3], f[4], f[sep+1], f[sep+3]
		switch {
		case fstype == "cgroup2":
			ctl, _ := os.ReadFile(filepath.Join(mnt, "cgroup.controllers"))
			sub, _ := os.ReadFile(filepath.Join(mnt, "cgroup.subtree_control"))
			if slices.Contains(strings.Fields(string(ctl)), "memory") && slices.Contains(strings.Fields(string(sub)), "memory") {
				return mnt, true, nil
			}
		case fstype == "cgroup" && slices.Contains(strings.Split(opts, ","), "memory"):
			// 4:memory:/process_api/c8120597
			for l := range strings.Lines(string(own)) {
				parts := strings.SplitN(strings.TrimSpace(l), ":", 3)
				if len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), "memory") {
					rel, ok := strings.CutPrefix(parts[2], root)
					if root == "/" {
						rel, ok = parts[2], true
					}
					if ok {
						v1dir = filepath.Join(mnt, rel)
					}
				}
			}
		}
	}
	if v1dir == "" {
		return "", false, errors.New("neither a cgroup v2 hierarchy with the memory controller enabled for its children nor a v1 memory hierarchy")
	}
	return v1dir, false, nil
}

// missingPages lists the pages of f's region [off, off+n) that are not in
// the page cache, as ranges of page indices ("12-15 40"), for a failure
// message.
func missingPages(t testing.TB, f *os.File, off, n int64) string {
	t.Helper()
	var ranges []string
	first := int64(-1)
	for page := off / pageSize; page <= (off+n-1)/pageSize+1; page++ {
		in := page > (off+n-1)/pageSize
		if !in {
			resident, _ := residentPages(t, f, page*pageSize, 1)
			in = resident == 1
		}
		switch {
		case !in && first < 0:
			first = page
		case in && first >= 0:
			ranges = append(ranges, pageRange(f, first, page))
			first = -1
		}
	}
	return strings.Join(ranges, " ")
}

// readVmstat returns the kernel's memory counters (/proc/vmstat).
func readVmstat(t testing.TB) map[string]int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		t.Fatal(err)
	}
	stat := make(map[string]int64)
	for line := range strings.Lines(string(b)) {
		if name, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			stat[name], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return stat
}

// vmstatDelta lists the counters of /proc/vmstat that tell of pages
// leaving the page cache (reclaim, global or a cgroup's, drop_caches,
// compaction, splits) and grew between two readings, for a failure
// message.
func vmstatDelta(before, after map[string]int64) string {
	var grew []string
	for _, name := range slices.Sorted(maps.Keys(after)) {
		interesting := strings.HasPrefix(name, "pgscan") || strings.HasPrefix(name, "pgsteal") ||
			strings.HasPrefix(name, "compact_") || strings.HasPrefix(name, "thp_split") ||
			strings.HasPrefix(name, "workingset_") || strings.HasPrefix(name, "pgmigrate") ||
			name == "drop_pagecache" || strings.HasPrefix(name, "allocstall") || name == "pginodesteal" ||
			name == "kswapd_inodesteal" || name == "slabs_scanned"
		if d := after[name] - before[name]; interesting && d != 0 {
			grew = append(grew, fmt.Sprintf("%s +%d", name, d))
		}
	}
	if len(grew) == 0 {
		return "none grew"
	}
	return strings.Join(grew, ", ")
}

// pageRange describes the pages [first, end) of f for missingPages: their
// indices, and what cachestat(2) says of them (where it works): folios in
// the page cache (which mincore counts only once they are up to date), or
// evicted by reclaim (which leaves a shadow entry; an invalidation such as
// POSIX_FADV_DONTNEED does not).
func pageRange(f *os.File, first, end int64) string {
	s := strconv.FormatInt(first, 10)
	if end-first > 1 {
		s += "-" + strconv.FormatInt(end-1, 10)
	}
	r := unix.CachestatRange{Off: uint64(first * pageSize), Len: uint64((end - first) * pageSize)}
	var st unix.Cachestat_t
	if err := unix.Cachestat(uint(f.Fd()), &r, &st, 0); err != nil {
		return s + " (cachestat: " + err.Error() + ")"
	}
	return fmt.Sprintf("%s (cachestat: %d cached, %d dirty, %d writeback, %d evicted, %d recently evicted)",
		s, st.Cache, st.Dirty, st.Writeback, st.Evicted, st.Recently_evicted)
}

// reclaimedPages returns how many pages of f's first n bytes the kernel
// has evicted by reclaim, which leaves a shadow entry that cachestat(2)
// counts as evicted (an invalidation such as POSIX_FADV_DONTNEED leaves
// none), or an error where cachestat is missing or refused. It asks with
// a descriptor open for writing, which cachestat accepts from any user
// who may write the file.
func reclaimedPages(f *os.File, n int64) (int, error) {
	w, err := os.OpenFile(f.Name(), os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer w.Close()
	r := unix.CachestatRange{Len: uint64(n)}
	var st unix.Cachestat_t
	if err := unix.Cachestat(uint(w.Fd()), &r, &st, 0); err != nil {
		return 0, err
	}
	return int(st.Evicted), nil
}
