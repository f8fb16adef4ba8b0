package netpoll

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Loop is one epoll instance and the connections registered with it. Its
// goroutine, started by Server.Start, owns every field except those under
// mu (the Submit queue) and woken; it exits when the loop is drained after
// Shutdown, closing epfd, evfd and lnfd.
type Loop struct {
	srv   *Server
	index int // its place in the Server's loops (Index)
	epfd  int // the epoll instance
	evfd  int // eventfd that wakes the loop for Submit
	lnfd  int // this loop's SO_REUSEPORT listening socket; -1 once closed
	wheel *Wheel
	now   time.Time // when epoll_wait last returned

	epf          *os.File           // epfd, on the runtime's poller; nil if it could not be (see wait)
	raw          syscall.RawConn    // epf's, to park on
	pollFn       func(uintptr) bool // raw.Read's callback: pollNow into n
	n            int                // events pollFn found
	parkDeadline time.Time          // epf's read deadline now

	peer    unix.RawSockaddrAny // accept4's address buffer
	dialSA  unix.RawSockaddrAny // Dial's connect(2) address buffer
	scratch []byte              // the per-loop read buffer
	events  []unix.EpollEvent   // epoll_wait's results
	iov     [maxIov]unix.Iovec  // for readv and writev
	conns   []*Conn             // by file descriptor
	nconns  int
	ready   []*Conn     // connections with unread input or input to redeliver
	closing []*Conn     // connections to close when the current callback returns
	sends   []*fileSend // free fileSends, so that SendFile does not allocate
	drain   bool        // Shutdown: close connections as they drain, exit when none

	woken   atomic.Bool   // an eventfd write is pending; Submit skips its own
	wakeups atomic.Uint64 // returns from wait; written by the loop, read by Stats
	mu      sync.Mutex
	tasks   []func()      // guarded by mu
	spare   []func()      // the previous tasks slice, reused; loop goroutine only
	done    bool          // guarded by mu: the loop has exited; Submit refuses
	exited  chan struct{} // closed when the loop's goroutine returns
}

// maxIov bounds the buffers of one readv or writev.
const maxIov = 16

// acceptBatch bounds the accepts per wake-up, so that a connection storm
// does not starve the established connections (the listening socket is
// level-triggered and reports the rest next time).
const acceptBatch = 64

// newLoop creates the epoll instance, its eventfd and the listening socket.
func newLoop(s *Server, lnfd int, now time.Time) (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("netpoll: epoll_create1: %w", err)
	}
	l := &Loop{srv: s, epfd: epfd, evfd: -1, lnfd: lnfd, now: now,
		exited:  make(chan struct{}),
		wheel:   NewWheel(timerTick, timerSlots, now),
		scratch: make([]byte, scratchSize),
		events:  make([]unix.EpollEvent, 256),
	}
	if l.evfd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.closeFds()
		return nil, fmt.Errorf("netpoll: eventfd: %w", err)
	}
	l.parkOnRuntime()
	for _, fd := range []int{l.evfd, l.lnfd} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)} // level-triggered
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			l.closeFds()
			return nil, fmt.Errorf("netpoll: epoll_ctl: %w", err)
		}
	}
	return l, nil
}

// parkOnRuntime hands the epoll descriptor to the Go runtime's own
// poller, so that the loop waits for events as any goroutine waits for a
// socket: parked, holding no thread (see wait). If the runtime cannot poll
// it, the loop blocks in epoll_wait instead.
func (l *Loop) parkOnRuntime() {
	if unix.SetNonblock(l.epfd, true) != nil {
		return
	}
	f := os.NewFile(uintptr(l.epfd), "epoll")
	if f.SetReadDeadline(time.Time{}) != nil { // not pollable
		unix.SetNonblock(l.epfd, false)
		return
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return
	}
	l.epf, l.raw = f, raw
	l.pollFn = func(uintptr) bool { l.n = l.pollNow(); return l.n > 0 }
}

// closeFds closes the loop's own descriptors.
func (l *Loop) closeFds() {
	if l.epf != nil {
		l.epf.Close() // closes epfd
		l.epf, l.epfd = nil, -1
	}
	for _, fd := range []*int{&l.lnfd, &l.evfd, &l.epfd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// Index returns the loop's place among its Server's loops, from 0 to
// Loops-1, so that a protocol can keep per-loop state in a slice (see
// Server.LoopCount). Safe from any goroutine.
func (l *Loop) Index() int { return l.index }

// Submit runs f on the loop's goroutine, soon. It is safe from any
// goroutine; it returns ErrServerClosed when the loop has exited.
func (l *Loop) Submit(f func()) error {
	l.mu.Lock()
	defer l.mu.Unlock() // held for the write too: exit closes evfd under it
	if l.done {
		return ErrServerClosed
	}
	l.tasks = append(l.tasks, f)
	if l.woken.CompareAndSwap(false, true) {
		var one = [8]byte{1}
		unix.Write(l.evfd, one[:])
	}
	return nil
}

// run is the loop's goroutine.
func (l *Loop) run() {
	defer l.srv.loopDone.Done()
	defer close(l.exited)
	if l.srv.LockOSThread {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	defer l.exit()
	for !l.drain || l.nconns > 0 {
		n := l.wait()
		l.wakeups.Add(1)
		l.now = time.Now()
		for i := range n {
			l.dispatch(&l.events[i])
		}
		l.runReady()
		l.wheel.Advance(l.now)
		l.reap()
	}
}

// wait returns the number of events ready in l.events, waiting until
// there are some, or until the wheel's next deadline, when there are none
// and no connection is ready.
//
// Blocking in epoll_wait would hold an OS thread in a system call, and
// the Go scheduler, after 20µs, hands the loop's P to another thread and
// makes it take one back when the call returns: a thread switch or two per
// wake-up, which perf showed as a fifth of the CPU at 90k requests/s. So
// the loop polls without blocking and, when nothing is there, parks on the
// runtime's poller, which watches the epoll descriptor itself (an epoll
// instance is readable when it has events).
func (l *Loop) wait() int {
	if l.raw == nil {
		n, err := unix.EpollWait(l.epfd, l.events, l.timeout())
		if err != nil && err != unix.EINTR {
			panic(fmt.Sprintf("netpoll: epoll_wait: %v", err)) // EBADF, EFAULT, EINVAL: a bug
		}
		return max(n, 0)
	}
	if n := l.pollNow(); n > 0 {
		return n
	}
	ms := l.timeout()
	if ms == 0 {
		return 0
	}
	var deadline time.Time
	if ms > 0 {
		deadline = time.Now().Add(time.Duration(ms) * time.Millisecond)
	}
	if deadline != l.parkDeadline {
		l.epf.SetReadDeadline(deadline)
		l.parkDeadline = deadline
	}
	l.n = 0
	l.raw.Read(l.pollFn) // returns with events, or an error at the deadline
	return l.n
}

// pollNow is epoll_wait without waiting. It makes no entry into the
// scheduler (a raw system call): it cannot block.
func (l *Loop) pollNow() int {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])),
		uintptr(len(l.events)), 0, 0, 0)
	if e != 0 {
		if e == unix.EINTR {
			return 0
		}
		panic(fmt.Sprintf("netpoll: epoll_pwait: %v", e)) // EBADF, EFAULT, EINVAL: a bug
	}
	return int(r)
}

// timeout returns epoll_wait's timeout in milliseconds: 0 with work
// waiting, until the wheel's next deadline, or -1 (forever).
func (l *Loop) timeout() int {
	if len(l.ready) > 0 || len(l.closing) > 0 {
		return 0
	}
	at, ok := l.wheel.NextDeadline()
	if !ok {
		return -1
	}
	d := at.Sub(time.Now())
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// dispatch handles one epoll event.
func (l *Loop) dispatch(ev *unix.EpollEvent) {
	fd := int(ev.Fd)
	switch {
	case fd == l.evfd:
		l.runTasks()
	case fd == l.lnfd:
		l.accept()
	case fd < len(l.conns) && l.conns[fd] != nil:
		l.conns[fd].event(ev.Events)
	}
	l.reap()
}

// runTasks runs the functions given to Submit.
func (l *Loop) runTasks() {
	// Consume the eventfd first, then clear woken, then take the queue. A
	// Submit that sets woken after the clear writes the eventfd after this
	// read, so its wake-up stays pending; clearing before the read would let
	// the read swallow that write while woken stays set, and the next
	// Submit would skip its own write: a lost wake-up.
	var buf [8]byte
	unix.Read(l.evfd, buf[:])
	l.woken.Store(false)
	l.mu.Lock()
	tasks := l.tasks
	l.tasks = l.spare[:0]
	l.mu.Unlock()
	for i, f := range tasks {
		f()
		tasks[i] = nil
		l.reap()
	}
	l.spare = tasks
}

// runReady serves the connections that have input left to read or to
// hand over again. Each gets one turn per wake-up.
func (l *Loop) runReady() {
	ready := l.ready
	l.ready = nil
	for i, c := range ready {
		ready[i] = nil
		c.flags &^= flagReady
		c.resume()
		l.reap()
	}
	if l.ready == nil {
		l.ready = ready[:0]
	}
}

// markReady puts c on the ready list.
func (l *Loop) markReady(c *Conn) {
	if c.flags&flagReady == 0 {
		c.flags |= flagReady
		l.ready = append(l.ready, c)
	}
}

// reap closes the connections that failed or closed during the last
// callback. Closing is deferred to here so that a handler never sees
// OnClose from inside one of its own calls.
func (l *Loop) reap() {
	for len(l.closing) > 0 {
		c := l.closing[len(l.closing)-1]
		l.closing = l.closing[:len(l.closing)-1]
		c.finish()
	}
}

// accept takes new connections from the listening socket.
func (l *Loop) accept() {
	for range acceptBatch {
		fd, err := l.accept4()
		switch err {
		case 0:
		case unix.EINTR, unix.ECONNABORTED:
			continue
		default: // EAGAIN, or EMFILE and the like: level-triggered, we hear again
			return
		}
		remote := rawSockaddrPort(&l.peer)
		if a := l.srv.Admitter; a != nil && !a.Admit(remote.Addr()) {
			refuse(fd)
			continue
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		l.open(fd, remote)
	}
}

// refuse resets a connection the Admitter refused: SO_LINGER 0 makes the
// close send a RST at once, whatever the peer has sent, and keep no
// TIME_WAIT state for it.
func refuse(fd int) {
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	unix.Close(fd)
}

// accept4 is accept4(2) into the loop's peer buffer. unix.Accept4
// allocates the address twice (about 250 bytes per connection), which an
// idle connection's memory would otherwise show until the next GC.
func (l *Loop) accept4() (int, unix.Errno) {
	size := uint32(unsafe.Sizeof(l.peer))
	fd, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(l.lnfd), uintptr(unsafe.Pointer(&l.peer)),
		uintptr(unsafe.Pointer(&size)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	return int(fd), e
}

// rawSockaddrPort converts an accepted peer's address without allocating.
func rawSockaddrPort(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), networkPort(a.Port))
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), networkPort(a.Port))
	}
	return netip.AddrPort{}
}

// networkPort converts a port in network byte order, as the kernel fills
// it into a sockaddr, to a number.
func networkPort(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// open registers an accepted socket with the loop.
func (l *Loop) open(fd int, remote netip.AddrPort) {
	if err := l.watch(fd); err != nil {
		unix.Close(fd)
		l.release(remote.Addr())
		return
	}
	c := l.newConn(fd, remote, l.srv.Handler)
	if l.srv.Admitter != nil {
		c.flags |= flagAdmitted
	}
	c.h.OnOpen(c)
}

// release gives an admitted connection from addr back to the Server's
// Admitter, if it has one.
func (l *Loop) release(addr netip.Addr) {
	if a := l.srv.Admitter; a != nil {
		a.Release(addr)
	}
}

// watch adds a socket to the epoll set: edge-triggered, both directions,
// registered once (see the package doc).
func (l *Loop) watch(fd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
}

// newConn makes the Conn of socket fd and puts it in the loop's table,
// where it counts until finish.
func (l *Loop) newConn(fd int, remote netip.AddrPort, h Handler) *Conn {
	c := &Conn{loop: l, fd: int32(fd), h: h, progress: l.now.UnixNano()}
	c.setRemote(remote)
	c.timer.Func = c.onTimeout
	for fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*Conn, len(l.conns)+64)...)
	}
	l.conns[fd] = c
	l.nconns++
	return c
}

// sockaddrPort converts an accepted peer's address.
func sockaddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}

// closeListener stops the loop accepting. Runs on the loop.
func (l *Loop) closeListener() {
	if l.lnfd >= 0 {
		unix.Close(l.lnfd) // also leaves the epoll set
		l.lnfd = -1
	}
}

// beginDrain stops accepting and closes every connection once its output
// has drained. Runs on the loop (Submitted by Shutdown).
func (l *Loop) beginDrain() {
	l.drain = true
	l.closeListener()
	for _, c := range l.conns {
		if c != nil && c.flags&(flagClosing|flagClosed|flagDetached) == 0 { // detached: at Attach
			c.drain()
		}
	}
}

// drain ends a connection for Shutdown: as its Handler's OnDrain decides,
// or once its output has been sent. A dialed connection still connecting
// closes at once: its queued output is for a peer that will get no chance
// to answer, so none of it is sent.
func (c *Conn) drain() {
	if c.Closed() {
		return
	}
	if d, ok := c.h.(Drainer); ok {
		d.OnDrain(c)
		return
	}
	if c.flags&flagConnecting != 0 {
		c.fail(ErrServerClosed)
		return
	}
	c.err = ErrServerClosed
	c.Close()
}

// forceClose closes every connection now, sent or not.
func (l *Loop) forceClose() {
	for _, c := range l.conns {
		if c != nil {
			c.fail(ErrServerClosed)
		}
	}
}

// exit releases the loop's descriptors and refuses further Submits; tasks
// queued too late are dropped.
func (l *Loop) exit() {
	l.mu.Lock()
	l.done = true
	l.tasks = nil
	unix.Close(l.evfd) // under mu: a Submit may be about to write it
	l.evfd = -1
	l.mu.Unlock()
	l.closeFds()
}

// Listen opens the listening sockets for Start without starting the
// loops, so that a program can report an address in use before it starts
// anything else: one socket per loop on addr ("host:port"; an empty host
// listens on all addresses, IPv4 and IPv6), all bound with SO_REUSEPORT so
// that the kernel spreads new connections over the loops.
func (s *Server) Listen(addr string) error {
	if err := s.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.lnfds != nil {
		return fmt.Errorf("netpoll: server already listening")
	}
	fds, err := listenReusePort(addr, s.loopCount())
	if err != nil {
		return err
	}
	s.lnfds = fds
	if sa, err := unix.Getsockname(fds[0]); err == nil {
		s.addr = sockaddrPort(sa)
	}
	return nil
}

// Start listens on addr, unless Listen already did (addr is then
// ignored), and starts the loops. It returns when they run.
func (s *Server) Start(addr string) error {
	s.mu.Lock()
	listening := s.lnfds != nil
	s.mu.Unlock()
	if !listening {
		if err := s.Listen(addr); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return fmt.Errorf("netpoll: server already started")
	}
	fds := s.lnfds
	now := time.Now()
	for i, fd := range fds {
		l, err := newLoop(s, fd, now)
		if l != nil {
			l.index = i
		}
		if err != nil {
			for _, fd := range fds[i:] {
				unix.Close(fd)
			}
			for _, l := range s.loops {
				l.closeFds()
			}
			s.loops = nil
			return err
		}
		s.loops = append(s.loops, l)
	}
	s.started = true
	s.warm = newWarmer(s.fileWorkers())
	s.loopDone.Add(len(s.loops))
	for _, l := range s.loops {
		go l.run()
	}
	return nil
}

// Addr returns the address the server listens on (after Listen or
// Start).
func (s *Server) Addr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops accepting, closes every connection once its queued
// output is sent (OnClose gets ErrServerClosed) and waits for the loops to
// exit. If ctx ends first it closes the rest at once, waits for the loops
// and returns ctx's error. Protocols that want to finish requests in
// flight do so before calling it.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.started && !s.closing {
		s.closing = true
		for _, fd := range s.lnfds { // Listen without Start
			unix.Close(fd)
		}
	}
	if !s.started || s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	loops := s.loops
	s.mu.Unlock()
	stopAccepting(ctx, loops)
	for _, l := range loops {
		l.Submit(l.beginDrain)
	}
	done := make(chan struct{})
	go func() { // exits when the loops have: at once, or after forceClose
		s.loopDone.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		for _, l := range loops {
			l.Submit(l.forceClose)
		}
		<-done
	}
	s.warm.stop()
	return err
}

// stopAccepting closes every loop's listening socket and waits until all
// have, so that no loop accepts a connection once any has begun to drain
// its own (a loop that has exited has closed its socket; ctx bounds the
// wait).
func stopAccepting(ctx context.Context, loops []*Loop) {
	for _, l := range loops {
		closed := make(chan struct{})
		if l.Submit(func() { l.closeListener(); close(closed) }) != nil {
			continue
		}
		select {
		case <-closed:
		case <-l.exited:
		case <-ctx.Done():
			return
		}
	}
}

// listenReusePort opens n listening sockets on addr with SO_REUSEPORT.
// With port 0 the first socket picks the port and the others share it.
func listenReusePort(addr string, n int) ([]int, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("netpoll: listen: %w", err)
	}
	ip, port := ta.AddrPort().Addr().Unmap(), ta.Port
	if port != 0 {
		if err := probeFree(ip, port); err != nil {
			return nil, fmt.Errorf("netpoll: listen %s: %w", addr, err)
		}
	}
	var fds []int
	for range n {
		fd, err := listenOne(ip, port)
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return nil, fmt.Errorf("netpoll: listen %s: %w", addr, err)
		}
		if port == 0 {
			sa, err := unix.Getsockname(fd)
			if err == nil {
				port = int(sockaddrPort(sa).Port())
			}
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// probeFree binds ip:port without SO_REUSEPORT and lets it go again, so
// that a port another process listens on is refused with EADDRINUSE: with
// SO_REUSEPORT alone, a second server run by the same user would bind it
// too and silently take a share of its connections.
func probeFree(ip netip.Addr, port int) error {
	fd, err := socketFor(ip, port, false)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// listenOne opens one non-blocking listening socket.
func listenOne(ip netip.Addr, port int) (int, error) {
	fd, err := socketFor(ip, port, true)
	if err != nil {
		return -1, err
	}
	if err := unix.Listen(fd, 4096); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("listen", err)
	}
	return fd, nil
}

// socketFor opens a non-blocking TCP socket bound to ip:port, with
// SO_REUSEADDR, and SO_REUSEPORT when reusePort is set.
func socketFor(ip netip.Addr, port int, reusePort bool) (int, error) {
	family := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Port: port, Addr: ip.As16()}
	if ip.Is4() {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: port, Addr: ip.As4()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	opts := [][3]int{{unix.SOL_SOCKET, unix.SO_REUSEADDR, 1}}
	if reusePort {
		opts = append(opts, [3]int{unix.SOL_SOCKET, unix.SO_REUSEPORT, 1})
	}
	if family == unix.AF_INET6 && !ip.IsValid() || ip.IsUnspecified() && family == unix.AF_INET6 {
		opts = append(opts, [3]int{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0})
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o[0], o[1], o[2]); err != nil {
			unix.Close(fd)
			return -1, os.NewSyscallError("setsockopt", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	return fd, nil
}
