package h3

import (
	"context"

	"github.com/quic-go/quic-go"
)

// Conns returns how many QUIC connections are open, for metrics. Safe
// from any goroutine.
func (s *Server) Conns() int64 { return s.conns.Load() }

// countConn is quic-go's ConnContext: it counts the connection until its
// context ends, which it does when the connection closes.
func (s *Server) countConn(ctx context.Context, c *quic.Conn) context.Context {
	s.conns.Add(1)
	context.AfterFunc(c.Context(), func() { s.conns.Add(-1) })
	return ctx
}
