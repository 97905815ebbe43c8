package authz_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authzbench"
	"github.com/nmp-project/nmp/internal/store"
)

// Benchmarks of the embedded PDP (docs/benchmarks.md): decision latency of
// the native evaluator and of OPA's prepared query on the same policy and
// data, snapshot memory, full rebuild and incremental update, at 100,
// 10,000 and 1,000,000 role bindings.

var benchSizes = authzbench.Sizes

func benchEngine(b *testing.B, n int) *authz.Engine {
	b.Helper()
	e, err := authzbench.Engine(n)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func BenchmarkAllowNative(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("bindings=%d", n), func(b *testing.B) {
			e := benchEngine(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if !e.Allow(authzbench.Probe).Allowed {
					b.Fatal("denied")
				}
			}
		})
	}
}

// BenchmarkAllowRepeated is the same question answered from the memo of
// repeated questions (after the first, which is evaluated).
func BenchmarkAllowRepeated(b *testing.B) {
	e := benchEngine(b, 10000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !e.AllowRepeated(authzbench.Probe).Allowed {
			b.Fatal("denied")
		}
	}
}

func BenchmarkAllowOPA(b *testing.B) {
	ctx := context.Background()
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("bindings=%d", n), func(b *testing.B) {
			e := benchEngine(b, n)
			opts := []func(*rego.Rego){rego.Query("data.authz.allow"),
				rego.Store(inmem.NewFromObject(map[string]any{"authz": e.DataDocument()}))}
			for p, src := range policyModules(b, false) {
				opts = append(opts, rego.Module(p, src))
			}
			pq, err := rego.New(opts...).PrepareForEval(ctx)
			if err != nil {
				b.Fatal(err)
			}
			input := authzbench.ProbeInput()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rs, err := pq.Eval(ctx, rego.EvalInput(input))
				if err != nil || rs[0].Expressions[0].Value.(map[string]any)["allowed"] != true {
					b.Fatalf("%v %v", rs, err)
				}
			}
		})
	}
}

// BenchmarkSnapshotBuild is a full reload: index every binding. It also
// reports the heap the snapshot holds.
func BenchmarkSnapshotBuild(b *testing.B) {
	doc, err := authz.StaticDocument()
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("bindings=%d", n), func(b *testing.B) {
			pb := store.PolicyBindings{Revision: 1, Bindings: authzbench.Bindings(n)}
			e, err := authz.NewEngine(doc)
			if err != nil {
				b.Fatal(err)
			}
			var held uint64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				fresh, _ := authz.NewEngine(doc)
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				b.StartTimer()
				if err := fresh.Load(pb, time.Now()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&after)
				held = after.HeapAlloc - before.HeapAlloc
				e = fresh
				b.StartTimer()
			}
			runtime.KeepAlive(e)
			b.ReportMetric(float64(held), "snapshot-bytes")
			b.ReportMetric(float64(held)/float64(n), "bytes/binding")
		})
	}
}

// BenchmarkIncrementalUpdate applies one membership change (grant, then
// revoke) to a loaded snapshot: the work a write does before it responds.
func BenchmarkIncrementalUpdate(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("bindings=%d", n), func(b *testing.B) {
			e := benchEngine(b, n)
			rev := int64(1)
			revoked := store.NewTimestamp(time.Now())
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rev++
				rb := store.RoleBinding{ID: "x", Principal: "new@example.com", Workspace: "ws-1", Role: "Viewer", Revision: rev}
				if i%2 == 1 {
					rb.RevokedAt = &revoked
				}
				if err := e.Apply(store.PolicyBindings{Since: rev - 1, Revision: rev, Bindings: []store.RoleBinding{rb}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
