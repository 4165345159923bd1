package lru_test

import (
	"testing"

	"github.com/pipewarden/pipewarden/internal/gateway/lru"
)

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	var evicted []string
	c := lru.New[string, int](2, func(k string, _ int) { evicted = append(evicted, k) })
	c.GetOrAdd("a", func() int { return 1 })
	c.GetOrAdd("b", func() int { return 2 })
	c.Get("a") // b is now the oldest
	c.GetOrAdd("c", func() int { return 3 })
	if _, ok := c.Peek("b"); ok || len(evicted) != 1 || evicted[0] != "b" {
		t.Fatalf("evicted %v; b still present: %v", evicted, ok)
	}
	if v, ok := c.Get("a"); !ok || v != 1 || c.Len() != 2 || c.Evicted() != 1 {
		t.Fatalf("a=%d %v len=%d evicted=%d", v, ok, c.Len(), c.Evicted())
	}
	if v := c.GetOrAdd("a", func() int { return 9 }); v != 1 {
		t.Fatalf("GetOrAdd replaced an existing value: %d", v)
	}
	c.Remove("a")
	if _, ok := c.Get("a"); ok || c.Len() != 1 {
		t.Fatal("Remove did not remove")
	}
}

func TestCacheHoldsCapUnderChurn(t *testing.T) {
	c := lru.New[int, int](100, nil)
	for i := range 10000 {
		c.GetOrAdd(i, func() int { return i })
	}
	if c.Len() != 100 || c.Evicted() != 9900 {
		t.Fatalf("len %d evicted %d", c.Len(), c.Evicted())
	}
	n := 0
	c.All(func(k, _ int) bool { n++; return k >= 9900 })
	if n != 100 {
		t.Fatalf("All visited %d entries, or an old key survived", n)
	}
}
