package netpoll

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// firedAt records, per timer index, the time of the Advance that fired it.
type recorder struct {
	now   time.Time
	fired map[int]time.Time
	order []int
}

func (r *recorder) timer(i int) *Timer {
	return &Timer{Func: func() {
		r.fired[i] = r.now
		r.order = append(r.order, i)
	}}
}

func newRecorder() *recorder { return &recorder{fired: map[int]time.Time{}} }

func (r *recorder) advance(w *Wheel, now time.Time) {
	r.now = now
	w.Advance(now)
}

func TestWheelFiresWithinOneTick(t *testing.T) {
	const tick = time.Millisecond
	w := NewWheel(tick, 64, t0)
	r := newRecorder()
	delays := []time.Duration{0, 1, tick / 2, tick, 3*tick + 1, 63 * tick, 64 * tick, 65 * tick,
		4095 * tick, 4096 * tick, 4097*tick + 7, 300000 * tick, 3 * time.Hour, 400 * 24 * time.Hour}
	for i, d := range delays {
		w.Add(r.timer(i), t0.Add(d))
	}
	if w.Len() != len(delays) {
		t.Fatalf("Len = %d, want %d", w.Len(), len(delays))
	}
	// Advance in uneven steps, sometimes jumping far.
	now := t0
	for w.Len() > 0 {
		next, ok := w.NextDeadline()
		if !ok {
			t.Fatal("NextDeadline reports empty with timers pending")
		}
		if next.Before(now) {
			next = now
		}
		now = next.Add(time.Duration(rand.Int64N(int64(tick / 3))))
		r.advance(w, now)
	}
	for i, d := range delays {
		at := t0.Add(d)
		got, ok := r.fired[i]
		if !ok {
			t.Errorf("timer %d (+%v) did not fire", i, d)
			continue
		}
		if got.Before(at) || got.Sub(at) >= tick+tick/3 {
			t.Errorf("timer %d (+%v) fired at +%v, want within one tick after", i, d, got.Sub(t0))
		}
	}
	for k := 1; k < len(r.order); k++ {
		if delays[r.order[k]] < delays[r.order[k-1]]-tick {
			t.Errorf("fire order %v: %v after %v", r.order, delays[r.order[k]], delays[r.order[k-1]])
		}
	}
}

func TestWheelCancelAndReAdd(t *testing.T) {
	w := NewWheel(time.Millisecond, 16, t0)
	r := newRecorder()
	a, b, c := r.timer(0), r.timer(1), r.timer(2)
	w.Add(a, t0.Add(5*time.Millisecond))
	w.Add(b, t0.Add(500*time.Millisecond)) // a higher level
	w.Add(c, t0.Add(7*time.Millisecond))
	if !w.Cancel(b) || w.Cancel(b) || b.Pending() {
		t.Fatal("cancel of a pending timer: want true once, then false")
	}
	w.Add(c, t0.Add(900*time.Millisecond)) // move c
	w.Add(b, t0.Add(2*time.Millisecond))   // re-add b
	r.advance(w, t0.Add(10*time.Millisecond))
	if _, ok := r.fired[2]; ok {
		t.Fatal("moved timer fired at its old deadline")
	}
	if len(r.fired) != 2 {
		t.Fatalf("fired %v, want timers 0 and 1", r.order)
	}
	r.advance(w, t0.Add(899*time.Millisecond))
	if len(r.fired) != 2 {
		t.Fatalf("timer 2 fired early")
	}
	r.advance(w, t0.Add(900*time.Millisecond))
	if len(r.fired) != 3 || w.Len() != 0 {
		t.Fatalf("fired %v, Len %d; want all, 0", r.order, w.Len())
	}
	if _, ok := w.NextDeadline(); ok {
		t.Fatal("NextDeadline on an empty wheel reports a deadline")
	}
}

func TestWheelCallbackCancelsAndAdds(t *testing.T) {
	w := NewWheel(time.Millisecond, 8, t0)
	var fired []string
	var a, b, c Timer
	rearmed := false
	a.Func = func() {
		fired = append(fired, "a")
		w.Cancel(&b)  // same tick, not fired yet (or already: then a no-op)
		w.Add(&c, t0) // already due: fires at the next Advance
		if !rearmed {
			rearmed = true
			w.Add(&a, t0.Add(20*time.Millisecond))
		}
	}
	b.Func = func() { fired = append(fired, "b") }
	c.Func = func() { fired = append(fired, "c") }
	w.Add(&a, t0.Add(3*time.Millisecond))
	w.Add(&b, t0.Add(3*time.Millisecond))
	w.Advance(t0.Add(3 * time.Millisecond))
	w.Advance(t0.Add(3 * time.Millisecond))
	w.Advance(t0.Add(30 * time.Millisecond))
	w.Advance(t0.Add(30 * time.Millisecond))
	want1 := []string{"a", "c", "a", "c"}
	want2 := []string{"b", "a", "c", "a", "c"}
	if !slices.Equal(fired, want1) && !slices.Equal(fired, want2) {
		t.Fatalf("fired %v, want %v or %v", fired, want1, want2)
	}
}

func TestWheelManyTimers(t *testing.T) {
	const n = 20000
	w := NewWheel(time.Millisecond, 64, t0)
	r := newRecorder()
	timers := make([]*Timer, n)
	when := make([]time.Time, n)
	for i := range timers {
		timers[i] = r.timer(i)
		when[i] = t0.Add(time.Duration(rand.Int64N(int64(10 * time.Minute))))
		w.Add(timers[i], when[i])
	}
	for i := 0; i < n; i += 3 {
		w.Cancel(timers[i])
	}
	for now := t0; now.Before(t0.Add(11 * time.Minute)); now = now.Add(777 * time.Millisecond) {
		r.advance(w, now)
	}
	for i := range timers {
		got, ok := r.fired[i]
		if i%3 == 0 {
			if ok {
				t.Fatalf("cancelled timer %d fired", i)
			}
			continue
		}
		if !ok || got.Before(when[i]) || got.Sub(when[i]) > 778*time.Millisecond {
			t.Fatalf("timer %d due %v fired %v (%v)", i, when[i].Sub(t0), got.Sub(t0), ok)
		}
	}
}

// FuzzWheel runs random adds, cancels and advances against a reference that
// keeps the deadlines in a plain map and fires, at each advance, those whose
// rounded-up tick has begun.
func FuzzWheel(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 200, 100, 50})
	f.Add([]byte{0, 255, 0, 255, 3, 3, 3, 128, 64, 32, 16, 8, 4, 2, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const tick = time.Millisecond
		w := NewWheel(tick, 4, t0)
		const n = 16
		timers := make([]Timer, n)
		ref := map[int]int64{} // pending timer -> tick at which it is due
		var fired []int
		for i := range timers {
			timers[i].Func = func() { fired = append(fired, i) }
		}
		now := t0
		for len(ops) >= 3 {
			op, a, b := ops[0]%4, int(ops[1])%n, ops[2]
			ops = ops[3:]
			switch op {
			case 0, 1: // add at now + a span that reaches several levels
				d := time.Duration(b) * time.Duration(b) * time.Duration(1+int(op)*37) * tick / 7
				at := now.Add(d)
				w.Add(&timers[a], at)
				ref[a] = w.ticks(at)
			case 2:
				if got, want := w.Cancel(&timers[a]), ref[a] != 0 || hasKey(ref, a); got != want {
					t.Fatalf("Cancel(%d) = %v, want %v", a, got, want)
				}
				delete(ref, a)
			case 3:
				now = now.Add(time.Duration(b) * time.Duration(b) * tick / 3)
				fired = fired[:0]
				w.Advance(now)
				var want []int
				cur := w.floorTicks(now)
				for k, due := range ref {
					if due <= cur {
						want = append(want, k)
						delete(ref, k)
					}
				}
				slices.Sort(want)
				slices.Sort(fired)
				if !slices.Equal(fired, want) {
					t.Fatalf("at +%v fired %v, want %v", now.Sub(t0), fired, want)
				}
			}
			if w.Len() != len(ref) {
				t.Fatalf("Len = %d, reference %d", w.Len(), len(ref))
			}
			if next, ok := w.NextDeadline(); ok != (len(ref) > 0) {
				t.Fatalf("NextDeadline ok = %v with %d pending", ok, len(ref))
			} else if ok {
				for k, due := range ref {
					if w.ticks(next) > due && due > w.floorTicks(now) {
						t.Fatalf("NextDeadline +%v is after timer %d due at tick %d", next.Sub(t0), k, due)
					}
				}
			}
		}
	})
}

// TestWheelSelfReAddDoesNotSpin checks that a callback re-adding its timer
// with a past deadline cannot hold Advance.
func TestWheelSelfReAddDoesNotSpin(t *testing.T) {
	w := NewWheel(time.Millisecond, 8, t0)
	var a Timer
	n := 0
	a.Func = func() { n++; w.Add(&a, t0) }
	w.Add(&a, t0.Add(time.Millisecond))
	w.Advance(t0.Add(time.Second))
	w.Advance(t0.Add(time.Second))
	if n != 2 {
		t.Fatalf("fired %d times in two Advances, want 2", n)
	}
	if at, ok := w.NextDeadline(); !ok || at.After(t0.Add(time.Second)) {
		t.Fatalf("NextDeadline = %v, %v; want due now", at, ok)
	}
}

func hasKey(m map[int]int64, k int) bool { _, ok := m[k]; return ok }

func BenchmarkWheelAddCancel(b *testing.B) {
	w := NewWheel(time.Millisecond, 64, t0)
	// A populated wheel, as a loop with many connections has.
	bg := make([]Timer, 10000)
	for i := range bg {
		bg[i].Func = func() {}
		w.Add(&bg[i], t0.Add(time.Duration(i)*time.Millisecond))
	}
	var tm Timer
	tm.Func = func() {}
	at := t0.Add(30 * time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.Add(&tm, at)
		w.Cancel(&tm)
	}
}

func BenchmarkWheelReAdd(b *testing.B) {
	// The common case of a keep-alive connection: its one timer is moved
	// on every request.
	w := NewWheel(time.Millisecond, 64, t0)
	var tm Timer
	tm.Func = func() {}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		w.Add(&tm, t0.Add(time.Duration(i%5000)*time.Millisecond+time.Minute))
	}
}

func BenchmarkWheelAdvanceFire(b *testing.B) {
	w := NewWheel(time.Millisecond, 64, t0)
	ts := make([]Timer, 1024)
	for i := range ts {
		ts[i].Func = func() {}
	}
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		for i := range ts {
			w.Add(&ts[i], now.Add(time.Duration(i)*time.Millisecond))
		}
		now = now.Add(1100 * time.Millisecond)
		w.Advance(now)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ts)), "ns/timer")
}
