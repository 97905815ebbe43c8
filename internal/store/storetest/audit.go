package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/store"
)

// auditAll returns every audit event, newest first.
func auditAll(t *testing.T, s store.Store, f store.AuditFilter) []store.AuditEvent {
	t.Helper()
	f.Page, f.PageSize = 1, 10000
	evs, more, err := s.ListAuditEvents(ctx, f)
	if err != nil {
		t.Fatalf("ListAuditEvents: %v", err)
	}
	if more {
		t.Fatal("ListAuditEvents: more than 10000 events")
	}
	return evs
}

// asJSON is a JSON document (or a value marshalled to one) decoded into
// generic values, so that documents compare whatever their key order.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	raw, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	if len(raw) == 0 {
		return nil
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("audit state %q is not JSON: %v", raw, err)
	}
	return out
}

// wantEvent is what a test expects of one event.
type wantEvent struct {
	action, workspace, target string
	before, after             any
}

// checkEvents fails unless the events newer than the first seen ones are
// want (oldest first) and carry actor a; it returns every event.
func checkEvents(t *testing.T, s store.Store, seen int, a store.AuditActor, want ...wantEvent) []store.AuditEvent {
	t.Helper()
	all := auditAll(t, s, store.AuditFilter{})
	if got := len(all) - seen; got != len(want) {
		t.Fatalf("%d new audit events, want %d: %s", got, len(want), mustJSON(all[:max(got, 0)]))
	}
	for i, w := range want {
		e := all[len(want)-1-i]
		ws := ""
		if e.Workspace != nil {
			ws = *e.Workspace
		}
		if e.Action != w.action || ws != w.workspace || e.Target != w.target {
			t.Fatalf("event %d: got %s in %q on %q, want %s in %q on %q", i, e.Action, ws, e.Target, w.action, w.workspace, w.target)
		}
		equal(t, w.action+" before", asJSON(t, e.Before), asJSON(t, w.before))
		equal(t, w.action+" after", asJSON(t, e.After), asJSON(t, w.after))
		equal(t, w.action+" actor", []any{e.Actor, e.OnBehalfOf, e.RequestID},
			[]any{a.Principal, nilIfEmpty(a.OnBehalfOf), nilIfEmpty(a.RequestID)})
		if e.ID == "" || e.OccurredAt.IsZero() {
			t.Fatalf("event %d has no id or time: %+v", i, e)
		}
	}
	return all
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func roles(r ...string) store.AuditMemberState { return store.AuditMemberState{Roles: r} }

// testAuditEveryChange: every kind of access change writes one event with
// its actor, request id and before/after state; a change that changes
// nothing writes none; the built-ins' events are the system's.
func testAuditEveryChange(t *testing.T, s store.Store) {
	sys := store.AuditActor{Principal: store.AuditSystemActor}
	all := auditAll(t, s, store.AuditFilter{})
	// EnsureBuiltins (run by Run without an actor): two workspaces, four
	// seed bindings.
	if len(all) != 6 {
		t.Fatalf("EnsureBuiltins wrote %d audit events, want 6: %s", len(all), mustJSON(all))
	}
	checkEvents(t, s, 0, sys,
		wantEvent{store.AuditWorkspaceCreate, "default", "default", nil, store.AuditWorkspaceState{Name: "default"}},
		wantEvent{store.AuditWorkspaceCreate, "system", "system", nil, store.AuditWorkspaceState{Name: "system"}},
		wantEvent{store.AuditRoleBindingCreate, "system", "admin-example-com-system-platformadmin", nil,
			store.AuditBindingState{Principal: "admin@example.com", Workspace: "system", Role: "PlatformAdmin", GrantedBy: "system"}},
		wantEvent{store.AuditRoleBindingCreate, "default", "wildcard-default-editor", nil,
			store.AuditBindingState{Principal: "*", Workspace: "default", Role: "Editor", GrantedBy: "system"}},
		wantEvent{store.AuditRoleBindingCreate, "system", "wildcard-system-viewer", nil,
			store.AuditBindingState{Principal: "*", Workspace: "system", Role: "Viewer", GrantedBy: "system"}},
		wantEvent{store.AuditRoleBindingCreate, "system", "wildcard-system-workspacecreator", nil,
			store.AuditBindingState{Principal: "*", Workspace: "system", Role: "WorkspaceCreator", GrantedBy: "system"}},
	)
	// A second EnsureBuiltins changes nothing and records nothing.
	if err := s.EnsureBuiltins(ctx, DefaultSeed("admin@example.com")); err != nil {
		t.Fatal(err)
	}
	seen := len(checkEvents(t, s, 6, sys))

	a := store.AuditActor{Principal: "service:ci", OnBehalfOf: "alice", RequestID: "req-1"}
	actx := store.WithAuditActor(ctx, a)
	step := func(name string, change func() error, want ...wantEvent) {
		t.Helper()
		if err := change(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		seen = len(checkEvents(t, s, seen, a, want...))
	}
	step("create workspace", func() error {
		_, _, err := s.CreateWorkspace(actx, store.NewWorkspace{Name: "w1", Description: "first", By: ptr("alice"), Admin: "alice"})
		return err
	},
		wantEvent{store.AuditWorkspaceCreate, "w1", "w1", nil, store.AuditWorkspaceState{Name: "w1", Description: "first"}},
		wantEvent{store.AuditMemberCreate, "w1", "alice", nil, roles("Admin")})
	step("add member", func() error { _, err := s.AddMember(actx, "w1", "bob", []string{"Viewer"}, "alice"); return err },
		wantEvent{store.AuditMemberCreate, "w1", "bob", nil, roles("Viewer")})
	step("add a role", func() error { _, err := s.AddMember(actx, "w1", "bob", []string{"Editor"}, "alice"); return err },
		wantEvent{store.AuditMemberUpdate, "w1", "bob", roles("Viewer"), roles("Editor", "Viewer")})
	step("set the same roles", func() error {
		_, err := s.SetMemberRoles(actx, "w1", "bob", []string{"Viewer", "Editor"}, "alice")
		return err
	}) // no-op: no event
	step("set roles", func() error { _, err := s.SetMemberRoles(actx, "w1", "bob", []string{"Viewer"}, "alice"); return err },
		wantEvent{store.AuditMemberUpdate, "w1", "bob", roles("Editor", "Viewer"), roles("Viewer")})
	step("remove member", func() error { _, err := s.RemoveMember(actx, "w1", "bob"); return err },
		wantEvent{store.AuditMemberDelete, "w1", "bob", roles("Viewer"), nil})
	carol := store.AuditBindingState{Principal: "carol", Workspace: "w1", Role: "Editor", GrantedBy: "alice"}
	b, err := s.CreateRoleBinding(actx, store.NewRoleBinding{Principal: "carol", Workspace: "w1", Role: "Editor", By: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	seen = len(checkEvents(t, s, seen, a, wantEvent{store.AuditRoleBindingCreate, "w1", b.Name, nil, carol}))
	step("revoke binding", func() error { _, err := s.RevokeRoleBinding(actx, b.Name); return err },
		wantEvent{store.AuditRoleBindingDelete, "w1", b.Name, carol, nil})

	k := NewAccessKey("alice")
	k.Scopes = []string{"entities:read"}
	k.ExpiresAt = timeAt(keyNow.Add(time.Hour))
	exp := store.NewTimestamp(*k.ExpiresAt)
	keyState := func(st store.AccessKeyStatus) store.AuditAccessKeyState {
		return store.AuditAccessKeyState{Name: k.Name, Principal: "alice", EntityType: store.AccessKeyUser, Status: st,
			Scopes: []string{"entities:read"}, ExpiresAt: &exp}
	}
	step("create key", func() error { _, err := s.CreateAccessKey(actx, k); return err },
		wantEvent{store.AuditAccessKeyCreate, "", k.JTI, nil, keyState(store.AccessKeyActive)})
	setStatus := func(to store.AccessKeyStatus, wantChanged bool) func() error {
		return func() error {
			_, changed, err := s.SetAccessKeyStatus(actx, k.JTI, to, keyNow)
			if err == nil && changed != wantChanged {
				t.Fatalf("SetAccessKeyStatus(%s): changed %v, want %v", to, changed, wantChanged)
			}
			return err
		}
	}
	step("suspend key", setStatus(store.AccessKeySuspended, true),
		wantEvent{store.AuditAccessKeySuspend, "", k.JTI, keyState(store.AccessKeyActive), keyState(store.AccessKeySuspended)})
	step("suspend again", setStatus(store.AccessKeySuspended, false)) // no-op: no event
	step("unsuspend key", setStatus(store.AccessKeyActive, true),
		wantEvent{store.AuditAccessKeyUnsuspend, "", k.JTI, keyState(store.AccessKeySuspended), keyState(store.AccessKeyActive)})
	next := NewAccessKey("alice")
	grace := keyNow.Add(time.Minute)
	rotating := keyState(store.AccessKeyRotating)
	rotating.GracePeriodExpiresAt, rotating.ReplacedBy = ptr(store.NewTimestamp(grace)), next.JTI
	step("rotate key", func() error { _, _, err := s.RotateAccessKey(actx, k.JTI, grace, next, keyNow); return err },
		wantEvent{store.AuditAccessKeyRotate, "", k.JTI, keyState(store.AccessKeyActive), rotating},
		wantEvent{store.AuditAccessKeyCreate, "", next.JTI, nil,
			store.AuditAccessKeyState{Name: next.Name, Principal: "alice", EntityType: store.AccessKeyUser, Status: store.AccessKeyActive}})
	revoked := rotating
	revoked.Status = store.AccessKeyRevoked
	step("revoke key", setStatus(store.AccessKeyRevoked, true),
		wantEvent{store.AuditAccessKeyRevoke, "", k.JTI, rotating, revoked})
	step("record key use", func() error {
		return s.RecordAccessKeyUse(actx, []store.AccessKeyUse{{JTI: next.JTI, At: keyNow}})
	}) // uses are not audited

	step("update workspace", func() error { _, err := s.UpdateWorkspace(actx, "w1", "second", ptr("alice")); return err })
	step("delete workspace", func() error { _, err := s.DeleteWorkspace(actx, "w1", ptr("alice")); return err },
		wantEvent{store.AuditWorkspaceDelete, "w1", "w1", store.AuditWorkspaceState{Name: "w1", Description: "second",
			RevokedBindings: []store.AuditBindingState{{Principal: "alice", Workspace: "w1", Role: "Admin", GrantedBy: "alice"}}}, nil})
}

// testAuditFailedChanges: a change that fails, also after its event was
// written in the transaction, leaves no event.
func testAuditFailedChanges(t *testing.T, s store.Store) {
	actx := store.WithAuditActor(ctx, store.AuditActor{Principal: "alice", RequestID: "req-2"})
	mustCreateWorkspace(t, s, "w1", "alice")
	must[store.MemberChange](t)(s.AddMember(actx, "w1", "bob", []string{"Viewer"}, "alice"))
	used := mustCreateKey(t, s, NewAccessKey("alice"))
	k := mustCreateKey(t, s, NewAccessKey("alice"))
	must[store.Project](t)(s.CreateProject(actx, store.NewProject{Workspace: "w1", Name: "p"}))
	seen := len(auditAll(t, s, store.AuditFilter{}))

	failures := []struct {
		name string
		do   func() error
		kind store.Kind
		code string
	}{
		{"remove the last admin", func() error { _, err := s.RemoveMember(actx, "w1", "alice"); return err }, store.KindConflict, "last_admin"},
		{"demote the last admin", func() error {
			_, err := s.SetMemberRoles(actx, "w1", "alice", []string{"Viewer"}, "alice")
			return err
		}, store.KindConflict, "last_admin"},
		{"revoke the last admin's binding", func() error {
			_, err := s.RevokeRoleBinding(actx, bindingNameOf(t, s, "w1", "alice", "Admin"))
			return err
		}, store.KindConflict, "last_admin"},
		{"add held roles", func() error { _, err := s.AddMember(actx, "w1", "bob", []string{"Viewer"}, "alice"); return err },
			store.KindConflict, "member_exists"},
		{"create an existing workspace", func() error {
			_, _, err := s.CreateWorkspace(actx, store.NewWorkspace{Name: "w1", Admin: "alice"})
			return err
		}, store.KindConflict, "already_exists"},
		{"delete a non-empty workspace", func() error { _, err := s.DeleteWorkspace(actx, "w1", nil); return err },
			store.KindConflict, "workspace_not_empty"},
		{"an invalid key transition", func() error {
			_, _, err := s.SetAccessKeyStatus(actx, k.JTI, store.AccessKeyRotating, keyNow)
			return err
		}, store.KindConflict, "invalid_state"},
		// The rotation's own event is written before the successor's
		// insert fails: the rollback must take it away.
		{"rotate onto an existing jti", func() error {
			next := NewAccessKey("alice")
			next.JTI = used.JTI
			_, _, err := s.RotateAccessKey(actx, k.JTI, keyNow.Add(time.Minute), next, keyNow)
			return err
		}, store.KindConflict, "already_exists"},
	}
	for _, f := range failures {
		wantCode(t, f.do(), f.kind, f.code)
		if got := len(auditAll(t, s, store.AuditFilter{})); got != seen {
			t.Fatalf("%s failed but left %d audit event(s)", f.name, got-seen)
		}
	}
	if got := mustGetKey(t, s, k.JTI); got.Status != store.AccessKeyActive {
		t.Fatalf("the failed rotation changed the key: %s", got.Status)
	}
}

// testAuditList: filters by workspace, principal (actor or target) and
// time, newest first, in pages.
func testAuditList(t *testing.T, s store.Store) {
	as := func(p string) context.Context { return store.WithAuditActor(ctx, store.AuditActor{Principal: p}) }
	must[store.Workspace](t)(func() (store.Workspace, error) {
		w, _, err := s.CreateWorkspace(as("alice"), store.NewWorkspace{Name: "wa", Admin: "alice"})
		return w, err
	}())
	must[store.Workspace](t)(func() (store.Workspace, error) {
		w, _, err := s.CreateWorkspace(as("bob"), store.NewWorkspace{Name: "wb", Admin: "bob"})
		return w, err
	}())
	for _, p := range []string{"p1", "p2", "p3"} {
		must[store.MemberChange](t)(s.AddMember(as("alice"), "wa", p, []string{"Viewer"}, "alice"))
	}
	must[store.MemberChange](t)(s.AddMember(as("bob"), "wb", "alice", []string{"Viewer"}, "bob"))

	type ev struct{ Action, Target string }
	view := func(evs []store.AuditEvent) []ev {
		out := make([]ev, len(evs))
		for i, e := range evs {
			out[i] = ev{e.Action, e.Target}
		}
		return out
	}
	all := auditAll(t, s, store.AuditFilter{})
	for i := 1; i < len(all); i++ {
		if all[i].OccurredAt.After(all[i-1].OccurredAt.Time) {
			t.Fatalf("events are not newest first: %s before %s", all[i-1].OccurredAt, all[i].OccurredAt)
		}
	}
	equal(t, "workspace wa", view(auditAll(t, s, store.AuditFilter{Workspace: ptr("wa")})), []ev{
		{store.AuditMemberCreate, "p3"}, {store.AuditMemberCreate, "p2"}, {store.AuditMemberCreate, "p1"},
		{store.AuditMemberCreate, "alice"}, {store.AuditWorkspaceCreate, "wa"}})
	equal(t, "principal bob (actor or target)", view(auditAll(t, s, store.AuditFilter{Principal: "bob"})), []ev{
		{store.AuditMemberCreate, "alice"}, {store.AuditMemberCreate, "bob"}, {store.AuditWorkspaceCreate, "wb"}})
	equal(t, "principal alice in wb", view(auditAll(t, s, store.AuditFilter{Workspace: ptr("wb"), Principal: "alice"})),
		[]ev{{store.AuditMemberCreate, "alice"}})

	// since is inclusive, until exclusive.
	wa := auditAll(t, s, store.AuditFilter{Workspace: ptr("wa")})
	since, until := wa[3].OccurredAt.Time, wa[1].OccurredAt.Time // alice's membership .. p2
	equal(t, "since/until", view(auditAll(t, s, store.AuditFilter{Workspace: ptr("wa"), Since: &since, Until: &until})),
		[]ev{{store.AuditMemberCreate, "p1"}, {store.AuditMemberCreate, "alice"}})

	// Pages of 2 over wa's 5 events.
	var paged []store.AuditEvent
	for page := 1; ; page++ {
		evs, more, err := s.ListAuditEvents(ctx, store.AuditFilter{Workspace: ptr("wa"), Page: page, PageSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, evs...)
		if want := page < 3; more != want {
			t.Fatalf("page %d: has more %v, want %v", page, more, want)
		}
		if !more {
			break
		}
	}
	equal(t, "pages", view(paged), view(wa))
	for _, f := range []store.AuditFilter{{Page: 0, PageSize: 1}, {Page: 1, PageSize: 0}, {Page: 1 << 62, PageSize: 100}} {
		_, _, err := s.ListAuditEvents(ctx, f)
		wantCode(t, err, store.KindInvalid, "invalid_page")
	}
}

// testAuditPrune: PruneAuditEvents deletes exactly the events older than
// its cutoff.
func testAuditPrune(t *testing.T, s store.Store) {
	mustCreateWorkspace(t, s, "w1", "alice")
	all := auditAll(t, s, store.AuditFilter{})
	cut := all[2].OccurredAt.Time
	older := 0
	for _, e := range all {
		if e.OccurredAt.Before(cut) {
			older++
		}
	}
	n, err := s.PruneAuditEvents(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(older) || older == 0 {
		t.Fatalf("pruned %d events, want %d (> 0)", n, older)
	}
	left := auditAll(t, s, store.AuditFilter{})
	equal(t, "events left", left, all[:len(all)-older])
	if n, err := s.PruneAuditEvents(ctx, cut); err != nil || n != 0 {
		t.Fatalf("second prune: %d, %v; want 0", n, err)
	}
}
