package netpoll

import (
	"io"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/anx-gateway/anx/core/pool"
)

// maxReads bounds the reads of one connection per wake-up, so that one
// fast sender does not starve the others; a connection not drained by then
// goes on the ready list for the next round.
const maxReads = 4

// event handles an epoll event for c.
func (c *Conn) event(ev uint32) {
	if c.flags&flagConnecting != 0 && !c.connectDone(ev) {
		return
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && c.Buffered() > 0 {
		c.flushQueued()
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0 && c.flags&flagHup == 0 {
		c.flags |= flagHup // read to EOF or error: no edge follows the FIN
		if hh, ok := c.h.(HangupHandler); ok && c.flags&flagPaused != 0 && !c.Closed() {
			hh.OnHangup(c)
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		c.flags |= flagReadable
		c.read()
	}
}

// resume is a ready-list turn: hand buffered input over again if Resume
// asked for it, then read.
func (c *Conn) resume() {
	if c.flags&(flagClosing|flagClosed|flagCloseAfter|flagPaused|flagDetached) != 0 {
		return
	}
	if c.flags&flagRedeliver != 0 {
		c.flags &^= flagRedeliver
		if c.inN > 0 {
			c.deliver((*c.in)[:c.inN])
		}
	}
	c.read()
}

// read reads while the socket has input, up to maxReads times.
func (c *Conn) read() {
	for range maxReads {
		if c.flags&flagReadable == 0 || c.flags&(flagPaused|flagClosing|flagClosed|flagCloseAfter|flagDetached) != 0 {
			return
		}
		if !c.readOnce() {
			return
		}
	}
	if c.flags&flagReadable != 0 {
		c.loop.markReady(c)
	}
}

// readOnce does one readv: into the free tail of the connection's input
// buffer, if it has one, and the loop's scratch buffer. It reports whether
// to read again.
func (c *Conn) readOnce() bool {
	l := c.loop
	iov := l.iov[:0]
	var tail []byte
	if c.in != nil {
		tail = (*c.in)[c.inN:]
		iov = appendIov(iov, tail)
	}
	iov = appendIov(iov, l.scratch)
	n, err := readv(int(c.fd), iov)
	switch {
	case err == unix.EINTR:
		return true
	case err == unix.EAGAIN:
		c.flags &^= flagReadable
		return false
	case err != nil:
		c.fail(os.NewSyscallError("readv", err))
		return false
	case n == 0:
		c.flags &^= flagReadable
		c.peerClosed()
		return false
	}
	if n < len(tail)+len(l.scratch) && c.flags&flagHup == 0 {
		// A short read drained the socket: edge-triggered epoll reports
		// whatever arrives after it. Not so a FIN or an error that came
		// with the data: after one, read on until EOF or the error.
		c.flags &^= flagReadable
	}
	if c.in == nil {
		c.deliver(l.scratch[:n])
		return true
	}
	k := min(n, len(tail))
	c.inN += k
	if !c.keep(l.scratch[:n-k]) {
		return false
	}
	c.deliver((*c.in)[:c.inN])
	return true
}

// deliver hands in to the handler and keeps what it left. in is either
// the loop's scratch buffer or exactly the connection's input buffer.
func (c *Conn) deliver(in []byte) {
	k := c.h.OnRead(c, in)
	k = min(max(k, 0), len(in))
	rest := in[k:]
	if c.in == nil || &in[0] != &(*c.in)[0] { // from scratch
		if len(rest) > 0 && !c.Closed() {
			c.keep(rest)
		}
		return
	}
	if len(rest) == 0 {
		c.releaseIn()
		return
	}
	c.inN = copy(*c.in, rest)
}

// keep appends p to the connection's input buffer, borrowing or growing
// it. It fails the connection past MaxInput.
func (c *Conn) keep(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	need := c.inN + len(p)
	if need > c.loop.srv.maxInput() {
		c.fail(ErrInputFull)
		return false
	}
	if c.in == nil || need > len(*c.in) {
		b := pool.Get(need)
		if c.in != nil {
			copy(*b, (*c.in)[:c.inN])
			pool.Put(c.in)
		}
		c.in = b
	}
	c.inN += copy((*c.in)[c.inN:], p)
	return true
}

// releaseIn gives the input buffer back.
func (c *Conn) releaseIn() {
	if c.in != nil {
		pool.Put(c.in)
		c.in, c.inN = nil, 0
	}
}

// peerClosed handles EOF: the connection closes once its queued output
// is sent; OnClose gets io.EOF.
func (c *Conn) peerClosed() {
	if c.err == nil {
		c.err = io.EOF
	}
	c.Close()
}

// Pause stops reading: the loop remembers that input waits and delivers
// none until Resume. A protocol pauses while a request is served off the
// loop, or while its output is backed up.
func (c *Conn) Pause() { c.flags |= flagPaused }

// Resume undoes Pause. Soon after (on the loop's next turn, never from
// inside Resume) the handler is called with the buffered input again, if
// any, and then with whatever the socket has.
func (c *Conn) Resume() {
	if c.Closed() {
		return
	}
	c.flags &^= flagPaused
	c.flags |= flagRedeliver
	c.loop.markReady(c)
}

// Write sends p, or queues what the socket does not take at once and
// sends it when the socket becomes writable (then OnWritable is called).
// It never reports would-block. The error is that of a failed or closed
// connection; a failed connection closes when the current callback
// returns. p may be reused when Write returns. On a dialed connection
// that is still connecting, p is queued and sent once it is connected.
func (c *Conn) Write(p []byte) error { return c.send0(p, 0) }

// WriteMore is Write for bytes that the caller follows at once with more
// output, in the same callback: a response head before its SendFile body.
// They are sent with MSG_MORE, so that the kernel keeps them for what
// comes next and they leave together in full-sized segments rather than
// as a small segment of their own. That matters beyond a packet: a
// receiver measures its round-trip time, which sizes its receive buffer,
// only on a full-sized segment, and a small one ahead of the body spends
// the measurement (see Files in the package doc). The kernel holds the
// bytes until more output is sent or the connection closes.
func (c *Conn) WriteMore(p []byte) error { return c.send0(p, unix.MSG_MORE) }

// send0 is Write with send(2) flags (0 or MSG_MORE).
func (c *Conn) send0(p []byte, flags int) error {
	if c.Closed() {
		return ErrClosed
	}
	if c.Buffered() > 0 || c.flags&flagConnecting != 0 {
		c.queue(p)
		return nil
	}
	for len(p) > 0 {
		n, err := send(int(c.fd), p, flags)
		switch {
		case err == unix.EAGAIN:
			c.queue(p)
			return nil
		case !c.wrote(n, err, "write"):
			return c.err
		case err == nil:
			p = p[n:]
		}
	}
	return nil
}

// Writev sends bufs in order with writev (a response head and its body in
// one system call), queuing what the socket does not take, as Write does.
// The buffers may be reused when it returns.
func (c *Conn) Writev(bufs [][]byte) error {
	if c.Closed() {
		return ErrClosed
	}
	skip := 0 // bytes of bufs[0] already sent
	for len(bufs) > 0 && c.Buffered() == 0 && c.flags&flagConnecting == 0 {
		iov := appendIov(c.loop.iov[:0], bufs[0][skip:])
		for _, b := range bufs[1:] {
			if len(iov) == maxIov {
				break
			}
			iov = appendIov(iov, b)
		}
		if len(iov) == 0 {
			return nil // only empty buffers
		}
		n, err := writev(int(c.fd), iov)
		if err == unix.EAGAIN {
			break
		}
		if !c.wrote(n, err, "writev") {
			return c.err
		}
		n = max(n, 0) // EINTR
		for len(bufs) > 0 && n >= len(bufs[0])-skip {
			n -= len(bufs[0]) - skip
			skip = 0
			bufs = bufs[1:]
		}
		if skip += n; n > 0 {
			break // a short write: the socket is full
		}
	}
	if len(bufs) > 0 {
		c.queue(bufs[0][skip:])
		for _, b := range bufs[1:] {
			c.queue(b)
		}
	}
	return nil
}

// SendFile sends n bytes of f from offset off after the output queued
// before it, with sendfile(2) at an explicit offset (f's own offset is not
// used or moved, so one file may serve many connections at once). What
// the socket does not take at once is sent as it becomes writable. f may
// be closed when SendFile returns: a send that has to wait keeps a
// duplicate of the descriptor. Output written after it, and further
// SendFiles, are queued behind it.
//
// The loop never waits for the disk: before each window of up to
// warmWindow bytes it asks whether the pages are cached (Resident)
// and, when they are not, has a file worker read them first (Warm) while
// the connection's output waits. Sends of at least Server.DropBehind bytes
// drop the pages behind them from the page cache (see DropCache).
func (c *Conn) SendFile(f *os.File, off, n int64) error {
	if c.Closed() {
		return ErrClosed
	}
	if n <= 0 {
		return nil
	}
	s := c.loop.newSend()
	*s = fileSend{f: f, at: c.outW, off: off, left: n, dropFrom: -1, dropped: off, checked: off}
	if db := c.loop.srv.dropBehind(); db >= 0 && n >= db {
		s.dropFrom = off
	}
	if c.send != nil {
		last := c.send
		for last.next != nil {
			last = last.next
		}
		last.next = s
		return s.own() // behind the first one, which flushes it in turn
	}
	c.send = s
	c.cork(true)
	if !c.flush() {
		c.flags |= flagQueued
	}
	if c.dead() {
		return c.err
	}
	if c.send == s && !s.owned { // still queued (the only one)
		return s.own()
	}
	return nil
}

// own replaces a queued send's file by a duplicate of its descriptor,
// closed when the send ends: the caller may close its file as soon as
// SendFile returns (core/static's cache does, when it drops an entry).
func (s *fileSend) own() error {
	f, err := DupFile(s.f)
	if err != nil {
		return err
	}
	s.f, s.owned = f, true
	return nil
}

// newSend takes a fileSend from the loop's free list.
func (l *Loop) newSend() *fileSend {
	if n := len(l.sends); n > 0 {
		s := l.sends[n-1]
		l.sends = l.sends[:n-1]
		return s
	}
	return new(fileSend)
}

// endSend takes the first queued fileSend off the queue and puts it back
// on the free list.
func (c *Conn) endSend() {
	s := c.send
	c.send = s.next
	if c.send == nil {
		c.cork(false)
	}
	if s.dropFrom >= 0 && s.off > s.dropFrom {
		DropCache(s.f, s.dropFrom, s.off-s.dropFrom)
	}
	if s.owned {
		s.f.Close()
	}
	*s = fileSend{}
	c.loop.sends = append(c.loop.sends, s)
}

// queue appends p to the queued output; the EPOLLOUT edge sends it.
func (c *Conn) queue(p []byte) {
	if len(p) == 0 {
		return
	}
	c.flags |= flagQueued
	if c.out == nil {
		c.out = pool.Get(len(p))
	}
	if c.outW+len(p) > len(*c.out) && c.outR > 0 {
		c.compact()
	}
	if need := c.outW + len(p); need > len(*c.out) {
		b := pool.Get(need)
		copy(*b, (*c.out)[:c.outW])
		pool.Put(c.out)
		c.out = b
	}
	c.outW += copy((*c.out)[c.outW:], p)
}

// compact moves the queued output to the start of its buffer.
func (c *Conn) compact() {
	copy(*c.out, (*c.out)[c.outR:c.outW])
	for s := c.send; s != nil; s = s.next {
		s.at -= c.outR
	}
	c.outW -= c.outR
	c.outR = 0
}

// flushQueued sends queued output on an EPOLLOUT edge, and tells the
// handler when it is all gone.
func (c *Conn) flushQueued() {
	if !c.flush() || c.dead() {
		return
	}
	if c.flags&flagCloseAfter != 0 {
		c.closeNow(c.err)
		return
	}
	if c.flags&flagShutWrite != 0 {
		c.shutWrite()
	}
	if c.flags&flagQueued != 0 {
		c.flags &^= flagQueued
		c.h.OnWritable(c)
	}
}

// flush sends queued bytes and the queued file in order until the socket
// is full. It reports whether everything went.
func (c *Conn) flush() bool {
	if c.flags&flagConnecting != 0 {
		return false // the first EPOLLOUT, once connected, sends it
	}
	for !c.dead() {
		end := c.outW
		if c.send != nil {
			end = c.send.at
		}
		switch {
		case c.outR < end:
			flags := 0
			if c.send != nil {
				flags = unix.MSG_MORE // the file's first bytes join them
			}
			n, err := send(int(c.fd), (*c.out)[c.outR:end], flags)
			if !c.wrote(n, err, "write") {
				return false
			}
			c.outR += max(n, 0) // EINTR: -1
		case c.send != nil:
			if c.flags&flagWarming != 0 || !c.sendFile() {
				return false
			}
		default:
			c.releaseOut()
			return true
		}
	}
	return false
}

// wrote handles the result of one write: false when the socket is full
// or the connection failed.
func (c *Conn) wrote(n int, err error, op string) bool {
	switch {
	case err == nil:
		if n > 0 {
			c.progress = c.loop.now.UnixNano()
		}
		return true
	case err == unix.EINTR:
		return true
	case err == unix.EAGAIN:
		return false
	}
	c.fail(os.NewSyscallError(op, err))
	return false
}

// sendFile does one sendfile(2) of the first queued file, once its next
// window is known to be in the page cache.
func (c *Conn) sendFile() bool {
	s := c.send
	if s.off >= s.checked && !c.checkResident(s) {
		return false
	}
	chunk := min(s.left, s.checked-s.off, 1<<30)
	n, err := unix.Sendfile(int(c.fd), int(s.f.Fd()), &s.off, int(chunk))
	if !c.wrote(n, err, "sendfile") {
		return false
	}
	if err != nil { // EINTR
		return true
	}
	if n == 0 {
		c.fail(io.ErrUnexpectedEOF) // the file is shorter than asked
		return false
	}
	s.left -= int64(n)
	if s.dropFrom >= 0 && s.off-s.dropped >= dropStep {
		c.dropBehind(s)
	}
	if s.left == 0 {
		c.endSend()
	}
	return true
}

// warmWindow is the most of a queued file checked for residency at once,
// and read by a file worker when it is not resident.
const warmWindow = 2 << 20

// checkResident makes sure the next window of s is in the page cache. It
// reports true when it is (or cannot be checked: a file that cannot be
// mapped is sent as it is); otherwise it hands the window to a file worker
// and reports false: the output waits, and the worker's callback resumes
// it. When the workers are behind, the window is sent anyway.
func (c *Conn) checkResident(s *fileSend) bool {
	window := min(s.left, warmWindow)
	resident, err := Resident(s.f, s.off, window)
	if err != nil || resident {
		s.checked = s.off + window
		return true
	}
	if !s.owned {
		if err := s.own(); err != nil { // the worker reads after SendFile has returned
			s.checked = s.off + window
			return true
		}
	}
	c.flags |= flagWarming
	err = c.loop.srv.Warm(c, s.f, s.off, window, func(error) {
		c.flags &^= flagWarming
		if c.dead() {
			return
		}
		// A read error shows again in sendfile, which reports it.
		s.checked = s.off + window
		c.flushQueued()
	})
	if err != nil {
		c.flags &^= flagWarming
		s.checked = s.off + window
		return true
	}
	return false
}

// cork sets or clears TCP_CORK (see Files in the package doc): while a
// file is queued, the socket sends only full-sized segments: the bytes
// queued or written with WriteMore before the file (a response head) and
// each sendfile's last partial segment join the bytes that follow, as
// nginx's tcp_nopush does; clearing it sends what it held. On a Unix
// socket it fails and changes nothing.
func (c *Conn) cork(on bool) {
	if on == (c.flags&flagCorked != 0) {
		return
	}
	v := 0
	if on {
		v = 1
	}
	c.flags ^= flagCorked
	unix.SetsockoptInt(int(c.fd), unix.IPPROTO_TCP, unix.TCP_CORK, v)
}

// dropStep is the granularity of drop-behind.
const dropStep = 1 << 20

// dropBehind drops the pages a send has handed to the socket and the peer
// has acknowledged: from the send's first offset up to its progress less
// what the socket still holds (SIOCOUTQ), since the kernel keeps pages
// the socket references. Each drop covers the whole range again, so that
// a large folio straddling the previous drop's end, which DONTNEED leaves
// alone, goes once the range covers it whole.
func (c *Conn) dropBehind(s *fileSend) {
	inFlight, err := unix.IoctlGetInt(int(c.fd), unix.SIOCOUTQ)
	if err != nil {
		inFlight = dropStep
	}
	if end := s.off - int64(inFlight); end > s.dropFrom {
		DropCache(s.f, s.dropFrom, end-s.dropFrom)
	}
	s.dropped = s.off
}

// releaseOut gives the output buffer back.
func (c *Conn) releaseOut() {
	if c.out != nil {
		pool.Put(c.out)
		c.out = nil
	}
	c.outR, c.outW = 0, 0
}

// Close closes the connection once its queued output is sent (at once if
// there is none); OnClose follows when the current callback returns.
func (c *Conn) Close() error {
	if c.Closed() {
		return nil
	}
	if c.Buffered() > 0 {
		c.flags |= flagCloseAfter
		return nil
	}
	c.closeNow(c.err)
	return nil
}

// CloseWrite shuts down the sending side of the socket (a FIN to the peer)
// once the queued output has been sent, and keeps reading: for a lingering
// close, where the protocol reads and drops what the peer still sends
// before it closes, so that unread input does not make the kernel reset
// the connection and destroy the response before the peer has read it.
func (c *Conn) CloseWrite() {
	if c.Closed() {
		return
	}
	if c.Buffered() > 0 || c.flags&flagConnecting != 0 {
		c.flags |= flagShutWrite
		return
	}
	c.shutWrite()
}

// shutWrite is shutdown(2) of the sending side.
func (c *Conn) shutWrite() {
	c.flags &^= flagShutWrite
	unix.Shutdown(int(c.fd), unix.SHUT_WR)
}

// fail closes the connection at once with err.
func (c *Conn) fail(err error) {
	if c.dead() {
		return
	}
	if c.err == nil || c.err == io.EOF {
		c.err = err
	}
	c.closeNow(c.err)
}

// closeNow puts c on the loop's close list.
func (c *Conn) closeNow(err error) {
	if c.flags&(flagClosing|flagClosed) != 0 {
		return
	}
	c.err = err
	c.flags |= flagClosing
	c.loop.closing = append(c.loop.closing, c)
}

// finish closes the socket, gives back everything the connection holds
// and calls OnClose.
func (c *Conn) finish() {
	l := c.loop
	c.flags = c.flags&^flagClosing | flagClosed
	l.wheel.Cancel(&c.timer)
	if c.flags&flagDetached != 0 {
		// A goroutine holds a duplicate of the socket: shut it down so
		// that its blocked reads and writes end and the peer sees the close.
		unix.Shutdown(int(c.fd), unix.SHUT_RDWR)
	}
	unix.Close(int(c.fd)) // also removes it from the epoll set
	if int(c.fd) < len(l.conns) && l.conns[int(c.fd)] == c {
		l.conns[int(c.fd)] = nil
	}
	l.nconns--
	if c.flags&flagAdmitted != 0 {
		c.flags &^= flagAdmitted
		l.release(c.RemoteAddr().Addr())
	}
	c.releaseIn()
	c.releaseOut()
	c.flags &^= flagCorked // the socket is gone
	for c.send != nil {
		c.send.left = 0
		c.endSend()
	}
	if c.flags&flagConnecting != 0 && c.err != nil {
		c.err = &ConnectError{Remote: c.RemoteAddr(), Err: c.err} // nothing was sent
	}
	c.h.OnClose(c, c.err)
}

// LocalAddr returns the address of the connection's own end.
func (c *Conn) LocalAddr() netip.AddrPort {
	sa, err := unix.Getsockname(int(c.fd))
	if err != nil {
		return netip.AddrPort{}
	}
	return sockaddrPort(sa)
}

// appendIov appends b to iov, skipping empty buffers.
func appendIov(iov []unix.Iovec, b []byte) []unix.Iovec {
	if len(b) == 0 {
		return iov
	}
	v := unix.Iovec{Base: &b[0]}
	v.SetLen(len(b))
	return append(iov, v)
}

// The socket calls below are raw system calls, which skip the Go
// scheduler's entry and exit bookkeeping (a measurable share of a proxied
// request's CPU time): on a non-blocking socket they never wait, so the
// scheduler has nothing to hand off meanwhile.

// send is write(2) on a non-blocking socket, or with flags (MSG_MORE)
// send(2).
func send(fd int, p []byte, flags int) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var r uintptr
	var e unix.Errno
	if flags == 0 {
		r, _, e = unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	} else {
		r, _, e = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), uintptr(flags), 0, 0)
	}
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// readv is readv(2) on a prepared vector, without allocating.
func readv(fd int, iov []unix.Iovec) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// writev is writev(2) on a prepared vector, without allocating.
func writev(fd int, iov []unix.Iovec) (int, error) {
	if len(iov) == 0 {
		return 0, nil
	}
	r, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
