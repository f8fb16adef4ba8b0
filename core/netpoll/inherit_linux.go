package netpoll

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ListenFDs is Listen on listening sockets the program already holds (a
// binary upgrade hands them from the old process to the new one): one
// loop per socket, so Loops becomes len(fds). The Server owns the fds from
// now on (it makes them non-blocking and close-on-exec, and closes them at
// Shutdown); they must be listening TCP sockets on one address.
func (s *Server) ListenFDs(fds []int) error {
	if len(fds) == 0 {
		return fmt.Errorf("netpoll: no inherited listening socket")
	}
	if err := s.Validate(); err != nil {
		return err
	}
	for _, fd := range fds {
		if err := checkListening(fd); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.lnfds != nil {
		return fmt.Errorf("netpoll: server already listening")
	}
	sa, err := unix.Getsockname(fds[0])
	if err != nil {
		return fmt.Errorf("netpoll: inherited socket %d: %w", fds[0], os.NewSyscallError("getsockname", err))
	}
	s.Loops = len(fds)
	s.lnfds = append([]int(nil), fds...)
	s.addr = sockaddrPort(sa)
	return nil
}

// checkListening makes sure fd is a listening TCP socket and readies it
// for a loop: non-blocking, closed on exec.
func checkListening(fd int) error {
	accepting, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil {
		return fmt.Errorf("netpoll: inherited fd %d: %w", fd, os.NewSyscallError("getsockopt", err))
	}
	if accepting != 1 {
		return fmt.Errorf("netpoll: inherited fd %d is not a listening socket", fd)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return fmt.Errorf("netpoll: inherited fd %d: %w", fd, err)
	}
	unix.CloseOnExec(fd)
	return nil
}

// DupListeners returns copies (close-on-exec) of the listening sockets,
// one per loop, for a new process to inherit: the caller owns and closes
// them. Each loop makes its copy on its own goroutine, which owns its
// socket; it fails once a loop has stopped accepting.
func (s *Server) DupListeners() ([]int, error) {
	s.mu.Lock()
	loops, started := s.loops, s.started
	s.mu.Unlock()
	if !started {
		return nil, fmt.Errorf("netpoll: DupListeners before Start")
	}
	var fds []int
	for _, l := range loops {
		fd, err := l.dupListener()
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return nil, err
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// dupListener copies the loop's listening socket on the loop's goroutine.
func (l *Loop) dupListener() (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	err := l.Submit(func() {
		if l.lnfd < 0 {
			ch <- result{-1, fmt.Errorf("netpoll: loop %d no longer accepts", l.index)}
			return
		}
		fd, err := unix.FcntlInt(uintptr(l.lnfd), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			err = os.NewSyscallError("fcntl", err)
		}
		ch <- result{fd, err}
	})
	if err != nil {
		return -1, err
	}
	select {
	case r := <-ch:
		return r.fd, r.err
	case <-l.exited: // the task may have run just before
		select {
		case r := <-ch:
			return r.fd, r.err
		default:
			return -1, ErrServerClosed
		}
	}
}

// StopAccepting closes the listening sockets, each on its loop, and
// returns once every loop has stopped accepting (or ctx has ended); the
// connections go on being served until Shutdown. A process handing its
// sockets over calls it so that the new process alone accepts: the
// sockets stay open in the process that inherited them.
func (s *Server) StopAccepting(ctx context.Context) {
	s.mu.Lock()
	loops, started := s.loops, s.started
	s.mu.Unlock()
	if started {
		stopAccepting(ctx, loops)
	}
}
