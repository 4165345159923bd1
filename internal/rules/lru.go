package rules

import "time"

// boundedMap holds per-key state with a cap and a time to live, measured in event time. When the
// cap is reached the least recently touched key goes and evictions counts it; expired keys are
// dropped as they are met and by sweep. It is not safe for concurrent use: callers hold a lock.
type boundedMap[V any] struct {
	max       int
	ttl       time.Duration
	m         map[string]*lruNode[V]
	head      *lruNode[V] // least recently touched
	tail      *lruNode[V] // most recently touched
	evictions uint64      // keys dropped because of the cap
	expired   uint64      // keys dropped because of the ttl
	writes    int
}

type lruNode[V any] struct {
	key        string
	val        V
	touched    time.Time
	prev, next *lruNode[V]
}

func newBoundedMap[V any](max int, ttl time.Duration) *boundedMap[V] {
	if max <= 0 {
		max = 1
	}
	return &boundedMap[V]{max: max, ttl: ttl, m: map[string]*lruNode[V]{}}
}

// get returns the live value of key without touching it.
func (b *boundedMap[V]) get(key string, now time.Time) (V, bool) {
	n, ok := b.m[key]
	if !ok || b.isExpired(n, now) {
		var zero V
		return zero, false
	}
	return n.val, true
}

func (b *boundedMap[V]) isExpired(n *lruNode[V], now time.Time) bool {
	return b.ttl > 0 && now.Sub(n.touched) > b.ttl
}

// upsert returns the value of key, creating it with mk when absent or expired, and marks it
// touched at now.
func (b *boundedMap[V]) upsert(key string, now time.Time, mk func() V) V {
	b.writes++
	if b.writes%1024 == 0 {
		b.sweep(now)
	}
	if n, ok := b.m[key]; ok {
		return b.touch(n, now, mk)
	}
	return b.insert(key, now, mk)
}

// upsertBytes is upsert for a key held in a buffer: the key is copied only when it is new.
func (b *boundedMap[V]) upsertBytes(key []byte, now time.Time, mk func() V) V {
	b.writes++
	if b.writes%1024 == 0 {
		b.sweep(now)
	}
	if n, ok := b.m[string(key)]; ok {
		return b.touch(n, now, mk)
	}
	return b.insert(string(key), now, mk)
}

func (b *boundedMap[V]) touch(n *lruNode[V], now time.Time, mk func() V) V {
	if b.isExpired(n, now) {
		n.val = mk()
		b.expired++
	}
	if now.After(n.touched) {
		n.touched = now
	}
	b.moveToTail(n)
	return n.val
}

func (b *boundedMap[V]) insert(key string, now time.Time, mk func() V) V {
	for len(b.m) >= b.max && b.head != nil {
		b.remove(b.head)
		b.evictions++
	}
	n := &lruNode[V]{key: key, val: mk(), touched: now}
	b.m[key] = n
	b.pushTail(n)
	return n.val
}

// put stores v under key as it was at touched (restoring a snapshot).
func (b *boundedMap[V]) put(key string, v V, touched time.Time) {
	if n, ok := b.m[key]; ok {
		b.remove(n)
	}
	for len(b.m) >= b.max && b.head != nil {
		b.remove(b.head)
		b.evictions++
	}
	n := &lruNode[V]{key: key, val: v, touched: touched}
	b.m[key] = n
	b.pushTail(n)
}

func (b *boundedMap[V]) deleteBytes(key []byte) {
	if n, ok := b.m[string(key)]; ok {
		b.remove(n)
	}
}

// sweep drops expired keys from the least recently touched end.
func (b *boundedMap[V]) sweep(now time.Time) {
	for b.head != nil && b.isExpired(b.head, now) {
		b.remove(b.head)
		b.expired++
	}
}

func (b *boundedMap[V]) len() int { return len(b.m) }

// each visits keys from least to most recently touched.
func (b *boundedMap[V]) each(f func(key string, v V, touched time.Time)) {
	for n := b.head; n != nil; n = n.next {
		f(n.key, n.val, n.touched)
	}
}

func (b *boundedMap[V]) pushTail(n *lruNode[V]) {
	n.prev, n.next = b.tail, nil
	if b.tail != nil {
		b.tail.next = n
	} else {
		b.head = n
	}
	b.tail = n
}

func (b *boundedMap[V]) unlink(n *lruNode[V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		b.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		b.tail = n.prev
	}
	n.prev, n.next = nil, nil
}

func (b *boundedMap[V]) moveToTail(n *lruNode[V]) {
	if b.tail == n {
		return
	}
	b.unlink(n)
	b.pushTail(n)
}

func (b *boundedMap[V]) remove(n *lruNode[V]) {
	b.unlink(n)
	delete(b.m, n.key)
}
