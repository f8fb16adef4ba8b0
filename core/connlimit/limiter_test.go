package connlimit

import (
	"net/netip"
	"sync"
	"testing"
)

// addr returns the test address 10.0.x.y for i.
func addr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}) }

// TestAdmitLimits: each limit refuses exactly what exceeds it, with its
// own reason, and a release makes room again.
func TestAdmitLimits(t *testing.T) {
	cases := []struct {
		name   string
		lim    Limits
		from   []int // address index of each Admit, in order
		want   []Verdict
		perIP  uint64
		global uint64
	}{
		{"none", Limits{}, []int{1, 1, 1, 2}, []Verdict{Admitted, Admitted, Admitted, Admitted}, 0, 0},
		{"per ip", Limits{PerIP: 2}, []int{1, 1, 1, 2, 2}, []Verdict{Admitted, Admitted, RefusedPerIP, Admitted, Admitted}, 1, 0},
		{"total", Limits{Max: 3}, []int{1, 2, 3, 4, 1}, []Verdict{Admitted, Admitted, Admitted, RefusedTotal, RefusedTotal}, 0, 2},
		{"both", Limits{Max: 3, PerIP: 1}, []int{1, 1, 2, 3, 4}, []Verdict{Admitted, RefusedPerIP, Admitted, Admitted, RefusedTotal}, 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := New(c.lim)
			admitted := 0
			for i, from := range c.from {
				got := l.admit(addr(from))
				if got != c.want[i] {
					t.Errorf("admit %d from %v: got %v, want %v", i, addr(from), got, c.want[i])
				}
				if got == Admitted {
					admitted++
				}
			}
			if got := l.Open(); got != int64(admitted) {
				t.Errorf("Open: got %d, want %d", got, admitted)
			}
			if got := l.Refused(RefusedPerIP); got != c.perIP {
				t.Errorf("Refused(PerIP): got %d, want %d", got, c.perIP)
			}
			if got := l.Refused(RefusedTotal); got != c.global {
				t.Errorf("Refused(Total): got %d, want %d", got, c.global)
			}
		})
	}
}

// TestReleaseMakesRoom: at the per-address limit, a release lets the next
// connection in, and the address's entry goes when its last one does.
func TestReleaseMakesRoom(t *testing.T) {
	l := New(Limits{PerIP: 1})
	a := addr(7)
	if v := l.admit(a); v != Admitted {
		t.Fatalf("first: got %v, want Admitted", v)
	}
	if v := l.admit(a); v != RefusedPerIP {
		t.Fatalf("second: got %v, want RefusedPerIP", v)
	}
	l.Release(a)
	if got := l.Addresses(); got != 0 {
		t.Errorf("after the last release: %d addresses held, want 0", got)
	}
	if v := l.admit(a); v != Admitted {
		t.Fatalf("after release: got %v, want Admitted", v)
	}
}

// TestMappedAddressCountsAsIPv4: an IPv4 client seen as ::ffff:a.b.c.d
// (a dual-stack socket) counts against the same address.
func TestMappedAddressCountsAsIPv4(t *testing.T) {
	l := New(Limits{PerIP: 1})
	v4 := netip.MustParseAddr("192.0.2.1")
	if l.admit(v4) != Admitted {
		t.Fatal("IPv4 refused")
	}
	if v := l.admit(netip.AddrFrom16(v4.As16())); v != RefusedPerIP {
		t.Errorf("mapped form: got %v, want RefusedPerIP", v)
	}
	l.Release(netip.AddrFrom16(v4.As16()))
	if got := l.OpenFrom(v4); got != 0 {
		t.Errorf("OpenFrom after release by the mapped form: %d, want 0", got)
	}
}

// TestSetLimitsKeepsCounts: a new limit applies to the next admission and
// counts the connections already open; loosening it admits again.
func TestSetLimitsKeepsCounts(t *testing.T) {
	l := New(Limits{})
	a := addr(1)
	for range 5 {
		l.admit(a)
	}
	l.SetLimits(Limits{PerIP: 5})
	if v := l.admit(a); v != RefusedPerIP {
		t.Fatalf("after tightening to 5 with 5 open: got %v, want RefusedPerIP", v)
	}
	l.SetLimits(Limits{Max: 5})
	if v := l.admit(addr(2)); v != RefusedTotal {
		t.Fatalf("total 5 with 5 open: got %v, want RefusedTotal", v)
	}
	l.SetLimits(Limits{Max: 6, PerIP: 6})
	if v := l.admit(a); v != Admitted {
		t.Fatalf("after loosening: got %v, want Admitted", v)
	}
	if got := l.OpenFrom(a); got != 6 {
		t.Errorf("OpenFrom: got %d, want 6", got)
	}
}

// TestReleaseUnknownPanics: a release without an admission is a bug the
// Limiter reports rather than a count that drifts.
func TestReleaseUnknownPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Release of an address with nothing open did not panic")
		}
	}()
	New(Limits{}).Release(addr(3))
}

// TestConcurrentCountsExact: goroutines admitting and releasing at once
// over shared addresses never exceed a limit, and every count returns to
// zero; the admitted plus the refused are all the attempts.
func TestConcurrentCountsExact(t *testing.T) {
	const (
		workers  = 8
		attempts = 5000
		perIP    = 3
		total    = 40
		addrs    = 4
	)
	l := New(Limits{Max: total, PerIP: perIP})
	var mu sync.Mutex
	open := map[netip.Addr]int{}
	maxTotal, admitted := 0, 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var held []netip.Addr
			for i := range attempts {
				a := addr((w*7 + i) % addrs)
				if l.admit(a) == Admitted {
					held = append(held, a)
					mu.Lock()
					admitted++
					open[a]++
					if open[a] > perIP {
						t.Errorf("%v: %d open, over the limit %d", a, open[a], perIP)
					}
					maxTotal = max(maxTotal, int(l.Open()))
					mu.Unlock()
				}
				if len(held) > 12 || (len(held) > 0 && i%5 == 0) {
					r := held[0]
					held = held[1:]
					mu.Lock()
					open[r]--
					mu.Unlock()
					l.Release(r)
				}
			}
			for _, r := range held {
				mu.Lock()
				open[r]--
				mu.Unlock()
				l.Release(r)
			}
		})
	}
	wg.Wait()
	if maxTotal > total {
		t.Errorf("Open reached %d, over the limit %d", maxTotal, total)
	}
	if got := l.Open(); got != 0 {
		t.Errorf("Open after every release: %d, want 0", got)
	}
	if got := l.Addresses(); got != 0 {
		t.Errorf("addresses held after every release: %d, want 0", got)
	}
	refused := l.Refused(RefusedTotal) + l.Refused(RefusedPerIP)
	if got := uint64(admitted) + refused; got != workers*attempts {
		t.Errorf("admitted %d + refused %d = %d, want %d attempts", admitted, refused, got, workers*attempts)
	}
	if l.Refused(RefusedPerIP) == 0 {
		t.Errorf("no per-address refusal in %d attempts over %d addresses: the test did not press the limit", workers*attempts, addrs)
	}
	t.Logf("admitted %d, refused per address %d, in total %d", admitted, l.Refused(RefusedPerIP), l.Refused(RefusedTotal))
}

// TestAdmitDoesNotAllocate: in steady state (an address seen before) an
// admission and its release allocate nothing.
func TestAdmitDoesNotAllocate(t *testing.T) {
	l := New(Limits{Max: 1000, PerIP: 10})
	a := netip.MustParseAddr("2001:db8::1")
	l.Release(func() netip.Addr { l.admit(a); return a }())
	if n := testing.AllocsPerRun(1000, func() {
		l.Admit(a)
		l.Release(a)
	}); n != 0 {
		t.Errorf("Admit+Release: %v allocations, want 0", n)
	}
}

func BenchmarkAdmitRelease(b *testing.B) {
	l := New(Limits{Max: 1 << 20, PerIP: 1 << 10})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			a := addr(i % 256)
			l.admit(a)
			l.Release(a)
			i++
		}
	})
}
