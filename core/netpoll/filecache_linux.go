package netpoll

import (
	"errors"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/anx-gateway/anx/core/pool"
)

// pageSize is the unit of the page cache.
var pageSize = int64(os.Getpagesize())

// Resident reports whether the n bytes of f from off are all in the page
// cache, so that reading or sendfile-ing them will not wait for the disk.
// It asks cachestat(2) (Linux 6.5), or where that is missing, mincore(2)
// on a mapping of the region; neither does I/O. Neither tells the truth to
// a process that may not write the file (a gateway serving files another
// user deployed): recent kernels refuse it cachestat (EPERM; seen on
// 6.18) unless its descriptor is open for writing, and mincore reports
// every page of such a file resident (Linux 5.2, the fix for
// CVE-2019-5489). For such a file Resident reads the
// region with RWF_NOWAIT instead (residentByReading), which starts the
// read of the pages that are missing without waiting for it (and, where
// that read has finished when the kernel looks again, finds them cached). Where it has no way to
// tell (no cachestat, no preadv2: qemu-user 7 among others, and mincore
// would misreport), it returns false and ErrUnsupported. A region it
// cannot check (an unmappable file) counts as not resident, with the
// error; n <= 0 counts as resident.
func Resident(f *os.File, off, n int64) (bool, error) {
	if n <= 0 {
		return true, nil
	}
	resident, err := residentByCachestat(f, off, n)
	switch {
	case err == nil:
		return resident, nil
	case err != unix.EPERM && mincoreTellsTruth(f):
		return residentByMincore(f, off, n)
	}
	return residentByReading(f, off, n)
}

// residentByCachestat asks cachestat(2) (Linux 6.5) how many pages of the
// region are cached: one system call, where mincore needs the region
// mapped and unmapped again, and an unmap of a process whose threads run
// on several cores interrupts those cores to flush their TLBs. It fails
// where cachestat is missing (ENOSYS) or refused (EPERM: the process may
// not write the file).
func residentByCachestat(f *os.File, off, n int64) (bool, error) {
	first, end := off/pageSize, (off+n+pageSize-1)/pageSize
	r := unix.CachestatRange{Off: uint64(off), Len: uint64(n)}
	var st unix.Cachestat_t
	if err := unix.Cachestat(uint(f.Fd()), &r, &st, 0); err != nil {
		return false, err
	}
	return st.Cache >= uint64(end-first), nil
}

// mincoreTellsTruth reports whether mincore(2) reports the page cache of
// f's mappings to this process: only if it may write the file (or owns it,
// which Resident does not rely on). faccessat2 with AT_EACCESS checks as
// the kernel does, with the file system user id.
func mincoreTellsTruth(f *os.File) bool {
	return unix.Faccessat2(int(f.Fd()), "", unix.W_OK, unix.AT_EMPTY_PATH|unix.AT_EACCESS) == nil
}

// residentByMincore maps the region, asks mincore(2) which of its pages
// are cached and unmaps it.
func residentByMincore(f *os.File, off, n int64) (bool, error) {
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

// probeChunk is the size of the scratch buffer residentByReading reads
// into, and probeIovs how many times one preadv2 reuses it.
const (
	probeChunk = 4 << 10
	probeIovs  = 64
)

// residentByReading reads the region with preadv2(2) and RWF_NOWAIT, which
// fails (EAGAIN) or stops short at the first page not in the page cache
// rather than wait for it, into one scratch buffer that every element of
// the vector points at: 256 KiB a call, copied but never kept. It returns
// ErrUnsupported where preadv2 or RWF_NOWAIT is missing.
func residentByReading(f *os.File, off, n int64) (bool, error) {
	var scratch [probeChunk]byte
	var iov [probeIovs]unix.Iovec
	for n > 0 {
		want := min(n, probeChunk*probeIovs)
		count := 0
		for left := want; left > 0; left -= probeChunk {
			iov[count].Base = &scratch[0]
			iov[count].SetLen(int(min(left, probeChunk)))
			count++
		}
		r, _, e := unix.Syscall6(unix.SYS_PREADV2, f.Fd(), uintptr(unsafe.Pointer(&iov[0])), uintptr(count),
			uintptr(off), 0, unix.RWF_NOWAIT)
		switch e {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false, nil
		case unix.EOPNOTSUPP, unix.ENOSYS, unix.EINVAL:
			return false, ErrUnsupported
		default:
			return false, os.NewSyscallError("preadv2", e)
		}
		if int64(r) < want { // a page not cached, or the end of the file
			return false, nil
		}
		off += want
		n -= want
	}
	return true, nil
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
