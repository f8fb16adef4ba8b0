package netpoll

import "context"

// LoopStats is what one loop counts, for metrics.
type LoopStats struct {
	Index int
	// Wakeups counts the loop's returns from epoll_wait (or from parking
	// on the runtime's poller).
	Wakeups uint64
	// Conns is how many connections the loop holds.
	Conns int
	// Queued is the output its connections hold, not yet taken by the
	// sockets: bytes in memory plus the rest of queued SendFiles.
	Queued int64
}

// Stats reads every running loop's figures. Each loop reads its own, on
// its goroutine, in a function given to Submit, so that counting costs
// the loops nothing between two calls; a loop that does not answer
// before ctx ends (or has stopped) is left out. Safe from any goroutine.
func (s *Server) Stats(ctx context.Context) []LoopStats {
	s.mu.Lock()
	loops := append([]*Loop(nil), s.loops...)
	s.mu.Unlock()
	answers := make(chan LoopStats, len(loops))
	asked := 0
	for _, l := range loops {
		if l.Submit(func() { answers <- l.stats() }) == nil {
			asked++
		}
	}
	out := make([]LoopStats, 0, asked)
	for range asked {
		select {
		case st := <-answers:
			out = append(out, st)
		case <-ctx.Done():
			return out
		}
	}
	return out
}
