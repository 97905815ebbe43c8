package authz_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/store"
)

// loadedEngine is the static policy with these bindings
// (principal, workspace, role) loaded.
func loadedEngine(t *testing.T, bindings ...[3]string) *authz.Engine {
	t.Helper()
	e := authztest.StaticEngine(t)
	var bs []store.RoleBinding
	for i, b := range bindings {
		bs = append(bs, store.RoleBinding{ID: fmt.Sprint(i), Principal: b[0], Workspace: b[1], Role: b[2], Revision: 1})
	}
	if err := e.Load(store.PolicyBindings{Revision: 1, Bindings: bs}, time.Now()); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestVisibleWorkspaces(t *testing.T) {
	e := loadedEngine(t,
		[3]string{"*", "default", "Editor"},
		[3]string{"*", "system", "Viewer"},
		[3]string{"alice", "ml-team", "Admin"},
		[3]string{"alice@example.com", "mail-team", "Viewer"},
		[3]string{"readers", "reports", "Viewer"},
		[3]string{"readers", "ml-team", "Viewer"},
		[3]string{"root@example.com", "system", "PlatformAdmin"},
		[3]string{"admins", "system", "PlatformAdmin"},
		[3]string{"bob", "gone", "NoSuchRole"}, // a role the policy does not define grants nothing
	)
	// Nine workspaces spread over one principal exercise the index's map form.
	var many []string
	for i := range 9 {
		ws := fmt.Sprintf("w%d", i)
		many = append(many, ws)
		if err := e.Apply(store.PolicyBindings{Revision: int64(2 + i), Bindings: []store.RoleBinding{
			{ID: "m" + ws, Principal: "carol", Workspace: ws, Role: "Viewer", Revision: int64(2 + i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		sub  authz.Subject
		want authz.Visible
	}{
		{"id and wildcard", authz.Subject{PrincipalID: "alice"}, vis("default", "ml-team", "system")},
		{"email counts", authz.Subject{PrincipalID: "alice", Email: "alice@example.com"}, vis("default", "mail-team", "ml-team", "system")},
		{"groups count, no duplicates", authz.Subject{PrincipalID: "x", Groups: []string{"readers", "alice"}}, vis("default", "ml-team", "reports", "system")},
		{"stranger sees the wildcard's", authz.Subject{PrincipalID: "nobody"}, vis("default", "system")},
		{"undefined role grants nothing", authz.Subject{PrincipalID: "bob"}, vis("default", "system")},
		{"many workspaces", authz.Subject{PrincipalID: "carol"}, vis(append([]string{"default", "system"}, many...)...)},
		{"platform admin by email", authz.Subject{PrincipalID: "u1", Email: "root@example.com"}, authz.Visible{All: true}},
		{"platform admin by group", authz.Subject{PrincipalID: "u2", Groups: []string{"admins"}}, authz.Visible{All: true}},
		{"service principal", authz.Subject{PrincipalID: "service:jobs"}, authz.Visible{All: true}},
		{"no ids: nothing, not even the wildcard's", authz.Subject{}, vis()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.VisibleWorkspaces(tc.sub); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}

	// A revocation takes the workspace away.
	if err := e.Apply(store.PolicyBindings{Revision: 100, Bindings: []store.RoleBinding{
		{ID: "mw3", Principal: "carol", Workspace: "w3", Role: "Viewer", Revision: 100, RevokedAt: &store.Timestamp{}}}}); err != nil {
		t.Fatal(err)
	}
	got := e.VisibleWorkspaces(authz.Subject{PrincipalID: "carol"})
	for _, ws := range got.Workspaces {
		if ws == "w3" {
			t.Fatalf("revoked workspace still visible: %v", got)
		}
	}
	if len(got.Workspaces) != 10 {
		t.Fatalf("after revocation: %v", got)
	}
}

func TestVisibleWorkspacesBeforeLoad(t *testing.T) {
	e := authztest.StaticEngine(t)
	if got := e.VisibleWorkspaces(authz.Subject{PrincipalID: "service:jobs"}); got.All || len(got.Workspaces) != 0 {
		t.Fatalf("unloaded engine shows %+v", got)
	}
}

// TestPlatformAdminIsHasRole: the engine's admin rule (some id holds
// PlatformAdmin in system) is has_role(system, PlatformAdmin) over the
// same ids, so a decision point may answer "is a PlatformAdmin?" with
// has_role.
func TestPlatformAdminIsHasRole(t *testing.T) {
	e := loadedEngine(t,
		[3]string{"root@example.com", "system", "PlatformAdmin"},
		[3]string{"admins", "system", "PlatformAdmin"},
		[3]string{"rooty", "default", "PlatformAdmin"}, // not in system: no effect
		[3]string{"*", "system", "Viewer"},
		[3]string{"alice", "system", "Admin"},
	)
	ids := []string{"", "root@example.com", "admins", "rooty", "alice", "*", "service:x", "nobody"}
	for _, id := range ids {
		for _, email := range ids {
			for _, group := range ids {
				var groups []string
				if group != "" {
					groups = []string{group}
				}
				admin := e.IsPlatformAdmin(id, email, groups)
				hasRole := e.HasRole(authz.RoleInput{PrincipalID: id, PrincipalEmail: email, PrincipalGroups: groups,
					Workspace: store.SystemWorkspace, Role: authz.RolePlatformAdmin})
				allow := e.Allow(authz.Input{PrincipalID: id, PrincipalEmail: email, PrincipalGroups: groups,
					Method: "DELETE", Path: "/apis/entities/v2/workspaces/x"})
				if admin != hasRole || admin != (allow.Reason == "platform_admin") {
					t.Fatalf("id %q email %q group %q: admin %v, has_role %v, allow %+v", id, email, group, admin, hasRole, allow)
				}
			}
		}
	}
}

func vis(ws ...string) authz.Visible {
	if ws == nil {
		ws = []string{}
	}
	return authz.Visible{Workspaces: ws}
}

// TestUnloadedEngineAnswers: every question to an engine that has not
// loaded bindings yet is answered (no panic), and answered no.
func TestUnloadedEngineAnswers(t *testing.T) {
	e := authztest.StaticEngine(t)
	if e.IsPlatformAdmin("root@example.com", "", nil) ||
		e.HasRole(authz.RoleInput{PrincipalID: "x", Workspace: "system", Role: authz.RolePlatformAdmin}) ||
		e.HasPermissions(authz.PermissionsInput{PrincipalID: "x", Workspace: "default", Permissions: []string{"projects.read"}}) ||
		e.Allow(authz.Input{PrincipalID: "x", Method: "GET", Path: "/apis/entities/v2/workspaces"}).Allowed {
		t.Fatal("an unloaded engine said yes")
	}
}
