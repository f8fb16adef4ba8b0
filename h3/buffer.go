package h3

import (
	"net"
	"os"
)

// wantBufferBytes is the socket buffer size quic-go asks for, in each
// direction, and checks against the size the kernel reports (7 MiB; on
// Linux the kernel reports twice what it was asked, within its limits).
const wantBufferBytes = 7 << 20

// quicBufferWarningEnv is the variable that, when true, keeps quic-go
// from printing its own buffer warning through the standard logger.
const quicBufferWarningEnv = "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING"

// bufferFix is the advice logged when the buffers cannot be raised; the
// values are those of quic-go's wiki page on UDP buffer sizes.
const bufferFix = "h3: UDP socket buffers are smaller than QUIC needs, which limits throughput; " +
	"raise the system limits with: sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000 " +
	"(see https://github.com/quic-go/quic-go/wiki/UDP-Buffer-Sizes)"

// checkBuffers raises pc's socket buffers to wantBufferBytes before
// quic-go sees pc, the way quic-go would. When the system refuses, it
// logs one warning with the sysctl fix and sets quicBufferWarningEnv
// (unless the environment already sets it), so that quic-go, finding the
// same too-small buffers, does not print its own warning to stderr. That
// variable is process-wide: it also silences quic-go's warning for other
// sockets, which the system limits this message names would equally
// affect.
func (s *Server) checkBuffers(pc net.PacketConn) {
	s.checkBuffersWant(pc, wantBufferBytes)
}

// checkBuffersWant is checkBuffers with the wanted size as a parameter,
// so that a test can ask for more than any system grants.
func (s *Server) checkBuffersWant(pc net.PacketConn, want int) {
	rcv, snd, ok := raiseBuffers(pc, want)
	if !ok || (rcv >= want && snd >= want) {
		return
	}
	s.logger().Warn(bufferFix, "receive_kib", rcv>>10, "send_kib", snd>>10, "want_kib", want>>10)
	if _, set := os.LookupEnv(quicBufferWarningEnv); !set {
		_ = os.Setenv(quicBufferWarningEnv, "true")
	}
}
