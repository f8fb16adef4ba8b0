package h3

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/quic-go/quic-go"
)

// Admitter decides, from the client's address alone, whether the Server
// takes a new QUIC connection: asked when its first Initial packet
// arrives, before any handshake work. A refused connection gets QUIC's
// CONNECTION_REFUSED at once, so its client fails fast instead of
// waiting for a timeout. Admit may run on quic-go's goroutines; it must
// not block.
type Admitter interface {
	// Admit reports whether to take a connection from addr. Each true is
	// followed by exactly one Release, when the connection has ended
	// (closed, timed out, or its handshake failed).
	Admit(addr netip.Addr) bool
	// Release gives back a connection Admit took.
	Release(addr netip.Addr)
}

// errRefused is what the Transport's ConnContext returns for a
// connection the Admitter refused; quic-go answers CONNECTION_REFUSED.
var errRefused = errors.New("h3: connection refused by the connection limit")

// connContext returns the quic.Transport's ConnContext, which asks the
// Admitter, or nil without one.
func (s *Server) connContext() func(context.Context, *quic.ClientInfo) (context.Context, error) {
	if s.Admitter == nil {
		return nil
	}
	return s.admit
}

// admit asks the Admitter about a new connection and, once it is taken,
// releases it when the connection's context ends: quic-go cancels it when
// the connection closes or its handshake fails.
func (s *Server) admit(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	addr := clientAddr(info.RemoteAddr)
	if !s.Admitter.Admit(addr) {
		return nil, errRefused
	}
	context.AfterFunc(ctx, func() { s.Admitter.Release(addr) })
	return ctx, nil
}

// clientAddr is the IP address of a UDP peer, unmapped.
func clientAddr(a net.Addr) netip.Addr {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
