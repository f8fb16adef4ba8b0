//go:build !linux

package h3

import (
	"context"
	"errors"
	"net"
)

// ListenPacket opens a UDP socket on addr for Serve.
func ListenPacket(ctx context.Context, addr string) (net.PacketConn, error) {
	return (&net.ListenConfig{}).ListenPacket(ctx, "udp", addr)
}

// SteerToSuccessor needs Linux's SO_ATTACH_REUSEPORT_CBPF.
func SteerToSuccessor(pc net.PacketConn, ownTag, successorTag uint32) error {
	return errors.ErrUnsupported
}
