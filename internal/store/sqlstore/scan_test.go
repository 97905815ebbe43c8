package sqlstore_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/store/scalefixture"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/testenv"
)

// BenchmarkScanActiveBindings is the raw read of a full policy load: every
// active binding streamed out of a real database, nothing indexed
// (docs/benchmarks.md "Policy load at scale"). PostgreSQL runs when
// NMP_TEST_POSTGRES_URL is set.
func BenchmarkScanActiveBindings(b *testing.B) {
	cache := scalefixture.NewCache(b)
	for _, kind := range []string{"sqlite", "postgres"} {
		for _, n := range []int{100, 10_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s/bindings=%d", kind, n), func(b *testing.B) {
				start := time.Now()
				u := cache.URL(b, kind, n)
				b.Logf("fixture ready after %v", time.Since(start).Round(time.Millisecond))
				st, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: u})
				if err != nil {
					b.Fatal(err)
				}
				defer testenv.Close(b, st)
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := cpuTime()
				for b.Loop() {
					rows := 0
					if _, err := st.ScanActiveBindings(context.Background(), func(string, string, string) error {
						rows++
						return nil
					}); err != nil {
						b.Fatal(err)
					}
					if rows < n {
						b.Fatalf("%d rows", rows)
					}
				}
				b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/binding")
			})
		}
	}
}

// BenchmarkActiveBindings is the materializing read it replaces.
func BenchmarkActiveBindings(b *testing.B) {
	cache := scalefixture.NewCache(b)
	for _, kind := range []string{"sqlite", "postgres"} {
		for _, n := range []int{100, 10_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s/bindings=%d", kind, n), func(b *testing.B) {
				st, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: cache.URL(b, kind, n)})
				if err != nil {
					b.Fatal(err)
				}
				defer testenv.Close(b, st)
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := cpuTime()
				for b.Loop() {
					if pb, err := st.ActiveBindings(context.Background()); err != nil || len(pb.Bindings) < n {
						b.Fatal(len(pb.Bindings), err)
					}
				}
				b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/binding")
			})
		}
	}
}

// cpuTime is the CPU time (user and system) of this process so far: on a
// shared machine it varies less than the wall time. For PostgreSQL the
// server's own CPU time is not included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
