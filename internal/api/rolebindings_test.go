package api_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/server/servertest"
)

const rb = "/apis/auth/v2/iam/role-bindings"

const root = "root@example.com" // PlatformAdmin through auth.admin_email (devMode)

func rbName(principal, workspace, role string) string {
	sum := sha256.Sum256([]byte(principal + ":" + workspace + ":" + role))
	return "rb-" + hex.EncodeToString(sum[:])[:24]
}

// TestRoleBindingGrantTakesEffect: a PlatformAdmin granted through the API
// acts as one on the very next request, and stops on the next request
// after the revocation.
func TestRoleBindingGrantTakesEffect(t *testing.T) {
	srv := servertest.Start(t, devMode)
	as(t, srv, "alice@example.com", "POST", ws, `{"name": "ml-team"}`, 201, "")
	if got := names(as(t, srv, "bob@example.com", "GET", ws+"?sort=name", "", 200, "")); got != "default,system" {
		t.Fatalf("bob sees %s", got)
	}
	as(t, srv, "bob@example.com", "GET", rb, "", 403, "forbidden")

	status, h, _ := call(t, "POST", srv.URL+rb, `{"principal": "bob@example.com", "role": "PlatformAdmin"}`, "X-NMP-Principal-Id", root)
	if status != 201 || h.Get("X-NMP-Role-Propagation") != "complete" {
		t.Fatalf("grant: %d %q", status, h.Get("X-NMP-Role-Propagation"))
	}
	name := rbName("bob@example.com", "system", "PlatformAdmin")
	b := as(t, srv, root, "GET", rb+"/"+name, "", 200, "")
	if b["principal"] != "bob@example.com" || b["workspace"] != "system" || b["role"] != "PlatformAdmin" ||
		b["granted_by"] != root || b["revoked_at"] != nil || b["id"] == "" || b["granted_at"] == "" {
		t.Fatalf("binding %v", b)
	}
	// Next request: bob sees every workspace and may manage bindings.
	if got := names(as(t, srv, "bob@example.com", "GET", ws+"?sort=name", "", 200, "")); got != "default,ml-team,system" {
		t.Fatalf("bob as PlatformAdmin sees %s", got)
	}
	as(t, srv, "bob@example.com", "GET", rb, "", 200, "")
	as(t, srv, "bob@example.com", "DELETE", ws+"/ml-team", "", 200, "")

	// Revocation applies to the very next request too.
	del := as(t, srv, root, "DELETE", rb+"/"+name, "", 200, "")
	if del["id"] != b["id"] || del["deleted_at"] == nil || len(del) != 2 {
		t.Fatalf("delete %v", del)
	}
	as(t, srv, "bob@example.com", "GET", rb, "", 403, "forbidden")
	as(t, srv, "bob@example.com", "POST", ws, `{"name": "bobs"}`, 201, "") // still a WorkspaceCreator via "*"
	if got := names(as(t, srv, "bob@example.com", "GET", ws+"?sort=name", "", 200, "")); got != "bobs,default,system" {
		t.Fatalf("bob after revocation sees %s", got)
	}
	// The revoked binding is still readable; revoking again conflicts.
	if g := as(t, srv, root, "GET", rb+"/"+name, "", 200, ""); g["revoked_at"] == nil {
		t.Fatalf("revoked binding %v", g)
	}
	as(t, srv, root, "DELETE", rb+"/"+name, "", 409, "already_revoked")
}

// TestRoleBindingsAPI covers every status and code of the role-binding API.
func TestRoleBindingsAPI(t *testing.T) {
	srv := servertest.Start(t, devMode)
	as(t, srv, "alice@example.com", "POST", ws, `{"name": "ml-team"}`, 201, "")
	// carol is Admin in system: she passes the PDP (iam.* in system) but is
	// neither PlatformAdmin nor a service.
	as(t, srv, root, "POST", rb, `{"principal": "carol", "workspace": "system", "role": "Admin"}`, 201, "")

	tests := []struct {
		name, who, method, path, body string
		status                        int
		code                          string
	}{
		// Who may call.
		{"workspace admin list", "alice@example.com", "GET", rb, "", 403, "forbidden"},
		{"workspace admin create", "alice@example.com", "POST", rb, `{"principal": "x", "workspace": "ml-team", "role": "Viewer"}`, 403, "forbidden"},
		{"workspace admin get", "alice@example.com", "GET", rb + "/x", "", 403, "forbidden"},
		{"workspace admin delete", "alice@example.com", "DELETE", rb + "/x", "", 403, "forbidden"},
		{"anonymous", "", "GET", rb, "", 401, "unauthorized"},
		{"system admin list", "carol", "GET", rb, "", 403, "role_binding_admin_only"},
		{"system admin create", "carol", "POST", rb, `{"principal": "x", "role": "Viewer"}`, 403, "role_binding_admin_only"},
		{"system admin get", "carol", "GET", rb + "/x", "", 403, "role_binding_admin_only"},
		{"system admin delete", "carol", "DELETE", rb + "/x", "", 403, "role_binding_admin_only"},
		{"service list", "service:ops", "GET", rb, "", 200, ""},
		{"service create", "service:ops", "POST", rb, `{"principal": "svc-made", "workspace": "ml-team", "role": "Viewer"}`, 201, ""},
		{"platform admin", root, "GET", rb, "", 200, ""},

		// Create.
		{"create in workspace", root, "POST", rb, `{"principal": "dave@example.com", "workspace": "ml-team", "role": "Editor"}`, 201, ""},
		{"null workspace is system", root, "POST", rb, `{"principal": "ops-team", "workspace": null, "role": "WorkspaceCreator"}`, 201, ""},
		{"wildcard principal", root, "POST", rb, `{"principal": "*", "workspace": "ml-team", "role": "Viewer"}`, 201, ""},
		{"duplicate", root, "POST", rb, `{"principal": "dave@example.com", "workspace": "ml-team", "role": "Editor"}`, 409, "already_exists"},
		{"unknown workspace", root, "POST", rb, `{"principal": "x", "workspace": "nope", "role": "Viewer"}`, 404, "not_found"},
		{"unknown role", root, "POST", rb, `{"principal": "x", "role": "Owner"}`, 422, "unknown_role"},
		{"ServiceSystem", root, "POST", rb, `{"principal": "x", "role": "ServiceSystem"}`, 422, "role_not_assignable"},
		{"PlatformAdmin outside system", root, "POST", rb, `{"principal": "x", "workspace": "ml-team", "role": "PlatformAdmin"}`, 422, "role_not_assignable"},
		{"PlatformAdmin to everyone", root, "POST", rb, `{"principal": "*", "role": "PlatformAdmin"}`, 422, "role_not_assignable"},
		{"bad principal", root, "POST", rb, `{"principal": "a b", "role": "Viewer"}`, 422, "validation_error"},
		{"bad workspace", root, "POST", rb, `{"principal": "x", "workspace": "ML", "role": "Viewer"}`, 422, "validation_error"},
		{"missing role", root, "POST", rb, `{"principal": "x"}`, 422, "validation_error"},
		{"missing principal", root, "POST", rb, `{"role": "Viewer"}`, 422, "validation_error"},
		{"unknown field", root, "POST", rb, `{"principal": "x", "role": "Viewer", "roles": ["Admin"]}`, 422, "validation_error"},
		{"bad wait flag", root, "POST", rb + "?wait_role_propagation=maybe", `{"principal": "x", "role": "Viewer"}`, 422, "validation_error"},

		// Get and delete.
		{"get unknown", root, "GET", rb + "/rb-000000000000000000000000", "", 404, "not_found"},
		{"get seeded", root, "GET", rb + "/wildcard-default-editor", "", 200, ""},
		{"delete unknown", root, "DELETE", rb + "/rb-000000000000000000000000", "", 404, "not_found"},
		{"delete bad wait flag", root, "DELETE", rb + "/wildcard-default-editor?wait_role_propagation=2", "", 422, "validation_error"},

		// List parameters.
		{"bad sort", root, "GET", rb + "?sort=name", "", 400, "invalid_sort"},
		{"bad filter", root, "GET", rb + "?filter[name]=x", "", 400, "invalid_filter"},
		{"bad operator", root, "GET", rb + "?filter[is_active][$like]=t", "", 400, "invalid_filter"},
		{"bad page size", root, "GET", rb + "?page_size=1001", "", 422, "validation_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := as(t, srv, tc.who, tc.method, tc.path, tc.body, tc.status, tc.code)
			if tc.status >= 400 {
				if d, _ := m["detail"].(string); d == "" {
					t.Fatalf("error without detail: %v", m)
				}
			}
		})
	}

	t.Run("created binding", func(t *testing.T) {
		b := as(t, srv, root, "GET", rb+"/"+rbName("ops-team", "system", "WorkspaceCreator"), "", 200, "")
		if b["workspace"] != "system" || b["granted_by"] != root {
			t.Fatalf("%v", b)
		}
		b = as(t, srv, root, "GET", rb+"/"+rbName("svc-made", "ml-team", "Viewer"), "", 200, "")
		if b["granted_by"] != "service:ops" {
			t.Fatalf("%v", b)
		}
		// The wildcard binding works at once: anyone may read ml-team.
		as(t, srv, "someone", "GET", ws+"/ml-team", "", 200, "")
	})

	t.Run("list filters and sort", func(t *testing.T) {
		list := func(q string) []map[string]any {
			m := as(t, srv, root, "GET", rb+"?"+q, "", 200, "")
			var out []map[string]any
			for _, it := range m["data"].([]any) {
				out = append(out, it.(map[string]any))
			}
			return out
		}
		got := list("filter[workspace]=ml-team&sort=principal")
		var ps []string
		for _, b := range got {
			ps = append(ps, b["principal"].(string)+"/"+b["role"].(string))
		}
		if strings.Join(ps, ",") != "*/Viewer,alice@example.com/Admin,dave@example.com/Editor,svc-made/Viewer" {
			t.Fatalf("ml-team bindings: %v", ps)
		}
		if got := list("filter[role][$in]=PlatformAdmin&filter[is_active]=true"); len(got) != 1 || got[0]["principal"] != root {
			t.Fatalf("platform admins: %v", got)
		}
		if got := list("filter[granted_by]=service:ops"); len(got) != 1 {
			t.Fatalf("by service: %v", got)
		}
		if got := list("filter[principal][$like]=DAVE"); len(got) != 1 {
			t.Fatalf("like: %v", got)
		}
		if got := list("filter[granted_at][$gte]=2000-01-01T00:00:00Z&sort=-created_at&page_size=2"); len(got) != 2 {
			t.Fatalf("page: %v", got)
		}
		m := as(t, srv, root, "GET", rb+"?filter[is_active]=false", "", 200, "")
		if m["pagination"].(map[string]any)["total_results"] != float64(0) || m["sort"] != "-created_at" {
			t.Fatalf("no revoked yet: %v", m)
		}
		as(t, srv, root, "DELETE", rb+"/"+rbName("svc-made", "ml-team", "Viewer"), "", 200, "")
		if got := list("filter[is_active]=false&filter[revoked_at][$lte]=2999-01-01T00:00:00Z"); len(got) != 1 || got[0]["revoked_at"] == nil {
			t.Fatalf("revoked: %v", got)
		}
	})

	t.Run("last admin", func(t *testing.T) {
		alice := rbName("alice@example.com", "ml-team", "Admin")
		as(t, srv, root, "DELETE", rb+"/"+alice, "", 409, "last_admin")
		as(t, srv, "alice@example.com", "PUT", ws+"/ml-team", `{"description": "still admin"}`, 200, "")
		// With a second Admin (granted through the API) the first can go.
		as(t, srv, root, "POST", rb, `{"principal": "erin", "workspace": "ml-team", "role": "Admin"}`, 201, "")
		as(t, srv, root, "DELETE", rb+"/"+alice, "", 200, "")
		as(t, srv, "alice@example.com", "PUT", ws+"/ml-team", `{"description": "no longer"}`, 403, "forbidden")
		as(t, srv, root, "DELETE", rb+"/"+rbName("erin", "ml-team", "Admin"), "", 409, "last_admin")
	})

	t.Run("propagation header", func(t *testing.T) {
		status, h, _ := call(t, "POST", srv.URL+rb+"?wait_role_propagation=false", `{"principal": "frank", "role": "Viewer"}`, "X-NMP-Principal-Id", root)
		if status != 201 || h.Get("X-NMP-Role-Propagation") != "skipped" {
			t.Fatalf("%d %q", status, h.Get("X-NMP-Role-Propagation"))
		}
		status, h, _ = call(t, "DELETE", srv.URL+rb+"/"+url.PathEscape(rbName("frank", "system", "Viewer")), "", "X-NMP-Principal-Id", root)
		if status != 200 || h.Get("X-NMP-Role-Propagation") != "complete" {
			t.Fatalf("%d %q", status, h.Get("X-NMP-Role-Propagation"))
		}
	})
}

// TestRoleBindingsAuthDisabled: without auth anyone manages bindings, and
// granted_by records "anonymous".
func TestRoleBindingsAuthDisabled(t *testing.T) {
	srv := servertest.Start(t, nil)
	b := expect(t, srv, "POST", rb, `{"principal": "bob", "role": "PlatformAdmin"}`, 201, "")
	if b["granted_by"] != "anonymous" || b["name"] != rbName("bob", "system", "PlatformAdmin") {
		t.Fatalf("%v", b)
	}
	expect(t, srv, "GET", rb+"/"+b["name"].(string), "", 200, "")
	if status, _, _ := call(t, "HEAD", srv.URL+rb, ""); status != 200 {
		t.Fatalf("HEAD: %d", status)
	}
	expect(t, srv, "DELETE", rb+"/"+b["name"].(string), "", 200, "")
}
