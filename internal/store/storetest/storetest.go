// Package storetest is the conformance suite every store.Store backend
// must pass. Backends call Run from their own tests.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/testenv"
)

// Factory opens a fresh, empty, migrated store using clock.
type Factory func(t *testing.T, clock store.Clock) store.Store

// Clock is a deterministic clock for tests: every call advances it by
// one millisecond, so creation order is time order.
type Clock struct{ n atomic.Int64 }

// Base is the first instant a Clock returns.
var Base = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Now implements store.Clock.
func (c *Clock) Now() time.Time {
	return Base.Add(time.Duration(c.n.Add(1)) * time.Millisecond)
}

// Run runs the whole suite.
func Run(t *testing.T, open Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Builtins", testBuiltins},
		{"SeedRevocationSurvives", testSeedRevocationSurvives},
		{"WorkspaceCRUD", testWorkspaceCRUD},
		{"WorkspaceDeleteRules", testWorkspaceDeleteRules},
		{"WorkspaceList", testWorkspaceList},
		{"WorkspaceVisibility", testWorkspaceVisibility},
		{"Members", testMembers},
		{"LastAdmin", testLastAdmin},
		{"LastAdminConcurrent", testLastAdminConcurrent},
		{"RoleBindings", testRoleBindings},
		{"PolicyRevisions", testPolicyRevisions},
		{"PolicyFeed", testPolicyFeed},
		{"ScanActiveBindings", testScanActiveBindings},
		{"ScanActiveBindingsSnapshot", testScanActiveBindingsSnapshot},
		{"ScanActiveBindingsAbort", testScanActiveBindingsAbort},
		{"Projects", testProjects},
		{"Entities", testEntities},
		{"EntityFilters", testEntityFilters},
		{"EntityConcurrentUpdate", testEntityConcurrentUpdate},
		{"LastSeen", testLastSeen},
		{"LastSeenLargeBatch", testLastSeenLargeBatch},
		{"AccessKeyCreateGet", testAccessKeyCreateGet},
		{"AccessKeyList", testAccessKeyList},
		{"AccessKeyTransitions", testAccessKeyTransitions},
		{"AccessKeyUnsuspendExpired", testAccessKeyUnsuspendExpired},
		{"AccessKeyRotate", testAccessKeyRotate},
		{"AccessKeyRotateConcurrent", testAccessKeyRotateConcurrent},
		{"AccessKeyUse", testAccessKeyUse},
		{"AccessKeyFeed", testAccessKeyFeed},
		{"AuditEveryChange", testAuditEveryChange},
		{"AuditFailedChanges", testAuditFailedChanges},
		{"AuditList", testAuditList},
		{"AuditPrune", testAuditPrune},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &Clock{}
			s := open(t, clock.Now)
			t.Cleanup(func() { testenv.Close(t, s) })
			if err := s.EnsureBuiltins(context.Background(), DefaultSeed("admin@example.com")); err != nil {
				t.Fatalf("EnsureBuiltins: %v", err)
			}
			tc.fn(t, s)
		})
	}
}

// DefaultSeed is the seed of authz.md with admin as admin_email.
func DefaultSeed(admin string) store.Seed {
	return store.Seed{Bindings: []store.SeedBinding{
		{Name: "admin-example-com-system-platformadmin", Principal: admin, Workspace: "system", Role: "PlatformAdmin"},
		{Name: "wildcard-default-editor", Principal: "*", Workspace: "default", Role: "Editor"},
		{Name: "wildcard-system-viewer", Principal: "*", Workspace: "system", Role: "Viewer"},
		{Name: "wildcard-system-workspacecreator", Principal: "*", Workspace: "system", Role: "WorkspaceCreator"},
	}}
}

var ctx = context.Background()

func ptr[T any](v T) *T { return &v }

func list(size int) store.ListOptions {
	return store.ListOptions{Page: 1, PageSize: size, SortField: "created_at", SortDesc: true}
}

// wantCode fails unless err is a *store.Error with that code and kind.
func wantCode(t *testing.T, err error, kind store.Kind, code string) {
	t.Helper()
	var se *store.Error
	if !errors.As(err, &se) || se.Kind != kind || se.Code != code {
		t.Fatalf("got error %v (%#v), want kind %d code %q", err, se, kind, code)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func mustCreateWorkspace(t *testing.T, s store.Store, name, admin string) store.Workspace {
	t.Helper()
	w, _, err := s.CreateWorkspace(ctx, store.NewWorkspace{Name: name, By: ptr("creator"), Admin: admin})
	if err != nil {
		t.Fatalf("CreateWorkspace(%s): %v", name, err)
	}
	return w
}

func names[T any](items []T, name func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = name(it)
	}
	return out
}

func wsName(w store.Workspace) string { return w.Name }

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("%s: got %s, want %s", what, g, w)
	}
}

func testBuiltins(t *testing.T, s store.Store) {
	// A second run is idempotent.
	if err := s.EnsureBuiltins(ctx, DefaultSeed("admin@example.com")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"default", "system"} {
		if _, err := s.GetWorkspace(ctx, name); err != nil {
			t.Fatalf("built-in %s: %v", name, err)
		}
	}
	pb := must[store.PolicyBindings](t)(s.ActiveBindings(ctx))
	if len(pb.Bindings) != 4 {
		t.Fatalf("seed bindings: got %d, want 4: %+v", len(pb.Bindings), pb.Bindings)
	}
	if pb.Revision != 1 {
		t.Fatalf("seeding twice should bump the revision once, got %d", pb.Revision)
	}
	members := must[[]store.Member](t)(s.ListMembers(ctx, "system"))
	equal(t, "system members", members, []store.Member{
		{Principal: "*", Roles: []string{"Viewer", "WorkspaceCreator"}, GrantedAt: members[0].GrantedAt, GrantedBy: "system"},
		{Principal: "admin@example.com", Roles: []string{"PlatformAdmin"}, GrantedAt: members[1].GrantedAt, GrantedBy: "system"},
	})
	// A new admin email adds a binding; the old one stays.
	seed := DefaultSeed("new@example.com")
	seed.Bindings[0].Name = "new-example-com-system-platformadmin"
	if err := s.EnsureBuiltins(ctx, seed); err != nil {
		t.Fatal(err)
	}
	members = must[[]store.Member](t)(s.ListMembers(ctx, "system"))
	equal(t, "principals", names(members, func(m store.Member) string { return m.Principal }),
		[]string{"*", "admin@example.com", "new@example.com"})
}

func testSeedRevocationSurvives(t *testing.T, s store.Store) {
	if _, err := s.RemoveMember(ctx, "default", "*"); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBuiltins(ctx, DefaultSeed("admin@example.com")); err != nil {
		t.Fatal(err)
	}
	members := must[[]store.Member](t)(s.ListMembers(ctx, "default"))
	if len(members) != 0 {
		t.Fatalf("revoked seed binding came back: %+v", members)
	}
	b := must[store.RoleBinding](t)(s.GetRoleBinding(ctx, "wildcard-default-editor"))
	if b.RevokedAt == nil {
		t.Fatal("GetRoleBinding should return the revoked seed binding")
	}
}

func testWorkspaceCRUD(t *testing.T, s store.Store) {
	w, rev, err := s.CreateWorkspace(ctx, store.NewWorkspace{Name: "ml-team", Description: "ML", By: ptr("alice@example.com"), Admin: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if rev == 0 || w.ID == "" || w.CreatedBy == nil || *w.CreatedBy != "alice@example.com" || !w.CreatedAt.Equal(w.UpdatedAt.Time) {
		t.Fatalf("unexpected workspace %+v rev %d", w, rev)
	}
	got := must[store.Workspace](t)(s.GetWorkspace(ctx, "ml-team"))
	equal(t, "get", got, w)
	members := must[[]store.Member](t)(s.ListMembers(ctx, "ml-team"))
	if len(members) != 1 || members[0].Principal != "alice@example.com" || members[0].Roles[0] != "Admin" || members[0].GrantedBy != "alice@example.com" {
		t.Fatalf("creator binding: %+v", members)
	}
	_, _, err = s.CreateWorkspace(ctx, store.NewWorkspace{Name: "ml-team"})
	wantCode(t, err, store.KindConflict, "already_exists")

	up := must[store.Workspace](t)(s.UpdateWorkspace(ctx, "ml-team", "new", ptr("bob")))
	if up.Description != "new" || *up.UpdatedBy != "bob" || !up.UpdatedAt.After(w.UpdatedAt.Time) || !up.CreatedAt.Equal(w.CreatedAt.Time) {
		t.Fatalf("update: %+v", up)
	}
	_, err = s.UpdateWorkspace(ctx, "nope", "x", nil)
	wantCode(t, err, store.KindNotFound, "not_found")
	_, err = s.GetWorkspace(ctx, "nope")
	wantCode(t, err, store.KindNotFound, "not_found")

	// Without an admin no binding is created and the revision is unchanged.
	_, rev2, err := s.CreateWorkspace(ctx, store.NewWorkspace{Name: "anon"})
	if err != nil || rev2 != 0 {
		t.Fatalf("anonymous create: rev %d err %v", rev2, err)
	}
	if m := must[[]store.Member](t)(s.ListMembers(ctx, "anon")); len(m) != 0 {
		t.Fatalf("anonymous workspace has members %+v", m)
	}
}

func testWorkspaceDeleteRules(t *testing.T, s store.Store) {
	for _, name := range []string{"default", "system"} {
		_, err := s.DeleteWorkspace(ctx, name, nil)
		wantCode(t, err, store.KindConflict, "protected_workspace")
	}
	_, err := s.DeleteWorkspace(ctx, "nope", nil)
	wantCode(t, err, store.KindNotFound, "not_found")

	w := mustCreateWorkspace(t, s, "full", "alice")
	for _, p := range []string{"p1", "p2"} {
		must[store.Project](t)(s.CreateProject(ctx, store.NewProject{Workspace: "full", Name: p}))
	}
	for i, typ := range []string{"model", "dataset", "dataset"} {
		must[store.Entity](t)(s.CreateEntity(ctx, store.NewEntity{EntityKey: store.EntityKey{Workspace: "full", EntityType: typ, Name: fmt.Sprint("e", i)}, Data: json.RawMessage(`{}`)}))
	}
	_, err = s.DeleteWorkspace(ctx, "full", nil)
	wantCode(t, err, store.KindConflict, "workspace_not_empty")
	want := "Cannot delete workspace 'full': workspace contains entities that must be deleted first: project (2), dataset (2), model (1)"
	if err.Error() != want {
		t.Fatalf("message: got %q, want %q", err.Error(), want)
	}
	if _, err := s.GetWorkspace(ctx, "full"); err != nil {
		t.Fatal("refused delete changed something:", err)
	}

	mustCreateWorkspace(t, s, "empty", "alice")
	must[store.MemberChange](t)(s.AddMember(ctx, "empty", "bob", []string{"Viewer"}, "alice"))
	del := must[store.Deleted](t)(s.DeleteWorkspace(ctx, "empty", nil))
	if del.ID == "" || del.Revision == 0 {
		t.Fatalf("delete result %+v", del)
	}
	_, err = s.GetWorkspace(ctx, "empty")
	wantCode(t, err, store.KindNotFound, "not_found")
	for _, b := range must[store.PolicyBindings](t)(s.ActiveBindings(ctx)).Bindings {
		if b.Workspace == "empty" {
			t.Fatalf("binding survived workspace delete: %+v", b)
		}
	}
	_ = w
}

func testWorkspaceList(t *testing.T, s store.Store) {
	for _, n := range []string{"alpha", "beta-team", "gamma", "delta-team", "Team-x"[5:] + "ray"} {
		mustCreateWorkspace(t, s, n, "")
	}
	gamma := must[store.Workspace](t)(s.GetWorkspace(ctx, "gamma"))
	// 2 built-ins + 5 created.
	tests := []struct {
		name  string
		opts  store.ListOptions
		want  []string
		total int
	}{
		{"default newest first", list(3), []string{"xray", "delta-team", "gamma"}, 7},
		{"second page", store.ListOptions{Page: 2, PageSize: 3, SortField: "created_at", SortDesc: true}, []string{"beta-team", "alpha", "system"}, 7},
		{"past the end", store.ListOptions{Page: 9, PageSize: 3, SortField: "created_at", SortDesc: true}, []string{}, 7},
		{"by name", store.ListOptions{Page: 1, PageSize: 100, SortField: "name"}, []string{"alpha", "beta-team", "default", "delta-team", "gamma", "system", "xray"}, 7},
		{"like is case-insensitive", store.ListOptions{Page: 1, PageSize: 100, SortField: "name",
			Filters: []store.Filter{{Field: "name", Op: store.OpLike, Values: []string{"TEAM"}}}}, []string{"beta-team", "delta-team"}, 2},
		{"like escapes wildcards", store.ListOptions{Page: 1, PageSize: 100, SortField: "name",
			Filters: []store.Filter{{Field: "name", Op: store.OpLike, Values: []string{"%"}}}}, []string{}, 0},
		{"eq", store.ListOptions{Page: 1, PageSize: 100, SortField: "name",
			Filters: []store.Filter{{Field: "name", Op: store.OpEq, Values: []string{"gamma"}}}}, []string{"gamma"}, 1},
		{"in", store.ListOptions{Page: 1, PageSize: 100, SortField: "name",
			Filters: []store.Filter{{Field: "name", Op: store.OpIn, Values: []string{"gamma", "alpha", "zzz"}}}}, []string{"alpha", "gamma"}, 2},
		{"created_by", store.ListOptions{Page: 1, PageSize: 100, SortField: "name",
			Filters: []store.Filter{{Field: "created_by", Op: store.OpEq, Values: []string{"creator"}}, {Field: "name", Op: store.OpLike, Values: []string{"a"}}}},
			[]string{"alpha", "beta-team", "delta-team", "gamma", "xray"}, 5},
		{"timestamp range", store.ListOptions{Page: 1, PageSize: 100, SortField: "name",
			Filters: []store.Filter{{Field: "created_at", Op: store.OpGt, Values: []string{gamma.CreatedAt.String()}}}},
			[]string{"delta-team", "xray"}, 2},
		{"timestamp inclusive", store.ListOptions{Page: 1, PageSize: 100, SortField: "name",
			Filters: []store.Filter{{Field: "created_at", Op: store.OpLte, Values: []string{gamma.CreatedAt.String()}}, {Field: "created_at", Op: store.OpGte, Values: []string{gamma.CreatedAt.String()}}}},
			[]string{"gamma"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page := must[store.Page[store.Workspace]](t)(s.ListWorkspaces(ctx, tc.opts, nil))
			equal(t, "names", names(page.Items, wsName), tc.want)
			if page.TotalResults != tc.total {
				t.Fatalf("total: got %d, want %d", page.TotalResults, tc.total)
			}
		})
	}
}

// testWorkspaceVisibility: a visibility set restricts the list to the
// named workspaces (names that do not exist are ignored), before counting
// and paging; bindings play no part in the store's filter.
func testWorkspaceVisibility(t *testing.T, s store.Store) {
	mustCreateWorkspace(t, s, "alices", "alice@example.com")
	mustCreateWorkspace(t, s, "bobs", "bob@example.com")
	mustCreateWorkspace(t, s, "group-ws", "")
	mustCreateWorkspace(t, s, "unbound", "")
	many := []string{"alices", "default", "system"}
	for i := range 500 {
		many = append(many, fmt.Sprintf("absent-%d", i))
	}
	byName := store.ListOptions{Page: 1, PageSize: 100, SortField: "name"}
	tests := []struct {
		name  string
		vis   *store.Visibility
		opts  store.ListOptions
		want  []string
		total int
	}{
		{"no restriction", nil, byName, []string{"alices", "bobs", "default", "group-ws", "system", "unbound"}, 6},
		{"named", &store.Visibility{Workspaces: []string{"alices", "default", "system"}}, byName, []string{"alices", "default", "system"}, 3},
		{"without any binding", &store.Visibility{Workspaces: []string{"unbound"}}, byName, []string{"unbound"}, 1},
		{"unknown names ignored", &store.Visibility{Workspaces: []string{"group-ws", "nope"}}, byName, []string{"group-ws"}, 1},
		{"a large set is one parameter", &store.Visibility{Workspaces: many}, byName, []string{"alices", "default", "system"}, 3},
		{"empty set shows nothing", &store.Visibility{Workspaces: []string{}}, byName, []string{}, 0},
		{"nil set shows nothing", &store.Visibility{}, byName, []string{}, 0},
		{"paged after filtering", &store.Visibility{Workspaces: []string{"alices", "bobs", "default", "system"}},
			store.ListOptions{Page: 2, PageSize: 3, SortField: "name"}, []string{"system"}, 4},
		{"past the end counts the filtered rows", &store.Visibility{Workspaces: []string{"alices", "bobs"}},
			store.ListOptions{Page: 5, PageSize: 1, SortField: "name"}, []string{}, 2},
		{"with a filter", &store.Visibility{Workspaces: []string{"alices", "bobs", "default"}},
			store.ListOptions{Page: 1, PageSize: 100, SortField: "name", Filters: []store.Filter{{Field: "name", Op: store.OpLike, Values: []string{"S"}}}},
			[]string{"alices", "bobs"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page := must[store.Page[store.Workspace]](t)(s.ListWorkspaces(ctx, tc.opts, tc.vis))
			equal(t, "visible", names(page.Items, wsName), tc.want)
			if page.TotalResults != tc.total {
				t.Fatalf("total %d, want %d", page.TotalResults, tc.total)
			}
		})
	}
}

func testMembers(t *testing.T, s store.Store) {
	mustCreateWorkspace(t, s, "ws", "alice")
	_, err := s.ListMembers(ctx, "nope")
	wantCode(t, err, store.KindNotFound, "not_found")
	_, err = s.AddMember(ctx, "nope", "bob", []string{"Viewer"}, "alice")
	wantCode(t, err, store.KindNotFound, "not_found")

	ch := must[store.MemberChange](t)(s.AddMember(ctx, "ws", "bob", []string{"Viewer"}, "alice"))
	if ch.Revision == 0 || ch.Member.GrantedBy != "alice" {
		t.Fatalf("add: %+v", ch)
	}
	equal(t, "roles", ch.Member.Roles, []string{"Viewer"})
	ch = must[store.MemberChange](t)(s.AddMember(ctx, "ws", "bob", []string{"Viewer", "Editor"}, "carol"))
	equal(t, "roles after add", ch.Member.Roles, []string{"Editor", "Viewer"})
	if ch.Member.GrantedBy != "alice" {
		t.Fatalf("granted_by must be the earliest grant's: %+v", ch.Member)
	}
	_, err = s.AddMember(ctx, "ws", "bob", []string{"Editor"}, "alice")
	wantCode(t, err, store.KindConflict, "member_exists")

	ch = must[store.MemberChange](t)(s.SetMemberRoles(ctx, "ws", "bob", []string{"Admin"}, "alice"))
	equal(t, "roles after set", ch.Member.Roles, []string{"Admin"})
	same := must[store.MemberChange](t)(s.SetMemberRoles(ctx, "ws", "bob", []string{"Admin"}, "alice"))
	if same.Revision != 0 {
		t.Fatalf("a no-op update changed the revision: %d", same.Revision)
	}
	_, err = s.SetMemberRoles(ctx, "ws", "carol", []string{"Viewer"}, "alice")
	wantCode(t, err, store.KindNotFound, "member_not_found")

	members := must[[]store.Member](t)(s.ListMembers(ctx, "ws"))
	equal(t, "members", names(members, func(m store.Member) string { return m.Principal }), []string{"alice", "bob"})

	del := must[store.Deleted](t)(s.RemoveMember(ctx, "ws", "bob"))
	if del.ID != "bob" || del.Revision == 0 {
		t.Fatalf("remove: %+v", del)
	}
	_, err = s.RemoveMember(ctx, "ws", "bob")
	wantCode(t, err, store.KindNotFound, "member_not_found")
	// Re-adding after removal works (the old bindings are revoked, not deleted).
	must[store.MemberChange](t)(s.AddMember(ctx, "ws", "bob", []string{"Viewer"}, "alice"))
}

func testLastAdmin(t *testing.T, s store.Store) {
	mustCreateWorkspace(t, s, "ws", "alice")
	_, err := s.RemoveMember(ctx, "ws", "alice")
	wantCode(t, err, store.KindConflict, "last_admin")
	_, err = s.SetMemberRoles(ctx, "ws", "alice", []string{"Editor"}, "alice")
	wantCode(t, err, store.KindConflict, "last_admin")
	b := must[store.RoleBinding](t)(s.GetRoleBinding(ctx, bindingNameOf(t, s, "ws", "alice", "Admin")))
	_, err = s.RevokeRoleBinding(ctx, b.Name)
	wantCode(t, err, store.KindConflict, "last_admin")
	members := must[[]store.Member](t)(s.ListMembers(ctx, "ws"))
	equal(t, "unchanged", members[0].Roles, []string{"Admin"})

	must[store.MemberChange](t)(s.AddMember(ctx, "ws", "bob", []string{"Admin"}, "alice"))
	must[store.MemberChange](t)(s.SetMemberRoles(ctx, "ws", "alice", []string{"Viewer"}, "bob"))
	_, err = s.RemoveMember(ctx, "ws", "bob")
	wantCode(t, err, store.KindConflict, "last_admin")
	// Non-admin members can always leave.
	must[store.Deleted](t)(s.RemoveMember(ctx, "ws", "alice"))
}

func bindingNameOf(t *testing.T, s store.Store, ws, principal, role string) string {
	t.Helper()
	for _, b := range must[store.PolicyBindings](t)(s.ActiveBindings(ctx)).Bindings {
		if b.Workspace == ws && b.Principal == principal && b.Role == role {
			return b.Name
		}
	}
	t.Fatalf("no binding %s/%s/%s", ws, principal, role)
	return ""
}

// Two Admins removing each other at the same time: exactly one succeeds.
func testLastAdminConcurrent(t *testing.T, s store.Store) {
	for round := 0; round < 10; round++ {
		ws := fmt.Sprintf("race-%d", round)
		mustCreateWorkspace(t, s, ws, "alice")
		must[store.MemberChange](t)(s.AddMember(ctx, ws, "bob", []string{"Admin"}, "alice"))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, p := range []string{"alice", "bob"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if round%2 == 0 {
					_, errs[i] = s.RemoveMember(ctx, ws, p)
				} else {
					_, errs[i] = s.SetMemberRoles(ctx, ws, p, []string{"Viewer"}, "x")
				}
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else {
				wantCode(t, err, store.KindConflict, "last_admin")
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of 2 concurrent admin removals succeeded (%v)", round, ok, errs)
		}
		admins := 0
		for _, m := range must[[]store.Member](t)(s.ListMembers(ctx, ws)) {
			for _, r := range m.Roles {
				if r == "Admin" {
					admins++
				}
			}
		}
		if admins != 1 {
			t.Fatalf("round %d: %d admins left", round, admins)
		}
	}
}

func testRoleBindings(t *testing.T, s store.Store) {
	mustCreateWorkspace(t, s, "ws", "alice")
	b := must[store.RoleBinding](t)(s.CreateRoleBinding(ctx, store.NewRoleBinding{Principal: "ops@example.com", Role: "PlatformAdmin", By: "admin"}))
	if b.Workspace != "system" || b.Name[:3] != "rb-" || len(b.Name) != 27 || b.RevokedAt != nil {
		t.Fatalf("created %+v", b)
	}
	_, err := s.CreateRoleBinding(ctx, store.NewRoleBinding{Principal: "ops@example.com", Role: "PlatformAdmin", By: "admin"})
	wantCode(t, err, store.KindConflict, "already_exists")
	_, err = s.CreateRoleBinding(ctx, store.NewRoleBinding{Principal: "x", Workspace: "nope", Role: "Viewer", By: "admin"})
	wantCode(t, err, store.KindNotFound, "not_found")

	got := must[store.RoleBinding](t)(s.GetRoleBinding(ctx, b.Name))
	equal(t, "get", got, b)
	del := must[store.Deleted](t)(s.RevokeRoleBinding(ctx, b.Name))
	if del.ID != b.ID {
		t.Fatalf("revoke: %+v", del)
	}
	_, err = s.RevokeRoleBinding(ctx, b.Name)
	wantCode(t, err, store.KindConflict, "already_revoked")
	_, err = s.RevokeRoleBinding(ctx, "rb-nope")
	wantCode(t, err, store.KindNotFound, "not_found")

	// Re-created: the name is reused; GET prefers the active one.
	b2 := must[store.RoleBinding](t)(s.CreateRoleBinding(ctx, store.NewRoleBinding{Principal: "ops@example.com", Role: "PlatformAdmin", By: "admin"}))
	if b2.Name != b.Name || b2.ID == b.ID {
		t.Fatalf("re-created %+v", b2)
	}
	got = must[store.RoleBinding](t)(s.GetRoleBinding(ctx, b.Name))
	if got.ID != b2.ID || got.RevokedAt != nil {
		t.Fatalf("GET should prefer the active binding: %+v", got)
	}

	tests := []struct {
		name    string
		filters []store.Filter
		want    int
	}{
		{"all", nil, 7},
		{"active", []store.Filter{{Field: "is_active", Op: store.OpEq, Values: []string{"true"}}}, 6},
		{"revoked", []store.Filter{{Field: "is_active", Op: store.OpEq, Values: []string{"false"}}}, 1},
		{"role in", []store.Filter{{Field: "role", Op: store.OpIn, Values: []string{"Admin", "PlatformAdmin"}}}, 4},
		{"workspace", []store.Filter{{Field: "workspace", Op: store.OpEq, Values: []string{"ws"}}}, 1},
		{"granted_by", []store.Filter{{Field: "granted_by", Op: store.OpEq, Values: []string{"system"}}}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := store.ListOptions{Page: 1, PageSize: 100, SortField: "principal", Filters: tc.filters}
			page := must[store.Page[store.RoleBinding]](t)(s.ListRoleBindings(ctx, opts))
			if page.TotalResults != tc.want || len(page.Items) != tc.want {
				t.Fatalf("got %d (%d items), want %d", page.TotalResults, len(page.Items), tc.want)
			}
		})
	}
}

func testPolicyRevisions(t *testing.T, s store.Store) {
	start := must[int64](t)(s.PolicyRevision(ctx))
	mustCreateWorkspace(t, s, "ws", "alice")
	ch := must[store.MemberChange](t)(s.AddMember(ctx, "ws", "bob", []string{"Viewer", "Editor"}, "alice"))
	del := must[store.Deleted](t)(s.RemoveMember(ctx, "ws", "bob"))
	if increasing := start < ch.Revision && ch.Revision < del.Revision; !increasing {
		t.Fatalf("revisions not increasing: %d %d %d", start, ch.Revision, del.Revision)
	}
	changes := must[store.PolicyBindings](t)(s.BindingChanges(ctx, ch.Revision-1))
	if changes.Revision != del.Revision || len(changes.Bindings) != 2 {
		t.Fatalf("changes after %d: %+v", ch.Revision-1, changes)
	}
	for _, b := range changes.Bindings {
		if b.RevokedAt == nil || b.Revision != del.Revision {
			t.Fatalf("change rows must carry their revocation: %+v", b)
		}
	}
	if got := must[store.PolicyBindings](t)(s.BindingChanges(ctx, del.Revision)); len(got.Bindings) != 0 {
		t.Fatalf("no changes expected after the last revision: %+v", got)
	}
	// A failed write leaves the revision unchanged.
	_, err := s.RemoveMember(ctx, "ws", "alice")
	wantCode(t, err, store.KindConflict, "last_admin")
	if rev := must[int64](t)(s.PolicyRevision(ctx)); rev != del.Revision {
		t.Fatalf("refused write moved the revision to %d", rev)
	}
}

// Recorder collects the events of a policy watch for tests.
type Recorder struct {
	mu     sync.Mutex
	events []store.PolicyEvent
	signal chan struct{}
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{signal: make(chan struct{}, 1)} }

// Emit records one event; it never blocks.
func (r *Recorder) Emit(ev store.PolicyEvent) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// Events returns a copy of the events so far.
func (r *Recorder) Events() []store.PolicyEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.PolicyEvent(nil), r.events...)
}

// WaitFor waits until an event at index from or later satisfies ok (or
// fails the test after timeout) and returns the index of that event.
func (r *Recorder) WaitFor(t testing.TB, what string, from int, timeout time.Duration, ok func(store.PolicyEvent) bool) int {
	t.Helper()
	deadline := time.After(timeout)
	for {
		for i, ev := range r.Events() {
			if i >= from && ok(ev) {
				return i
			}
		}
		select {
		case <-r.signal:
		case <-deadline:
			t.Fatalf("no %s within %v; events: %+v", what, timeout, r.Events())
		}
	}
}

// Watch starts WatchPolicy on s with a recorder, waits for its first
// Resync and stops it at cleanup (checking it returns the context's error).
func Watch(t testing.TB, s store.ChangeFeed) *Recorder {
	t.Helper()
	rec := NewRecorder()
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.WatchPolicy(wctx, rec.Emit) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("WatchPolicy returned %v, want context.Canceled", err)
		}
	})
	rec.WaitFor(t, "initial resync", 0, 20*time.Second, func(ev store.PolicyEvent) bool { return ev.Resync })
	return rec
}

// testPolicyFeed: every committed revision reaches a watcher by the time
// the write returns; writes that change no binding, and refused writes,
// publish nothing.
func testPolicyFeed(t *testing.T, s store.Store) {
	rec := Watch(t, s)
	if first := rec.Events()[0]; !first.Resync || first.Err != nil {
		t.Fatalf("first event must be a Resync: %+v", first)
	}
	seen := func(rev int64) bool {
		for _, ev := range rec.Events() {
			if ev.Revision == rev {
				return true
			}
		}
		return false
	}
	var revs []int64
	_, rev, err := s.CreateWorkspace(ctx, store.NewWorkspace{Name: "feed", Admin: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	revs = append(revs, rev)
	ch := must[store.MemberChange](t)(s.AddMember(ctx, "feed", "bob", []string{"Viewer"}, "alice"))
	revs = append(revs, ch.Revision)
	ch = must[store.MemberChange](t)(s.SetMemberRoles(ctx, "feed", "bob", []string{"Editor"}, "alice"))
	revs = append(revs, ch.Revision)
	b := must[store.RoleBinding](t)(s.CreateRoleBinding(ctx, store.NewRoleBinding{Principal: "carol", Workspace: "feed", Role: "Viewer", By: "alice"}))
	revs = append(revs, b.Revision)
	del := must[store.Deleted](t)(s.RevokeRoleBinding(ctx, b.Name))
	revs = append(revs, del.Revision)
	del = must[store.Deleted](t)(s.RemoveMember(ctx, "feed", "bob"))
	revs = append(revs, del.Revision)
	for _, r := range revs {
		// Published synchronously after commit: no waiting needed.
		if r <= 0 || !seen(r) {
			t.Fatalf("revision %d not published when its write returned; events %+v", r, rec.Events())
		}
	}
	n := len(rec.Events())
	must[store.Workspace](t)(s.UpdateWorkspace(ctx, "feed", "no binding change", ptr("alice")))
	must[store.Project](t)(s.CreateProject(ctx, store.NewProject{Workspace: "feed", Name: "p"}))
	_, err = s.RemoveMember(ctx, "feed", "alice")
	wantCode(t, err, store.KindConflict, "last_admin")
	_, err = s.AddMember(ctx, "feed", "alice", []string{"Admin"}, "alice")
	wantCode(t, err, store.KindConflict, "member_exists")
	// A notification from PostgreSQL may still arrive for the earlier
	// revisions; nothing may carry a revision that was not committed.
	for _, ev := range rec.Events()[n:] {
		if ev.Revision != 0 && !slices.Contains(revs, ev.Revision) {
			t.Fatalf("event for an uncommitted revision: %+v", ev)
		}
	}
}

// scanTriples collects ScanActiveBindings as sorted
// "principal|workspace|role" strings.
func scanTriples(t *testing.T, s store.Store) ([]string, int64) {
	t.Helper()
	var got []string
	rev, err := s.ScanActiveBindings(ctx, func(principal, workspace, role string) error {
		got = append(got, principal+"|"+workspace+"|"+role)
		return nil
	})
	if err != nil {
		t.Fatalf("ScanActiveBindings: %v", err)
	}
	slices.Sort(got)
	return got, rev
}

func testScanActiveBindings(t *testing.T, s store.Store) {
	mustCreateWorkspace(t, s, "ws", "alice")
	mustCreateWorkspace(t, s, "ws2", "alice")
	must[store.MemberChange](t)(s.AddMember(ctx, "ws", "bob", []string{"Viewer", "Editor"}, "alice"))
	must[store.MemberChange](t)(s.AddMember(ctx, "ws2", "bob", []string{"Viewer"}, "alice"))
	must[store.MemberChange](t)(s.AddMember(ctx, "ws", "carol", []string{"Viewer"}, "alice"))
	must[store.MemberChange](t)(s.SetMemberRoles(ctx, "ws", "bob", []string{"Editor"}, "alice")) // revokes Viewer
	must[store.Deleted](t)(s.RemoveMember(ctx, "ws", "carol"))                                   // revokes carol
	b := must[store.RoleBinding](t)(s.CreateRoleBinding(ctx, store.NewRoleBinding{Principal: "ops", Role: "PlatformAdmin", By: "admin"}))
	must[store.Deleted](t)(s.RevokeRoleBinding(ctx, b.Name))

	got, rev := scanTriples(t, s)
	pb := must[store.PolicyBindings](t)(s.ActiveBindings(ctx))
	var want []string
	for _, b := range pb.Bindings {
		want = append(want, b.Principal+"|"+b.Workspace+"|"+b.Role)
	}
	slices.Sort(want)
	equal(t, "scanned bindings", got, want)
	equal(t, "explicit", got, []string{
		"*|default|Editor", "*|system|Viewer", "*|system|WorkspaceCreator",
		"admin@example.com|system|PlatformAdmin",
		"alice|ws2|Admin", "alice|ws|Admin", "bob|ws2|Viewer", "bob|ws|Editor"})
	if rev != pb.Revision || rev != must[int64](t)(s.PolicyRevision(ctx)) {
		t.Fatalf("scan revision %d, ActiveBindings %d", rev, pb.Revision)
	}
}

// testScanActiveBindingsSnapshot commits a binding change while a scan is
// in progress: the scan must neither see the new row nor report the new
// revision; the next scan sees both.
func testScanActiveBindingsSnapshot(t *testing.T, s store.Store) {
	mustCreateWorkspace(t, s, "ws", "alice")
	for i := range 20 {
		must[store.MemberChange](t)(s.AddMember(ctx, "ws", fmt.Sprintf("user-%02d", i), []string{"Viewer"}, "alice"))
	}
	before, beforeRev := scanTriples(t, s)
	var got []string
	var wrote store.MemberChange
	rev, err := s.ScanActiveBindings(ctx, func(principal, workspace, role string) error {
		if got == nil { // first row: commit a grant and a revocation elsewhere
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			var err error
			if wrote, err = s.AddMember(wctx, "ws", "late", []string{"Editor"}, "alice"); err != nil {
				return err
			}
			if _, err := s.RemoveMember(wctx, "ws", "user-19"); err != nil {
				return err
			}
		}
		got = append(got, principal+"|"+workspace+"|"+role)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if rev != beforeRev || wrote.Revision <= rev {
		t.Fatalf("scan revision %d, before %d, concurrent write %d", rev, beforeRev, wrote.Revision)
	}
	equal(t, "rows of the snapshot", got, before)
	after, afterRev := scanTriples(t, s)
	if afterRev != wrote.Revision+1 || !slices.Contains(after, "late|ws|Editor") || slices.Contains(after, "user-19|ws|Viewer") {
		t.Fatalf("next scan at %d: %v", afterRev, after)
	}

	// Scans racing a writer: every scan's rows are exactly the grants
	// committed at or below the revision it reports.
	base, baseRev := after, afterRev
	var mu sync.Mutex
	granted := map[int64]string{} // revision -> triple
	done := make(chan error, 1)
	go func() {
		for i := range 30 {
			ch, err := s.AddMember(ctx, "ws", fmt.Sprintf("racer-%02d", i), []string{"Viewer"}, "alice")
			if err != nil {
				done <- err
				return
			}
			mu.Lock()
			granted[ch.Revision] = fmt.Sprintf("racer-%02d|ws|Viewer", i)
			mu.Unlock()
		}
		done <- nil
	}()
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
		}
		got, rev := scanTriples(t, s)
		want := slices.Clone(base)
		for r := baseRev + 1; r <= rev; r++ {
			mu.Lock()
			triple, ok := granted[r]
			mu.Unlock()
			for !ok { // committed but not recorded yet
				time.Sleep(time.Millisecond)
				mu.Lock()
				triple, ok = granted[r]
				mu.Unlock()
			}
			want = append(want, triple)
		}
		slices.Sort(want)
		equal(t, fmt.Sprintf("rows at revision %d", rev), got, want)
	}
}

func testScanActiveBindingsAbort(t *testing.T, s store.Store) {
	mustCreateWorkspace(t, s, "ws", "alice")
	stop := errors.New("stop here")
	calls := 0
	rev, err := s.ScanActiveBindings(ctx, func(string, string, string) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 || rev != 0 {
		t.Fatalf("got revision %d, error %v after %d calls; want %v after 1 call", rev, err, calls, stop)
	}
	// The aborted scan released its transaction: writes and scans go on.
	must[store.MemberChange](t)(s.AddMember(ctx, "ws", "bob", []string{"Viewer"}, "alice"))
	if got, _ := scanTriples(t, s); !slices.Contains(got, "bob|ws|Viewer") {
		t.Fatalf("scan after abort: %v", got)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.ScanActiveBindings(cctx, func(string, string, string) error { return nil }); err == nil {
		t.Fatal("a cancelled context must fail the scan")
	}
}

func testProjects(t *testing.T, s store.Store) {
	mustCreateWorkspace(t, s, "ws", "")
	p := must[store.Project](t)(s.CreateProject(ctx, store.NewProject{Workspace: "ws", Name: "proj", Description: "d", By: ptr("alice")}))
	if p.Workspace != "ws" || len(p.ID) != len("project-")+20 {
		t.Fatalf("created %+v", p)
	}
	_, err := s.CreateProject(ctx, store.NewProject{Workspace: "ws", Name: "proj"})
	wantCode(t, err, store.KindConflict, "already_exists")
	_, err = s.CreateProject(ctx, store.NewProject{Workspace: "nope", Name: "proj"})
	wantCode(t, err, store.KindNotFound, "not_found")
	// Same name in another workspace is fine.
	must[store.Project](t)(s.CreateProject(ctx, store.NewProject{Workspace: "default", Name: "proj"}))

	equal(t, "get", must[store.Project](t)(s.GetProject(ctx, "ws", "proj")), p)
	_, err = s.GetProject(ctx, "ws", "nope")
	wantCode(t, err, store.KindNotFound, "not_found")
	up := must[store.Project](t)(s.UpdateProject(ctx, "ws", "proj", "new", ptr("bob")))
	if up.Description != "new" || *up.UpdatedBy != "bob" {
		t.Fatalf("update %+v", up)
	}
	page := must[store.Page[store.Project]](t)(s.ListProjects(ctx, "ws", list(10)))
	if page.TotalResults != 1 || page.Items[0].Name != "proj" {
		t.Fatalf("list %+v", page)
	}
	must[store.Entity](t)(s.CreateEntity(ctx, store.NewEntity{EntityKey: store.EntityKey{Workspace: "ws", EntityType: "model", Name: "m"}, Project: ptr("proj"), Data: json.RawMessage(`{}`)}))
	_, err = s.DeleteProject(ctx, "ws", "proj")
	wantCode(t, err, store.KindConflict, "project_not_empty")
	must[store.Deleted](t)(s.DeleteEntity(ctx, store.EntityKey{Workspace: "ws", EntityType: "model", Name: "m"}))
	del := must[store.Deleted](t)(s.DeleteProject(ctx, "ws", "proj"))
	if del.ID != p.ID {
		t.Fatalf("delete %+v", del)
	}
}

func testEntities(t *testing.T, s store.Store) {
	mustCreateWorkspace(t, s, "ws", "")
	must[store.Project](t)(s.CreateProject(ctx, store.NewProject{Workspace: "ws", Name: "proj"}))
	key := store.EntityKey{Workspace: "ws", EntityType: "dataset", Name: "d1"}
	e := must[store.Entity](t)(s.CreateEntity(ctx, store.NewEntity{EntityKey: key, Project: ptr("proj"), Data: json.RawMessage(`{"a": {"b": "x"}, "n": 1}`), By: ptr("alice")}))
	if e.DBVersion != 1 || e.Project == nil || *e.Project != "proj" || e.Parent != nil || e.ID[:8] != "dataset-" {
		t.Fatalf("created %+v", e)
	}
	var data map[string]any
	if err := json.Unmarshal(e.Data, &data); err != nil || data["n"] != float64(1) {
		t.Fatalf("data round trip: %s %v", e.Data, err)
	}
	_, err := s.CreateEntity(ctx, store.NewEntity{EntityKey: key, Data: json.RawMessage(`{}`)})
	wantCode(t, err, store.KindConflict, "already_exists")
	child := store.EntityKey{Workspace: "ws", EntityType: "dataset", Name: "d1", Parent: ptr("root")}
	must[store.Entity](t)(s.CreateEntity(ctx, store.NewEntity{EntityKey: child, Data: json.RawMessage(`{}`)}))
	_, err = s.CreateEntity(ctx, store.NewEntity{EntityKey: store.EntityKey{Workspace: "ws", EntityType: "dataset", Name: "x"}, Project: ptr("nope"), Data: json.RawMessage(`{}`)})
	wantCode(t, err, store.KindInvalid, "validation_error")

	got := must[store.Entity](t)(s.GetEntity(ctx, key))
	if got.ID != e.ID {
		t.Fatalf("parent-less get returned %+v", got)
	}
	gotChild := must[store.Entity](t)(s.GetEntity(ctx, child))
	if gotChild.Parent == nil || *gotChild.Parent != "root" {
		t.Fatalf("child get %+v", gotChild)
	}
	byID := must[store.Entity](t)(s.GetEntityByID(ctx, e.ID))
	if byID.Name != "d1" {
		t.Fatalf("by id %+v", byID)
	}
	_, err = s.GetEntityByID(ctx, "dataset-nope")
	wantCode(t, err, store.KindNotFound, "not_found")

	up := must[store.Entity](t)(s.UpdateEntity(ctx, store.EntityUpdate{EntityKey: key, Data: json.RawMessage(`{"v": 2}`), DBVersion: ptr(int64(1))}))
	if up.DBVersion != 2 || up.Project != nil || string(up.Data) == string(e.Data) {
		t.Fatalf("update %+v", up)
	}
	_, err = s.UpdateEntity(ctx, store.EntityUpdate{EntityKey: key, Data: json.RawMessage(`{}`), DBVersion: ptr(int64(1))})
	wantCode(t, err, store.KindConflict, "version_conflict")
	must[store.Entity](t)(s.UpdateEntity(ctx, store.EntityUpdate{EntityKey: key, Data: json.RawMessage(`{}`)}))

	del := must[store.Deleted](t)(s.DeleteEntity(ctx, key))
	if del.ID != e.ID {
		t.Fatalf("delete %+v", del)
	}
	_, err = s.GetEntity(ctx, key)
	wantCode(t, err, store.KindNotFound, "not_found")
	_, err = s.DeleteEntity(ctx, key)
	wantCode(t, err, store.KindNotFound, "not_found")
}

func testEntityFilters(t *testing.T, s store.Store) {
	mustCreateWorkspace(t, s, "ws1", "alice")
	mustCreateWorkspace(t, s, "ws2", "bob")
	docs := []struct{ ws, name, data string }{
		{"ws1", "a", `{"target": "GPU-large", "n": 1}`},
		{"ws1", "b", `{"target": "cpu", "nested": {"k": "v"}}`},
		{"ws2", "c", `{"target": "gpu-small"}`},
		{"ws2", "d", `{"target": 5}`},
	}
	for _, d := range docs {
		must[store.Entity](t)(s.CreateEntity(ctx, store.NewEntity{EntityKey: store.EntityKey{Workspace: d.ws, EntityType: "model", Name: d.name}, Data: json.RawMessage(d.data)}))
	}
	must[store.Entity](t)(s.CreateEntity(ctx, store.NewEntity{EntityKey: store.EntityKey{Workspace: "ws1", EntityType: "other", Name: "z"}, Data: json.RawMessage(`{}`)}))
	tests := []struct {
		name    string
		ws      string
		vis     *store.Visibility
		filters []store.Filter
		want    []string
	}{
		{"one workspace", "ws1", nil, nil, []string{"a", "b"}},
		{"all workspaces", "-", nil, nil, []string{"a", "b", "c", "d"}},
		{"all, restricted to ws1", "-", &store.Visibility{Workspaces: []string{"ws1"}}, nil, []string{"a", "b"}},
		{"all, restricted to ws2 and an unknown one", "-", &store.Visibility{Workspaces: []string{"nope", "ws2"}}, nil, []string{"c", "d"}},
		{"all, nothing visible", "-", &store.Visibility{Workspaces: []string{}}, nil, []string{}},
		{"restriction and data filter", "-", &store.Visibility{Workspaces: []string{"ws2"}}, []store.Filter{{Field: "data.target", Op: store.OpLike, Values: []string{"gpu"}}}, []string{"c"}},
		{"one workspace ignores the restriction", "ws1", &store.Visibility{Workspaces: []string{"ws2"}}, nil, []string{"a", "b"}},
		{"data like", "-", nil, []store.Filter{{Field: "data.target", Op: store.OpLike, Values: []string{"gpu"}}}, []string{"a", "c"}},
		{"data eq", "-", nil, []store.Filter{{Field: "data.target", Op: store.OpEq, Values: []string{"cpu"}}}, []string{"b"}},
		{"data in", "-", nil, []store.Filter{{Field: "data.target", Op: store.OpIn, Values: []string{"cpu", "gpu-small"}}}, []string{"b", "c"}},
		{"data number is not a string", "-", nil, []store.Filter{{Field: "data.target", Op: store.OpEq, Values: []string{"5"}}}, []string{}},
		{"nested path", "-", nil, []store.Filter{{Field: "data.nested.k", Op: store.OpEq, Values: []string{"v"}}}, []string{"b"}},
		{"missing path", "-", nil, []store.Filter{{Field: "data.nope", Op: store.OpEq, Values: []string{"v"}}}, []string{}},
		{"parent is null", "ws1", nil, []store.Filter{{Field: "name", Op: store.OpEq, Values: []string{"a"}}}, []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := store.ListOptions{Page: 1, PageSize: 100, SortField: "name", Filters: tc.filters}
			page := must[store.Page[store.Entity]](t)(s.ListEntities(ctx, tc.ws, "model", opts, tc.vis))
			equal(t, "names", names(page.Items, func(e store.Entity) string { return e.Name }), tc.want)
			if page.TotalResults != len(tc.want) {
				t.Fatalf("total %d", page.TotalResults)
			}
		})
	}
	_, err := s.ListEntities(ctx, "nope", "model", list(10), nil)
	wantCode(t, err, store.KindNotFound, "not_found")
}

// Concurrent writers with the same db_version: exactly one wins.
func testEntityConcurrentUpdate(t *testing.T, s store.Store) {
	key := store.EntityKey{Workspace: "default", EntityType: "doc", Name: "x"}
	must[store.Entity](t)(s.CreateEntity(ctx, store.NewEntity{EntityKey: key, Data: json.RawMessage(`{}`)}))
	const n = 8
	var wg sync.WaitGroup
	var wins atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateEntity(ctx, store.EntityUpdate{EntityKey: key, Data: json.RawMessage(fmt.Sprintf(`{"i": %d}`, i)), DBVersion: ptr(int64(1))})
			if err == nil {
				wins.Add(1)
			} else if store.CodeOf(err) != "version_conflict" {
				t.Errorf("unexpected error %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d writers won", wins.Load())
	}
	if e := must[store.Entity](t)(s.GetEntity(ctx, key)); e.DBVersion != 2 {
		t.Fatalf("db_version %d", e.DBVersion)
	}
}

func sight(principal string, at store.Timestamp) store.Sighting {
	return store.Sighting{Principal: principal, At: at}
}

func testLastSeen(t *testing.T, s store.Store) {
	at := func(minutes int) store.Timestamp {
		return store.NewTimestamp(Base.Add(time.Duration(minutes)*time.Minute + 123456*time.Nanosecond))
	}
	got := must[map[string]store.Timestamp](t)(s.LastSeen(ctx, []string{"alice", "bob"}))
	equal(t, "never seen", got, map[string]store.Timestamp{})
	got = must[map[string]store.Timestamp](t)(s.LastSeen(ctx, nil))
	equal(t, "no principals", got, map[string]store.Timestamp{})

	steps := []struct {
		name string
		seen []store.Sighting
		want map[string]store.Timestamp
	}{
		{"first sightings are stored",
			[]store.Sighting{sight("alice", at(10)), sight("bob@example.com", at(5))},
			map[string]store.Timestamp{"alice": at(10), "bob@example.com": at(5)}},
		{"a later time moves it forward",
			[]store.Sighting{sight("alice", at(20))},
			map[string]store.Timestamp{"alice": at(20), "bob@example.com": at(5)}},
		{"an older time never moves it back",
			[]store.Sighting{sight("alice", at(15)), sight("bob@example.com", at(1))},
			map[string]store.Timestamp{"alice": at(20), "bob@example.com": at(5)}},
		{"a principal listed twice keeps its latest time",
			[]store.Sighting{sight("carol", at(30)), sight("carol", at(40)), sight("carol", at(35))},
			map[string]store.Timestamp{"alice": at(20), "bob@example.com": at(5), "carol": at(40)}},
		{"an empty batch changes nothing", nil,
			map[string]store.Timestamp{"alice": at(20), "bob@example.com": at(5), "carol": at(40)}},
	}
	for _, st := range steps {
		if err := s.RecordLastSeen(ctx, st.seen); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got := must[map[string]store.Timestamp](t)(s.LastSeen(ctx, []string{"alice", "bob@example.com", "carol", "dave"}))
		equal(t, st.name, got, st.want)
	}
	// Microseconds survive the round trip (the wire format has six digits).
	if got := must[map[string]store.Timestamp](t)(s.LastSeen(ctx, []string{"alice"}))["alice"]; got.Nanosecond()%int(time.Millisecond) != 123000 {
		t.Fatalf("microseconds lost: %s", got)
	}
	// Only the principals asked for are returned.
	got = must[map[string]store.Timestamp](t)(s.LastSeen(ctx, []string{"carol"}))
	equal(t, "one principal", got, map[string]store.Timestamp{"carol": at(40)})

	// A batch with an empty principal is refused as a whole.
	err := s.RecordLastSeen(ctx, []store.Sighting{sight("alice", at(50)), sight("", at(50))})
	wantCode(t, err, store.KindInvalid, "invalid_principal")
	got = must[map[string]store.Timestamp](t)(s.LastSeen(ctx, []string{"alice"}))
	equal(t, "after a refused batch", got, map[string]store.Timestamp{"alice": at(20)})
}

// testLastSeenLargeBatch: a batch larger than one statement's rows is
// written whole.
func testLastSeenLargeBatch(t *testing.T, s store.Store) {
	const n = 1234
	seen := make([]store.Sighting, n)
	names := make([]string, n)
	for i := range seen {
		names[i] = fmt.Sprintf("user-%04d", i)
		seen[i] = store.Sighting{Principal: names[i], At: store.NewTimestamp(Base.Add(time.Duration(i) * time.Second))}
	}
	if err := s.RecordLastSeen(ctx, seen); err != nil {
		t.Fatal(err)
	}
	got := must[map[string]store.Timestamp](t)(s.LastSeen(ctx, names))
	if len(got) != n {
		t.Fatalf("got %d principals, want %d", len(got), n)
	}
	for _, v := range seen {
		if !got[v.Principal].Equal(v.At.Time) {
			t.Fatalf("%s: got %s, want %s", v.Principal, got[v.Principal], v.At)
		}
	}
}
