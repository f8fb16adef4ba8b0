package h1

import (
	"context"

	"github.com/anx-gateway/anx/core/netpoll"
	"github.com/anx-gateway/anx/tls/onloop"
)

// LoopStats reads the figures of the event loops of Listen and Start
// (netpoll.Server.Stats), and ConnStats those of their connection layer
// (onloop.Handler.Stats): for metrics. Both are empty before Start. Safe
// from any goroutine.
func (s *Server) LoopStats(ctx context.Context) []netpoll.LoopStats {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	if loops == nil {
		return nil
	}
	return loops.Stats(ctx)
}

// ConnStats reads the connection layer's counts; see LoopStats.
func (s *Server) ConnStats() onloop.Stats {
	s.mu.Lock()
	front := s.front
	s.mu.Unlock()
	if front == nil {
		return onloop.Stats{}
	}
	return front.Stats()
}
