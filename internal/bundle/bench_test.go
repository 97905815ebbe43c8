package bundle_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/bundle"
	"github.com/nmp-project/nmp/internal/store"
)

// BenchmarkBuild measures a bundle build (data document plus archive) at
// 10,000 and 1,000,000 bindings: about n/3 users over n/10 workspaces.
// Run the large size with -benchtime=1x.
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("bindings=%d", n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(uint64(n), 1))
			roles := []string{"Viewer", "Editor", "Admin"}
			bs := make([]store.RoleBinding, 0, n)
			for i := range n {
				bs = append(bs, store.RoleBinding{ID: fmt.Sprint(i), Principal: fmt.Sprintf("user-%d@example.com", r.IntN(max(n/3, 1))),
					Workspace: fmt.Sprintf("ws-%d", r.IntN(max(n/10, 1))), Role: roles[r.IntN(3)], Revision: 1})
			}
			e := authztest.StaticEngine(b)
			load(b, e, 1, bs)
			var size int
			b.ResetTimer()
			for b.Loop() {
				bd, err := bundle.Build(e.BundleData())
				if err != nil {
					b.Fatal(err)
				}
				size = len(bd.Bytes)
			}
			b.ReportMetric(float64(size), "bundle-bytes")
		})
	}
}
