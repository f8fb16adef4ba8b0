// Package connlimit counts a process's client connections, in all and per
// client address, and refuses one beyond the limits before it costs
// anything: the TCP front end (core/netpoll) asks it right after accept,
// HTTP/3 (h3) before the QUIC handshake, and both give the connection back
// when it ends, so that one count covers every protocol.
//
// A Limiter is lock-light and allocation-free in steady state: the total
// is one atomic counter, the per-address counts sit in a map split into
// shards, each under its own mutex, and an address has an entry only
// while it has connections, so the memory is bounded by the connections
// open. Its limits change at run time (SetLimits, on reload) without
// touching the counts.
package connlimit

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Limits are the most connections admitted; zero means no limit.
type Limits struct {
	// Max bounds the connections open in all.
	Max int
	// PerIP bounds the connections open from one client address.
	PerIP int
}

// Verdict is an admission's outcome: admitted, or refused by one limit.
type Verdict uint8

const (
	// Admitted: the connection counts until Release (Admit's true).
	Admitted Verdict = iota
	// RefusedTotal: Limits.Max connections are open.
	RefusedTotal
	// RefusedPerIP: Limits.PerIP connections from the address are open.
	RefusedPerIP
)

// String names the verdict as the metrics label it: "admitted",
// "max_conns" or "max_conns_per_ip" (the config keys that refused).
func (v Verdict) String() string {
	switch v {
	case Admitted:
		return "admitted"
	case RefusedTotal:
		return "max_conns"
	case RefusedPerIP:
		return "max_conns_per_ip"
	}
	return "unknown"
}

// shardBits sets the shards of the per-address map (1<<shardBits), so
// that accepts on different loops (and QUIC's) rarely wait for one another.
const shardBits = 6

// Limiter counts connections and admits them within its Limits. Its zero
// value admits everything and counts. Every method is safe from any
// goroutine.
type Limiter struct {
	max, perIP atomic.Int64 // the Limits now (SetLimits)
	total      atomic.Int64 // connections admitted and not released
	refused    [RefusedPerIP + 1]atomic.Uint64
	shards     [1 << shardBits]shard
}

// shard is one part of the per-address counts.
type shard struct {
	mu sync.Mutex
	n  map[netip.Addr]int32 // guarded by mu; an entry only while its count is above 0
	_  [40]byte             // keeps shards on separate cache lines
}

// New returns a Limiter with the given limits.
func New(lim Limits) *Limiter {
	l := &Limiter{}
	l.SetLimits(lim)
	return l
}

// SetLimits changes the limits for connections admitted from now on; the
// ones open stay counted (and open, even if now over the limits).
func (l *Limiter) SetLimits(lim Limits) {
	l.max.Store(int64(max(lim.Max, 0)))
	l.perIP.Store(int64(max(lim.PerIP, 0)))
}

// Limits returns the limits in force.
func (l *Limiter) Limits() Limits {
	return Limits{Max: int(l.max.Load()), PerIP: int(l.perIP.Load())}
}

// Admit counts a new connection from addr and reports true, or refuses it
// (counting the refusal by reason, see Refused) when that would exceed a
// limit. An admitted connection must be given back with Release exactly
// once. It makes the Limiter a core/netpoll Admitter and an h3 one.
func (l *Limiter) Admit(addr netip.Addr) bool { return l.admit(addr) == Admitted }

// admit is Admit with the reason.
func (l *Limiter) admit(addr netip.Addr) Verdict {
	addr = addr.Unmap()
	if n, lim := l.total.Add(1), l.max.Load(); lim > 0 && n > lim {
		l.total.Add(-1)
		l.refused[RefusedTotal].Add(1)
		return RefusedTotal
	}
	s := l.shard(addr)
	lim := int32(min(l.perIP.Load(), 1<<31-1))
	s.mu.Lock()
	n := s.n[addr]
	if lim > 0 && n >= lim {
		s.mu.Unlock()
		l.total.Add(-1)
		l.refused[RefusedPerIP].Add(1)
		return RefusedPerIP
	}
	if s.n == nil {
		s.n = make(map[netip.Addr]int32)
	}
	s.n[addr] = n + 1
	s.mu.Unlock()
	return Admitted
}

// Release gives back a connection Admit admitted from addr.
func (l *Limiter) Release(addr netip.Addr) {
	addr = addr.Unmap()
	s := l.shard(addr)
	s.mu.Lock()
	switch n := s.n[addr]; {
	case n > 1:
		s.n[addr] = n - 1
	case n == 1:
		delete(s.n, addr)
	default:
		s.mu.Unlock()
		panic("connlimit: Release of an address with no connection admitted")
	}
	s.mu.Unlock()
	l.total.Add(-1)
}

// Open returns how many connections are admitted and not released.
func (l *Limiter) Open() int64 { return l.total.Load() }

// OpenFrom returns how many connections from addr are admitted and not
// released.
func (l *Limiter) OpenFrom(addr netip.Addr) int {
	addr = addr.Unmap()
	s := l.shard(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.n[addr])
}

// Addresses returns how many client addresses have connections open: the
// entries the per-address counts hold.
func (l *Limiter) Addresses() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.n)
		s.mu.Unlock()
	}
	return n
}

// Refused returns how many connections Admit refused for reason v
// (RefusedTotal or RefusedPerIP) since the Limiter was made.
func (l *Limiter) Refused(v Verdict) uint64 {
	if v == Admitted || int(v) >= len(l.refused) {
		return 0
	}
	return l.refused[v].Load()
}

// shard returns the shard of addr's count (addr unmapped: an IPv4
// client counts the same over IPv4 and a dual-stack socket).
func (l *Limiter) shard(addr netip.Addr) *shard {
	b := addr.As16()
	h := (binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:])) * 0x9E3779B97F4A7C15
	return &l.shards[h>>(64-shardBits)]
}
