package authz_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/store"
)

// canCreateProject asks whether principal may create a project in ws.
func canCreateProject(e *authz.Engine, principal, ws string) authz.Decision {
	return e.Allow(authz.Input{PrincipalID: principal, Method: "POST", Path: "/apis/entities/v2/workspaces/" + ws + "/projects"})
}

// TestSlowReloadCannotUndoRevocation reproduces the race of a routine full
// reload that read the bindings at revision N while a revocation (N+1)
// was applied: the reload finishing last used to overwrite the newer
// snapshot and give the revoked role back. The engine now refuses it.
func TestSlowReloadCannotUndoRevocation(t *testing.T) {
	ctx := context.Background()
	st := authztest.SeededStore(t)
	e := authztest.StaticEngine(t)
	if _, _, err := st.CreateWorkspace(ctx, store.NewWorkspace{Name: "ml", Admin: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddMember(ctx, "ml", "bob", []string{"Editor"}, "alice"); err != nil {
		t.Fatal(err)
	}
	full, err := st.ActiveBindings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Load(full, time.Now()); err != nil {
		t.Fatal(err)
	}
	if d := canCreateProject(e, "bob", "ml"); !d.Allowed {
		t.Fatalf("bob is an Editor: %+v", d)
	}

	// The slow safety-net reload reads revision N ...
	slow, err := st.ActiveBindings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// ... meanwhile bob is removed and the change applied (N+1) ...
	del, err := st.RemoveMember(ctx, "ml", "bob")
	if err != nil {
		t.Fatal(err)
	}
	changes, err := st.BindingChanges(ctx, e.Revision())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(changes); err != nil {
		t.Fatal(err)
	}
	if d := canCreateProject(e, "bob", "ml"); d.Allowed || e.Revision() != del.Revision {
		t.Fatalf("after the revocation: %+v at revision %d, want a deny at %d", d, e.Revision(), del.Revision)
	}
	// ... and the slow reload finishes last.
	err = e.Load(slow, time.Now())
	if !errors.Is(err, authz.ErrStale) {
		t.Fatalf("loading revision %d over %d: err %v, want ErrStale", slow.Revision, del.Revision, err)
	}
	if d := canCreateProject(e, "bob", "ml"); d.Allowed {
		t.Fatalf("a stale reload gave the revoked role back: %+v", d)
	}
	if e.Revision() != del.Revision {
		t.Fatalf("revision went back to %d", e.Revision())
	}
	// A stale change set is harmless too.
	if err := e.Apply(store.PolicyBindings{Since: 0, Revision: slow.Revision, Bindings: slow.Bindings}); err != nil {
		t.Fatal(err)
	}
	if d := canCreateProject(e, "bob", "ml"); d.Allowed {
		t.Fatalf("a stale change set gave the revoked role back: %+v", d)
	}
}

func TestApplyOrdering(t *testing.T) {
	b := func(rev int64, revoked bool) store.RoleBinding {
		rb := store.RoleBinding{ID: "x", Principal: "bob", Workspace: "ml", Role: "Editor", Revision: rev}
		if revoked {
			ts := store.NewTimestamp(time.Unix(0, 0))
			rb.RevokedAt = &ts
		}
		return rb
	}
	tests := []struct {
		name    string
		loadAt  int64 // 0: not loaded
		apply   store.PolicyBindings
		wantErr error
		wantRev int64
		allowed bool
	}{
		{name: "before any load", apply: store.PolicyBindings{Since: 0, Revision: 3, Bindings: []store.RoleBinding{b(3, false)}}, wantErr: authz.ErrGap},
		{name: "contiguous", loadAt: 2, apply: store.PolicyBindings{Since: 2, Revision: 3, Bindings: []store.RoleBinding{b(3, false)}}, wantRev: 3, allowed: true},
		{name: "overlapping base", loadAt: 5, apply: store.PolicyBindings{Since: 2, Revision: 6, Bindings: []store.RoleBinding{b(4, true), b(6, false)}}, wantRev: 6, allowed: true},
		{name: "overlap already applied is skipped", loadAt: 5, apply: store.PolicyBindings{Since: 2, Revision: 6, Bindings: []store.RoleBinding{b(4, false)}}, wantRev: 6, allowed: false},
		{name: "ends at the engine's revision", loadAt: 5, apply: store.PolicyBindings{Since: 2, Revision: 5, Bindings: []store.RoleBinding{b(5, false)}}, wantRev: 5, allowed: false},
		{name: "older than the engine", loadAt: 5, apply: store.PolicyBindings{Since: 1, Revision: 4, Bindings: []store.RoleBinding{b(4, false)}}, wantRev: 5, allowed: false},
		{name: "gap", loadAt: 5, apply: store.PolicyBindings{Since: 6, Revision: 8, Bindings: []store.RoleBinding{b(8, false)}}, wantErr: authz.ErrGap, wantRev: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := authztest.StaticEngine(t)
			if tc.loadAt > 0 {
				if err := e.Load(store.PolicyBindings{Revision: tc.loadAt}, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			err := e.Apply(tc.apply)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("Apply: %v, want %v", err, tc.wantErr)
			}
			if e.Revision() != tc.wantRev {
				t.Fatalf("revision %d, want %d", e.Revision(), tc.wantRev)
			}
			if got := canCreateProject(e, "bob", "ml").Allowed; tc.loadAt > 0 && got != tc.allowed {
				t.Fatalf("bob allowed %v, want %v", got, tc.allowed)
			}
		})
	}
	t.Run("equal revision reload is accepted", func(t *testing.T) {
		e := authztest.StaticEngine(t)
		for _, rev := range []int64{4, 4, 7} {
			if err := e.Load(store.PolicyBindings{Revision: rev}, time.Now()); err != nil {
				t.Fatalf("load %d: %v", rev, err)
			}
		}
		if err := e.Load(store.PolicyBindings{Revision: 6}, time.Now()); !errors.Is(err, authz.ErrStale) {
			t.Fatalf("load 6 after 7: %v", err)
		}
	})
}

// TestRandomInterleavings is a property test: random binding changes are
// committed to a real store while full sets and change sets read at random
// moments are applied to the engine in a random order. After every step
// the engine's revision never went down and its decisions equal the
// store's bindings at that revision; at the end, one catch-up brings it to
// the highest committed revision with exactly the store's bindings.
func TestRandomInterleavings(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("NMP_INTERLEAVE_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (replay: NMP_INTERLEAVE_SEED=%d go test ./internal/authz -run TestRandomInterleavings)", seed, seed)
	r := rand.New(rand.NewPCG(uint64(seed), 0))
	ctx := context.Background()
	st := authztest.SeededStore(t)
	e := authztest.StaticEngine(t)
	principals := []string{"p0", "p1", "p2", "p3"}
	workspaces := []string{"w0", "w1", "w2"}
	roles := []string{"Viewer", "Editor", "Admin"}
	for _, ws := range workspaces {
		if _, _, err := st.CreateWorkspace(ctx, store.NewWorkspace{Name: ws, Admin: "owner"}); err != nil {
			t.Fatal(err)
		}
	}
	// truth[revision] is the set of active (principal, workspace, role).
	truth := map[int64]map[[3]string]bool{}
	record := func() {
		pb, err := st.ActiveBindings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		set := map[[3]string]bool{}
		for _, b := range pb.Bindings {
			set[[3]string{b.Principal, b.Workspace, b.Role}] = true
		}
		truth[pb.Revision] = set
	}
	record()
	check := func(step int) {
		t.Helper()
		want, ok := truth[e.Revision()]
		if !ok {
			t.Fatalf("step %d: engine at revision %d, which the store never had", step, e.Revision())
		}
		for _, p := range principals {
			for _, ws := range workspaces {
				for _, role := range roles {
					got := e.HasRole(authz.RoleInput{PrincipalID: p, Workspace: ws, Role: role})
					if got != want[[3]string{p, ws, role}] {
						t.Fatalf("step %d (seed %d): %s %s %s: engine %v, store at revision %d %v", step, seed, p, ws, role, got, e.Revision(), !got)
					}
				}
			}
		}
	}
	var pending []func() error
	last := int64(0)
	for step := range 400 {
		switch op := r.IntN(10); {
		case op < 4: // commit a random membership change
			p, ws := principals[r.IntN(len(principals))], workspaces[r.IntN(len(workspaces))]
			var err error
			if r.IntN(3) == 0 {
				_, err = st.RemoveMember(ctx, ws, p)
			} else {
				_, err = st.SetMemberRoles(ctx, ws, p, []string{roles[r.IntN(len(roles))]}, "owner")
				if errors.Is(err, store.ErrNotFound) {
					_, err = st.AddMember(ctx, ws, p, []string{roles[r.IntN(len(roles))]}, "owner")
				}
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
				t.Fatal(err)
			}
			record()
		case op < 6: // read a full set now, load it later
			pb, err := st.ActiveBindings(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pending = append(pending, func() error { return e.Load(pb, time.Now()) })
		case op < 8: // read the changes since a random earlier revision, apply later
			top, err := st.PolicyRevision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pb, err := st.BindingChanges(ctx, r.Int64N(top+1))
			if err != nil {
				t.Fatal(err)
			}
			pending = append(pending, func() error { return e.Apply(pb) })
		default: // apply a random pending read
			if len(pending) == 0 {
				continue
			}
			i := r.IntN(len(pending))
			apply := pending[i]
			pending = append(pending[:i], pending[i+1:]...)
			if err := apply(); err != nil && !errors.Is(err, authz.ErrStale) && !errors.Is(err, authz.ErrGap) {
				t.Fatal(err)
			}
			if e.Revision() < last {
				t.Fatalf("step %d (seed %d): revision went back from %d to %d", step, seed, last, e.Revision())
			}
			last = e.Revision()
			if e.Loaded() {
				check(step)
			}
		}
	}
	// Catch up as the syncer does: changes since the engine's revision,
	// or a full load when nothing was loaded or a gap was found.
	pb, err := st.BindingChanges(ctx, e.Revision())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(pb); errors.Is(err, authz.ErrGap) {
		full, err := st.ActiveBindings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Load(full, time.Now()); err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	top, err := st.PolicyRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e.Revision() != top {
		t.Fatalf("engine at %d, store at %d", e.Revision(), top)
	}
	check(-1)
}
