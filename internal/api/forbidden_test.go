package api_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// TestForbiddenSaysWhatIsMissing: a 403 keeps code "forbidden" and adds
// the decision's reason, the caller as the server identified it, and what
// the endpoint table asks (the permissions and the workspace the caller
// named, or the scopes); the body is exactly that, nothing about anyone's
// bindings. An anonymous deny stays the plain 401.
func TestForbiddenSaysWhatIsMissing(t *testing.T) {
	srv := servertest.Start(t, devMode)
	tests := []struct {
		name, who, method, path string
		extra                   []string
		want                    map[string]any
	}{
		{"permission missing", "bob@example.com", "POST", "/v2/workspaces/default/members", nil, map[string]any{
			"code": "forbidden", "reason": "permission_missing", "principal": "bob@example.com",
			"detail":               "Forbidden: requires permission workspaces.members.create in workspace 'default'",
			"required_permissions": []any{"workspaces.members.create"}, "workspace": "default"}},
		{"a workspace that does not exist is named as sent", "bob@example.com", "GET", ws + "/no%2Dsuch", nil, map[string]any{
			"code": "forbidden", "reason": "permission_missing", "principal": "bob@example.com",
			"detail":               "Forbidden: requires permission workspaces.read in workspace 'no-such'",
			"required_permissions": []any{"workspaces.read"}, "workspace": "no-such"}},
		{"no workspace in the path: system", "bob@example.com", "GET", "/apis/auth/v2/iam/role-bindings", nil, map[string]any{
			"code": "forbidden", "reason": "permission_missing", "principal": "bob@example.com",
			"detail":               "Forbidden: requires permission iam.list in workspace 'system'",
			"required_permissions": []any{"iam.list"}, "workspace": "system"}},
		{"scope missing", "u-carol", "POST", "/v2/workspaces/default/projects", []string{"X-NMP-Scopes", "openid platform:read",
			"X-NMP-Principal-Email", "carol@example.com"}, map[string]any{
			"code": "forbidden", "reason": "scope_missing", "principal": "u-carol", "email": "carol@example.com",
			"detail":          "Forbidden: the token's scopes include none of entities:write, platform:write",
			"required_scopes": []any{"entities:write", "platform:write"}}},
		{"entity store internals", "bob@example.com", "GET", "/apis/entities/v2/entities/e1", nil, map[string]any{
			"code": "forbidden", "reason": "entities_internal", "principal": "bob@example.com",
			"detail": "Forbidden: this entity-store path is open to service principals and PlatformAdmin only"}},
		{"service principals only", "bob@example.com", "POST", "/apis/auth/v2/authz/allow", nil, map[string]any{
			"code": "forbidden", "reason": "callers_restricted", "principal": "bob@example.com",
			"detail": "Forbidden: only service principals may call this endpoint"}},
		{"no endpoint rule", "bob@example.com", "GET", "/apis/other/v1/things", nil, map[string]any{
			"code": "forbidden", "reason": "unknown_endpoint", "principal": "bob@example.com",
			"detail": "Forbidden: no endpoint rule covers this method and path"}},
		{"anonymous: the plain 401", "", "POST", "/v2/workspaces/default/members", nil, map[string]any{
			"code": "unauthorized", "detail": "Unauthorized"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := tc.extra
			if tc.who != "" {
				hdr = append([]string{"X-NMP-Principal-Id", tc.who}, hdr...)
			}
			status, _, body := call(t, tc.method, srv.URL+tc.path, `{"principal": "x", "roles": ["Viewer"], "name": "p"}`, hdr...)
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%d %s", status, body)
			}
			wantStatus := 403
			if tc.who == "" {
				wantStatus = 401
			}
			if status != wantStatus || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%d %v\nwant %d %v", status, got, wantStatus, tc.want)
			}
		})
	}
}

// TestForbiddenCallout: the gateway callout's deny body for another
// request carries the same explanation (the callout contract keeps
// status 403 and code "forbidden").
func TestForbiddenCallout(t *testing.T) {
	iss := oidctest.New(t)
	srv := servertest.Start(t, withOIDC(iss, func(c *config.Config) { c.Auth.AuthenticateAuthorize = true }))
	tok := iss.Mint(t, oidctest.Claims{Subject: "u-bob", Email: "bob@example.com", Scope: "openid platform:read platform:write"})
	status, m := callJSON(t, "GET", srv.URL+"/apis/auth/authenticate", "",
		append(bearer(tok), "X-Forwarded-Method", "DELETE", "X-Forwarded-Uri", "/v2/workspaces/default?x=1")...)
	want := map[string]any{"code": "forbidden", "reason": "permission_missing", "principal": "u-bob", "email": "bob@example.com",
		"detail":               "Forbidden: requires permission workspaces.delete in workspace 'default'",
		"required_permissions": []any{"workspaces.delete"}, "workspace": "default"}
	if status != 403 || !reflect.DeepEqual(m, want) {
		t.Fatalf("%d %v\nwant %v", status, m, want)
	}
}
