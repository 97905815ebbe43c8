package authz

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/store"
)

// rowsScanner is an ActiveBindingScanner over fixed rows.
type rowsScanner struct {
	revision int64
	rows     [][3]string
	err      error  // returned after the rows
	during   func() // called after the first row
}

func (s rowsScanner) ScanActiveBindings(_ context.Context, fn func(principal, workspace, role string) error) (int64, error) {
	for i, r := range s.rows {
		if err := fn(r[0], r[1], r[2]); err != nil {
			return 0, err
		}
		if i == 0 && s.during != nil {
			s.during()
		}
	}
	if s.err != nil {
		return 0, s.err
	}
	return s.revision, nil
}

// activeRows are the rows a store streams for bindings: the active ones,
// as fresh strings (the store hands over its own copies).
func activeRows(bs []store.RoleBinding) [][3]string {
	var rows [][3]string
	for _, b := range bs {
		if b.RevokedAt == nil {
			rows = append(rows, [3]string{strings.Clone(b.Principal), strings.Clone(b.Workspace), strings.Clone(b.Role)})
		}
	}
	return rows
}

var (
	loadPrincipals = []string{"*", "alice", "bob", "carol@example.com", "g-ml", "service:jobs", "root@example.com"}
	loadPaths      = []string{"/apis/entities/v2/workspaces/%s", "/apis/entities/v2/workspaces/%s/projects",
		"/apis/entities/v2/workspaces/%s/members", "/apis/entities/v2/workspaces", "/apis/auth/v2/iam/opa-bundle.tar.gz",
		"/apis/entities/v2/workspaces/%s/entities/datasets"}
	loadPerms = []string{"workspaces.read", "workspaces.members.create", "projects.create", "system/workspaces.list", "unknown.perm"}
)

// randomBindings makes bindings over a small universe, so that principals
// share workspaces and roles, with revoked rows, unknown roles, repeated
// grants, and principals bound in more than smallEntry workspaces.
func randomBindings(r *rand.Rand, roles []string) []store.RoleBinding {
	n := 50 + r.IntN(400)
	revoked := store.NewTimestamp(time.Unix(1, 0))
	var bs []store.RoleBinding
	for i := range n {
		b := store.RoleBinding{ID: fmt.Sprint(i), Revision: 1, Role: roles[r.IntN(len(roles))]}
		if r.IntN(4) == 0 {
			b.Principal = loadPrincipals[r.IntN(len(loadPrincipals))]
		} else {
			b.Principal = fmt.Sprintf("user-%d", r.IntN(20))
		}
		// A few principals spread over many workspaces (big entries).
		if strings.HasSuffix(b.Principal, "-1") || b.Principal == "service:jobs" {
			b.Workspace = fmt.Sprintf("ws-%d", r.IntN(40))
		} else {
			b.Workspace = fmt.Sprintf("ws-%d", r.IntN(6))
		}
		switch r.IntN(10) {
		case 0:
			b.Workspace = store.SystemWorkspace
		case 1:
			b.Workspace = store.DefaultWorkspace
		case 2:
			b.RevokedAt = &revoked
		}
		bs = append(bs, b)
	}
	return bs
}

// checkShape verifies the representation invariants the decision and
// update code rely on: no empty entry or role set, a workspace at most
// once, small entries up to smallEntry workspaces (and, as built by a
// load, exactly sized).
func checkShape(t *testing.T, b *bindingIndex, exact bool) {
	t.Helper()
	for _, shard := range b.shards {
		for principal, e := range shard {
			if e.isEmpty() {
				t.Fatalf("%s: empty entry", principal)
			}
			if e.big != nil {
				if e.small != nil || len(e.big) <= smallEntry {
					t.Fatalf("%s: big entry of %d workspaces (small %d)", principal, len(e.big), len(e.small))
				}
				for ws, rs := range e.big {
					if rs.empty() {
						t.Fatalf("%s/%s: empty role set", principal, ws)
					}
				}
				continue
			}
			if len(e.small) > smallEntry || exact && cap(e.small) != len(e.small) {
				t.Fatalf("%s: small entry len %d cap %d", principal, len(e.small), cap(e.small))
			}
			seen := map[string]bool{}
			for _, w := range e.small {
				if w.roles.empty() || seen[w.workspace] {
					t.Fatalf("%s/%s: empty or repeated", principal, w.workspace)
				}
				seen[w.workspace] = true
			}
		}
	}
}

// sameDecisions compares the two engines on random requests.
func sameDecisions(t *testing.T, r *rand.Rand, want, got *Engine, roles []string) {
	t.Helper()
	workspaces := []string{"ws-0", "ws-1", "ws-5", "ws-17", "ws-39", "system", "default", "-", "nope"}
	ids := append([]string{"", "user-0", "user-1", "user-11", "user-19", "nobody"}, loadPrincipals...)
	pickS := func(xs []string) string { return xs[r.IntN(len(xs))] }
	for range 1000 {
		groups := []string{pickS(ids), pickS(ids)}[:r.IntN(3)]
		in := Input{PrincipalID: pickS(ids), PrincipalEmail: pickS(ids), PrincipalGroups: groups,
			Method: pickS([]string{"GET", "POST", "PUT", "DELETE"}), Path: fmt.Sprintf(pickS(loadPaths), pickS(workspaces))}
		if w, g := want.Allow(in), got.Allow(in); w != g {
			t.Fatalf("Allow(%+v): Load %+v, LoadFrom %+v", in, w, g)
		}
		pin := PermissionsInput{PrincipalID: in.PrincipalID, PrincipalEmail: in.PrincipalEmail, PrincipalGroups: groups,
			Workspace: pickS(workspaces), Permissions: []string{pickS(loadPerms), pickS(loadPerms)}[:1+r.IntN(2)]}
		if w, g := want.HasPermissions(pin), got.HasPermissions(pin); w != g {
			t.Fatalf("HasPermissions(%+v): Load %v, LoadFrom %v", pin, w, g)
		}
		rin := RoleInput{PrincipalID: in.PrincipalID, PrincipalEmail: in.PrincipalEmail, PrincipalGroups: groups,
			Workspace: pin.Workspace, Role: pickS(roles)}
		if w, g := want.HasRole(rin), got.HasRole(rin); w != g {
			t.Fatalf("HasRole(%+v): Load %v, LoadFrom %v", rin, w, g)
		}
	}
}

func sameIndex(t *testing.T, what string, want, got *Engine, exact bool) {
	t.Helper()
	ws, gs := want.snap.Load(), got.snap.Load()
	checkShape(t, gs.index, exact)
	w, g := ws.index.principals(ws.policy), gs.index.principals(gs.policy)
	if !reflect.DeepEqual(w, g) {
		t.Fatalf("%s: index differs:\nLoad     %v\nLoadFrom %v", what, w, g)
	}
	if ws.revision != gs.revision || !gs.loaded {
		t.Fatalf("%s: revision %d (loaded %v), want %d", what, gs.revision, gs.loaded, ws.revision)
	}
}

// TestLoadFromMatchesLoad builds the index both ways from the same random
// bindings, streamed in arbitrary and in grouped (SQLite's) order, and
// after a reload over an existing index, then applies the same changes to
// both: the indexes and many decisions must agree throughout.
func TestLoadFromMatchesLoad(t *testing.T) {
	doc, err := StaticDocument()
	if err != nil {
		t.Fatal(err)
	}
	p, err := compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	roles := append(slices.Clone(p.roleNames), "Ghost")
	now := time.Unix(1000, 0)
	for seed := range 12 {
		r := rand.New(rand.NewPCG(uint64(seed), 42))
		bindings := randomBindings(r, roles)
		want, _ := NewEngine(doc)
		if err := want.Load(store.PolicyBindings{Revision: 3, Bindings: bindings}, now); err != nil {
			t.Fatal(err)
		}
		shuffled := activeRows(bindings)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		grouped := slices.Clone(shuffled)
		slices.SortFunc(grouped, func(a, b [3]string) int { return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1]) })
		// Reloading over an index built from other bindings reuses its
		// seed and shard sizes.
		again, _ := NewEngine(doc)
		if _, err := again.LoadFrom(context.Background(), rowsScanner{revision: 2, rows: activeRows(randomBindings(r, roles))}, now); err != nil {
			t.Fatal(err)
		}
		for name, tc := range map[string]struct {
			e    *Engine
			rows [][3]string
		}{"shuffled": {nil, shuffled}, "grouped": {nil, grouped}, "reload": {again, shuffled}} {
			got := tc.e
			if got == nil {
				got, _ = NewEngine(doc)
			}
			rev, err := got.LoadFrom(context.Background(), rowsScanner{revision: 3, rows: tc.rows}, now)
			if err != nil || rev != 3 {
				t.Fatalf("seed %d %s: LoadFrom = %d, %v", seed, name, rev, err)
			}
			what := fmt.Sprintf("seed %d %s", seed, name)
			sameIndex(t, what, want, got, true)
			if got.LastFullReload() != now {
				t.Fatalf("%s: LastFullReload %v", what, got.LastFullReload())
			}
			sameDecisions(t, r, want, got, roles)

			// The same later changes applied to both.
			w2, _ := NewEngine(doc)
			if err := w2.Load(store.PolicyBindings{Revision: 3, Bindings: bindings}, now); err != nil {
				t.Fatal(err)
			}
			changes := randomBindings(r, roles)
			for i := range changes {
				changes[i].Revision = 4 + int64(i)
			}
			pb := store.PolicyBindings{Revision: 4 + int64(len(changes)), Bindings: changes}
			if err := w2.Apply(pb); err != nil {
				t.Fatal(err)
			}
			if err := got.Apply(pb); err != nil {
				t.Fatal(err)
			}
			sameIndex(t, what+" after changes", w2, got, false)
			sameDecisions(t, r, w2, got, roles)
		}
	}
}

func TestLoadFromStale(t *testing.T) {
	doc, err := StaticDocument()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0, t1 := time.Unix(1000, 0), time.Unix(2000, 0)
	alice := [][3]string{{"alice", "ws", "Editor"}}
	e, _ := NewEngine(doc)
	if e.HasRole(RoleInput{PrincipalID: "alice", Workspace: "ws", Role: "Editor"}) {
		t.Fatal("nothing loaded yet")
	}
	// A fresh engine accepts revision 0 (an empty store).
	if rev, err := e.LoadFrom(ctx, rowsScanner{}, t0); err != nil || rev != 0 || !e.Loaded() {
		t.Fatalf("first load: %d, %v", rev, err)
	}
	if _, err := e.LoadFrom(ctx, rowsScanner{revision: 5, rows: alice}, t0); err != nil {
		t.Fatal(err)
	}
	before := e.snap.Load()

	// Older data: refused, nothing changes.
	rev, err := e.LoadFrom(ctx, rowsScanner{revision: 4}, t1)
	if !errors.Is(err, ErrStale) || rev != 4 {
		t.Fatalf("stale load: %d, %v", rev, err)
	}
	if e.snap.Load() != before || e.Revision() != 5 || e.LastFullReload() != t0 {
		t.Fatal("a stale load replaced the snapshot")
	}

	// The source fails: its error, nothing changes.
	boom := errors.New("boom")
	if _, err := e.LoadFrom(ctx, rowsScanner{revision: 9, rows: alice, err: boom}, t1); !errors.Is(err, boom) {
		t.Fatalf("failed scan: %v", err)
	}
	if e.snap.Load() != before {
		t.Fatal("a failed load replaced the snapshot")
	}

	// A change applied while the scan runs makes the scanned data stale.
	grant := store.RoleBinding{Principal: "bob", Workspace: "ws", Role: "Viewer", Revision: 7}
	_, err = e.LoadFrom(ctx, rowsScanner{revision: 6, rows: alice, during: func() {
		if err := e.Apply(store.PolicyBindings{Revision: 7, Bindings: []store.RoleBinding{grant}}); err != nil {
			t.Fatal(err)
		}
	}}, t1)
	if !errors.Is(err, ErrStale) || e.Revision() != 7 || !e.HasRole(RoleInput{PrincipalID: "bob", Workspace: "ws", Role: "Viewer"}) {
		t.Fatalf("load racing a change: %v, revision %d", err, e.Revision())
	}

	// The same revision reloads (the safety net), newer too.
	if _, err := e.LoadFrom(ctx, rowsScanner{revision: 7, rows: alice}, t1); err != nil || e.LastFullReload() != t1 {
		t.Fatalf("reload at the same revision: %v", err)
	}
	if e.HasRole(RoleInput{PrincipalID: "bob", Workspace: "ws", Role: "Viewer"}) {
		t.Fatal("the reload did not replace the index")
	}
	if _, err := e.LoadFrom(ctx, rowsScanner{revision: 8}, t1); err != nil || e.Revision() != 8 {
		t.Fatalf("newer load: %v", err)
	}
}

// TestLoadFromOrder: sorted input whose order breaks only around a
// principal with no known role, and the same rows in reverse, build the
// same index as Load.
func TestLoadFromOrder(t *testing.T) {
	doc, err := StaticDocument()
	if err != nil {
		t.Fatal(err)
	}
	rows := [][3]string{{"a", "ws1", "Viewer"}, {"b", "ws", "Ghost"}, {"a", "ws2", "Editor"}, {"a", "ws1", "Admin"},
		{"c", "ws1", "Viewer"}, {"", "ws1", "Viewer"}, {"c", "ws3", "Viewer"}}
	var bs []store.RoleBinding
	for _, r := range rows {
		bs = append(bs, store.RoleBinding{Principal: r[0], Workspace: r[1], Role: r[2], Revision: 1})
	}
	want, _ := NewEngine(doc)
	if err := want.Load(store.PolicyBindings{Revision: 1, Bindings: bs}, time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	reversed := slices.Clone(rows)
	slices.Reverse(reversed)
	for name, rs := range map[string][][3]string{"as is": rows, "reversed": reversed} {
		got, _ := NewEngine(doc)
		if _, err := got.LoadFrom(context.Background(), rowsScanner{revision: 1, rows: rs}, time.Unix(1, 0)); err != nil {
			t.Fatal(err)
		}
		sameIndex(t, name, want, got, true)
	}
}
