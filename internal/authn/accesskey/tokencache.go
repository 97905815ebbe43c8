package accesskey

import (
	"sync"
	"time"
)

// tokenCache maps SHA-256(token) to its verified claims, so that a token
// seen again skips the RSA signature check. It never holds a registry
// decision: the registry (through its Cache) is asked on every request.
// Entries expire at the earlier of the token's exp and TokenCacheTTL after
// insertion; the size is bounded.
type tokenCache struct {
	mu  sync.Mutex
	m   map[[32]byte]tokenEntry
	max int
}

type tokenEntry struct {
	c       *verified
	expires time.Time
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{m: make(map[[32]byte]tokenEntry, min(max, 1024)), max: max}
}

// get returns the entry of k if it has not expired at now.
func (t *tokenCache) get(k [32]byte, now time.Time) *verified {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[k]
	if !ok {
		return nil
	}
	if !now.Before(e.expires) {
		delete(t.m, k)
		return nil
	}
	return e.c
}

// put stores c. When full it drops the expired entries and, if that frees
// less than a tenth, arbitrary ones up to a tenth (amortized O(1)).
func (t *tokenCache) put(k [32]byte, c *verified, now time.Time) {
	expires := now.Add(TokenCacheTTL)
	if c.exp != nil && c.exp.Before(expires) {
		expires = *c.exp
	}
	if !now.Before(expires) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[k]; !ok && len(t.m) >= t.max {
		want, freed := max(t.max/10, 1), 0
		for key, e := range t.m {
			if !now.Before(e.expires) {
				delete(t.m, key)
				freed++
			}
		}
		for key := range t.m {
			if freed >= want {
				break
			}
			delete(t.m, key)
			freed++
		}
	}
	t.m[k] = tokenEntry{c: c, expires: expires}
}

func (t *tokenCache) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
