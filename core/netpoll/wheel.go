package netpoll

import (
	"math/bits"
	"time"
)

// A Timer is one entry of a Wheel. It is intrusive: the list links live in
// the Timer itself, so adding and cancelling allocate nothing. A Timer is
// usually embedded in the object it times (a Conn embeds one). The zero
// value is an idle timer; set Func before adding it.
type Timer struct {
	// Func is called on the wheel's goroutine when the timer fires, after
	// the timer has been removed from the wheel (so Func may add it again).
	Func func()

	next, prev *Timer
	when       int64 // expiry, in ticks since the wheel's origin
	where      int8  // where it is linked: idle, due, firing, or level+1
	slot       uint8 // slot of its bucket within the level
}

// Values of Timer.where that are not a level (levels are stored plus one,
// so that the zero Timer is idle).
const (
	whereIdle   int8 = 0  // not in the wheel
	whereDue    int8 = -1 // in the due list: expired, fires at the next Advance
	whereFiring int8 = -2 // in the list that Advance is firing now
)

// Pending reports whether t is in a wheel, waiting to fire.
func (t *Timer) Pending() bool { return t.where != whereIdle }

// bucket is one list of timers. Timers are pushed at the head; the order in
// which the timers of one bucket fire is unspecified.
type bucket struct{ head *Timer }

// level is one ring of a hierarchical wheel: slot s of level i holds the
// timers whose expiry tick, shifted right by i*bits, is s modulo the size.
type level struct {
	buckets []bucket
	used    uint64 // bit s set when buckets[s] is not empty
}

// Wheel is a hierarchical timing wheel in the style of Kafka's purgatory
// (and Varghese and Lauck's scheme 6): level 0 has one slot per tick, each
// higher level has slots as wide as the whole level below, and a timer is
// filed at the lowest level whose span covers it. Add and Cancel are O(1)
// and allocate nothing; when time reaches a higher-level slot its timers
// are re-filed one level down ("cascading"), so every timer is moved at
// most once per level. Levels are added on demand for far deadlines (the
// overflow wheels of Kafka); 64 slots and a 1 ms tick cover 4.6 hours in
// four levels.
//
// A Wheel has no goroutine and no Go timer: its owner calls Advance with
// the current time and uses NextDeadline to know how long it may sleep. A
// timer fires at the first Advance whose time is at or after its deadline,
// so never early, and late by less than one tick plus the owner's own delay.
// A Wheel is not safe for concurrent use; the owning goroutine (a Loop's)
// makes every call.
type Wheel struct {
	origin time.Time     // time of tick 0
	tick   time.Duration // width of a level-0 slot
	bits   uint          // log2 of the number of slots per level
	cur    int64         // the current tick: everything up to it has fired
	count  int           // timers in the wheel, due list included
	levels []level
	due    bucket // expired timers to fire at the next Advance
	firing bucket // the due timers that fireDue is firing
}

// NewWheel returns a wheel whose level-0 slots are tick wide (at least
// 1µs), with slots slots per level (rounded up to a power of two between 4
// and 64), starting at now.
func NewWheel(tick time.Duration, slots int, now time.Time) *Wheel {
	tick = max(tick, time.Microsecond)
	slots = min(max(slots, 4), 64)
	w := &Wheel{origin: now, tick: tick, bits: uint(bits.Len(uint(slots - 1)))}
	w.addLevel()
	return w
}

// Tick returns the width of a level-0 slot.
func (w *Wheel) Tick() time.Duration { return w.tick }

// Len returns the number of timers waiting in the wheel.
func (w *Wheel) Len() int { return w.count }

// slots returns the number of slots per level.
func (w *Wheel) slots() int64 { return 1 << w.bits }

// addLevel adds one level above the highest.
func (w *Wheel) addLevel() {
	w.levels = append(w.levels, level{buckets: make([]bucket, w.slots())})
}

// ticks converts a time to the tick at which it has passed (rounding up).
func (w *Wheel) ticks(at time.Time) int64 {
	d := at.Sub(w.origin)
	if d <= 0 {
		return 0
	}
	return int64((d + w.tick - 1) / w.tick)
}

// floorTicks converts a time to the last tick that has begun by then.
func (w *Wheel) floorTicks(at time.Time) int64 {
	d := at.Sub(w.origin)
	if d <= 0 {
		return 0
	}
	return int64(d / w.tick)
}

// Add schedules t to fire at the first Advance at or after at. If t is
// already pending it is moved (cancelled and added again).
func (w *Wheel) Add(t *Timer, at time.Time) {
	w.Cancel(t)
	t.when = w.ticks(at)
	w.file(t)
	w.count++
}

// Cancel removes t from the wheel; it reports whether t was pending.
func (w *Wheel) Cancel(t *Timer) bool {
	if t.where == whereIdle {
		return false
	}
	w.unlink(t)
	w.count--
	return true
}

// file puts t into the bucket its expiry calls for, relative to the
// current tick.
func (w *Wheel) file(t *Timer) {
	delta := t.when - w.cur
	if delta <= 0 {
		w.link(&w.due, t, whereDue, 0)
		return
	}
	i := 0
	for ; bits.Len64(uint64(delta)) > int(w.bits)*(i+1); i++ {
		if i+1 == len(w.levels) {
			w.addLevel()
		}
	}
	s := uint8((t.when >> (w.bits * uint(i))) & (w.slots() - 1))
	lv := &w.levels[i]
	w.link(&lv.buckets[s], t, int8(i+1), s)
	lv.used |= 1 << s
}

// refile files a cascading timer; one due now goes to the level-0 slot
// that Advance fires next.
func (w *Wheel) refile(t *Timer) {
	if t.when > w.cur {
		w.file(t)
		return
	}
	s := uint8(w.cur & (w.slots() - 1))
	w.link(&w.levels[0].buckets[s], t, 1, s)
	w.levels[0].used |= 1 << s
}

// link pushes t at the head of b.
func (w *Wheel) link(b *bucket, t *Timer, where int8, s uint8) {
	t.where, t.slot = where, s
	t.prev = nil
	t.next = b.head
	if b.head != nil {
		b.head.prev = t
	}
	b.head = t
}

// unlink removes t from its bucket.
func (w *Wheel) unlink(t *Timer) {
	var b *bucket
	switch t.where {
	case whereDue:
		b = &w.due
	case whereFiring:
		b = &w.firing
	default:
		b = &w.levels[t.where-1].buckets[t.slot]
	}
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		b.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	if b.head == nil && t.where > 0 {
		w.levels[t.where-1].used &^= 1 << t.slot
	}
	t.next, t.prev = nil, nil
	t.where = whereIdle
}

// nextEvent returns the next tick after the current one at which the wheel
// has work: a level-0 slot to fire or a higher slot to cascade. ok is
// false when the wheel is empty.
func (w *Wheel) nextEvent() (tick int64, ok bool) {
	if w.count == 0 {
		return 0, false
	}
	if w.due.head != nil {
		return w.cur, true
	}
	return w.nextLevelEvent()
}

// nextLevelEvent is nextEvent without the due list.
func (w *Wheel) nextLevelEvent() (tick int64, ok bool) {
	tick, ok = int64(1)<<62, false
	for i := range w.levels {
		lv := &w.levels[i]
		if lv.used == 0 {
			continue
		}
		shift := w.bits * uint(i)
		block := w.cur >> shift
		start := uint((block + 1) & (w.slots() - 1))
		d := int64(bits.TrailingZeros64(w.rotate(lv.used, start)))
		if t := (block + 1 + d) << shift; t < tick {
			tick, ok = t, true
		}
	}
	return tick, ok
}

// rotate rotates the low slots bits of m right by n, so that bit n becomes
// bit 0.
func (w *Wheel) rotate(m uint64, n uint) uint64 {
	s := uint(w.slots())
	if n == 0 {
		return m
	}
	r := m>>n | m<<(s-n)
	if s < 64 {
		r &= 1<<s - 1
	}
	return r
}

// NextDeadline returns when the wheel next needs an Advance; ok is false
// when it holds no timers. The time may be earlier than any timer's
// deadline (a higher-level slot is due to cascade then); an Advance at that
// time does that work and fires nothing early.
func (w *Wheel) NextDeadline() (at time.Time, ok bool) {
	t, ok := w.nextEvent()
	if !ok {
		return time.Time{}, false
	}
	return w.origin.Add(time.Duration(t) * w.tick), true
}

// Advance moves the wheel to now and fires, in deadline order (ticks), the
// timers whose deadlines have passed. Timers that the callbacks add with a
// deadline already past fire at the next Advance (NextDeadline reports
// one due at once), so a callback that keeps re-adding itself cannot hold
// Advance forever. It returns the number fired.
func (w *Wheel) Advance(now time.Time) int {
	target := w.floorTicks(now)
	n := w.fireDue()
	for {
		t, ok := w.nextLevelEvent()
		if !ok || t > target {
			w.cur = max(w.cur, target)
			return n
		}
		w.cur = t
		w.cascade()
		n += w.fireBucket(&w.levels[0], uint8(t&(w.slots()-1)))
	}
}

// cascade re-files, highest level first, the timers of every higher-level
// slot that begins at the current tick.
func (w *Wheel) cascade() {
	for i := len(w.levels) - 1; i > 0; i-- {
		shift := w.bits * uint(i)
		if w.cur&(1<<shift-1) != 0 {
			continue
		}
		lv := &w.levels[i]
		s := uint8((w.cur >> shift) & (w.slots() - 1))
		for b := &lv.buckets[s]; b.head != nil; {
			t := b.head
			w.unlink(t)
			w.refile(t)
		}
	}
}

// fireBucket fires every timer in one level slot.
func (w *Wheel) fireBucket(lv *level, s uint8) int {
	return w.fireList(&lv.buckets[s])
}

// fireDue fires the timers in the due list when it is called, not those
// that the callbacks add to it.
func (w *Wheel) fireDue() int {
	if w.due.head == nil {
		return 0
	}
	w.firing, w.due = w.due, bucket{}
	for t := w.firing.head; t != nil; t = t.next {
		t.where = whereFiring
	}
	return w.fireList(&w.firing)
}

// fireList unlinks and fires the timers of b one by one, so that a
// callback may cancel or add any timer, those still in b included.
func (w *Wheel) fireList(b *bucket) int {
	n := 0
	for ; b.head != nil; n++ {
		t := b.head
		w.unlink(t)
		w.count--
		t.Func()
	}
	return n
}
