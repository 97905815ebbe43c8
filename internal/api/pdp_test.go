package api_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/nmp-project/nmp/internal/api"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/health"
	"github.com/nmp-project/nmp/internal/metrics"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

const pdpPath = "/apis/auth/v2/authz/"

// TestPDPEntrypoints drives POST /apis/auth/v2/authz/{entrypoint} against
// a real server: every entrypoint, both allow input forms, and the input
// errors.
func TestPDPEntrypoints(t *testing.T) {
	srv := servertest.Start(t, devMode)
	// alice creates ml-team and is its Admin; ml-readers (a group) may read it.
	as(t, srv, "alice@example.com", "POST", ws, `{"name": "ml-team"}`, 201, "")
	as(t, srv, "alice@example.com", "POST", ws+"/ml-team/members", `{"principal": "ml-readers", "roles": ["Viewer"]}`, 201, "")

	const gw = "service:gateway"
	tests := []struct {
		name       string
		entrypoint string
		body       string
		status     int
		code       string
		want       map[string]any // the result, compared in full
	}{
		// allow, direct form.
		{"allow granted", "allow", `{"input": {"principal_id": "alice@example.com", "method": "GET", "path": "/v2/workspaces/ml-team"}}`,
			200, "", allowResult(true, "permission_granted")},
		{"allow missing permission", "allow", `{"input": {"principal_id": "bob@example.com", "method": "DELETE", "path": "/apis/entities/v2/workspaces/ml-team"}}`,
			200, "", allowResult(false, "permission_missing")},
		{"allow via group", "allow", `{"input": {"principal_id": "carol", "principal_groups": ["ml-readers"], "method": "get", "path": "/apis/entities/v2/workspaces/ml-team/projects"}}`,
			200, "", allowResult(true, "permission_granted")},
		{"allow via email", "allow", `{"input": {"principal_id": "u-123", "principal_email": "alice@example.com", "method": "PUT", "path": "/apis/entities/v2/workspaces/ml-team"}}`,
			200, "", allowResult(true, "permission_granted")},
		{"allow anonymous", "allow", `{"input": {"method": "GET", "path": "/apis/entities/v2/workspaces"}}`,
			200, "", allowResult(false, "no_principal")},
		{"allow public", "allow", `{"input": {"method": "GET", "path": "/health/live"}}`,
			200, "", allowResult(true, "public_endpoint")},
		{"allow scope missing", "allow", `{"input": {"principal_id": "alice@example.com", "scopes": ["openid", "platform:read"], "method": "POST", "path": "/apis/entities/v2/workspaces/ml-team/projects"}}`,
			200, "", allowResult(false, "scope_missing")},
		{"allow invalid path is a deny", "allow", `{"input": {"principal_id": "alice@example.com", "method": "GET", "path": "/apis/entities/v2/workspaces/../x"}}`,
			200, "", allowResult(false, "invalid_path")},
		{"allow platform admin", "allow", `{"input": {"principal_id": "x", "principal_email": "root@example.com", "method": "DELETE", "path": "/apis/entities/v2/workspaces/ml-team"}}`,
			200, "", allowResult(true, "platform_admin")},
		{"allow ignores unknown input fields and nulls", "allow", `{"input": {"principal_id": "alice@example.com", "principal_email": null, "on_behalf_of_principal_id": "x", "extra": {"a": 1}, "method": "GET", "path": "/v2/workspaces/ml-team"}}`,
			200, "", allowResult(true, "permission_granted")},
		{"allow permission-shaped scope", "allow", `{"input": {"principal_id": "a", "scopes": ["workspaces.read"], "method": "GET", "path": "/"}}`,
			400, "invalid_scope", nil},
		{"allow without method", "allow", `{"input": {"principal_id": "a", "path": "/"}}`, 400, "invalid_input", nil},
		{"allow without path", "allow", `{"input": {"principal_id": "a", "method": "GET"}}`, 400, "invalid_input", nil},
		{"allow empty method", "allow", `{"input": {"method": "", "path": "/"}}`, 400, "invalid_input", nil},
		{"allow method not a string", "allow", `{"input": {"method": 1, "path": "/"}}`, 400, "invalid_input", nil},
		{"allow groups not a list", "allow", `{"input": {"principal_groups": "a,b", "method": "GET", "path": "/"}}`, 400, "invalid_input", nil},
		{"allow scopes not strings", "allow", `{"input": {"scopes": [1], "method": "GET", "path": "/"}}`, 400, "invalid_input", nil},

		// allow, Envoy form.
		{"envoy granted", "allow", envoy("GET", "/v2/workspaces/ml-team?x=1", `"x-nmp-principal-id": "alice@example.com"`),
			200, "", allowResult(true, "permission_granted")},
		{"envoy groups trimmed, empties dropped", "allow", envoy("GET", "/apis/entities/v2/workspaces/ml-team", `"x-nmp-principal-id": "carol", "x-nmp-principal-groups": " other, ,ml-readers ,"`),
			200, "", allowResult(true, "permission_granted")},
		{"envoy email", "allow", envoy("PUT", "/apis/entities/v2/workspaces/ml-team", `"x-nmp-principal-id": "u-1", "x-nmp-principal-email": "alice@example.com"`),
			200, "", allowResult(true, "permission_granted")},
		{"envoy scopes space-separated", "allow", envoy("POST", "/apis/entities/v2/workspaces/ml-team/projects", `"x-nmp-principal-id": "alice@example.com", "x-nmp-scopes": "openid  platform:read"`),
			200, "", allowResult(false, "scope_missing")},
		{"envoy write scope", "allow", envoy("POST", "/apis/entities/v2/workspaces/ml-team/projects", `"x-nmp-principal-id": "alice@example.com", "x-nmp-scopes": "openid platform:write"`),
			200, "", allowResult(true, "permission_granted")},
		{"envoy without principal", "allow", envoy("GET", "/apis/entities/v2/workspaces", `"x-nmp-principal-email": "alice@example.com"`),
			200, "", allowResult(false, "no_principal")},
		{"envoy other headers ignored", "allow", envoy("GET", "/apis/entities/v2/workspaces/ml-team", `"x-nmp-principal-id": "alice@example.com", ":authority": "x", "x-count": 3`),
			200, "", allowResult(true, "permission_granted")},
		{"envoy permission-shaped scope", "allow", envoy("GET", "/", `"x-nmp-principal-id": "a", "x-nmp-scopes": "openid iam.list"`), 400, "invalid_scope", nil},
		{"envoy bad email", "allow", envoy("GET", "/", `"x-nmp-principal-id": "a", "x-nmp-principal-email": "nope"`), 400, "invalid_input", nil},
		{"envoy bad principal", "allow", envoy("GET", "/", `"x-nmp-principal-id": "a b"`), 400, "invalid_input", nil},
		{"envoy header not a string", "allow", envoy("GET", "/", `"x-nmp-principal-id": ["a"]`), 400, "invalid_input", nil},
		{"envoy without method", "allow", `{"input": {"attributes": {"request": {"http": {"path": "/"}}}}}`, 400, "invalid_input", nil},
		{"envoy without http", "allow", `{"input": {"attributes": {"request": {}}}}`, 400, "invalid_input", nil},
		{"envoy attributes not an object", "allow", `{"input": {"attributes": "x", "method": "GET", "path": "/"}}`, 400, "invalid_input", nil},
		{"envoy headers not an object", "allow", `{"input": {"attributes": {"request": {"http": {"method": "GET", "path": "/", "headers": []}}}}}`, 400, "invalid_input", nil},

		// has_permissions.
		{"has_permissions granted", "has_permissions", `{"input": {"principal_id": "alice@example.com", "workspace": "ml-team", "permissions": ["workspaces.update", "projects.create"]}}`,
			200, "", map[string]any{"allowed": true}},
		{"has_permissions missing one", "has_permissions", `{"input": {"principal_id": "carol", "principal_groups": ["ml-readers"], "workspace": "ml-team", "permissions": ["projects.read", "projects.create"]}}`,
			200, "", map[string]any{"allowed": false}},
		{"has_permissions platform admin", "has_permissions", `{"input": {"principal_id": "root@example.com", "workspace": "ml-team", "permissions": ["entities.delete"]}}`,
			200, "", map[string]any{"allowed": true}},
		{"has_permissions on behalf of", "has_permissions", `{"input": {"principal_id": "service:studio", "on_behalf_of_principal_id": "alice@example.com", "workspace": "ml-team", "permissions": ["workspaces.update"]}}`,
			200, "", map[string]any{"allowed": true}},
		{"has_permissions on behalf of drops ServiceSystem", "has_permissions", `{"input": {"principal_id": "service:studio", "on_behalf_of_principal_id": "bob", "workspace": "ml-team", "permissions": ["entities.read"]}}`,
			200, "", map[string]any{"allowed": false}},
		{"has_permissions unknown permission", "has_permissions", `{"input": {"principal_id": "alice@example.com", "workspace": "ml-team", "permissions": ["nope.nope"]}}`,
			200, "", map[string]any{"allowed": false}},
		{"has_permissions without workspace", "has_permissions", `{"input": {"principal_id": "a", "permissions": ["projects.read"]}}`, 400, "invalid_input", nil},
		{"has_permissions without principal", "has_permissions", `{"input": {"workspace": "w", "permissions": ["projects.read"]}}`, 400, "invalid_input", nil},
		{"has_permissions without permissions", "has_permissions", `{"input": {"principal_id": "a", "workspace": "w"}}`, 400, "invalid_input", nil},
		{"has_permissions empty permissions", "has_permissions", `{"input": {"principal_id": "a", "workspace": "w", "permissions": []}}`, 400, "invalid_input", nil},
		{"has_permissions permissions not a list", "has_permissions", `{"input": {"principal_id": "a", "workspace": "w", "permissions": "projects.read"}}`, 400, "invalid_input", nil},

		// has_role.
		{"has_role direct", "has_role", `{"input": {"principal_id": "alice@example.com", "workspace": "ml-team", "role": "Admin"}}`,
			200, "", map[string]any{"has_role": true}},
		{"has_role no includes", "has_role", `{"input": {"principal_id": "alice@example.com", "workspace": "ml-team", "role": "Editor"}}`,
			200, "", map[string]any{"has_role": false}},
		{"has_role via group", "has_role", `{"input": {"principal_id": "carol", "principal_groups": ["ml-readers"], "workspace": "ml-team", "role": "Viewer"}}`,
			200, "", map[string]any{"has_role": true}},
		{"has_role no PlatformAdmin shortcut", "has_role", `{"input": {"principal_id": "root@example.com", "workspace": "ml-team", "role": "Admin"}}`,
			200, "", map[string]any{"has_role": false}},
		{"has_role no * fallback", "has_role", `{"input": {"principal_id": "bob", "workspace": "default", "role": "Editor"}}`,
			200, "", map[string]any{"has_role": false}},
		{"has_role of *", "has_role", `{"input": {"principal_id": "*", "workspace": "default", "role": "Editor"}}`,
			200, "", map[string]any{"has_role": true}},
		{"has_role without role", "has_role", `{"input": {"principal_id": "a", "workspace": "w"}}`, 400, "invalid_input", nil},
		{"has_role role not a string", "has_role", `{"input": {"principal_id": "a", "workspace": "w", "role": ["Admin"]}}`, 400, "invalid_input", nil},

		// The envelope.
		{"unknown top-level field", "allow", `{"input": {"method": "GET", "path": "/"}, "query": "x"}`, 400, "invalid_input", nil},
		{"input missing", "allow", `{}`, 400, "invalid_input", nil},
		{"input null", "allow", `{"input": null}`, 400, "invalid_input", nil},
		{"input not an object", "has_role", `{"input": ["a"]}`, 400, "invalid_input", nil},
		{"body not an object", "allow", `[{"input": {}}]`, 400, "invalid_input", nil},
		{"body empty", "allow", ``, 400, "invalid_input", nil},
		{"body not JSON", "allow", `{"input": `, 400, "invalid_json", nil},
		{"trailing data", "allow", `{"input": {"method": "GET", "path": "/health/live"}} x`, 400, "invalid_json", nil},

		// Bodies outside the one-pass reader's shape keep their meaning.
		{"duplicate member: the last counts", "allow", `{"input": {"method": 1, "method": "GET", "path": "/health/live"}}`,
			200, "", allowResult(true, "public_endpoint")},
		{"duplicate member: the last is empty", "allow", `{"input": {"method": "GET", "method": "", "path": "/health/live"}}`, 400, "invalid_input", nil},
		{"escaped strings", "allow", `{"input": {"method": "G\u0045T", "path": "\/health\/live"}}`,
			200, "", allowResult(true, "public_endpoint")},
		{"duplicate input: the last counts", "allow", `{"input": {"method": 1}, "input": {"method": "GET", "path": "/health/live"}}`,
			200, "", allowResult(true, "public_endpoint")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := as(t, srv, gw, "POST", pdpPath+tc.entrypoint, tc.body, tc.status, tc.code)
			if tc.status != 200 {
				if d, _ := m["detail"].(string); d == "" {
					t.Fatalf("error without detail: %v", m)
				}
				return
			}
			if !reflect.DeepEqual(m["result"], tc.want) || len(m) != 1 {
				t.Fatalf("got %v, want {result: %v}", m, tc.want)
			}
		})
	}

	t.Run("unknown entrypoint", func(t *testing.T) {
		m := as(t, srv, gw, "POST", pdpPath+"deny", `{"input": {}}`, 400, "invalid_entrypoint")
		if m["detail"] != "Invalid entrypoint: deny" ||
			!reflect.DeepEqual(m["valid_entrypoints"], []any{"allow", "has_permissions", "has_role"}) {
			t.Fatalf("%v", m)
		}
	})
	t.Run("the first wrong member in check order is named", func(t *testing.T) {
		m := as(t, srv, gw, "POST", pdpPath+"allow", `{"input": {"path": 1, "scopes": "x", "method": 2}}`, 400, "invalid_input")
		if d, _ := m["detail"].(string); d != "Invalid input: method must be a string" {
			t.Fatalf("%v", m)
		}
	})
	t.Run("missing field is named", func(t *testing.T) {
		m := as(t, srv, gw, "POST", pdpPath+"has_permissions", `{"input": {"principal_id": "a", "workspace": "w"}}`, 400, "invalid_input")
		if d, _ := m["detail"].(string); d != "Invalid input: permissions is required (a non-empty list of strings)" {
			t.Fatalf("%v", m)
		}
	})
}

// TestPDPCallers: the endpoint map admits only service principals and
// PlatformAdmin; a workspace Admin is refused.
func TestPDPCallers(t *testing.T) {
	srv := servertest.Start(t, devMode)
	as(t, srv, "alice@example.com", "POST", ws, `{"name": "ml-team"}`, 201, "")
	body := `{"input": {"principal_id": "alice@example.com", "workspace": "ml-team", "role": "Admin", "method": "GET", "path": "/"}}`
	tests := []struct {
		name   string
		who    string
		extra  []string
		status int
		code   string
	}{
		{"service principal", "service:gateway", nil, 200, ""},
		{"platform admin", "root@example.com", nil, 200, ""},
		{"platform admin by email", "u-root", []string{"X-NMP-Principal-Email", "root@example.com"}, 200, ""},
		{"workspace admin", "alice@example.com", nil, 403, "forbidden"},
		{"plain user", "bob", nil, 403, "forbidden"},
		{"anonymous", "", nil, 401, "unauthorized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, ep := range []string{"allow", "has_role", "nope"} {
				status, code := tc.status, tc.code
				if ep == "nope" && status == 200 {
					status, code = 400, "invalid_entrypoint"
				}
				as(t, srv, tc.who, "POST", pdpPath+ep, body, status, code, tc.extra...)
			}
		})
	}
}

// TestPDPUnavailable: before the first policy load the endpoint answers
// 503 (from the handler with auth disabled, from the middleware with auth
// enabled); with provider opa it is not served (404).
func TestPDPUnavailable(t *testing.T) {
	doc, err := authz.StaticDocument()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		enabled  bool
		provider string
		status   int
		code     string
	}{
		{"auth disabled", false, "embedded", 503, "pdp_unavailable"},
		{"auth enabled", true, "embedded", 503, "pdp_unavailable"},
		{"provider opa", false, "opa", 404, "pdp_not_embedded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			engine, err := authz.NewEngine(doc) // never loaded
			if err != nil {
				t.Fatal(err)
			}
			cfg := config.Default()
			cfg.Auth.Enabled = tc.enabled
			cfg.Auth.PolicyDecisionPointProvider = tc.provider
			h := api.New(api.Options{Config: cfg, Roles: authz.NewCatalog(doc), Health: health.New("policy"),
				Metrics: metrics.New(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				PDP: pdp.NewEmbedded(engine)})
			srv := httptest.NewServer(h)
			defer srv.Close()
			for _, ep := range []string{"allow", "has_permissions", "has_role"} {
				body := `{"input": {"principal_id": "a", "workspace": "w", "permissions": ["projects.read"], "role": "Admin", "method": "GET", "path": "/"}}`
				status, m := callJSON(t, "POST", srv.URL+pdpPath+ep, body, "X-NMP-Principal-Id", "service:gateway")
				if status != tc.status || m["code"] != tc.code {
					t.Fatalf("%s: %d %v", ep, status, m)
				}
			}
		})
	}
}

func allowResult(allowed bool, reason string) map[string]any {
	h := "false"
	if allowed {
		h = "true"
	}
	return map[string]any{"allowed": allowed, "reason": reason, "headers": map[string]any{"X-NMP-Authorized": h}}
}

// envoy builds an Envoy ext_authz style input with the given headers
// (JSON object members).
func envoy(method, path, headers string) string {
	m, _ := json.Marshal(method)
	p, _ := json.Marshal(path)
	return `{"input": {"attributes": {"request": {"http": {"method": ` + string(m) + `, "path": ` + string(p) +
		`, "headers": {` + headers + `}}}}, "parsed_path": ["ignored"]}}`
}
