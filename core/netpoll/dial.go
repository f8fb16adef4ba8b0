package netpoll

import (
	"errors"
	"net/netip"
	"strings"
)

// ConnectError is what OnClose gets when a dialed connection (see
// Loop.Dial) closes before its connect completed: refused, unreachable,
// timed out, or closed by Shutdown (a Close before OnOpen gives OnClose a
// nil error, as for any connection). OnOpen was never called and
// nothing queued with Write was sent, so a request written ahead may be
// retried elsewhere. It wraps the cause: the errno (errors.Is(err,
// syscall.ECONNREFUSED)), ErrTimeout for a timeout set with SetTimeout, or
// ErrServerClosed.
type ConnectError struct {
	Remote netip.AddrPort // the address dialed; zero for a Unix socket
	Err    error
}

func (e *ConnectError) Error() string {
	msg := "netpoll: connect"
	if e.Remote.IsValid() {
		msg += " to " + e.Remote.String()
	}
	return msg + ": " + strings.TrimPrefix(e.Err.Error(), "netpoll: ")
}

// Unwrap returns the cause.
func (e *ConnectError) Unwrap() error { return e.Err }

// Timeout reports whether the connect timed out: the timeout set with
// SetTimeout, or the kernel's (ETIMEDOUT).
func (e *ConnectError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}
