package authz_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/store"
)

// TestAllowRepeatedCorpus: every allow case of the corpus gets the
// expected answer from AllowRepeated, the first time (evaluated) and the
// second (from the memo).
func TestAllowRepeatedCorpus(t *testing.T) {
	total := 0
	for name, f := range loadCorpus(t) {
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			e := newEngine(t, f)
			for round := range 2 {
				for i, c := range f.Cases {
					if c.Entrypoint != "allow" {
						continue
					}
					input, err := jsonValue(c.Input)
					if err != nil {
						t.Fatal(err)
					}
					m, _ := input.(map[string]any)
					d := e.AllowRepeated(authz.AllowInput(m))
					got := map[string]any{"allowed": d.Allowed, "reason": d.Reason,
						"headers": map[string]any{"X-NMP-Authorized": fmt.Sprint(d.Allowed)}}
					checkCase(t, fmt.Sprintf("%s case %d %q, round %d", name, i, c.Note, round), c, got)
					total++
				}
			}
		})
	}
	if total < 100 {
		t.Errorf("only %d allow cases", total)
	}
}

// TestAllowRepeatedFollowsSnapshot: a remembered answer never outlives the
// snapshot that gave it. A binding granted, revoked (by a full load and
// by a change set) and granted again changes AllowRepeated's answer at
// once, although the same question was answered from the memo just
// before.
func TestAllowRepeatedFollowsSnapshot(t *testing.T) {
	binding := store.RoleBinding{ID: "b1", Principal: "alice@example.com", Workspace: "ml-team", Role: "Viewer", Revision: 2}
	e := authztest.Engine(t, nil, []store.RoleBinding{binding}, true)
	in := authz.Input{PrincipalID: "alice@example.com", Method: "GET", Path: "/apis/entities/v2/workspaces/ml-team"}
	want := func(step string, allowed bool) {
		t.Helper()
		for range 3 { // evaluated, then remembered
			if d := e.AllowRepeated(in); d.Allowed != allowed || d != e.Allow(in) {
				t.Fatalf("%s: AllowRepeated = %+v, Allow = %+v, want allowed %v", step, d, e.Allow(in), allowed)
			}
		}
	}
	want("granted", true)

	revoked := binding
	revoked.Revision, revoked.RevokedAt = 3, &store.Timestamp{Time: time.Now()}
	if err := e.Apply(store.PolicyBindings{Since: 1, Revision: 3, Bindings: []store.RoleBinding{revoked}}); err != nil {
		t.Fatal(err)
	}
	want("revoked by a change set", false)

	granted := binding
	granted.Revision = 4
	if err := e.Load(store.PolicyBindings{Revision: 4, Bindings: []store.RoleBinding{granted}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	want("granted again by a full load", true)

	if err := e.Load(store.PolicyBindings{Revision: 5}, time.Now()); err != nil {
		t.Fatal(err)
	}
	want("revoked by a full load", false)
}

// TestAllowRepeatedConcurrent: callers asking while bindings change (run
// under -race) all see, once the last change is in, its answer.
func TestAllowRepeatedConcurrent(t *testing.T) {
	binding := store.RoleBinding{ID: "b1", Principal: "alice@example.com", Workspace: "ml-team", Role: "Viewer", Revision: 1}
	e := authztest.Engine(t, nil, []store.RoleBinding{binding}, true)
	in := authz.Input{PrincipalID: "alice@example.com", Method: "GET", Path: "/apis/entities/v2/workspaces/ml-team"}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				e.AllowRepeated(in)
			}
		})
	}
	for rev := int64(2); rev < 200; rev++ {
		b := binding
		b.Revision = rev
		if rev%2 == 0 {
			b.RevokedAt = &store.Timestamp{Time: time.Now()}
		}
		if err := e.Apply(store.PolicyBindings{Since: rev - 1, Revision: rev, Bindings: []store.RoleBinding{b}}); err != nil {
			t.Fatal(err)
		}
		if d := e.AllowRepeated(in); d.Allowed != (rev%2 == 1) {
			t.Fatalf("revision %d: %+v", rev, d)
		}
	}
	close(done)
	wg.Wait()
}
