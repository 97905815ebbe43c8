package accesskey

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

const (
	// CacheTTL bounds how long a registry answer is reused.
	CacheTTL = 60 * time.Second
	// DefaultCacheSize bounds the registry cache (unknown jtis are cached
	// too, so a flood of them must not grow it without limit).
	DefaultCacheSize = 100_000
	// lookupTimeout bounds a (shared) registry lookup.
	lookupTimeout = 10 * time.Second
)

// CacheOption configures a Cache.
type CacheOption func(*Cache)

// CacheClock injects the clock.
func CacheClock(now func() time.Time) CacheOption { return func(c *Cache) { c.now = now } }

// CacheSize bounds the number of entries (default DefaultCacheSize).
func CacheSize(n int) CacheOption { return func(c *Cache) { c.max = max(n, 1) } }

// Cache is a Registry that remembers the answers of another one, both
// found keys and unknown ones, each for at most CacheTTL and never past
// the moment the key stops being usable (KeyState.UsableUntil). Errors are
// never cached.
//
// The registry's change feed keeps it exact: Invalidate drops one key,
// Reset all. While the feed is unhealthy (SetFeedHealthy(false), and from
// creation until the first SetFeedHealthy(true)) the cache is bypassed and
// every lookup asks the registry, so a change made on another replica is
// never missed. Concurrent lookups of one jti are coalesced.
type Cache struct {
	reg Registry
	now func() time.Time
	max int

	mu      sync.Mutex
	m       map[string]cacheEntry
	healthy bool
	// gen counts invalidations: an answer fetched before one is not
	// stored, and lookups after one never join a flight started before.
	gen    uint64
	flight singleflight.Group
}

type cacheEntry struct {
	state    KeyState
	notFound bool
	expires  time.Time
}

var _ Registry = (*Cache)(nil)

// NewCache wraps reg. The cache starts bypassed (feed unhealthy).
func NewCache(reg Registry, opts ...CacheOption) *Cache {
	c := &Cache{reg: reg, now: time.Now, max: DefaultCacheSize, m: make(map[string]cacheEntry)}
	for _, o := range opts {
		o(c)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Lookup implements Registry.
func (c *Cache) Lookup(ctx context.Context, jti string) (KeyState, error) {
	now := c.now()
	c.mu.Lock()
	if !c.healthy {
		c.mu.Unlock()
		return c.reg.Lookup(ctx, jti)
	}
	if e, ok := c.m[jti]; ok {
		if now.Before(e.expires) {
			c.mu.Unlock()
			if e.notFound {
				return KeyState{}, ErrNotFound
			}
			return e.state, nil
		}
		delete(c.m, jti)
	}
	gen := c.gen
	c.mu.Unlock()

	type answer struct {
		st       KeyState
		notFound bool
	}
	// The shared lookup outlives the caller that started it (others may
	// wait for it), bounded by lookupTimeout.
	if testHookBeforeFlight != nil {
		testHookBeforeFlight()
	}
	ch := c.flight.DoChan(strconv.FormatUint(gen, 10)+"/"+jti, func() (any, error) {
		if e, ok := c.fresh(jti, gen); ok { // stored by a flight that just ended
			return answer{e.state, e.notFound}, nil
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		st, err := c.reg.Lookup(lctx, jti)
		notFound := errors.Is(err, ErrNotFound)
		if err != nil && !notFound {
			return nil, err
		}
		c.store(jti, gen, st, notFound)
		return answer{st, notFound}, nil
	})
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return KeyState{}, ctx.Err()
	}
	if res.Err != nil {
		return KeyState{}, res.Err
	}
	a := res.Val.(answer)
	if a.notFound {
		return KeyState{}, ErrNotFound
	}
	return a.st, nil
}

// testHookBeforeFlight, if set, runs before a lookup joins or starts a
// registry call (tests).
var testHookBeforeFlight func()

// fresh is the unexpired entry of jti, if the cache is still at
// generation gen.
func (c *Cache) fresh(jti string, gen uint64) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[jti]
	return e, ok && c.gen == gen && c.now().Before(e.expires)
}

// store records an answer fetched at generation gen, unless the cache was
// invalidated (or bypassed) since.
func (c *Cache) store(jti string, gen uint64, st KeyState, notFound bool) {
	now := c.now()
	expires := now.Add(CacheTTL)
	if !notFound && st.Usable && st.UsableUntil != nil && st.UsableUntil.Before(expires) {
		expires = *st.UsableUntil
	}
	if !now.Before(expires) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || !c.healthy {
		return
	}
	if _, ok := c.m[jti]; !ok && len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[jti] = cacheEntry{state: st, notFound: notFound, expires: expires}
}

// evict drops the expired entries and, if that frees less than a tenth,
// arbitrary ones up to a tenth. c.mu is held.
func (c *Cache) evict(now time.Time) {
	want, freed := max(c.max/10, 1), 0
	for k, e := range c.m {
		if !now.Before(e.expires) {
			delete(c.m, k)
			freed++
		}
	}
	for k := range c.m {
		if freed >= want {
			return
		}
		delete(c.m, k)
		freed++
	}
}

// Invalidate forgets jti: the next lookup asks the registry.
func (c *Cache) Invalidate(jti string) {
	c.mu.Lock()
	delete(c.m, jti)
	c.gen++
	c.mu.Unlock()
}

// Reset forgets every key.
func (c *Cache) Reset() {
	c.mu.Lock()
	clear(c.m)
	c.gen++
	c.mu.Unlock()
}

// SetFeedHealthy says whether the registry's change feed is delivering
// changes. Unhealthy, the cache is emptied and bypassed; it is used again
// from the next SetFeedHealthy(true) on.
func (c *Cache) SetFeedHealthy(ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.healthy == ok {
		return
	}
	c.healthy = ok
	clear(c.m)
	c.gen++
}

// Len is the number of cached answers (for tests and metrics).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
