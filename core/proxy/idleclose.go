package proxy

import (
	"sync/atomic"
	"time"
)

// idleCloseLearner remembers how long an upstream lets a connection idle
// before it closes it, learned from the pooled connections it was seen
// to close, for upstreams that do not say so in a "Keep-Alive: timeout=N"
// field (net/http's IdleTimeout, Node's 5 s keepAliveTimeout). Once it
// has seen one, a pooled connection is not reused past that idle time
// less a margin, so that a request does not cross the upstream's close:
// a non-idempotent request lost that way cannot be sent again, and the
// client would get a 502. Safe for concurrent use.
type idleCloseLearner struct {
	shortest atomic.Int64 // nanoseconds; 0 until a close was seen
}

// minLearnedIdleClose is the shortest idle time taken as the upstream's
// idle timeout: a close after less (an upstream restarting, a crash) says
// nothing about its keep-alive policy, and learning it would all but end
// connection reuse.
const minLearnedIdleClose = time.Second

// observe records that the upstream closed a connection that had been
// idle for idle, or about as long (found closed when taken from the pool).
func (l *idleCloseLearner) observe(idle time.Duration) {
	if idle < minLearnedIdleClose {
		return
	}
	for {
		old := l.shortest.Load()
		if old != 0 && old <= int64(idle) {
			return
		}
		if l.shortest.CompareAndSwap(old, int64(idle)) {
			return
		}
	}
}

// reuseLimit is how long a pooled connection may have been idle and
// still carry a request: the shortest idle close seen less a quarter of
// it, at most a second (a 1 s timeout gives 750 ms, Node's 5 s gives
// 4 s); unlimited until a close was seen.
func (l *idleCloseLearner) reuseLimit() time.Duration {
	shortest := time.Duration(l.shortest.Load())
	if shortest == 0 {
		return maxDuration
	}
	return shortest - min(shortest/4, time.Second)
}
