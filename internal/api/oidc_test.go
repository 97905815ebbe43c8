package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// withOIDC is production mode against a test issuer.
func withOIDC(iss *oidctest.Issuer, more ...func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		production()(c)
		c.Auth.OIDC.Issuer = iss.URL
		for _, m := range more {
			m(c)
		}
	}
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// TestBearerTokens: the seed's validation commands and RBAC with real
// RS256 tokens; refused tokens are 401 invalid_token, logged once with a
// reason and never with the token.
func TestBearerTokens(t *testing.T) {
	iss := oidctest.New(t)
	srv := servertest.Start(t, withOIDC(iss))
	// Deployment validation 1 and 2.
	m := expect(t, srv, "GET", "/apis/auth/discovery", "", 200, "")
	if m["auth_enabled"] != true {
		t.Fatal(m)
	}
	if status, _, _ := call(t, "GET", srv.URL+"/v2/workspaces", ""); status != 401 {
		t.Fatalf("unauthenticated: %d", status)
	}

	alice := iss.Mint(t, oidctest.Claims{Subject: "u-alice", Email: "alice@example.com", Scope: "openid platform:read platform:write"})
	got, m := callJSON(t, "POST", srv.URL+"/v2/workspaces", `{"name": "ml-team"}`, bearer(alice)...)
	if got != 201 || m["created_by"] != "u-alice" {
		t.Fatalf("create: %d %v", got, m)
	}
	got, m = callJSON(t, "GET", srv.URL+ws+"/ml-team/members", "", bearer(alice)...)
	if got != 200 || m["data"].([]any)[0].(map[string]any)["principal"] != "alice@example.com" {
		t.Fatalf("creator binding is keyed by email: %d %v", got, m)
	}
	readOnly := iss.Mint(t, oidctest.Claims{Subject: "u-alice", Email: "alice@example.com", Scope: "openid platform:read"})
	if got, _ := callJSON(t, "PUT", srv.URL+ws+"/ml-team", `{"description": "x"}`, bearer(readOnly)...); got != 403 {
		t.Fatalf("platform:read token wrote: %d", got)
	}
	bob := iss.Mint(t, oidctest.Claims{Subject: "u-bob", Email: "bob@example.com"})
	if got, _ := callJSON(t, "GET", srv.URL+ws+"/ml-team", "", bearer(bob)...); got != 403 {
		t.Fatalf("bob: %d", got)
	}

	expired := iss.Mint(t, oidctest.Claims{Subject: "u-alice", TTL: -time.Hour})
	wrongAud := iss.Mint(t, oidctest.Claims{Subject: "u-alice", Audience: "other-app"})
	tests := []struct {
		name, token, reason string
	}{
		{"expired", expired, "expired"},
		{"wrong audience", wrongAud, "audience_mismatch"},
		{"tampered", alice[:len(alice)-4] + "AAAA", "bad_signature"},
		{"opaque", "not-a-jwt", "opaque_token"},
		{"malformed JWT", "eyJhbGciOiJSUzI1NiJ9.e30.!!", "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := call(t, "GET", srv.URL+"/v2/workspaces", "", bearer(tc.token)...)
			if status != 401 || !strings.Contains(string(body), `"invalid_token"`) || h.Get("WWW-Authenticate") == "" {
				t.Fatalf("%d %s", status, body)
			}
			if !strings.Contains(srv.Logs(), "detail="+tc.reason) {
				t.Fatalf("no security log line with reason %s", tc.reason)
			}
		})
	}
	for _, tok := range []string{alice, bob, expired, wrongAud, readOnly} {
		if strings.Contains(srv.Logs(), tok) || strings.Contains(srv.Logs(), strings.Split(tok, ".")[2]) {
			t.Fatal("a token reached the logs")
		}
	}
	if !strings.Contains(metricsText(t, srv), `nmp_token_validation_failures_total{reason="expired"} 1`) {
		t.Fatal("token failures are not counted")
	}
}

func metricsText(t *testing.T, srv *servertest.Server) string {
	_, _, b := call(t, "GET", srv.URL+"/metrics", "")
	return string(b)
}

// TestAuthenticateCallout drives /apis/auth/authenticate as a gateway would.
func TestAuthenticateCallout(t *testing.T) {
	iss := oidctest.New(t)
	tok := iss.Mint(t, oidctest.Claims{Subject: "u-alice", Email: "alice@example.com", Groups: []string{"ml", "ops"},
		Scope: "openid platform:read", ID: "jti-1"})
	t.Run("authenticate only", func(t *testing.T) {
		srv := servertest.Start(t, withOIDC(iss))
		status, h, body := call(t, "GET", srv.URL+"/apis/auth/authenticate/anything/here", "", bearer(tok)...)
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		if status != 200 || h.Get("X-NMP-Principal-Id") != "u-alice" || h.Get("X-NMP-Principal-Email") != "alice@example.com" ||
			h.Get("X-NMP-Principal-Groups") != "ml,ops" || h.Get("X-NMP-Scopes") != "openid platform:read" ||
			h.Get("X-NMP-Authorized") != "" || h.Get("Cache-Control") != "no-store" {
			t.Fatalf("%d %v %s", status, h, body)
		}
		if m["principal"] != "u-alice" || m["token_kind"] != "oidc_access_token" || m["jti"] != "jti-1" {
			t.Fatalf("body %v", m)
		}
		for _, method := range []string{"POST", "DELETE", "PATCH"} {
			if status, _, _ := call(t, method, srv.URL+"/apis/auth/authenticate", "", bearer(tok)...); status != 200 {
				t.Fatalf("%s: %d", method, status)
			}
		}
		tests := []struct {
			name   string
			header []string
			status int
			code   string
		}{
			{"missing token", nil, 401, "missing_token"},
			{"invalid token", bearer("x.y.z"), 401, "invalid_token"},
			{"identity headers from anyone", append(bearer(tok), "X-NMP-Principal-Id", "root"), 401, "untrusted_identity_headers"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, m := callJSON(t, "GET", srv.URL+"/apis/auth/authenticate", "", tc.header...)
				if got != tc.status || m["code"] != tc.code {
					t.Fatalf("%d %v", got, m)
				}
			})
		}
	})
	t.Run("authenticate and authorize", func(t *testing.T) {
		srv := servertest.Start(t, withOIDC(iss, func(c *config.Config) { c.Auth.AuthenticateAuthorize = true }))
		tests := []struct {
			name       string
			path       string
			header     []string
			status     int
			authorized string
		}{
			{"suffix path allowed", "/apis/auth/authenticate/v2/workspaces/default", bearer(tok), 200, "true"},
			{"forwarded headers", "/apis/auth/authenticate", append(bearer(tok), "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/v2/workspaces?page=1"), 200, "true"},
			{"original headers", "/apis/auth/authenticate", append(bearer(tok), "X-Original-Method", "GET", "X-Original-URI", "/apis/entities/v2/workspaces/system"), 200, "true"},
			{"scope forbids the write", "/apis/auth/authenticate", append(bearer(tok), "X-Forwarded-Method", "POST", "X-Forwarded-Uri", "/v2/workspaces/default/projects"), 403, ""},
			{"missing original path", "/apis/auth/authenticate", bearer(tok), 400, ""},
			{"bypass path needs no token", "/apis/auth/authenticate/health/live", nil, 200, ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				status, h, body := call(t, "GET", srv.URL+tc.path, "", tc.header...)
				if status != tc.status || h.Get("X-NMP-Authorized") != tc.authorized {
					t.Fatalf("%d %v %s", status, h, body)
				}
			})
		}
	})
}

// TestRefusedTokenChallenge: a refused bearer token gets the RFC 6750
// challenge with a fixed description per reason, on API paths and in the
// gateway callout alike, and one security line with the safe facts.
func TestRefusedTokenChallenge(t *testing.T) {
	iss := oidctest.New(t)
	srv := servertest.Start(t, withOIDC(iss))
	idTok := iss.Mint(t, oidctest.Claims{Subject: "u-alice", Extra: map[string]any{"nonce": "n-1", "at_hash": "abc"}})
	expired := iss.Mint(t, oidctest.Claims{Subject: "u-alice", TTL: -time.Hour})
	tests := []struct {
		name, token, challenge string
	}{
		{"ID token", idTok, `Bearer error="invalid_token", error_description="ID tokens are not accepted; send an access token"`},
		{"expired", expired, `Bearer error="invalid_token", error_description="token expired"`},
		{"opaque", "not-a-jwt", `Bearer error="invalid_token", error_description="token is opaque (not a JWT); send a JWT access token or enable introspection"`},
		{"malformed JWT", "eyJhbGciOiJSUzI1NiJ9.!!!.x", `Bearer error="invalid_token", error_description="token is malformed"`},
	}
	for _, tc := range tests {
		for _, path := range []string{"/v2/workspaces", "/apis/auth/authenticate"} {
			t.Run(tc.name+" "+path, func(t *testing.T) {
				status, h, _ := call(t, "GET", srv.URL+path, "", bearer(tc.token)...)
				if status != 401 || h.Get("WWW-Authenticate") != tc.challenge {
					t.Fatalf("%d WWW-Authenticate %q, want %q", status, h.Get("WWW-Authenticate"), tc.challenge)
				}
			})
		}
	}
	status, h, _ := call(t, "GET", srv.URL+"/v2/workspaces", "", "Authorization", "Basic x")
	if status != 401 || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("malformed Authorization: %d %q", status, h.Get("WWW-Authenticate"))
	}
	if status, h, _ := call(t, "GET", srv.URL+"/v2/workspaces", ""); status != 401 || h.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("no credentials: %d %q", status, h.Get("WWW-Authenticate"))
	}
	logs := srv.Logs()
	var line string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "detail=id_token_not_accepted") {
			line = l
			break
		}
	}
	if line == "" || !strings.Contains(line, "token_iss="+iss.URL) || !strings.Contains(line, "token_kid=test-key-1") ||
		!strings.Contains(line, "token_typ=JWT") || !strings.Contains(line, "token_aud=[nmp-cli]") {
		t.Fatalf("security line without the safe facts: %q", line)
	}
	for _, tok := range []string{idTok, expired} {
		for _, part := range strings.Split(tok, ".") {
			if strings.Contains(logs, part) {
				t.Fatal("a token part reached the logs")
			}
		}
	}
}
