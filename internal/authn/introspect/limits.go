package introspect

import (
	"sync"
	"time"
)

// cache maps SHA-256(token) to introspection results until a deadline,
// bounded in size.
type cache struct {
	mu  sync.Mutex
	m   map[[32]byte]cacheEntry
	max int
}

type cacheEntry struct {
	r     *result
	until time.Time
}

func newCache(max int) *cache {
	return &cache{m: make(map[[32]byte]cacheEntry, min(max, 1024)), max: max}
}

// get returns the result cached for k if it is still valid at now.
func (c *cache) get(k [32]byte, now time.Time) (*result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return nil, false
	}
	if !now.Before(e.until) {
		delete(c.m, k)
		return nil, false
	}
	return e.r, true
}

// put stores r until the deadline. When full it drops the entries past
// their deadline and, if that frees less than a tenth, arbitrary ones up
// to a tenth (amortized O(1)).
func (c *cache) put(k [32]byte, r *result, until, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		want := max(c.max/10, 1)
		freed := 0
		for key, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, key)
				freed++
			}
		}
		for key := range c.m {
			if freed >= want {
				break
			}
			delete(c.m, key)
			freed++
		}
	}
	c.m[k] = cacheEntry{r: r, until: until}
}

// bucket is a token bucket: rate tokens a second, at most rate stored.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newBucket(rate int) *bucket {
	return &bucket{rate: float64(rate), tokens: float64(rate)}
}

// take removes one token if there is one at now.
func (b *bucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
