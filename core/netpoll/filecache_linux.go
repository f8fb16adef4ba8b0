package netpoll

import (
	"errors"
	"os"
	"sync"
	"unsafe"

	"github.com/anx-gateway/anx/core/pool"
	"golang.org/x/sys/unix"
)

// pageSize is the unit of the page cache.
var pageSize = int64(os.Getpagesize())

// Resident reports whether the n bytes of f from off are all in the page
// cache, so that reading or sendfile-ing them will not wait for the disk.
// It asks cachestat(2), or where that is missing maps the region, asks
// mincore(2) and unmaps it; no I/O either way. A region it cannot check
// (n <= 0, an unmappable file) counts as resident only when n <= 0.
func Resident(f *os.File, off, n int64) (bool, error) {
	if n <= 0 {
		return true, nil
	}
	if resident, ok := residentByCachestat(f, off, n); ok {
		return resident, nil
	}
	start := off &^ (pageSize - 1)
	length := off + n - start
	data, err := unix.Mmap(int(f.Fd()), start, int(length), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return false, os.NewSyscallError("mmap", err)
	}
	defer unix.Munmap(data)
	var vec [256]byte // one byte per page; checked 1 MiB at a time
	step := int64(len(vec)) * pageSize
	for pos := int64(0); pos < length; pos += step {
		part := data[pos:min(pos+step, length)]
		pages := (int64(len(part)) + pageSize - 1) / pageSize
		_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&part[0])), uintptr(len(part)),
			uintptr(unsafe.Pointer(&vec[0])))
		if e != 0 {
			return false, os.NewSyscallError("mincore", e)
		}
		for _, v := range vec[:pages] {
			if v&1 == 0 {
				return false, nil
			}
		}
	}
	return true, nil
}

// residentByCachestat asks cachestat(2) (Linux 6.5) how many pages of the
// region are cached: one system call, where mincore needs the region
// mapped and unmapped again, and an unmap of a process whose threads run
// on several cores interrupts those cores to flush their TLBs. ok is false
// where cachestat is not available or not allowed, and Resident then asks
// mincore.
func residentByCachestat(f *os.File, off, n int64) (resident, ok bool) {
	first, end := off/pageSize, (off+n+pageSize-1)/pageSize
	r := unix.CachestatRange{Off: uint64(off), Len: uint64(n)}
	var st unix.Cachestat_t
	if err := unix.Cachestat(uint(f.Fd()), &r, &st, 0); err != nil {
		return false, false
	}
	return st.Cache >= uint64(end-first), true
}

// ErrWouldBlock is returned by ReadNoWait when the data is not in the
// page cache.
var ErrWouldBlock = errors.New("netpoll: data not in page cache")

// ReadNoWait reads into p from f at off only if the data is in the page
// cache: preadv2(2) with RWF_NOWAIT, which returns ErrWouldBlock instead of
// waiting for the disk (and may return fewer bytes, those that were
// cached). On kernels without RWF_NOWAIT it returns ErrUnsupported. It
// does not allocate.
func ReadNoWait(f *os.File, p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	iov := unix.Iovec{Base: &p[0]}
	iov.SetLen(len(p))
	for {
		r, _, e := unix.Syscall6(unix.SYS_PREADV2, f.Fd(), uintptr(unsafe.Pointer(&iov)), 1,
			uintptr(off), 0, unix.RWF_NOWAIT)
		switch e {
		case 0:
			return int(r), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, ErrWouldBlock
		case unix.EOPNOTSUPP, unix.ENOSYS, unix.EINVAL:
			return 0, ErrUnsupported
		}
		return 0, os.NewSyscallError("preadv2", e)
	}
}

// DupFile returns a new *os.File on a duplicate of f's descriptor, for
// work that outlives the caller's use of f: the caller may close f, and
// the duplicate is closed on its own.
func DupFile(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// DropCache advises the kernel that the n bytes of f from off will not be
// needed again (posix_fadvise POSIX_FADV_DONTNEED), so that a large file
// streamed once does not push the small hot files out of the page cache.
// Pages still referenced (for instance by sendfile data not yet
// acknowledged by the peer) stay; SendFile therefore drops a step behind.
func DropCache(f *os.File, off, n int64) error {
	if err := unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED); err != nil {
		return os.NewSyscallError("fadvise", err)
	}
	return nil
}

// warmChunk is the read size of the file workers.
const warmChunk = 256 << 10

// warmer is the Server's pool of file workers: Warm queues a region, a
// worker reads it (bringing it into the page cache) and Submits the
// callback to the connection's loop.
//
// Goroutines: newWarmer starts n workers, owned by the Server; each exits
// when stop closes jobs. mu guards stopped against a late Warm.
type warmer struct {
	jobs    chan warmJob
	workers sync.WaitGroup
	mu      sync.Mutex
	stopped bool
}

// warmJob is one region to read.
type warmJob struct {
	c      *Conn
	f      *os.File
	off, n int64
	done   func(error)
}

// warmQueue bounds the regions waiting for a worker.
const warmQueue = 1024

func newWarmer(n int) *warmer {
	w := &warmer{jobs: make(chan warmJob, warmQueue)}
	w.workers.Add(n)
	for range n {
		go w.work()
	}
	return w
}

// stop ends the workers once the queue is empty and waits for them.
func (w *warmer) stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	if !w.stopped {
		w.stopped = true
		close(w.jobs)
	}
	w.mu.Unlock()
	w.workers.Wait()
}

// work is a worker goroutine.
func (w *warmer) work() {
	defer w.workers.Done()
	for j := range w.jobs {
		buf := pool.Get(warmChunk) // only while there is work: idle workers hold nothing
		err := readRegion(j.f, j.off, j.n, *buf)
		pool.Put(buf)
		done := j.done
		j.c.Submit(func() { done(err) }) // dropped if the loop has stopped
	}
}

// readRegion reads n bytes of f from off, discarding them.
func readRegion(f *os.File, off, n int64, buf []byte) error {
	for n > 0 {
		k, err := f.ReadAt(buf[:min(n, int64(len(buf)))], off)
		off += int64(k)
		n -= int64(k)
		if err != nil {
			return err
		}
	}
	return nil
}

// ErrWarmQueueFull is returned by Warm when the file workers are behind.
var ErrWarmQueueFull = errors.New("netpoll: file worker queue full")

// Warm reads the n bytes of f from off on one of the Server's file
// workers, which brings them into the page cache, then runs done(err) on
// c's loop. The loop never waits for the disk: a protocol that finds a
// region not Resident pauses the connection, calls Warm, and sends the
// file from done (checking c.Closed()). Call it on c's loop; it fails
// with ErrWarmQueueFull rather than wait.
func (s *Server) Warm(c *Conn, f *os.File, off, n int64, done func(error)) error {
	w := s.warm
	if w == nil {
		return ErrServerClosed
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return ErrServerClosed
	}
	select {
	case w.jobs <- warmJob{c: c, f: f, off: off, n: n, done: done}:
		return nil
	default:
		return ErrWarmQueueFull
	}
}
