package proxy

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// testBalancer builds a balancer over n upstreams named u0..un-1 without
// transports: picking needs none.
func testBalancer(policy Policy, names []string) *balancer {
	var ups []*upstream
	for _, n := range names {
		ups = append(ups, &upstream{url: n, weight: 1, id: cookieID(hashString(n)), key: hashString(n)})
	}
	return newBalancer(&Config{Policy: policy, HashHeader: "X-User"}, ups)
}

func names(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("http://10.0.0.%d:80", i+1))
	}
	return out
}

// TestHashPoliciesAreConsistent removes one of N upstreams and checks that
// at most 1/N + 5% of keys move, for each hashing policy, and that the
// keys spread evenly before.
func TestHashPoliciesAreConsistent(t *testing.T) {
	const keys = 20000
	for _, policy := range []Policy{IPHash, URIHash, HeaderHash} {
		for _, n := range []int{3, 5, 10} {
			t.Run(fmt.Sprintf("%v/%d", policy, n), func(t *testing.T) {
				all := names(n)
				before, after := testBalancer(policy, all), testBalancer(policy, all[1:])
				moved, perUpstream := 0, make([]int, n)
				for k := range keys {
					r := keyedRequest(policy, k)
					var t1, t2 tried
					b := before.pick(r, &t1, 0)
					a := after.pick(r, &t2, 0)
					perUpstream[b]++
					if all[b] != all[1:][a] {
						moved++
					}
				}
				share := float64(moved) / keys
				if limit := 1/float64(n) + 0.05; share > limit {
					t.Errorf("%.3f of keys moved, want at most %.3f", share, limit)
				}
				for i, c := range perUpstream {
					if want := keys / n; c < want*8/10 || c > want*12/10 {
						t.Errorf("upstream %d got %d keys, want %d ± 20%%", i, c, want)
					}
				}
			})
		}
	}
}

func keyedRequest(policy Policy, k int) *message.Request {
	r := &message.Request{Path: "/", RemoteAddr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)}), 1)}
	switch policy {
	case URIHash:
		r.Path = fmt.Sprintf("/item/%d", k)
	case HeaderHash:
		r.Header.Add("X-User", fmt.Sprintf("user-%d", k))
	}
	return r
}

func TestHashSkipsUnavailableUpstream(t *testing.T) {
	b := testBalancer(URIHash, names(4))
	r := keyedRequest(URIHash, 42)
	var t1 tried
	first := b.pick(r, &t1, 0)
	b.ups[first].checkDown.Store(true)
	var t2 tried
	if second := b.pick(r, &t2, 0); second == first || second < 0 {
		t.Errorf("picked %d again (or none) while it is down", second)
	}
}

func TestFirstFailsOverInOrder(t *testing.T) {
	b := testBalancer(First, names(3))
	var tr tried
	if got := b.pick(&message.Request{}, &tr, 0); got != 0 {
		t.Errorf("got %d, want 0", got)
	}
	b.ups[0].downUntil.Store(1 << 62)
	if got := b.pick(&message.Request{}, &tr, 0); got != 1 {
		t.Errorf("with 0 down: got %d, want 1", got)
	}
}

func TestSlowStartShareGrows(t *testing.T) {
	u := &upstream{}
	d := 10 * time.Second
	for _, c := range []struct {
		age  time.Duration
		want float64
	}{{0, 0.1}, {5 * time.Second, 0.55}, {10 * time.Second, 1}, {time.Minute, 1}} {
		u.upSince.Store(int64(time.Hour) - int64(c.age))
		if got := u.slowStartShare(d, int64(time.Hour)); got < c.want-1e-9 || got > c.want+1e-9 {
			t.Errorf("age %v: share %.3f, want %.3f", c.age, got, c.want)
		}
	}
}

// TestSlowStartLimitsTraffic checks that an upstream just back gets about
// a tenth of its round-robin share.
func TestSlowStartLimitsTraffic(t *testing.T) {
	b := testBalancer(RoundRobin, names(2))
	b.slowDur = int64(time.Minute)
	now := int64(time.Hour)
	b.ups[0].upSince.Store(now - int64(time.Hour))
	b.ups[1].upSince.Store(now) // just came back: a tenth of its share
	counts := [2]int{}
	const n = 20000
	for range n {
		var tr tried
		counts[b.pick(&message.Request{}, &tr, now)]++
	}
	// Round robin offers it half the requests; it takes a tenth of them.
	if got, want := float64(counts[1])/n, 0.05; got < want*0.7 || got > want*1.3 {
		t.Errorf("the returning upstream got %.3f of requests, want about %.3f", got, want)
	}
}
