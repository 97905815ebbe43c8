package authz_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/store/scalefixture"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/testenv"
)

// Full policy loads from a real store (docs/benchmarks.md "Policy load at
// scale"): a fresh engine loads every binding of a fixture database of n
// synthetic bindings (scalefixture), as at server start. SQLite always;
// PostgreSQL when NMP_TEST_POSTGRES_URL is set. Besides time and
// allocations they report the heap the loaded snapshot holds after GC
// (held-bytes, bytes/binding), the largest heap seen during the load,
// garbage included (peak-heap-bytes), which is what drives the process's
// resident memory, and the CPU time of the benchmark process per load
// (cpu-ns/op; the database server's, for PostgreSQL, is not included).

// BenchmarkLoadFrom is the streaming load: Store.ScanActiveBindings into
// Engine.LoadFrom.
func BenchmarkLoadFrom(b *testing.B) {
	benchLoad(b, func(e *authz.Engine, st *sqlstore.Store) error {
		_, err := e.LoadFrom(context.Background(), st, time.Now())
		return err
	})
}

// BenchmarkReload is the load it replaces: Store.ActiveBindings, then
// Engine.Load of the materialized bindings.
func BenchmarkReload(b *testing.B) {
	benchLoad(b, func(e *authz.Engine, st *sqlstore.Store) error {
		pb, err := st.ActiveBindings(context.Background())
		if err != nil {
			return err
		}
		return e.Load(pb, time.Now())
	})
}

func benchLoad(b *testing.B, load func(*authz.Engine, *sqlstore.Store) error) {
	doc, err := authz.StaticDocument()
	if err != nil {
		b.Fatal(err)
	}
	cache := scalefixture.NewCache(b)
	for _, kind := range []string{"sqlite", "postgres"} {
		for _, n := range []int{100, 10_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s/bindings=%d", kind, n), func(b *testing.B) {
				st, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: cache.URL(b, kind, n)})
				if err != nil {
					b.Fatal(err)
				}
				defer testenv.Close(b, st)
				var held, peak uint64
				var cpu time.Duration
				var e *authz.Engine
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					e = nil
					fresh, _ := authz.NewEngine(doc)
					runtime.GC()
					var before, after runtime.MemStats
					runtime.ReadMemStats(&before)
					stop := watchPeakHeap()
					cpu0 := cpuTime()
					b.StartTimer()
					if err := load(fresh, st); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					cpu += cpuTime() - cpu0
					peak = stop()
					runtime.GC()
					runtime.ReadMemStats(&after)
					held = after.HeapAlloc - before.HeapAlloc
					e = fresh
					b.StartTimer()
				}
				b.StopTimer()
				in := authz.Input{PrincipalID: scalefixture.ProbePrincipal, Method: "POST",
					Path: "/apis/entities/v2/workspaces/" + scalefixture.ProbeWorkspace + "/projects"}
				if d := e.Allow(in); !d.Allowed {
					b.Fatalf("probe decision %+v", d)
				}
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(held), "held-bytes")
				b.ReportMetric(float64(held)/float64(n), "bytes/binding")
				b.ReportMetric(float64(peak), "peak-heap-bytes")
			})
		}
	}
}

// cpuTime is the CPU time (user and system) of this process so far: on a
// shared machine it varies less than the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// watchPeakHeap samples the heap (live and not yet collected objects)
// every millisecond until the returned function is called, which
// returns the largest value seen.
func watchPeakHeap() func() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	read := func() {
		metrics.Read(sample)
		peak = max(peak, sample[0].Value.Uint64())
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		read()
		return peak
	}
}
