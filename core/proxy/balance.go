package proxy

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// balancer picks upstreams for one route. It is safe for concurrent use.
type balancer struct {
	policy  Policy
	ups     []*upstream
	header  string // HeaderHash's field
	cookie  string // CookieSticky's cookie
	next    atomic.Uint64
	wrrMu   sync.Mutex // guards wrrCur
	wrrCur  []int      // smooth weighted round robin's current weights
	slowDur int64      // slow start, nanoseconds
}

func newBalancer(cfg *Config, ups []*upstream) *balancer {
	return &balancer{
		policy: cfg.Policy, ups: ups, header: cfg.HashHeader, cookie: cfg.Cookie,
		wrrCur: make([]int, len(ups)), slowDur: int64(cfg.SlowStart),
	}
}

// choice is what a request brings to the balancer, taken from it once
// so that a retry can pick again after the request is gone: its hash key
// under a hashing policy, and the upstream its stickiness cookie names.
type choice struct {
	key    uint64
	hashed bool // key applies
	sticky int  // index of the upstream the cookie names, or -1
}

// choose takes from r what picking an upstream for it needs.
func (b *balancer) choose(r *message.Request) choice {
	c := choice{sticky: -1}
	c.key, c.hashed = b.hashKey(r)
	if b.policy == CookieSticky {
		c.sticky = b.byCookie(r)
	}
	return c
}

// pick returns the index of the upstream for r among those available at
// now and not yet tried, or -1 when there is none.
func (b *balancer) pick(r *message.Request, t *tried, now int64) int {
	c := b.choose(r)
	return b.pickFor(&c, t, now)
}

// pickUncounted is pickFor without counting the attempt.
func (b *balancer) pickUncounted(c *choice, t *tried, now int64) int {
	if c.hashed {
		return b.rendezvous(c.key, t, now)
	}
	if c.sticky >= 0 && b.usable(c.sticky, t, now) {
		return c.sticky
	}
	i := b.pickLoad(t, now)
	if i < 0 || b.slowDur <= 0 {
		return i
	}
	// Slow start: an upstream that came back recently is passed over
	// with the probability of the share it does not have yet, if another
	// one can take the request.
	if share := b.ups[i].slowStartShare(time.Duration(b.slowDur), now); share < 1 && rand.Float64() >= share {
		if j := b.after(i, t, now); j >= 0 {
			return j
		}
	}
	return i
}

// after returns the first usable upstream after i in the list, going
// round, other than i; -1 when there is none. It moves no policy's state,
// so passing an upstream over does not skew the policy's own order.
func (b *balancer) after(i int, t *tried, now int64) int {
	n := len(b.ups)
	for k := 1; k < n; k++ {
		if j := (i + k) % n; b.usable(j, t, now) {
			return j
		}
	}
	return -1
}

// usable reports whether upstream i may take the request.
func (b *balancer) usable(i int, t *tried, now int64) bool {
	return !t.has(i) && b.ups[i].available(now) && b.ups[i].hasRoom()
}

// pickLoad applies the policies that do not hash.
func (b *balancer) pickLoad(t *tried, now int64) int {
	switch b.policy {
	case First:
		return b.first(t, now)
	case LeastConn:
		return b.leastConn(t, now)
	case RandomTwo:
		return b.randomTwo(t, now)
	case WeightedRoundRobin:
		return b.weighted(t, now)
	}
	return b.roundRobin(t, now)
}

func (b *balancer) first(t *tried, now int64) int {
	for i := range b.ups {
		if b.usable(i, t, now) {
			return i
		}
	}
	return -1
}

func (b *balancer) roundRobin(t *tried, now int64) int {
	n := len(b.ups)
	start := int(b.next.Add(1) % uint64(n))
	for k := range n {
		if i := (start + k) % n; b.usable(i, t, now) {
			return i
		}
	}
	return -1
}

// leastConn picks the usable upstream with the fewest requests in flight
// relative to its weight; ties go round the list.
func (b *balancer) leastConn(t *tried, now int64) int {
	n := len(b.ups)
	start := int(b.next.Add(1) % uint64(n))
	best, bestLoad := -1, math.Inf(1)
	for k := range n {
		i := (start + k) % n
		if !b.usable(i, t, now) {
			continue
		}
		if load := b.load(i); load < bestLoad {
			best, bestLoad = i, load
		}
	}
	return best
}

func (b *balancer) load(i int) float64 {
	return float64(b.ups[i].inflight.Load()) / float64(b.ups[i].weight)
}

// randomTwo picks two usable upstreams at random and keeps the less
// loaded ("the power of two choices").
func (b *balancer) randomTwo(t *tried, now int64) int {
	var usable [64]int
	cand := usable[:0]
	for i := range b.ups {
		if b.usable(i, t, now) {
			cand = append(cand, i)
		}
	}
	switch len(cand) {
	case 0:
		return -1
	case 1:
		return cand[0]
	}
	x := rand.IntN(len(cand))
	y := rand.IntN(len(cand) - 1)
	if y >= x {
		y++
	}
	if b.load(cand[y]) < b.load(cand[x]) {
		return cand[y]
	}
	return cand[x]
}

// weighted is nginx's smooth weighted round robin over the usable
// upstreams: each gains its weight, the highest is picked and loses the
// total.
func (b *balancer) weighted(t *tried, now int64) int {
	b.wrrMu.Lock()
	defer b.wrrMu.Unlock()
	best, total := -1, 0
	for i, u := range b.ups {
		if !b.usable(i, t, now) {
			continue
		}
		b.wrrCur[i] += u.weight
		total += u.weight
		if best < 0 || b.wrrCur[i] > b.wrrCur[best] {
			best = i
		}
	}
	if best >= 0 {
		b.wrrCur[best] -= total
	}
	return best
}

// hashKey returns the key a hashing policy hashes for r, or false when
// the policy does not hash (or r has no key: then it goes round robin).
func (b *balancer) hashKey(r *message.Request) (uint64, bool) {
	switch b.policy {
	case IPHash:
		a := r.RemoteAddr.Addr().Unmap().As16()
		return hashBytes(a[:]), true
	case URIHash:
		return hashString(r.Path + "?" + r.RawQuery), true
	case HeaderHash:
		if v := r.Header.Get(b.header); v != "" {
			return hashString(v), true
		}
	}
	return 0, false
}

// rendezvous picks by highest random weight (rendezvous hashing): each
// usable upstream scores hash(key, upstream), weighted, and the best
// wins. Removing an upstream moves only the keys it had; the others stay
// where they were.
func (b *balancer) rendezvous(key uint64, t *tried, now int64) int {
	best, bestScore := -1, -1.0
	for i, u := range b.ups {
		if !b.usable(i, t, now) {
			continue
		}
		// A uniform value in (0, 1) from the pair's hash, weighted as
		// in "weighted rendezvous hashing": -w / ln(x).
		x := (float64(mix(key^u.key)>>11) + 0.5) / (1 << 53)
		if score := -float64(u.weight) / math.Log(x); score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// byCookie returns the upstream that r's stickiness cookie names, or -1
// (pickFor checks that it is usable).
func (b *balancer) byCookie(r *message.Request) int {
	id := cookieValue(&r.Header, b.cookie)
	if id == "" {
		return -1
	}
	for i, u := range b.ups {
		if u.id == id {
			return i
		}
	}
	return -1
}

// cookieValue returns the value of the cookie called name in h's Cookie
// fields, or "".
func cookieValue(h *message.Header, name string) string {
	for v := range h.Values("Cookie") {
		for pair := range strings.SplitSeq(v, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && k == name {
				return strings.Trim(val, `"`)
			}
		}
	}
	return ""
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return mix(h.Sum64())
}

func hashBytes(p []byte) uint64 {
	h := fnv.New64a()
	h.Write(p)
	return mix(h.Sum64())
}

// mix is splitmix64's finaliser: it spreads FNV's weak low bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
