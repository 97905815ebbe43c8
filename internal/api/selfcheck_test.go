package api_test

import (
	"reflect"
	"testing"

	"github.com/nmp-project/nmp/internal/server/servertest"
)

const selfCheckPath = "/apis/auth/v2/self-check"

// TestSelfCheck asks "can I?" for several principals against a real server
// with development-mode identity headers.
func TestSelfCheck(t *testing.T) {
	srv := servertest.Start(t, devMode)
	as(t, srv, "alice@example.com", "POST", ws, `{"name": "ml-team"}`, 201, "")
	as(t, srv, "alice@example.com", "POST", ws+"/ml-team/members", `{"principal": "ml-readers", "roles": ["Viewer"]}`, 201, "")

	const bobAs = `"as": {"principal_id": "bob"}`
	tests := []struct {
		name    string
		who     string
		extra   []string // more request headers
		body    string
		status  int
		code    string
		allowed bool
		reason  string
	}{
		// The request form, for the caller's own principal and scopes.
		{"admin may update", "alice@example.com", nil, `{"method": "PUT", "path": "/v2/workspaces/ml-team"}`, 200, "", true, "permission_granted"},
		{"lower-case method", "alice@example.com", nil, `{"method": "delete", "path": "/apis/entities/v2/workspaces/ml-team"}`, 200, "", true, "permission_granted"},
		{"stranger may not read", "bob", nil, `{"method": "GET", "path": "/v2/workspaces/ml-team"}`, 200, "", false, "permission_missing"},
		{"group member may read", "carol", []string{"X-NMP-Principal-Groups", "ml-readers"}, `{"method": "GET", "path": "/v2/workspaces/ml-team"}`, 200, "", true, "permission_granted"},
		{"own scopes apply", "alice@example.com", []string{"X-NMP-Scopes", "openid platform:read"}, `{"method": "POST", "path": "/v2/workspaces/ml-team/projects"}`, 200, "", false, "scope_missing"},
		{"platform admin", "root@example.com", nil, `{"method": "DELETE", "path": "/v2/workspaces/ml-team"}`, 200, "", true, "platform_admin"},
		{"unknown endpoint", "bob", nil, `{"method": "GET", "path": "/nowhere"}`, 200, "", false, "unknown_endpoint"},
		{"invalid path", "bob", nil, `{"method": "GET", "path": "/a/../b"}`, 200, "", false, "invalid_path"},
		{"PDP entrypoint is not for users", "alice@example.com", nil, `{"method": "POST", "path": "/apis/auth/v2/authz/allow"}`, 200, "", false, "callers_restricted"},

		// The workspace form.
		{"admin holds permissions", "alice@example.com", nil, `{"workspace": "ml-team", "permissions": ["workspaces.update", "projects.create"]}`, 200, "", true, "permission_granted"},
		{"viewer lacks one", "carol", []string{"X-NMP-Principal-Groups", "ml-readers"}, `{"workspace": "ml-team", "permissions": ["projects.read", "projects.create"]}`, 200, "", false, "permission_missing"},
		{"stranger lacks", "bob", nil, `{"workspace": "ml-team", "permissions": ["projects.read"]}`, 200, "", false, "permission_missing"},
		{"everyone edits default", "bob", nil, `{"workspace": "default", "permissions": ["projects.create"]}`, 200, "", true, "permission_granted"},
		{"other workspace prefix", "alice@example.com", nil, `{"workspace": "default", "permissions": ["ml-team/workspaces.delete"]}`, 200, "", true, "permission_granted"},
		{"other workspace prefix missing", "bob", nil, `{"workspace": "default", "permissions": ["ml-team/workspaces.read"]}`, 200, "", false, "permission_missing"},
		{"platform admin form", "root@example.com", nil, `{"workspace": "ml-team", "permissions": ["entities.delete"]}`, 200, "", true, "platform_admin"},

		// "as": PlatformAdmin only.
		{"admin asks as bob", "root@example.com", nil, `{"method": "GET", "path": "/v2/workspaces/ml-team", ` + bobAs + `}`, 200, "", false, "permission_missing"},
		{"admin asks as alice", "root@example.com", nil, `{"workspace": "ml-team", "permissions": ["workspaces.delete"], "as": {"principal_id": "alice@example.com"}}`, 200, "", true, "permission_granted"},
		{"as with groups", "root@example.com", nil, `{"method": "GET", "path": "/v2/workspaces/ml-team", "as": {"principal_id": "x", "groups": ["ml-readers"]}}`, 200, "", true, "permission_granted"},
		{"as with email", "root@example.com", nil, `{"method": "PUT", "path": "/v2/workspaces/ml-team", "as": {"principal_id": "u-1", "email": "alice@example.com"}}`, 200, "", true, "permission_granted"},
		{"as with scopes", "root@example.com", nil, `{"method": "PUT", "path": "/v2/workspaces/ml-team", "as": {"principal_id": "alice@example.com", "scopes": ["platform:read"]}}`, 200, "", false, "scope_missing"},
		{"as a platform admin", "root@example.com", nil, `{"method": "PUT", "path": "/v2/workspaces/ml-team", "as": {"principal_id": "root@example.com"}}`, 200, "", true, "platform_admin"},
		{"workspace admin may not use as", "alice@example.com", nil, `{"method": "GET", "path": "/", ` + bobAs + `}`, 403, "forbidden", false, ""},
		{"service may not use as", "service:jobs", nil, `{"workspace": "default", "permissions": ["projects.read"], ` + bobAs + `}`, 403, "forbidden", false, ""},
		{"as permission-shaped scope", "root@example.com", nil, `{"method": "GET", "path": "/", "as": {"principal_id": "x", "scopes": ["iam.list"]}}`, 400, "invalid_scope", false, ""},
		{"as unknown field", "root@example.com", nil, `{"method": "GET", "path": "/", "as": {"principal_id": "x", "role": "Admin"}}`, 422, "validation_error", false, ""},
		{"as without principal", "root@example.com", nil, `{"method": "GET", "path": "/", "as": {"email": "a@b.c"}}`, 422, "validation_error", false, ""},
		{"as bad principal", "root@example.com", nil, `{"method": "GET", "path": "/", "as": {"principal_id": "*"}}`, 422, "validation_error", false, ""},
		{"as bad email", "root@example.com", nil, `{"method": "GET", "path": "/", "as": {"principal_id": "x", "email": "x"}}`, 422, "validation_error", false, ""},
		{"as bad group", "root@example.com", nil, `{"method": "GET", "path": "/", "as": {"principal_id": "x", "groups": ["a b"]}}`, 422, "validation_error", false, ""},
		{"as not an object", "root@example.com", nil, `{"method": "GET", "path": "/", "as": "bob"}`, 422, "validation_error", false, ""},

		// Body validation.
		{"both forms", "bob", nil, `{"method": "GET", "path": "/", "workspace": "default", "permissions": ["projects.read"]}`, 422, "validation_error", false, ""},
		{"neither form", "bob", nil, `{}`, 422, "validation_error", false, ""},
		{"only as", "root@example.com", nil, `{` + bobAs + `}`, 422, "validation_error", false, ""},
		{"method without path", "bob", nil, `{"method": "GET"}`, 422, "validation_error", false, ""},
		{"path without method", "bob", nil, `{"path": "/"}`, 422, "validation_error", false, ""},
		{"relative path", "bob", nil, `{"method": "GET", "path": "v2/workspaces"}`, 422, "validation_error", false, ""},
		{"bad method", "bob", nil, `{"method": "GET /x", "path": "/"}`, 422, "validation_error", false, ""},
		{"workspace without permissions", "bob", nil, `{"workspace": "default"}`, 422, "validation_error", false, ""},
		{"empty permissions", "bob", nil, `{"workspace": "default", "permissions": []}`, 422, "validation_error", false, ""},
		{"unknown permission", "bob", nil, `{"workspace": "default", "permissions": ["projects.reed"]}`, 422, "validation_error", false, ""},
		{"bad workspace", "bob", nil, `{"workspace": "Default", "permissions": ["projects.read"]}`, 422, "validation_error", false, ""},
		{"unknown field", "bob", nil, `{"method": "GET", "path": "/", "principal_id": "root@example.com"}`, 422, "validation_error", false, ""},
		{"wrong type", "bob", nil, `{"workspace": "default", "permissions": "projects.read"}`, 422, "validation_error", false, ""},
		{"not JSON", "bob", nil, `{"method": `, 400, "invalid_json", false, ""},

		// The middleware runs first: authentication is required.
		{"anonymous", "", nil, `{"method": "GET", "path": "/"}`, 401, "unauthorized", false, ""},
		{"anonymous with as", "", nil, `{"method": "GET", "path": "/", ` + bobAs + `}`, 401, "unauthorized", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := as(t, srv, tc.who, "POST", selfCheckPath, tc.body, tc.status, tc.code, tc.extra...)
			if tc.status != 200 {
				if d, _ := m["detail"].(string); d == "" {
					t.Fatalf("error without detail: %v", m)
				}
				return
			}
			want := map[string]any{"allowed": tc.allowed, "reason": tc.reason}
			if !reflect.DeepEqual(m, want) {
				t.Fatalf("got %v, want %v", m, want)
			}
		})
	}

	t.Run("forbidden detail", func(t *testing.T) {
		m := as(t, srv, "alice@example.com", "POST", selfCheckPath, `{"method": "GET", "path": "/", `+bobAs+`}`, 403, "forbidden")
		if m["detail"] != "Only a PlatformAdmin may ask on behalf of another principal" {
			t.Fatalf("%v", m)
		}
	})
	t.Run("errors name the field", func(t *testing.T) {
		m := as(t, srv, "root@example.com", "POST", selfCheckPath, `{"method": "GET", "path": "/", "as": {"principal_id": "x", "role": "Admin"}}`, 422, "validation_error")
		errs, _ := m["errors"].([]any)
		if m["detail"] != "as.role: unknown field" || len(errs) != 1 ||
			!reflect.DeepEqual(errs[0].(map[string]any)["loc"], []any{"body", "as", "role"}) {
			t.Fatalf("%v", m)
		}
	})
	t.Run("answers follow binding changes", func(t *testing.T) {
		body := `{"method": "GET", "path": "/v2/workspaces/ml-team"}`
		if m := as(t, srv, "dave", "POST", selfCheckPath, body, 200, ""); m["allowed"] != false {
			t.Fatalf("%v", m)
		}
		as(t, srv, "alice@example.com", "POST", ws+"/ml-team/members", `{"principal": "dave", "roles": ["Viewer"]}`, 201, "")
		if m := as(t, srv, "dave", "POST", selfCheckPath, body, 200, ""); m["allowed"] != true {
			t.Fatalf("%v", m)
		}
	})
}

// TestSelfCheckAuthDisabled: with auth disabled everything is allowed, for
// an anonymous caller as for anyone else; the body is still validated.
func TestSelfCheckAuthDisabled(t *testing.T) {
	srv := servertest.Start(t, nil)
	tests := []struct {
		name   string
		who    string
		body   string
		status int
		code   string
	}{
		{"anonymous request form", "", `{"method": "DELETE", "path": "/v2/workspaces/system"}`, 200, ""},
		{"anonymous workspace form", "", `{"workspace": "default", "permissions": ["workspaces.delete"]}`, 200, ""},
		{"identified caller", "bob", `{"method": "GET", "path": "/"}`, 200, ""},
		{"as is allowed", "", `{"method": "GET", "path": "/", "as": {"principal_id": "bob"}}`, 200, ""},
		{"bad body", "", `{"method": "GET"}`, 422, "validation_error"},
		{"bad as", "", `{"method": "GET", "path": "/", "as": {}}`, 422, "validation_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := as(t, srv, tc.who, "POST", selfCheckPath, tc.body, tc.status, tc.code)
			if tc.status == 200 && !reflect.DeepEqual(m, map[string]any{"allowed": true, "reason": "auth_disabled"}) {
				t.Fatalf("%v", m)
			}
		})
	}
}
