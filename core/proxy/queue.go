package proxy

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// Admission: before a request goes to an upstream it takes a slot there
// (take): the upstream's breaker must let it through (a probe when
// half-open), and the route's requests in flight to it must stay within
// Protection.MaxConns. When every usable upstream is at MaxConns, a
// request on a goroutine waits in the route's queue (slotQueue) for a
// slot, at most MaxQueue of them and each at most QueueTimeout; one that
// finds the queue full or waits too long gets 503 with Retry-After. On an
// event loop nothing waits: ServesOnLoop sends a request that would wait
// off the loop, and one that loses a race for the last slot on the loop
// gets the 503 at once.

// slotQueue is the requests of one route waiting for a slot, oldest
// first. Safe for concurrent use: waiting is read without the lock by
// every release; waiters is guarded by mu.
type slotQueue struct {
	max     int
	waiting atomic.Int32 // len(waiters)
	mu      sync.Mutex
	waiters []chan struct{}
}

// enter queues a waiter; false when the queue is full.
func (q *slotQueue) enter() (chan struct{}, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiters) >= q.max {
		return nil, false
	}
	ch := make(chan struct{}, 1)
	q.waiters = append(q.waiters, ch)
	q.waiting.Store(int32(len(q.waiters)))
	return ch, true
}

// leave takes ch out of the queue; false when wake took it out first (and
// so signalled it).
func (q *slotQueue) leave(ch chan struct{}) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, w := range q.waiters {
		if w == ch {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			q.waiting.Store(int32(len(q.waiters)))
			return true
		}
	}
	return false
}

// wake signals the oldest waiter that a slot may be free.
func (q *slotQueue) wake() {
	q.mu.Lock()
	if len(q.waiters) == 0 {
		q.mu.Unlock()
		return
	}
	ch := q.waiters[0]
	q.waiters = q.waiters[1:]
	q.waiting.Store(int32(len(q.waiters)))
	q.mu.Unlock()
	ch <- struct{}{}
}

// take admits a request to u at now. On success u's in-flight count
// includes it, and release must follow. full reports a failure because u
// is at MaxConns (else its breaker refused).
func (h *Handler) take(u *upstream, now int64) (ok, full bool) {
	if n := u.inflight.Add(1); u.maxConns > 0 && n > u.maxConns {
		h.release(u)
		return false, true
	}
	if u.brk == nil {
		return true, false
	}
	ok, t := u.brk.admit(&h.cfg.Protect.Breaker, now)
	h.logTransition(u, t)
	if !ok {
		h.release(u)
	}
	return ok, false
}

// release ends a request's slot on u and wakes a waiter, if any.
func (h *Handler) release(u *upstream) {
	u.inflight.Add(-1)
	if h.queue != nil && h.queue.waiting.Load() > 0 {
		h.queue.wake()
	}
}

// pickTake picks an upstream for the request and takes a slot on it. It
// returns -1 when there is none, with full true when some usable
// upstream was left out only because it is at MaxConns.
func (h *Handler) pickTake(c *choice, t *tried, now int64) (i int, full bool) {
	for range len(h.ups) + 2 { // a slot lost to a race is looked for again, a few times
		i = h.bal.pickUncounted(c, t, now)
		if i < 0 {
			return -1, h.bal.anyFull(t, now)
		}
		ok, isFull := h.take(h.ups[i], now)
		switch {
		case ok:
			h.bal.count(i, t)
			return i, false
		case !isFull:
			t.add(i) // its half-open breaker has its probes out
		}
	}
	return -1, true
}

// pickOrWait is pickTake for a request on a goroutine: when every usable
// upstream is at MaxConns it waits in the queue for a slot. busy reports
// that it found the queue full or waited QueueTimeout in vain.
func (h *Handler) pickOrWait(c *choice, t *tried) (i int, busy bool) {
	var deadline time.Time
	for {
		i, full := h.pickTake(c, t, time.Now().UnixNano())
		if i >= 0 || !full {
			return i, false
		}
		if !h.waitSlot(&deadline, t) {
			return -1, true
		}
	}
}

// waitSlot waits in the queue until a slot may be free (true) or until
// *deadline, set to QueueTimeout from the first wait (false; also when
// the queue is full or there is none).
func (h *Handler) waitSlot(deadline *time.Time, t *tried) bool {
	q := h.queue
	if q == nil {
		return false
	}
	if deadline.IsZero() {
		*deadline = time.Now().Add(h.cfg.Protect.QueueTimeout)
	}
	left := time.Until(*deadline)
	if left <= 0 {
		return false
	}
	ch, ok := q.enter()
	if !ok {
		return false
	}
	// A slot freed between the pick and enter woke no one: look again.
	if h.bal.anyRoom(t, time.Now().UnixNano()) {
		if !q.leave(ch) {
			q.wake() // signalled meanwhile: pass it on
		}
		return true
	}
	timer := time.NewTimer(left)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		if !q.leave(ch) {
			q.wake() // signalled as the time ran out: pass it on
		}
		return false
	}
}

// saturated reports whether a request now would wait in the queue: every
// upstream that may take requests is at MaxConns. ServesOnLoop sends such
// a request off the loop.
func (h *Handler) saturated() bool {
	if h.queue == nil {
		return false
	}
	var none tried
	now := time.Now().UnixNano()
	return h.bal.anyFull(&none, now) && !h.bal.anyRoom(&none, now)
}

// answerBusy answers a request that found no slot: 503, to try again in
// a second.
func (h *Handler) answerBusy(w message.ResponseWriter, isHead bool) {
	h.log.Debug("proxy: every upstream at max_conns; request refused", "route", h.cfg.Name,
		"queued", h.queue != nil)
	w.Header().Set("Retry-After", strconv.Itoa(1))
	respondStatus(w, isHead, 503, statusText(503))
}

// anyFull reports whether an upstream not in t is available at now but
// at its MaxConns.
func (b *balancer) anyFull(t *tried, now int64) bool {
	for i, u := range b.ups {
		if !t.has(i) && u.available(now) && !u.hasRoom() {
			return true
		}
	}
	return false
}

// anyRoom reports whether an upstream not in t could take a request at
// now.
func (b *balancer) anyRoom(t *tried, now int64) bool {
	for i := range b.ups {
		if b.usable(i, t, now) {
			return true
		}
	}
	return false
}

// hasRoom reports whether u is below its MaxConns.
func (u *upstream) hasRoom() bool {
	return u.maxConns <= 0 || u.inflight.Load() < u.maxConns
}

// allBroken reports whether every upstream's breaker keeps requests
// away at now.
func (h *Handler) allBroken(now int64) bool {
	for _, u := range h.ups {
		if u.brk == nil || u.brk.allows(u.brkCfg, now) {
			return false
		}
	}
	return true
}

// logTransition logs a breaker's change of state, if any.
func (h *Handler) logTransition(u *upstream, t *transition) {
	if t == nil {
		return
	}
	log := h.log.Info
	if t.to == breakerOpen {
		log = h.log.Warn
	}
	log("proxy: circuit breaker "+t.to.String(), "route", h.cfg.Name, "upstream", u.url,
		"from", t.from.String(), "reason", t.reason)
}

// noteOutcome tells u's breaker how a request it let through ended.
func (h *Handler) noteOutcome(u *upstream, ok bool) {
	if u.brk != nil {
		h.logTransition(u, u.brk.record(&h.cfg.Protect.Breaker, ok, time.Now().UnixNano()))
	}
}
