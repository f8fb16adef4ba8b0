//go:build !linux

package h3

import "net"

// raiseBuffers reports that it cannot check pc's buffers on this system;
// quic-go raises them itself and prints its own warning if it cannot.
func raiseBuffers(pc net.PacketConn, want int) (rcv, snd int, ok bool) {
	return 0, 0, false
}
