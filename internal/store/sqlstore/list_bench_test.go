package sqlstore_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/pgtest"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/testenv"
)

// BenchmarkListWorkspaces reads the first page of GET /v2/workspaces (the
// API's defaults: 100 per page, newest first) from 10,000 workspaces, for
// everything (auth off, or a caller who sees all) and for a caller who
// sees 21 of them (the visible-workspace filter the decision point
// computes), on SQLite and, when NMP_TEST_POSTGRES_URL is set, PostgreSQL
// (docs/benchmarks.md "Authorized lists").
func BenchmarkListWorkspaces(b *testing.B) {
	const total, visible = 10_000, 21
	for _, kind := range []string{"sqlite", "postgres"} {
		b.Run(kind, func(b *testing.B) {
			st := openBenchStore(b, kind)
			names := fillWorkspaces(b, st, total)
			var vis []string
			for i := 0; i < visible; i++ {
				vis = append(vis, names[i*len(names)/visible])
			}
			for _, c := range []struct {
				name string
				vis  *store.Visibility
				want int
			}{
				{"all", nil, 100},
				{fmt.Sprintf("visible=%d", visible), &store.Visibility{Workspaces: vis}, visible},
			} {
				b.Run(c.name, func(b *testing.B) {
					opts := store.ListOptions{Page: 1, PageSize: 100, SortField: "created_at", SortDesc: true}
					b.ReportAllocs()
					cpu0 := cpuTime()
					for b.Loop() {
						p, err := st.ListWorkspaces(context.Background(), opts, c.vis)
						if err != nil || len(p.Items) != c.want || p.TotalResults < c.want {
							b.Fatalf("%d items of %d: %v", len(p.Items), p.TotalResults, err)
						}
					}
					b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
				})
			}
		})
	}
}

func openBenchStore(b *testing.B, kind string) *sqlstore.Store {
	if kind == "sqlite" {
		return OpenSQLite(b, nil)
	}
	st, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: pgtest.SchemaURL(b), Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { testenv.Close(b, st) })
	return st
}

// fillWorkspaces creates n workspaces through the store (distinct creation
// times from a stepping clock are not needed: ties are broken by id).
func fillWorkspaces(b *testing.B, st *sqlstore.Store, n int) []string {
	start := time.Now()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("ws-%05d", i)
		if _, _, err := st.CreateWorkspace(context.Background(), store.NewWorkspace{Name: names[i]}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d workspaces created in %v", n, time.Since(start).Round(time.Millisecond))
	return names
}

// BenchmarkGetWorkspaceConcurrent reads one workspace from 6 goroutines
// at once against the default pool of 10 connections, as concurrent
// GET /v2/workspaces/{name} requests do: more connections are in use at
// once than database/sql keeps idle by default (2), and none waits for
// one (docs/benchmarks.md "Connections kept open").
func BenchmarkGetWorkspaceConcurrent(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres"} {
		b.Run(kind, func(b *testing.B) {
			st := openBenchStore(b, kind)
			names := fillWorkspaces(b, st, 100)
			b.SetParallelism(max(1, 6/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					name := names[i%len(names)]
					i++
					if w, err := st.GetWorkspace(context.Background(), name); err != nil || w.Name != name {
						b.Errorf("GetWorkspace(%s): %v, %v", name, w.Name, err)
						return
					}
				}
			})
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
