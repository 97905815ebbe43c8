package jwtverify

import (
	"sync"

	"github.com/nmp-project/nmp/internal/authn"
)

// cacheEntry is a validated signed token: its principal, its expiry and
// the key that verified it, all re-checked on every hit.
type cacheEntry struct {
	p     *authn.Principal
	exp   float64 // exp claim, Unix seconds
	ks    *keySet
	thumb string
}

// tokenCache maps SHA-256(token) to validated tokens, bounded in size.
type tokenCache struct {
	mu  sync.RWMutex
	m   map[[32]byte]*cacheEntry
	max int
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{m: make(map[[32]byte]*cacheEntry, min(max, 1024)), max: max}
}

func (c *tokenCache) get(k [32]byte) *cacheEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[k]
}

func (c *tokenCache) remove(k [32]byte) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// put stores e. When full it drops the expired entries (exp before
// horizon) and, if that frees less than a tenth, arbitrary ones up to a
// tenth, so that eviction stays amortized O(1).
func (c *tokenCache) put(k [32]byte, e *cacheEntry, horizon float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		want := max(c.max/10, 1)
		freed := 0
		for key, old := range c.m {
			if old.exp < horizon {
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
	c.m[k] = e
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
