package main

// Binary upgrade on SIGUSR2, nginx's convention.
//
// The running anx starts the binary now at its own path (os.Executable:
// the file as it is on disk now, so a rebuilt or replaced binary), with
// the same arguments, environment and working directory, and hands it its
// listening sockets: the HTTPS port's TCP sockets (one per event loop,
// SO_REUSEPORT), the plain-HTTP port's, and the UDP socket of HTTP/3, as
// inherited descriptors named by ANX_UPGRADE_FDS (upgrade_child.go), plus
// the write end of a pipe. The new process loads the config itself (same
// flags, same file), serves the inherited sockets instead of binding, and
// once it serves writes "ready" on the pipe. The old process then stops
// accepting, answers each HTTP/1.1 request for a second more with
// Connection: close (retire), drains as on SIGTERM (gateway.shutdown),
// and exits 0. If the new process exits, writes why it failed, or is not
// ready within upgradeTimeout, the old one kills it if it still runs,
// keeps serving and logs the reason.
//
// TCP loses nothing at the sockets: they are the same sockets in both
// processes, so a connection queued on one is accepted by whichever
// process accepts first. The old process's connections then end: HTTP/1.1
// ones after a response with Connection: close (retire), the rest as on
// SIGTERM (requests in flight finish; HTTP/2 gets one GOAWAY, and its
// client retries a stream it opened as the GOAWAY came).
//
// HTTP/3 has a UDP socket per process on the port (SO_REUSEPORT), and
// the kernel must send each datagram to the process that holds its
// connection: before starting the new process, the old one attaches a BPF
// program to the port (h3.SteerToSuccessor) that sends a packet whose
// connection ID carries the new process's tag (h3.Server.ConnectionIDTag,
// chosen here and handed over), or a handshake of a new connection, to the
// new socket, and the rest to its own. The old process sends GOAWAY on its
// connections (h3.Server.Shutdown) and reads their packets until they have
// drained, so their requests finish; the new process serves the new
// connections. A connection whose handshake completes in the old process
// as it stops accepting is closed with H3_REQUEST_REJECTED (h3/listen.go),
// so that its client sends again on a new connection. The program counts
// on two sockets at most on the port, so an upgrade waits until the old
// process of the previous one has exited. Neither process has a stateless
// reset key (quic-go sends no reset without one): a stray packet is
// dropped, never answered with a reset that would end a connection the
// other process serves.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/anx-gateway/anx/h3"
)

// upgradeTimeout bounds the wait for the new process to be ready.
const upgradeTimeout = 30 * time.Second

// handOver runs a binary upgrade (see the top of this file). It reports
// whether the new process serves, in which case the caller drains and
// exits; otherwise it has logged why, and this process serves on.
func (gw *gateway) handOver(ctx context.Context) bool {
	if in := gw.inherited; in.predecessorRunning() {
		gw.log.Error("upgrade refused: the old process of the last upgrade is still draining; send SIGUSR2 again once it has exited", "pid", in.parent)
		return false
	}
	gw.log.Info("upgrade: starting the new binary")
	pid, err := gw.upgrade(ctx)
	if err != nil {
		gw.log.Error("upgrade failed; serving on", "err", err)
		return false
	}
	gw.log.Info("upgrade: new process ready; draining", "pid", pid, "drain", gw.drainTimeout())
	gw.retire()
	return true
}

// retireGrace is how long the old process serves on after the new one is
// ready, accepting nothing, before it drains: long next to the turn of a
// client under load (microseconds to milliseconds), so that each busy
// HTTP/1.1 keep-alive connection gets its next request answered with
// Connection: close, and a TLS handshake under way completes and gets its
// first request answered so, instead of being cut by the drain.
const retireGrace = time.Second

// retire stops the TCP listeners accepting here (the new process accepts
// on the same sockets), makes HTTP/1.1 responses close their connections,
// and waits retireGrace; the drain then finds those connections gone and
// closes what is idle.
func (gw *gateway) retire() {
	ctx, cancel := context.WithTimeout(context.Background(), gw.drainTimeout())
	defer cancel()
	gw.h1TLS.Retire(ctx)
	gw.h1Plain.Retire(ctx)
	time.Sleep(retireGrace)
}

// upgrade starts the new process with the sockets and waits for its ready
// line. It returns the new process's pid, or why it is not serving (it has
// then been stopped and reaped).
func (gw *gateway) upgrade(ctx context.Context) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("upgrade: %w", err)
	}
	handed, err := gw.handedSockets()
	if err != nil {
		return 0, fmt.Errorf("upgrade: %w", err)
	}
	defer handed.close()
	if err := h3.SteerToSuccessor(gw.udp, gw.quicTag, handed.quicTag); err != nil {
		return 0, fmt.Errorf("upgrade: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("upgrade: %w", err)
	}
	defer r.Close()
	pid, err := handed.start(exe, w)
	w.Close() // the child's copy stays: EOF here means it is gone
	if err != nil {
		return 0, fmt.Errorf("upgrade: starting %s: %w", exe, err)
	}
	if err := waitReady(ctx, r); err != nil {
		return 0, fmt.Errorf("upgrade: %s (pid %d): %w", exe, pid, stopChild(pid, err))
	}
	return pid, nil
}

// handedSockets are copies of the descriptors a new process inherits;
// owned by upgrade, which closes them once the process has started.
type handedSockets struct {
	https, http []int
	udp         int
	quicTag     uint32 // the new process's h3.Server.ConnectionIDTag
}

// handedSockets copies the gateway's listening sockets and picks the new
// process's tag.
func (gw *gateway) handedSockets() (*handedSockets, error) {
	h := &handedSockets{udp: -1, quicTag: h3.NewConnectionIDTag()}
	for h.quicTag == gw.quicTag {
		h.quicTag = h3.NewConnectionIDTag()
	}
	var err error
	if h.https, err = gw.h1TLS.DupListeners(); err != nil {
		return nil, err
	}
	if h.http, err = gw.h1Plain.DupListeners(); err != nil {
		h.close()
		return nil, err
	}
	if h.udp, err = dupPacketConn(gw.udp); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

// dupPacketConn copies a UDP socket's descriptor (close-on-exec) without
// touching its blocking mode, which the copy shares: os.File.Fd would set
// it blocking under the running server.
func dupPacketConn(pc any) (int, error) {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return -1, errors.New("the HTTP/3 socket has no descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	dup, dupErr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) {
		dup, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 3)
	}); err != nil {
		return -1, err
	}
	return dup, dupErr
}

// close closes the copies.
func (h *handedSockets) close() {
	for _, fd := range append(append([]int{h.udp}, h.https...), h.http...) {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// start forks and execs exe with this process's arguments and
// environment; the child gets stdin, stdout and stderr, then the sockets
// and ready's pipe as descriptors 3 and up, named in upgradeEnv.
// syscall.ForkExec takes the raw descriptors as they are, where os/exec
// would set each one blocking (os.File.Fd) under the running loops.
func (h *handedSockets) start(exe string, ready *os.File) (int, error) {
	readyFd, err := fileDescriptor(ready)
	if err != nil {
		return 0, err
	}
	files := []uintptr{0, 1, 2}
	add := func(fds ...int) string {
		var nums []string
		for _, fd := range fds {
			nums = append(nums, strconv.Itoa(len(files)))
			files = append(files, uintptr(fd))
		}
		return strings.Join(nums, ",")
	}
	spec := "https=" + add(h.https...) + " http=" + add(h.http...) + " udp=" + add(h.udp) + " ready=" + add(readyFd) +
		" quic=" + formatTag(h.quicTag) + " parent=" + strconv.Itoa(os.Getpid())
	env := append(environWithout(upgradeEnv), upgradeEnv+"="+spec)
	argv := append([]string{os.Args[0]}, os.Args[1:]...)
	return syscall.ForkExec(exe, argv, &syscall.ProcAttr{Env: env, Files: files})
}

// fileDescriptor is f's descriptor, through its raw conn so that its
// blocking mode is left alone. The pipe's write end is the child's only.
func fileDescriptor(f *os.File) (int, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	err = raw.Control(func(d uintptr) { fd = int(d) })
	return fd, err
}

// environWithout returns the environment less the variable name.
func environWithout(name string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, name+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// errNotReady is what a new process that ended its pipe without a ready
// line did: it exited or closed it.
var errNotReady = errors.New("it exited before it was ready")

// waitReady waits for the new process's line on r: "ready", or "failed:
// why". It gives up after upgradeTimeout or when ctx ends (a stop signal
// came meanwhile).
func waitReady(ctx context.Context, r *os.File) error {
	lines := make(chan error, 1)
	go func() { // exits at the line, or at EOF: the child and our copy of its end closed
		line, err := bufio.NewReader(r).ReadString('\n')
		line = strings.TrimSpace(line)
		switch {
		case line == "ready":
			lines <- nil
		case line != "":
			lines <- errors.New(line)
		case err != nil:
			lines <- errNotReady
		}
	}()
	timer := time.NewTimer(upgradeTimeout)
	defer timer.Stop()
	select {
	case err := <-lines:
		return err
	case <-timer.C:
		r.SetReadDeadline(time.Now()) // ends the reader
		return fmt.Errorf("not ready within %v", upgradeTimeout)
	case <-ctx.Done():
		r.SetReadDeadline(time.Now())
		return errors.New("a stop signal came before it was ready")
	}
}

// stopChild kills the new process if it still runs and reaps it, and
// returns why (err) with how it ended.
func stopChild(pid int, why error) error {
	_ = syscall.Kill(pid, syscall.SIGKILL) // an exited (zombie) child ignores it
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	switch {
	case ws.Exited():
		return fmt.Errorf("%w (exit status %d)", why, ws.ExitStatus())
	case ws.Signaled() && ws.Signal() == syscall.SIGKILL:
		return fmt.Errorf("%w (killed)", why)
	case ws.Signaled():
		return fmt.Errorf("%w (signal %v)", why, ws.Signal())
	}
	return why
}
