package h3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// ListenPacket opens a UDP socket on addr for Serve, with SO_REUSEPORT so
// that the new process of a binary upgrade can open its own on the same
// port (see SteerToSuccessor).
func ListenPacket(ctx context.Context, addr string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return control(c, func(fd int) error {
			return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
	}}
	return lc.ListenPacket(ctx, "udp", addr)
}

// SteerToSuccessor makes the kernel deliver each QUIC packet that reaches
// pc's port to the process holding its connection, once the successor
// (the new process of a binary upgrade, whose server has successorTag)
// has opened its socket there with ListenPacket: pc must have come from
// ListenPacket, its server must have ownTag, and no other socket may be
// open on the port. See the top of steer.go.
func SteerToSuccessor(pc net.PacketConn, ownTag, successorTag uint32) error {
	prog, err := steeringProgram(ownTag, successorTag)
	if err != nil {
		return fmt.Errorf("h3: steering program: %w", err)
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return errors.New("h3: steering: the socket has no descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("h3: steering: %w", err)
	}
	err = control(raw, func(fd int) error {
		return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, fprog)
	})
	if err != nil {
		return fmt.Errorf("h3: steering: SO_ATTACH_REUSEPORT_CBPF: %w", err)
	}
	return nil
}

// control runs set on the descriptor of c and returns what either failed
// with.
func control(c syscall.RawConn, set func(fd int) error) error {
	var setErr error
	if err := c.Control(func(fd uintptr) { setErr = set(int(fd)) }); err != nil {
		return err
	}
	return setErr
}
