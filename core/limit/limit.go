// Package limit is anx's request rate limiter, with the semantics of
// nginx's limit_req: a leaky bucket per key, whose level ("excess") is
// kept in thousandths of a request and drains at the rate, measured on a
// millisecond clock. A request is allowed while the excess it would
// leave is at most the burst; an allowed request beyond the first
// Delay of the burst is delayed until the excess it added has drained
// (nginx's default; NoDelay allows it at once), and a refused one leaves
// the bucket as it was. Handler wraps a message.Handler with a Limiter,
// answering 429 with Retry-After.
//
// The keys live in a table of bounded size (Config.MaxKeys, by default
// DefaultMaxKeys), split in shards that each have their own lock, so
// that the event loops rarely wait for each other. Each shard is a
// segmented LRU: a new key enters the probation segment and moves to the
// protected one when it is seen again; a full shard evicts the least
// recently used key of probation first. A flood of keys seen once
// therefore recycles probation among themselves and cannot push out a
// key in steady use. A key costs KeyBytes bytes at most, so a limiter's
// table holds at most MaxKeys x KeyBytes bytes.
package limit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Rate is N requests per Period.
type Rate struct {
	N      int64         // requests, 1 to MaxRateN
	Period time.Duration // time.Second, time.Minute or time.Hour
}

// MaxRateN bounds the N of a Rate, so that the bucket's arithmetic
// cannot overflow.
const MaxRateN = 1_000_000

// MaxBurst bounds Config.Burst and Config.Delay.
const MaxBurst = 1_000_000

// ParseRate parses "100/s", "30/m" or "500/h".
func ParseRate(s string) (Rate, error) {
	num, unit, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("limit: rate %q: want requests per unit, such as \"100/s\", \"30/m\" or \"500/h\"", s)
	}
	var period time.Duration
	switch unit {
	case "s":
		period = time.Second
	case "m":
		period = time.Minute
	case "h":
		period = time.Hour
	default:
		return Rate{}, fmt.Errorf("limit: rate %q: the unit must be s, m or h (per second, minute or hour)", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || n > MaxRateN || num[0] == '+' {
		return Rate{}, fmt.Errorf("limit: rate %q: want a whole number of requests from 1 to %d before the /", s, MaxRateN)
	}
	return Rate{N: n, Period: period}, nil
}

// String returns the rate as ParseRate reads it.
func (r Rate) String() string {
	unit := "s"
	switch r.Period {
	case time.Minute:
		unit = "m"
	case time.Hour:
		unit = "h"
	}
	return strconv.FormatInt(r.N, 10) + "/" + unit
}

// DefaultMaxKeys is the number of keys a limiter tracks when
// Config.MaxKeys is 0.
const DefaultMaxKeys = 100_000

// KeyBytes bounds what one tracked key costs on the heap in a full
// table: its slot (40 bytes), its cells in the shard's index (4 bytes
// each, at most 4/5 full: 5 to 10 bytes a key) and the slots' growth
// slack; TestKeyBytes measures about 55.
const KeyBytes = 64

// Config is what a Limiter enforces. The zero value is not valid: a
// rate is needed.
type Config struct {
	// Rate is the rate the bucket drains at.
	Rate Rate
	// Burst is how many requests beyond the rate a key may make (nginx's
	// burst=); 0 refuses any request that comes sooner than the rate.
	Burst int
	// NoDelay allows the requests of the burst at once (nginx's
	// nodelay); otherwise each is delayed until the rate allows it,
	// except for the first Delay of them (nginx's delay=).
	NoDelay bool
	// Delay is how many requests of the burst go on at once before the
	// next are delayed; it has no effect with NoDelay.
	Delay int
	// MaxKeys bounds the keys tracked, rounded up to a multiple of the
	// shard count; 0 means DefaultMaxKeys.
	MaxKeys int
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	switch {
	case c.Rate.N < 1 || c.Rate.N > MaxRateN:
		return fmt.Errorf("limit: rate: want 1 to %d requests per unit", MaxRateN)
	case c.Rate.Period != time.Second && c.Rate.Period != time.Minute && c.Rate.Period != time.Hour:
		return errors.New("limit: rate: the period must be a second, a minute or an hour")
	case c.Burst < 0 || c.Burst > MaxBurst:
		return fmt.Errorf("limit: burst %d: want 0 to %d", c.Burst, MaxBurst)
	case c.Delay < 0 || c.Delay > MaxBurst:
		return fmt.Errorf("limit: delay %d: want 0 to %d", c.Delay, MaxBurst)
	case c.MaxKeys < 0:
		return fmt.Errorf("limit: max keys %d: want 0 or more", c.MaxKeys)
	case c.MayDelay() && c.LongestWait() > MaxWait:
		return fmt.Errorf("limit: without nodelay the burst's last request would wait %v (burst / rate), more than %v: set nodelay, a delay, a smaller burst or a higher rate", c.LongestWait(), MaxWait)
	}
	return nil
}

// MaxWait bounds the longest delay a valid Config may give a request, so
// that a delayed request never looks like a hang: nginx would delay the
// last of a burst of 5 at 1/m by 5 minutes, anx refuses that config.
const MaxWait = 30 * time.Second

// LongestWait returns the longest a limiter with c delays a request:
// the last of the burst beyond Delay, arriving at once, waits for them all
// to drain. It is 0 when c never delays.
func (c Config) LongestWait() time.Duration {
	if !c.MayDelay() || c.Rate.N < 1 {
		return 0
	}
	return time.Duration(int64(c.Burst-c.Delay)) * c.Rate.Period / time.Duration(c.Rate.N)
}

// MayDelay reports whether a limiter with c may delay a request: when
// neither NoDelay nor a Delay that covers the whole burst lets every
// allowed request go on at once.
func (c Config) MayDelay() bool {
	return !c.NoDelay && c.Delay < c.Burst
}

// Decision is what a limiter says about one request.
type Decision struct {
	// Allowed reports whether the request may go on.
	Allowed bool
	// Wait is how long to delay an allowed request first (0: none).
	Wait time.Duration
	// RetryAfter is, for a refused request, how long until one more
	// request of its key would be allowed.
	RetryAfter time.Duration
}

// Limiter tracks the buckets of the keys of one limit. It is safe for
// concurrent use; it has no goroutine and nothing to close. New sets its
// fields, which never change after; each shard's lock guards the shard,
// and the counters are atomic.
type Limiter struct {
	cfg   Config
	seed  maphash.Seed
	start time.Time // the clock's origin: Take measures from it, monotonically

	// The bucket in thousandths of a request.
	burst int64 // the excess allowed
	delay int64 // the excess allowed without delay
	// The rate: n thousandths of a request drain every periodMS
	// milliseconds.
	n, periodMS int64

	shards []shard

	limited atomic.Uint64 // requests refused, for the metrics
	delayed atomic.Uint64 // requests delayed
}

// New returns a Limiter for cfg, which must be valid.
func New(cfg Config) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	maxKeys := cfg.MaxKeys
	if maxKeys == 0 {
		maxKeys = DefaultMaxKeys
	}
	l := &Limiter{
		cfg:      cfg,
		seed:     maphash.MakeSeed(),
		start:    time.Now(),
		burst:    int64(cfg.Burst) * 1000,
		delay:    int64(cfg.Delay) * 1000,
		n:        cfg.Rate.N * 1000,
		periodMS: cfg.Rate.Period.Milliseconds(),
	}
	if !cfg.MayDelay() {
		l.delay = l.burst
	}
	shards := shardCount
	if maxKeys < shardCount*minShardKeys {
		shards = 1 // a small table: one exact LRU rather than many tiny ones
	}
	perShard := (maxKeys + shards - 1) / shards
	l.shards = make([]shard, shards)
	for i := range l.shards {
		l.shards[i].init(perShard)
	}
	return l, nil
}

// The table's shape.
const (
	shardCount   = 32 // shards of a large table
	minShardKeys = 64 // a smaller table has one shard
	maxIdleMS    = 1 << 31
)

// Config returns the configuration the limiter enforces.
func (l *Limiter) Config() Config { return l.cfg }

// Capacity returns the number of keys the limiter tracks at most.
func (l *Limiter) Capacity() int {
	return len(l.shards) * int(l.shards[0].capacity)
}

// Len returns the number of keys tracked now.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += int(s.count)
		s.mu.Unlock()
	}
	return n
}

// Limited returns how many requests the limiter has refused.
func (l *Limiter) Limited() uint64 { return l.limited.Load() }

// Delayed returns how many requests the limiter has delayed.
func (l *Limiter) Delayed() uint64 { return l.delayed.Load() }

// StringKey returns the key of s for Take.
func (l *Limiter) StringKey(s string) uint64 { return maphash.String(l.seed, s) }

// AddrKey returns the key of an address for Take.
func (l *Limiter) AddrKey(a netip.Addr) uint64 {
	b := a.Unmap().As16()
	return maphash.Bytes(l.seed, b[:])
}

// Take accounts one request of key now and says whether it may go on.
func (l *Limiter) Take(key uint64) Decision {
	return l.takeAt(key, time.Since(l.start).Milliseconds())
}

// takeAt is Take at now milliseconds on the limiter's clock.
func (l *Limiter) takeAt(key uint64, now int64) Decision {
	s := &l.shards[key%uint64(len(l.shards))]
	s.mu.Lock()
	i, known := s.find(key, now)
	e := &s.slots[i]
	excess := int64(0) // a new key starts with an empty bucket
	if known {
		elapsed := min(max(now-e.last, 0), maxIdleMS)
		excess = max(e.excess-l.drained(elapsed)+1000, 0)
		if excess > l.burst {
			s.mu.Unlock()
			l.limited.Add(1)
			return Decision{RetryAfter: l.untilBelow(excess - l.burst)}
		}
		if elapsed == 0 {
			now = e.last
		}
	}
	e.excess, e.last = excess, now
	s.mu.Unlock()
	if excess <= l.delay {
		return Decision{Allowed: true}
	}
	l.delayed.Add(1)
	return Decision{Allowed: true, Wait: l.untilDrained(excess - l.delay)}
}

// drained returns how much of the bucket drains in ms milliseconds.
func (l *Limiter) drained(ms int64) int64 { return ms * l.n / l.periodMS }

// untilDrained returns how long the bucket takes to drain by d
// thousandths of a request, rounded down to the millisecond as nginx
// does for a delay.
func (l *Limiter) untilDrained(d int64) time.Duration {
	return time.Duration(d*l.periodMS/l.n) * time.Millisecond
}

// untilBelow returns how long until the bucket has drained by over d
// thousandths of a request, rounded up to the millisecond: the wait for
// a refused request's next try.
func (l *Limiter) untilBelow(d int64) time.Duration {
	return time.Duration((d*l.periodMS+l.n-1)/l.n) * time.Millisecond
}
