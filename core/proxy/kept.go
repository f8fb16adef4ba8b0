package proxy

// kept is state that handlers hold by key and that outlives a reload: a
// route built again with the same key gets the same value, which is
// forgotten when its last holder gives it back. Transports keeps the
// breakers (by route and upstream) and the stale caches (by route) in
// kept sets, guarded by its mutex.
type kept[K comparable, V comparable] struct {
	entries []*keptEntry[K, V]
}

// keptEntry is one value and how many handlers hold it.
type keptEntry[K comparable, V comparable] struct {
	key   K
	v     V
	users int
}

// acquire returns the value held under key, or makes one with build.
func (k *kept[K, V]) acquire(key K, build func() V) V {
	for _, e := range k.entries {
		if e.key == key {
			e.users++
			return e.v
		}
	}
	e := &keptEntry[K, V]{key: key, v: build(), users: 1}
	k.entries = append(k.entries, e)
	return e.v
}

// release gives back v; the last holder's release forgets it.
func (k *kept[K, V]) release(v V) {
	for i, e := range k.entries {
		if e.v == v {
			if e.users--; e.users == 0 {
				k.entries = append(k.entries[:i], k.entries[i+1:]...)
			}
			return
		}
	}
}
