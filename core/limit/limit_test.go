package limit

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func mustNew(t testing.TB, cfg Config) *Limiter {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// step is one request at a time on the limiter's clock and what nginx's
// limit_req says of it, worked out by hand.
type step struct {
	at         int64 // ms
	allowed    bool
	wait       time.Duration
	retryAfter time.Duration
}

func TestBucketAgainstNginx(t *testing.T) {
	burst21 := func(waits func(i int) time.Duration) []step {
		var s []step
		for i := range 21 {
			s = append(s, step{at: 0, allowed: true, wait: waits(i)})
		}
		return s
	}
	noWait := func(int) time.Duration { return 0 }
	cases := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			// 100/s drains 1 request per 10 ms; 21 requests fit at once
			// (the first, then 20 of excess), the 22nd is 1 request over:
			// 10 ms early.
			name: "100/s burst 20 nodelay",
			cfg:  Config{Rate: Rate{100, time.Second}, Burst: 20, NoDelay: true},
			steps: append(burst21(noWait),
				step{at: 0, retryAfter: 10 * time.Millisecond},
				step{at: 5, retryAfter: 5 * time.Millisecond},
				step{at: 10, allowed: true},
				step{at: 10, retryAfter: 10 * time.Millisecond},
				step{at: 1000, allowed: true}, // 990 ms drained 99 requests: the bucket is empty
				step{at: 1000, allowed: true},
			),
		},
		{
			// Without nodelay the request leaving excess e waits e/rate.
			name: "100/s burst 20 delayed",
			cfg:  Config{Rate: Rate{100, time.Second}, Burst: 20},
			steps: append(burst21(func(i int) time.Duration { return time.Duration(i) * 10 * time.Millisecond }),
				step{at: 0, retryAfter: 10 * time.Millisecond}),
		},
		{
			// delay=5: the first 5 of the burst go at once.
			name: "100/s burst 20 delay 5",
			cfg:  Config{Rate: Rate{100, time.Second}, Burst: 20, Delay: 5},
			steps: append(burst21(func(i int) time.Duration { return time.Duration(max(i-5, 0)) * 10 * time.Millisecond }),
				step{at: 0, retryAfter: 10 * time.Millisecond}),
		},
		{
			name: "1/s burst 0",
			cfg:  Config{Rate: Rate{1, time.Second}},
			steps: []step{
				{at: 0, allowed: true},
				{at: 500, retryAfter: 500 * time.Millisecond},
				{at: 999, retryAfter: time.Millisecond},
				{at: 1000, allowed: true},
				{at: 1001, retryAfter: 999 * time.Millisecond},
				{at: 5000, allowed: true},
			},
		},
		{
			name: "60/m burst 0",
			cfg:  Config{Rate: Rate{60, time.Minute}},
			steps: []step{
				{at: 0, allowed: true},
				{at: 999, retryAfter: time.Millisecond},
				{at: 1000, allowed: true},
			},
		},
		{
			name: "2/h burst 1",
			cfg:  Config{Rate: Rate{2, time.Hour}, Burst: 1, NoDelay: true},
			steps: []step{
				{at: 0, allowed: true},
				{at: 0, allowed: true},
				{at: 0, retryAfter: 30 * time.Minute},
				{at: 1_800_000, allowed: true},
			},
		},
		{
			name: "a refusal does not fill the bucket",
			cfg:  Config{Rate: Rate{10, time.Second}},
			steps: []step{
				{at: 0, allowed: true},
				{at: 50, retryAfter: 50 * time.Millisecond},
				{at: 60, retryAfter: 40 * time.Millisecond},
				{at: 100, allowed: true},
			},
		},
		{
			name: "an idle key of days starts empty",
			cfg:  Config{Rate: Rate{1_000_000, time.Second}, Burst: 3, NoDelay: true},
			steps: []step{
				{at: 0, allowed: true},
				{at: 0, allowed: true},
				{at: 1 << 40, allowed: true},
				{at: 1 << 40, allowed: true},
			},
		},
	}
	for _, c := range cases {
		l := mustNew(t, c.cfg)
		for i, s := range c.steps {
			got := l.takeAt(7, s.at)
			want := Decision{Allowed: s.allowed, Wait: s.wait, RetryAfter: s.retryAfter}
			if got != want {
				t.Errorf("%s: request %d at %d ms: got %+v, want %+v", c.name, i+1, s.at, got, want)
			}
		}
	}
}

func TestKeysHaveTheirOwnBuckets(t *testing.T) {
	l := mustNew(t, Config{Rate: Rate{1, time.Hour}})
	for key := range uint64(1000) {
		if !l.takeAt(key, 0).Allowed {
			t.Fatalf("key %d: its first request refused", key)
		}
	}
	for key := range uint64(1000) {
		if l.takeAt(key, 1).Allowed {
			t.Fatalf("key %d: its second request allowed", key)
		}
	}
	if got := l.Limited(); got != 1000 {
		t.Errorf("Limited() = %d, want 1000", got)
	}
}

func TestDelayedCounted(t *testing.T) {
	l := mustNew(t, Config{Rate: Rate{100, time.Second}, Burst: 20, Delay: 5})
	for range 21 {
		l.takeAt(1, 0)
	}
	if got := l.Delayed(); got != 15 {
		t.Errorf("Delayed() = %d, want 15 (the burst of 20 less the first 5)", got)
	}
}

func TestMayDelay(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want bool
	}{
		{Config{Burst: 20}, true},
		{Config{Burst: 20, NoDelay: true}, false},
		{Config{Burst: 20, Delay: 19}, true},
		{Config{Burst: 20, Delay: 20}, false},
		{Config{Burst: 0}, false},
	} {
		if got := c.cfg.MayDelay(); got != c.want {
			t.Errorf("%+v: MayDelay() = %v, want %v", c.cfg, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	good := Config{Rate: Rate{1, time.Second}}
	for _, c := range []Config{
		{},
		{Rate: Rate{MaxRateN + 1, time.Second}},
		{Rate: Rate{1, 2 * time.Second}},
		{Rate: good.Rate, Burst: -1},
		{Rate: good.Rate, Delay: -1},
		{Rate: good.Rate, Burst: MaxBurst + 1},
		{Rate: good.Rate, MaxKeys: -1},
		{Rate: Rate{1, time.Minute}, Burst: 1},               // the last of the burst would wait a minute
		{Rate: Rate{10, time.Second}, Burst: 400, Delay: 99}, // 301 requests at 10/s: 30.1 s
	} {
		if c.Validate() == nil {
			t.Errorf("%+v: Validate() = nil, want an error", c)
		}
		if _, err := New(c); err == nil {
			t.Errorf("%+v: New succeeded", c)
		}
	}
	for _, c := range []Config{
		good,
		{Rate: Rate{1, time.Minute}, Burst: 1, NoDelay: true},
		{Rate: Rate{10, time.Second}, Burst: 400, Delay: 100}, // 30 s: the most allowed
		{Rate: Rate{1, time.Hour}, Burst: 5, Delay: 5},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestTableBounded(t *testing.T) {
	for _, maxKeys := range []int{10, 1000, 100_000} {
		l := mustNew(t, Config{Rate: Rate{1, time.Second}, MaxKeys: maxKeys})
		if c := l.Capacity(); c < maxKeys || c > maxKeys+shardCount {
			t.Errorf("MaxKeys %d: capacity %d", maxKeys, c)
		}
		for key := range uint64(3 * maxKeys) {
			l.takeAt(key*0x9e3779b97f4a7c15, 0)
		}
		if got := l.Len(); got > l.Capacity() {
			t.Errorf("MaxKeys %d: %d keys tracked after %d, want at most %d", maxKeys, got, 3*maxKeys, l.Capacity())
		}
	}
}

// A busy key (one request every 50 new keys) survives a flood of 100
// times the table's size in keys seen once: they enter probation and
// evict each other. A plain LRU would lose it every 100 new keys.
func TestFloodOfNewKeysKeepsBusyKey(t *testing.T) {
	l := mustNew(t, Config{Rate: Rate{1, time.Hour}, MaxKeys: 100})
	const busy = 1 << 63
	if !l.takeAt(busy, 0).Allowed {
		t.Fatal("the busy key's first request refused")
	}
	for i := range uint64(10_000) {
		l.takeAt(i+1, 0)
		if i%50 == 0 && l.takeAt(busy, 0).Allowed {
			t.Fatalf("after %d new keys, the busy key was allowed again: it had been evicted with its bucket", i+1)
		}
	}
	if got := l.Len(); got != 100 {
		t.Errorf("%d keys tracked, want 100", got)
	}
}

// Keys seen twice fill the protected segment only up to its share; the
// rest of the table stays probation, where newcomers land.
func TestProtectedSegmentBounded(t *testing.T) {
	l := mustNew(t, Config{Rate: Rate{1, time.Hour}, MaxKeys: 50})
	for key := range uint64(500) {
		l.takeAt(key, 0)
		l.takeAt(key, 0)
	}
	s := &l.shards[0]
	if s.protCount > s.protCap || s.protCap != 40 {
		t.Errorf("protected: %d keys, cap %d; want at most 40", s.protCount, s.protCap)
	}
	n := 0
	for i := s.slots[probation].next; i != probation; i = s.slots[i].next {
		n++
	}
	for i := s.slots[protected].next; i != protected; i = s.slots[i].next {
		n++
	}
	if n != int(s.count) || n != 50 {
		t.Errorf("the lists hold %d slots, the count is %d; want 50", n, s.count)
	}
	checkIndex(t, s)
}

// Goroutines racing on the same keys at the same instant get exactly
// burst+1 requests through per key.
func TestConcurrentTakesExact(t *testing.T) {
	l := mustNew(t, Config{Rate: Rate{10, time.Second}, Burst: 99, NoDelay: true})
	const keys, workers, each = 8, 8, 200
	var wg sync.WaitGroup
	allowed := make([][keys]int, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each * keys {
				key := uint64(i % keys)
				if l.takeAt(key*0x9e3779b97f4a7c15, 0).Allowed {
					allowed[w][key]++
				}
			}
		})
	}
	wg.Wait()
	for key := range keys {
		sum := 0
		for w := range workers {
			sum += allowed[w][key]
		}
		if sum != 100 {
			t.Errorf("key %d: %d allowed, want 100 (burst 99 + 1)", key, sum)
		}
	}
}

func TestTakeAllocatesNothing(t *testing.T) {
	l := mustNew(t, Config{Rate: Rate{1000, time.Second}, Burst: 1000, NoDelay: true})
	key := l.StringKey("known")
	l.Take(key)
	if n := testing.AllocsPerRun(1000, func() { l.Take(key) }); n != 0 {
		t.Errorf("Take of a known key: %v allocations, want 0", n)
	}
}

func BenchmarkTakeParallel(b *testing.B) {
	l := mustNew(b, Config{Rate: Rate{MaxRateN, time.Second}, Burst: MaxBurst, NoDelay: true})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var i uint64
		for pb.Next() {
			i++
			l.Take(i % 1024)
		}
	})
}

func BenchmarkTake(b *testing.B) {
	l := mustNew(b, Config{Rate: Rate{MaxRateN, time.Second}, Burst: MaxBurst, NoDelay: true})
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		i++
		l.Take(i % 1024)
	}
}

// A full table of DefaultMaxKeys keys holds at most KeyBytes bytes per
// key on the heap.
func TestKeyBytes(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := mustNew(t, Config{Rate: Rate{1, time.Second}})
	for key := range uint64(3 * DefaultMaxKeys) {
		l.takeAt(key*0x9e3779b97f4a7c15, 0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perKey := float64(after.HeapAlloc-before.HeapAlloc) / float64(l.Len())
	t.Logf("%d keys, %.1f bytes each", l.Len(), perKey)
	if l.Len() < DefaultMaxKeys*9/10 || perKey > KeyBytes {
		t.Errorf("%d keys tracked at %.1f bytes each, want about %d at most %d bytes", l.Len(), perKey, DefaultMaxKeys, KeyBytes)
	}
	runtime.KeepAlive(l)
}

// checkIndex fails t unless every key of s is found at its slot and the
// index holds nothing else.
func checkIndex(t testing.TB, s *shard) {
	t.Helper()
	used := 0
	for _, i := range s.cells {
		if i != 0 {
			used++
		}
	}
	if used != int(s.count) {
		t.Errorf("the index holds %d cells, the shard %d keys", used, s.count)
	}
	for i := int32(2); i < int32(len(s.slots)); i++ {
		c, ok := s.lookup(s.slots[i].key)
		if !ok || s.cells[c] != i {
			t.Fatalf("slot %d's key is not found at it (found %v, cell %d holds %d)", i, ok, c, s.cells[c])
		}
	}
}

// The index survives growth and eviction under keys whose homes collide:
// after many evictions, every key tracked is found at its slot.
func TestIndexUnderChurn(t *testing.T) {
	l := mustNew(t, Config{Rate: Rate{1, time.Hour}, MaxKeys: 1000})
	s := &l.shards[0]
	for round := range uint64(20) {
		for k := range uint64(700) {
			key := (round*700 + k) % 3000 // keys come back: hits, promotions, evictions
			l.takeAt(key<<40|k, int64(round))
		}
		checkIndex(t, s)
	}
	if s.count != 1000 || len(s.cells) > 2048 {
		t.Errorf("%d keys in %d cells, want 1000 in at most 2048", s.count, len(s.cells))
	}
}

// FuzzIndex takes keys from a small universe in the order the input
// gives, through a table of 64 keys, and checks the index after each.
func FuzzIndex(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x00\x03\xff\x10\x10\x20"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		l := mustNew(t, Config{Rate: Rate{1, time.Hour}, MaxKeys: 64})
		s := &l.shards[0]
		for _, op := range ops {
			l.takeAt(uint64(op)*0x51af_d7ed_558c_cd1f, 0)
			if _, ok := s.lookup(uint64(op) * 0x51af_d7ed_558c_cd1f); !ok {
				t.Fatalf("key %d not found just after its request", op)
			}
		}
		checkIndex(t, s)
	})
}
