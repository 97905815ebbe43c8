package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// CounterCache memoizes the children of a CounterVec by a comparable key,
// so that a request pays one map read per increment instead of the
// vector's hashing and validation of every label value (and the caller's
// formatting of them). Keys must come from a bounded set: each is a
// series of the vector anyway. Children are never deleted from the
// vectors this package makes, so a cached child stays the live one.
type CounterCache[K comparable] struct {
	vec    *prometheus.CounterVec
	labels func(K) []string // K's label values, in the vector's order
	mu     sync.RWMutex
	m      map[K]prometheus.Counter
}

// NewCounterCache returns a cache of vec's children; labels gives a key's
// label values.
func NewCounterCache[K comparable](vec *prometheus.CounterVec, labels func(K) []string) *CounterCache[K] {
	return &CounterCache[K]{vec: vec, labels: labels, m: map[K]prometheus.Counter{}}
}

// Inc adds one to k's counter.
func (c *CounterCache[K]) Inc(k K) {
	c.mu.RLock()
	ctr, ok := c.m[k]
	c.mu.RUnlock()
	if !ok {
		ctr = c.vec.WithLabelValues(c.labels(k)...)
		c.mu.Lock()
		c.m[k] = ctr
		c.mu.Unlock()
	}
	ctr.Inc()
}
