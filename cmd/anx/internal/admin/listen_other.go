//go:build !linux

package admin

import "syscall"

// reusePort does nothing here: the port is not shared.
func reusePort(_, _ string, _ syscall.RawConn) error { return nil }
