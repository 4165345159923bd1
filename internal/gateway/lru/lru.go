// Package lru is a map capped in size that evicts the least recently used key, for per-client
// state that hostile traffic could otherwise grow without bound. It is not safe for concurrent
// use; callers lock.
package lru

import "container/list"

// Cache maps keys to values, keeping at most Cap entries.
type Cache[K comparable, V any] struct {
	cap     int
	ll      *list.List
	items   map[K]*list.Element
	evicted int64
	onEvict func(K, V)
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns a cache of at most capacity entries (at least 1). onEvict, if not nil, sees each
// evicted entry.
func New[K comparable, V any](capacity int, onEvict func(K, V)) *Cache[K, V] {
	if capacity < 1 {
		capacity = 1
	}
	return &Cache[K, V]{cap: capacity, ll: list.New(), items: map[K]*list.Element{}, onEvict: onEvict}
}

// Get returns the value of key and marks it used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	if el, ok := c.items[key]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*entry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// Peek returns the value of key without marking it used.
func (c *Cache[K, V]) Peek(key K) (V, bool) {
	if el, ok := c.items[key]; ok {
		return el.Value.(*entry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// GetOrAdd returns the value of key, creating it with mk (and evicting the oldest entry when
// full) if absent.
func (c *Cache[K, V]) GetOrAdd(key K, mk func() V) V {
	if v, ok := c.Get(key); ok {
		return v
	}
	v := mk()
	c.items[key] = c.ll.PushFront(&entry[K, V]{key, v})
	for c.ll.Len() > c.cap {
		old := c.ll.Back()
		e := old.Value.(*entry[K, V])
		c.ll.Remove(old)
		delete(c.items, e.key)
		c.evicted++
		if c.onEvict != nil {
			c.onEvict(e.key, e.val)
		}
	}
	return v
}

// Remove deletes key.
func (c *Cache[K, V]) Remove(key K) {
	if el, ok := c.items[key]; ok {
		c.ll.Remove(el)
		delete(c.items, key)
	}
}

// Len is the number of entries.
func (c *Cache[K, V]) Len() int { return c.ll.Len() }

// Evicted counts the entries evicted so far.
func (c *Cache[K, V]) Evicted() int64 { return c.evicted }

// All calls f for each entry, most recently used first, until f returns false.
func (c *Cache[K, V]) All(f func(K, V) bool) {
	for el := c.ll.Front(); el != nil; el = el.Next() {
		e := el.Value.(*entry[K, V])
		if !f(e.key, e.val) {
			return
		}
	}
}
