package metrics

import (
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCounterCache: increments through the cache land on the vector's
// children, the same series WithLabelValues reaches, from many goroutines.
func TestCounterCache(t *testing.T) {
	type key struct {
		route string
		code  int
	}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"route", "code"})
	c := NewCounterCache(vec, func(k key) []string { return []string{k.route, strconv.Itoa(k.code)} })
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				c.Inc(key{"/a", 200})
				c.Inc(key{"/b", 404 + i%2})
			}
		}()
	}
	wg.Wait()
	vec.WithLabelValues("/a", "200").Inc() // the same child as the cache's
	for _, tc := range []struct {
		name  string
		route string
		code  string
		want  float64
	}{
		{name: "cached and direct", route: "/a", code: "200", want: 801},
		{name: "even", route: "/b", code: "404", want: 400},
		{name: "odd", route: "/b", code: "405", want: 400},
		{name: "never incremented", route: "/c", code: "200", want: 0},
	} {
		if got := testutil.ToFloat64(vec.WithLabelValues(tc.route, tc.code)); got != tc.want {
			t.Errorf("%s: %s %s = %v, want %v", tc.name, tc.route, tc.code, got, tc.want)
		}
	}
}
