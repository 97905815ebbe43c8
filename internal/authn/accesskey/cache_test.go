package accesskey

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func healthyCache(reg Registry, clock *testClock) *Cache {
	c := NewCache(reg, CacheClock(clock.Now))
	c.SetFeedHealthy(true)
	return c
}

func mustLookup(t *testing.T, c *Cache, jti string) KeyState {
	t.Helper()
	st, err := c.Lookup(context.Background(), jti)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCacheServesRepeatsWithinTTL(t *testing.T) {
	reg, clock := newRegistry(), newClock()
	reg.set(testJTI, active("alice"))
	c := healthyCache(reg, clock)
	mustLookup(t, c, testJTI)
	clock.Advance(CacheTTL - time.Second)
	mustLookup(t, c, testJTI)
	if reg.count() != 1 {
		t.Fatalf("registry asked %d times within the TTL, want 1", reg.count())
	}
	clock.Advance(time.Second)
	mustLookup(t, c, testJTI)
	if reg.count() != 2 {
		t.Fatalf("registry asked %d times after the TTL, want 2", reg.count())
	}
}

func TestCacheInvalidateTakesEffectOnNextLookup(t *testing.T) {
	tests := []struct {
		name  string
		clear func(c *Cache)
	}{
		{"invalidate", func(c *Cache) { c.Invalidate(testJTI) }},
		{"reset", func(c *Cache) { c.Reset() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, clock := newRegistry(), newClock()
			reg.set(testJTI, active("alice"))
			c := healthyCache(reg, clock)
			if !mustLookup(t, c, testJTI).Usable {
				t.Fatal("not usable")
			}
			reg.set(testJTI, KeyState{Principal: "alice", Status: StatusRevoked})
			if !mustLookup(t, c, testJTI).Usable {
				t.Fatal("the cache was not used before invalidation (test is void)")
			}
			tt.clear(c)
			if st := mustLookup(t, c, testJTI); st.Usable || st.Status != StatusRevoked {
				t.Fatalf("after %s: %+v", tt.name, st)
			}
		})
	}
}

func TestCacheNegativeEntries(t *testing.T) {
	reg, clock := newRegistry(), newClock()
	c := healthyCache(reg, clock)
	for range 3 {
		if _, err := c.Lookup(context.Background(), testJTI); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err %v, want ErrNotFound", err)
		}
	}
	if reg.count() != 1 {
		t.Fatalf("registry asked %d times for an unknown key, want 1", reg.count())
	}
	reg.set(testJTI, active("alice"))
	c.Invalidate(testJTI) // the change feed announces the new key
	if !mustLookup(t, c, testJTI).Usable {
		t.Fatal("new key not seen after invalidation")
	}
}

func TestCacheErrorsNotCached(t *testing.T) {
	reg, clock := newRegistry(), newClock()
	reg.setErr(errors.New("db down"))
	c := healthyCache(reg, clock)
	if _, err := c.Lookup(context.Background(), testJTI); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("err %v", err)
	}
	reg.setErr(nil)
	reg.set(testJTI, active("alice"))
	if !mustLookup(t, c, testJTI).Usable {
		t.Fatal("error was cached")
	}
}

// TestCacheBypassedWhileFeedUnhealthy: from creation until the feed is
// healthy, and whenever it is not, every lookup asks the registry.
func TestCacheBypassedWhileFeedUnhealthy(t *testing.T) {
	reg, clock := newRegistry(), newClock()
	reg.set(testJTI, active("alice"))
	c := NewCache(reg, CacheClock(clock.Now))
	mustLookup(t, c, testJTI)
	mustLookup(t, c, testJTI)
	if reg.count() != 2 || c.Len() != 0 {
		t.Fatalf("new cache (feed not yet healthy): %d registry calls, %d entries; want 2, 0", reg.count(), c.Len())
	}
	c.SetFeedHealthy(true)
	mustLookup(t, c, testJTI)
	mustLookup(t, c, testJTI)
	if reg.count() != 3 {
		t.Fatalf("healthy feed: %d registry calls, want 3", reg.count())
	}
	c.SetFeedHealthy(false)
	reg.set(testJTI, KeyState{Principal: "alice", Status: StatusSuspended}) // a change the feed missed
	if st := mustLookup(t, c, testJTI); st.Usable {
		t.Fatal("unhealthy feed: the cached answer was served")
	}
	mustLookup(t, c, testJTI)
	if reg.count() != 5 || c.Len() != 0 {
		t.Fatalf("unhealthy feed: %d registry calls, %d entries; want 5, 0", reg.count(), c.Len())
	}
}

// TestCacheNeverOutlivesUsableUntil: an entry expires when its key stops
// being usable, even inside the TTL.
func TestCacheNeverOutlivesUsableUntil(t *testing.T) {
	reg, clock := newRegistry(), newClock()
	until := clock.Now().Add(10 * time.Second)
	reg.set(testJTI, KeyState{Principal: "alice", Usable: true, Status: StatusRotating, UsableUntil: &until})
	c := healthyCache(reg, clock)
	mustLookup(t, c, testJTI)
	clock.Advance(9 * time.Second)
	mustLookup(t, c, testJTI)
	if reg.count() != 1 {
		t.Fatalf("%d registry calls before UsableUntil, want 1", reg.count())
	}
	reg.set(testJTI, KeyState{Principal: "alice", Status: StatusRotating})
	clock.Advance(time.Second)
	if st := mustLookup(t, c, testJTI); st.Usable {
		t.Fatal("entry served at UsableUntil")
	}
	if reg.count() != 2 {
		t.Fatalf("%d registry calls, want 2", reg.count())
	}
}

// TestCacheInvalidateDuringLookup: an answer fetched before an
// invalidation is not stored.
func TestCacheInvalidateDuringLookup(t *testing.T) {
	reg, clock := newRegistry(), newClock()
	reg.set(testJTI, active("alice"))
	reg.block = make(chan struct{})
	c := healthyCache(reg, clock)
	done := make(chan KeyState)
	go func() {
		st, _ := c.Lookup(context.Background(), testJTI)
		done <- st
	}()
	waitFor(t, func() bool { return reg.count() == 1 }) // the lookup is in the registry
	c.Invalidate(testJTI)
	close(reg.block)
	<-done
	if c.Len() != 0 {
		t.Fatal("an answer fetched before the invalidation was cached")
	}
}

// TestCacheCoalesces: concurrent lookups of one jti make one registry
// call.
func TestCacheCoalesces(t *testing.T) {
	reg, clock := newRegistry(), newClock()
	reg.set(testJTI, active("alice"))
	reg.block = make(chan struct{})
	c := healthyCache(reg, clock)
	const n = 8
	arrived := make(chan struct{}, n)
	testHookBeforeFlight = func() { arrived <- struct{}{} }
	t.Cleanup(func() { testHookBeforeFlight = nil })
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if st, err := c.Lookup(context.Background(), testJTI); err != nil || !st.Usable {
				t.Errorf("%+v %v", st, err)
			}
		})
	}
	for range n { // every lookup missed the cache and is about to join
		<-arrived
	}
	close(reg.block)
	wg.Wait()
	if reg.count() != 1 || c.Len() != 1 {
		t.Fatalf("%d registry calls, %d entries; want 1, 1", reg.count(), c.Len())
	}
}

func TestCacheBounded(t *testing.T) {
	reg, clock := newRegistry(), newClock()
	c := NewCache(reg, CacheClock(clock.Now), CacheSize(10))
	c.SetFeedHealthy(true)
	for i := range 100 {
		jti, _ := NewJTI()
		_, _ = c.Lookup(context.Background(), jti)
		if c.Len() > 10 {
			t.Fatalf("after %d unknown keys the cache holds %d entries, bound 10", i+1, c.Len())
		}
	}
}

// waitFor polls cond (an event the test cannot otherwise observe) for up
// to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}
