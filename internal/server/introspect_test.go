package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

const (
	introClientID = "nmp-server"
	introSecret   = "intro-S3cret/+:value"
)

// introspectingIdP answers discovery and RFC 7662 introspection (HTTP
// Basic client authentication) for the tokens it knows.
type introspectingIdP struct {
	*httptest.Server
	mu     sync.Mutex
	active map[string]map[string]any
	status int
}

func newIntrospectingIdP(t *testing.T) *introspectingIdP {
	i := &introspectingIdP{active: map[string]map[string]any{}}
	i.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": i.URL, "jwks_uri": i.URL + "/jwks",
				"introspection_endpoint": i.URL + "/introspect"})
		case "/introspect":
			u, p, _ := r.BasicAuth()
			u, _ = url.QueryUnescape(u)
			p, _ = url.QueryUnescape(p)
			i.mu.Lock()
			status, answer := i.status, i.active[r.PostFormValue("token")]
			i.mu.Unlock()
			switch {
			case u != introClientID || p != introSecret:
				w.WriteHeader(http.StatusUnauthorized)
			case status != 0:
				w.WriteHeader(status)
			case answer == nil:
				_, _ = io.WriteString(w, `{"active":false}`)
			default:
				_ = json.NewEncoder(w).Encode(answer)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(i.Close)
	return i
}

func oidcWith(i *introspectingIdP, introspection bool) func(*config.Config) {
	return func(c *config.Config) {
		c.Auth.Enabled = true
		c.Auth.OIDC.Enabled = true
		c.Auth.OIDC.Issuer = i.URL
		c.Auth.OIDC.ClientID = "nmp-cli"
		if introspection {
			c.Auth.OIDC.Introspection.Enabled = true
			c.Auth.OIDC.Introspection.ClientID = introClientID
			s := introSecret
			c.Auth.OIDC.Introspection.ClientSecretValue = &s
		}
	}
}

func getBearer(t *testing.T, u, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestOpaqueTokensEndToEnd: with introspection, an active opaque token is
// a principal, an inactive one 401 (inactive_token), an IdP failure 503
// idp_unavailable; the secret and tokens never reach the logs.
func TestOpaqueTokensEndToEnd(t *testing.T) {
	i := newIntrospectingIdP(t)
	const good, bad = "opaque-good-0123456789", "opaque-bad-0123456789"
	i.active[good] = map[string]any{"active": true, "iss": i.URL, "sub": "u-alice", "email": "alice@example.com",
		"scope": "platform:read", "exp": time.Now().Add(time.Hour).Unix()}
	srv := servertest.Start(t, oidcWith(i, true))
	if status, body := getBearer(t, srv.URL+"/apis/auth/authenticate", good); status != 200 || !strings.Contains(body, "u-alice") {
		t.Fatalf("active: %d %s", status, body)
	}
	status, body := getBearer(t, srv.URL+"/v2/workspaces", bad)
	if status != 401 || !strings.Contains(body, `"invalid_token"`) || !strings.Contains(srv.Logs(), "detail=inactive_token") {
		t.Fatalf("inactive: %d %s", status, body)
	}
	i.mu.Lock()
	i.status = 500
	i.mu.Unlock()
	status, body = getBearer(t, srv.URL+"/v2/workspaces", "opaque-uncached-0123456789")
	if status != 503 || !strings.Contains(body, `"idp_unavailable"`) || !strings.Contains(srv.Logs(), "reason=idp_unavailable") {
		t.Fatalf("IdP failing: %d %s", status, body)
	}
	for _, leak := range []string{introSecret, good, bad, "opaque-uncached-0123456789"} {
		if strings.Contains(srv.Logs(), leak) {
			t.Fatalf("%q in the logs", leak)
		}
	}
}

// TestOpaqueTokenWithoutIntrospection: 401 whose body and log say the
// token is opaque and how to fix it.
func TestOpaqueTokenWithoutIntrospection(t *testing.T) {
	i := newIntrospectingIdP(t)
	srv := servertest.Start(t, oidcWith(i, false))
	status, body := getBearer(t, srv.URL+"/v2/workspaces", "opaque-0123456789")
	if status != 401 || !strings.Contains(body, `"invalid_token"`) || !strings.Contains(body, "opaque (not a JWT)") {
		t.Fatalf("%d %s", status, body)
	}
	if logs := srv.Logs(); !strings.Contains(logs, "detail=opaque_token") || !strings.Contains(logs, "enable auth.oidc.introspection") {
		t.Fatalf("logs:\n%s", logs)
	}
}
