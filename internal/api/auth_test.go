package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/testenv"
)

// as sends a request with development-mode identity headers.
func as(t *testing.T, srv *servertest.Server, who, method, path, body string, status int, code string, extra ...string) map[string]any {
	t.Helper()
	hdr := append([]string{"X-NMP-Principal-Id", who}, extra...)
	if who == "" {
		hdr = extra
	}
	got, m := callJSON(t, method, srv.URL+path, body, hdr...)
	if got != status || (code != "" && m["code"] != code) {
		t.Fatalf("%s %s %s as %q: %d %v, want %d %s", method, path, body, who, got, m, status, code)
	}
	return m
}

func devMode(c *config.Config) {
	c.Auth.Enabled = true
	admin := "root@example.com"
	c.Auth.AdminEmail = &admin
}

// TestRBAC drives the PDP through the HTTP pipeline with development-mode
// identity headers: the acceptance examples.
func TestRBAC(t *testing.T) {
	srv := servertest.Start(t, devMode)
	// Anonymous requests are 401 with a Bearer challenge.
	status, h, _ := call(t, "GET", srv.URL+"/v2/workspaces", "")
	if status != 401 || h.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("anonymous: %d %v", status, h)
	}
	// Bypass paths need no credentials.
	srv.WaitReady(t)
	for _, p := range []string{"/health/live", "/health/ready", "/status", "/cluster-info", "/metrics"} {
		if status, _, _ := call(t, "GET", srv.URL+p, ""); status != 200 {
			t.Fatalf("%s: %d", p, status)
		}
	}
	// alice creates ml-team (WorkspaceCreator via "*" in system) and becomes its Admin.
	as(t, srv, "alice@example.com", "POST", ws, `{"name": "ml-team"}`, 201, "")
	m := as(t, srv, "alice@example.com", "GET", ws+"/ml-team/members", "", 200, "")
	if d := m["data"].([]any); len(d) != 1 || d[0].(map[string]any)["roles"].([]any)[0] != "Admin" {
		t.Fatalf("creator binding: %v", m)
	}
	as(t, srv, "alice@example.com", "POST", ws+"/ml-team/members", `{"principal": "viewer@example.com", "roles": ["Viewer"]}`, 201, "")
	as(t, srv, "alice@example.com", "POST", ws+"/ml-team/members", `{"principal": "editor@example.com", "roles": ["Editor"]}`, 201, "")

	// A Viewer cannot create; an Editor can create projects but not manage members.
	as(t, srv, "viewer@example.com", "POST", ws+"/ml-team/projects", `{"name": "p1"}`, 403, "forbidden")
	as(t, srv, "viewer@example.com", "GET", ws+"/ml-team/projects", "", 200, "")
	as(t, srv, "editor@example.com", "POST", ws+"/ml-team/projects", `{"name": "p1"}`, 201, "")
	as(t, srv, "editor@example.com", "POST", ws+"/ml-team/members", `{"principal": "x"}`, 403, "forbidden")
	as(t, srv, "editor@example.com", "DELETE", ws+"/ml-team", "", 403, "forbidden")

	// An Admin of A has no access to B; a workspace the caller cannot see is 403, not 404.
	as(t, srv, "bob@example.com", "POST", ws, `{"name": "bobs"}`, 201, "")
	as(t, srv, "alice@example.com", "GET", ws+"/bobs", "", 403, "forbidden")
	as(t, srv, "alice@example.com", "GET", ws+"/bobs/members", "", 403, "forbidden")
	as(t, srv, "alice@example.com", "GET", ws+"/does-not-exist", "", 403, "forbidden")

	// Lists are filtered to what the caller can see, with exact totals.
	m = as(t, srv, "alice@example.com", "GET", ws+"?sort=name", "", 200, "")
	if got := names(m); got != "default,ml-team,system" || m["pagination"].(map[string]any)["total_results"] != float64(3) {
		t.Fatalf("alice sees %s %v", got, m["pagination"])
	}
	m = as(t, srv, "root@example.com", "GET", ws+"?sort=name", "", 200, "")
	if got := names(m); got != "bobs,default,ml-team,system" {
		t.Fatalf("PlatformAdmin sees %s", got)
	}

	// Removing a member takes effect on the very next request.
	as(t, srv, "editor@example.com", "GET", ws+"/ml-team", "", 200, "")
	as(t, srv, "alice@example.com", "DELETE", ws+"/ml-team/members/editor@example.com", "", 200, "")
	as(t, srv, "editor@example.com", "GET", ws+"/ml-team", "", 403, "forbidden")
	// ... and so does adding one.
	as(t, srv, "alice@example.com", "PUT", ws+"/ml-team/members/viewer@example.com", `{"roles": ["Admin"]}`, 200, "")
	as(t, srv, "viewer@example.com", "PUT", ws+"/ml-team", `{"description": "now admin"}`, 200, "")

	// Groups are principals.
	as(t, srv, "alice@example.com", "POST", ws+"/ml-team/members", `{"principal": "ml-readers", "roles": ["Viewer"]}`, 201, "")
	as(t, srv, "carol", "GET", ws+"/ml-team", "", 200, "", "X-NMP-Principal-Groups", "other, ml-readers")
	as(t, srv, "carol", "GET", ws+"/ml-team", "", 403, "forbidden")

	// Scopes: an Editor token with only platform:read cannot create.
	as(t, srv, "editor2", "POST", ws+"/default/projects", `{"name": "p2"}`, 403, "forbidden", "X-NMP-Scopes", "openid platform:read")
	as(t, srv, "editor2", "POST", ws+"/default/projects", `{"name": "p2"}`, 201, "", "X-NMP-Scopes", "openid platform:write")
	as(t, srv, "editor2", "POST", ws+"/default/projects", `{"name": "p3"}`, 201, "", "X-NMP-Scopes", "openid profile")
	as(t, srv, "editor2", "GET", ws+"/default", "", 400, "invalid_scope", "X-NMP-Scopes", "workspaces.read")

	// Service principals get ServiceSystem where they have no binding.
	as(t, srv, "service:jobs", "GET", "/apis/entities/v2/workspaces/-/entities/model", "", 200, "")
	as(t, srv, "alice@example.com", "GET", "/apis/entities/v2/workspaces/-/entities/model", "", 403, "forbidden")
}

func names(page map[string]any) string {
	var out []string
	for _, it := range page["data"].([]any) {
		out = append(out, it.(map[string]any)["name"].(string))
	}
	return strings.Join(out, ",")
}

func TestIdentityHeaderValidation(t *testing.T) {
	srv := servertest.Start(t, devMode)
	tests := []struct {
		name   string
		header []string
		code   string
	}{
		{"bad principal id", []string{"X-NMP-Principal-Id", "a b"}, "invalid_header"},
		{"long principal id", []string{"X-NMP-Principal-Id", strings.Repeat("a", 257)}, "invalid_header"},
		{"bad email", []string{"X-NMP-Principal-Id", "a", "X-NMP-Principal-Email", "not-an-email"}, "invalid_header"},
		{"bad group", []string{"X-NMP-Principal-Id", "a", "X-NMP-Principal-Groups", "ok, b@d group"}, "invalid_header"},
		{"too many groups", []string{"X-NMP-Principal-Id", "a", "X-NMP-Principal-Groups", strings.Repeat("g,", 101)}, "invalid_header"},
		{"permission scope", []string{"X-NMP-Principal-Id", "a", "X-NMP-Scopes", "platform:read iam.list"}, "invalid_scope"},
		{"on-behalf-of needs a service", []string{"X-NMP-Principal-Id", "alice", "X-NMP-Principal-On-Behalf-Of", "bob"}, "invalid_header"},
		{"on-behalf-of bad json", []string{"X-NMP-Principal-Id", "service:x", "X-NMP-Principal-On-Behalf-Of", `{"id": }`}, "invalid_header"},
		{"on-behalf-of a service", []string{"X-NMP-Principal-Id", "service:x", "X-NMP-Principal-On-Behalf-Of", "service:y"}, "invalid_header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, m := callJSON(t, "GET", srv.URL+ws+"/default", "", tc.header...)
			if got != 400 || m["code"] != tc.code {
				t.Fatalf("%d %v", got, m)
			}
		})
	}
	// A repeated identity header is refused.
	req, _ := http.NewRequest("GET", srv.URL+ws+"/default", nil)
	req.Header.Add("X-NMP-Principal-Id", "a")
	req.Header.Add("X-NMP-Principal-Id", "b")
	resp, err := servertest.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, resp.Body)
	if resp.StatusCode != 400 {
		t.Fatalf("repeated header: %d", resp.StatusCode)
	}
	// On behalf of: the creator binding goes to the user, not the service.
	as(t, srv, "service:studio", "POST", ws, `{"name": "obo"}`, 201, "",
		"X-NMP-Principal-On-Behalf-Of", `{"id": "u1", "email": "u1@example.com"}`)
	m := as(t, srv, "root@example.com", "GET", ws+"/obo/members", "", 200, "")
	if d := m["data"].([]any); len(d) != 1 || d[0].(map[string]any)["principal"] != "u1@example.com" {
		t.Fatalf("on-behalf-of creator: %v", m)
	}
	// A pure service caller gets no Admin binding.
	as(t, srv, "service:jobs", "POST", ws, `{"name": "svc-made"}`, 201, "")
	m = as(t, srv, "root@example.com", "GET", ws+"/svc-made/members", "", 200, "")
	if d := m["data"].([]any); len(d) != 0 {
		t.Fatalf("service creator got a binding: %v", m)
	}
}

// production is auth with OIDC on: identity headers only from trusted proxies.
func production(trusted ...string) func(*config.Config) {
	return func(c *config.Config) {
		devMode(c)
		c.Auth.OIDC.Enabled = true
		c.Auth.OIDC.Issuer = "http://127.0.0.1:1/issuer"
		c.Auth.OIDC.ClientID = "nmp-cli"
		c.Auth.TrustedProxies = trusted
	}
}

func TestTrustedProxies(t *testing.T) {
	t.Run("untrusted peer", func(t *testing.T) {
		srv := servertest.Start(t, production("10.0.5.0/24"))
		for _, path := range []string{ws, "/health/live"} {
			got, m := callJSON(t, "GET", srv.URL+path, "", "X-NMP-Principal-Id", "root@example.com")
			if got != 401 || m["code"] != "untrusted_identity_headers" {
				t.Fatalf("%s: %d %v", path, got, m)
			}
		}
		// Any identity header counts, even without a principal id.
		got, m := callJSON(t, "GET", srv.URL+ws, "", "X-NMP-Authorized", "true")
		if got != 401 || m["code"] != "untrusted_identity_headers" {
			t.Fatalf("authorized header: %d %v", got, m)
		}
		// Garbage bearer tokens and other schemes are refused.
		got, m = callJSON(t, "GET", srv.URL+ws, "", "Authorization", "Bearer abc.def.ghi")
		if got != 401 || m["code"] != "invalid_token" {
			t.Fatalf("bearer: %d %v", got, m)
		}
		got, m = callJSON(t, "GET", srv.URL+ws, "", "Authorization", "Basic Zm9vOmJhcg==")
		if got != 401 || m["code"] != "invalid_token" {
			t.Fatalf("basic: %d %v", got, m)
		}
		got, _ = callJSON(t, "GET", srv.URL+ws, "")
		if got != 401 {
			t.Fatalf("anonymous: %d", got)
		}
	})
	t.Run("trusted peer", func(t *testing.T) {
		srv := servertest.Start(t, production("127.0.0.1"))
		as(t, srv, "viewer", "GET", ws+"/default", "", 200, "")
		as(t, srv, "nobody", "DELETE", ws+"/system", "", 403, "forbidden")
		// X-NMP-Authorized from a trusted gateway skips the PDP call:
		// the handler runs and answers 409 for the protected workspace.
		as(t, srv, "nobody", "DELETE", ws+"/system", "", 409, "protected_workspace", "X-NMP-Authorized", "TRUE")
	})
	t.Run("authorized header ignored from clients in development mode", func(t *testing.T) {
		srv := servertest.Start(t, devMode)
		as(t, srv, "nobody", "DELETE", ws+"/system", "", 403, "forbidden", "X-NMP-Authorized", "true")
		// Without OIDC or unsigned tokens there is no bearer validator.
		got, m := callJSON(t, "GET", srv.URL+ws, "", "Authorization", "Bearer abc.def.ghi")
		if got != 401 || m["code"] != "bearer_not_configured" {
			t.Fatalf("bearer: %d %v", got, m)
		}
	})
}

// TestSecurityLogLines: every refusal of the pipeline and the callout
// writes exactly one security log line with its reason, and no
// credential reaches the logs.
func TestSecurityLogLines(t *testing.T) {
	const token = "c2VjcmV0LXRva2Vu.c2VjcmV0LXBheWxvYWQ.c2VjcmV0LXNpZw" // never to be logged
	prod := servertest.Start(t, production("10.0.5.0/24"))
	dev := servertest.Start(t, devMode)
	tests := []struct {
		name   string
		srv    *servertest.Server
		method string
		path   string
		header []string
		status int
		reason string
	}{
		{"untrusted identity headers", prod, "GET", ws, []string{"X-NMP-Principal-Id", "root@example.com"}, 401, "untrusted_identity_headers"},
		{"untrusted identity headers on a bypass path", prod, "GET", "/health/live", []string{"X-NMP-Scopes", "x"}, 401, "untrusted_identity_headers"},
		{"invalid token", prod, "GET", ws, []string{"Authorization", "Bearer " + token}, 401, "invalid_token"},
		{"other scheme", prod, "GET", ws, []string{"Authorization", "Basic " + token}, 401, "invalid_token"},
		{"anonymous denied", prod, "GET", ws, nil, 401, "authz_denied"},
		{"callout with identity headers", prod, "GET", "/apis/auth/authenticate", []string{"Authorization", "Bearer " + token, "X-NMP-Principal-Id", "x"}, 401, "untrusted_identity_headers"},
		{"callout without a token", prod, "GET", "/apis/auth/authenticate", nil, 401, "invalid_token"},
		{"callout with an invalid token", prod, "GET", "/apis/auth/authenticate", []string{"Authorization", "Bearer " + token}, 401, "invalid_token"},
		{"invalid header", dev, "GET", ws, []string{"X-NMP-Principal-Id", "a b"}, 400, "invalid_header"},
		{"permission-shaped scope", dev, "GET", ws, []string{"X-NMP-Principal-Id", "a", "X-NMP-Scopes", "iam.list"}, 400, "invalid_header"},
		{"bearer not configured", dev, "GET", ws, []string{"Authorization", "Bearer " + token}, 401, "invalid_token"},
		{"forbidden", dev, "DELETE", ws + "/system", []string{"X-NMP-Principal-Id", "nobody"}, 403, "authz_denied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := securityLines(tc.srv)
			status, _, body := call(t, tc.method, tc.srv.URL+tc.path, "", tc.header...)
			if status != tc.status {
				t.Fatalf("%d %s", status, body)
			}
			lines := securityLines(tc.srv)[len(before):]
			if len(lines) != 1 || !strings.Contains(lines[0], "reason="+tc.reason) {
				t.Fatalf("want one security line with reason %s, got %q", tc.reason, lines)
			}
		})
	}
	for _, srv := range []*servertest.Server{prod, dev} {
		for _, part := range strings.Split(token, ".") {
			if strings.Contains(srv.Logs(), part) {
				t.Fatal("a credential reached the logs")
			}
		}
	}
}

func securityLines(srv *servertest.Server) []string {
	var out []string
	for _, l := range strings.Split(srv.Logs(), "\n") {
		if strings.Contains(l, "event=security") {
			out = append(out, l)
		}
	}
	return out
}
