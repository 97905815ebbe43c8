package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// idpDiscovery serves an IdP's discovery document and counts fetches.
func idpDiscovery(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		if err := json.NewEncoder(w).Encode(map[string]string{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token",
			"device_authorization_endpoint": srv.URL + "/device_authorization", "userinfo_endpoint": srv.URL + "/userinfo",
			"jwks_uri": srv.URL + "/jwks",
		}); err != nil {
			t.Error(err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestDiscovery(t *testing.T) {
	t.Run("auth disabled", func(t *testing.T) {
		srv := servertest.Start(t, nil)
		m := expect(t, srv, "GET", "/apis/auth/discovery", "", 200, "")
		if m["auth_enabled"] != false || m["oidc"] != nil {
			t.Fatal(m)
		}
	})
	t.Run("development mode has no oidc", func(t *testing.T) {
		srv := servertest.Start(t, devMode)
		m := expect(t, srv, "GET", "/apis/auth/discovery", "", 200, "")
		if m["auth_enabled"] != true || m["oidc"] != nil {
			t.Fatal(m)
		}
	})
	t.Run("oidc from the IdP, cached, stale copy when down", func(t *testing.T) {
		idp, hits := idpDiscovery(t)
		override := "https://override.example/token"
		srv := servertest.Start(t, func(c *config.Config) {
			production()(c)
			c.Auth.OIDC.Issuer = idp.URL
			c.Auth.OIDC.TokenEndpoint = &override
			c.Auth.OIDC.DefaultScopes = "openid platform:read"
		})
		m := expect(t, srv, "GET", "/apis/auth/discovery", "", 200, "")
		o := m["oidc"].(map[string]any)
		want := map[string]any{"issuer": idp.URL, "client_id": "nmp-cli", "audience": "nmp-cli", "default_scopes": "openid platform:read",
			"authorization_endpoint": idp.URL + "/authorize", "token_endpoint": override,
			"device_authorization_endpoint": idp.URL + "/device_authorization", "userinfo_endpoint": idp.URL + "/userinfo",
			"scope_prefix": nil, "workload_token_exchange_enabled": false, "workload_client_id": nil}
		for k, v := range want {
			if o[k] != v {
				t.Errorf("%s = %v, want %v", k, o[k], v)
			}
		}
		if m["auth_enabled"] != true {
			t.Fatal(m)
		}
		expect(t, srv, "GET", "/apis/auth/discovery", "", 200, "")
		if hits.Load() != 1 {
			t.Fatalf("discovery fetched %d times within the TTL", hits.Load())
		}
		idp.Close()
		// Within the TTL the cached copy answers anyway; the contract that
		// matters is that an unreachable IdP never breaks discovery.
		m = expect(t, srv, "GET", "/apis/auth/discovery", "", 200, "")
		if m["oidc"].(map[string]any)["authorization_endpoint"] != idp.URL+"/authorize" {
			t.Fatal(m)
		}
	})
	t.Run("IdP down without a copy gives null endpoints", func(t *testing.T) {
		srv := servertest.Start(t, production())
		m := expect(t, srv, "GET", "/apis/auth/discovery", "", 200, "")
		o := m["oidc"].(map[string]any)
		if o["token_endpoint"] != nil || o["issuer"] != "http://127.0.0.1:1/issuer" {
			t.Fatal(o)
		}
	})
	t.Run("audience: auth.oidc.audience when set", func(t *testing.T) {
		aud := "api://nmp"
		srv := servertest.Start(t, func(c *config.Config) {
			production()(c)
			c.Auth.OIDC.Audience = &aud
		})
		m := expect(t, srv, "GET", "/apis/auth/discovery", "", 200, "")
		o := m["oidc"].(map[string]any)
		if o["audience"] != aud || o["client_id"] != "nmp-cli" {
			t.Fatal(o)
		}
	})
	t.Run("jwks", func(t *testing.T) {
		srv := servertest.Start(t, nil)
		status, h, body := call(t, "GET", srv.URL+"/apis/auth/jwks", "")
		if status != 200 || h.Get("Cache-Control") != "public, max-age=300" || string(body) != "{\"keys\":[]}\n" {
			t.Fatalf("%d %v %s", status, h, body)
		}
	})
}
