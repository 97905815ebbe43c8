package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// authConfig is a config whose current context "dev" points at baseURL
// with the given user fields.
func authConfig(baseURL, token, refreshToken, scope string) string {
	return fmt.Sprintf(`current_context: dev
clusters:
  - {name: dev-cluster, base_url: %q}
users:
  - {name: dev-user, type: oauth, token: %q, refresh_token: %q, scope: %q}
contexts:
  - {name: dev, cluster: dev-cluster, user: dev-user, workspace: ml-team}
`, baseURL, token, refreshToken, scope)
}

func expiringJWT(left time.Duration) string {
	now := time.Now()
	return testJWT(map[string]any{"sub": "alice", "email": "alice@example.com", "iat": now.Add(-time.Hour).Unix(), "exp": now.Add(left).Unix()})
}

// TestAuthCommandsExitCodes covers status, token, refresh, logout and the
// automatic refresh of server-calling commands.
func TestAuthCommandsExitCodes(t *testing.T) {
	const (
		oldRT    = "old-refresh-token-77d1"
		newRT    = "new-refresh-token-0c3a"
		envTok   = "env-token-5a1f9d2c"
		opaque   = "opaque-token-3b8e0f1a"
		scope    = "openid offline_access platform:read"
		newToken = "new-access-token-e4c2"
	)
	refreshOK := func(w http.ResponseWriter, form url.Values) {
		jsonReply(w, 200, map[string]any{"access_token": newToken, "refresh_token": newRT, "token_type": "Bearer"})
	}
	tests := []struct {
		name      string
		args      []string
		token, rt string
		noConfig  bool
		env       map[string]string
		idp       func(w http.ResponseWriter, form url.Values)
		noOIDC    bool
		// audience is announced by the discovery; refused: the server
		// refuses every token (self-check 401).
		audience string
		refused  bool
		wantCode int
		wantOut  string
		wantErr  string
		// wantToken, wantRT: the saved credentials afterwards.
		wantToken, wantRT string
		// wantRefresh: one refresh request reached the IdP (else none).
		wantRefresh bool
	}{
		{name: "status: not logged in", args: []string{"auth", "status"}, noConfig: true, wantCode: 1, wantErr: "not logged in", wantOut: "none (not logged in)"},
		{name: "status: NMP_ACCESS_TOKEN wins", args: []string{"auth", "status"}, token: expiringJWT(time.Hour),
			env: map[string]string{"NMP_ACCESS_TOKEN": envTok}, wantCode: 0, wantOut: "NMP_ACCESS_TOKEN"},
		{name: "status: expired, no refresh token", args: []string{"auth", "status"}, token: expiringJWT(-time.Minute),
			wantCode: 1, wantErr: "expired", wantOut: "expired 1m"},
		{name: "status: expired, refresh token", args: []string{"auth", "status"}, token: expiringJWT(-time.Minute), rt: oldRT,
			wantCode: 0, wantOut: "Refresh token:       yes"},
		{name: "status: opaque", args: []string{"auth", "status"}, token: opaque, wantCode: 0, wantOut: "opaque"},
		{name: "token: none", args: []string{"auth", "token"}, noConfig: true, wantCode: 1, wantErr: "not logged in"},
		{name: "token: NMP_ACCESS_TOKEN first", args: []string{"auth", "token"}, token: opaque,
			env: map[string]string{"NMP_ACCESS_TOKEN": envTok}, wantCode: 0, wantOut: envTok + "\n"},
		{name: "token --decode: opaque", args: []string{"auth", "token", "--decode"}, token: opaque, wantCode: 1, wantErr: "opaque"},
		{name: "token --decode", args: []string{"auth", "token", "--decode"}, token: expiringJWT(time.Hour), wantCode: 0, wantOut: `"email": "alice@example.com"`},
		{name: "token: refreshed first", args: []string{"auth", "token"}, token: expiringJWT(time.Minute), rt: oldRT, idp: refreshOK,
			wantCode: 0, wantOut: newToken + "\n", wantToken: newToken, wantRT: newRT, wantRefresh: true},
		{name: "token: --no-auto-refresh", args: []string{"auth", "token", "--no-auto-refresh"}, token: opaque, rt: oldRT, idp: refreshOK,
			wantCode: 0, wantOut: opaque + "\n"},
		{name: "refresh: not logged in", args: []string{"auth", "refresh"}, noConfig: true, wantCode: 1, wantErr: "not logged in"},
		{name: "refresh: no refresh token", args: []string{"auth", "refresh"}, token: expiringJWT(time.Hour), wantCode: 1, wantErr: "no refresh token"},
		{name: "refresh: forced", args: []string{"auth", "refresh"}, token: expiringJWT(time.Hour), rt: oldRT, idp: refreshOK,
			wantCode: 0, wantErr: "Token refreshed (context dev)", wantToken: newToken, wantRT: newRT, wantRefresh: true},
		{name: "refresh: no new refresh token keeps the old one", args: []string{"auth", "refresh"}, token: opaque, rt: oldRT,
			idp: func(w http.ResponseWriter, _ url.Values) {
				jsonReply(w, 200, map[string]any{"access_token": newToken, "token_type": "bearer"})
			}, wantCode: 0, wantToken: newToken, wantRT: oldRT, wantRefresh: true},
		{name: "refresh: invalid_grant", args: []string{"auth", "refresh"}, token: opaque, rt: oldRT, idp: oauthErr("invalid_grant", "refresh token "+oldRT+" revoked"),
			wantCode: 3, wantErr: `Error: session expired, run "nmp auth login"`, wantToken: opaque, wantRT: oldRT, wantRefresh: true},
		{name: "refresh: other IdP error, echo redacted", args: []string{"auth", "refresh"}, token: opaque, rt: oldRT, idp: oauthErr("server_error", "cannot use "+oldRT),
			wantCode: 3, wantErr: "refreshing the token failed: server_error: cannot use [REDACTED]", wantToken: opaque, wantRT: oldRT, wantRefresh: true},
		{name: "refresh: the announced audience is requested", args: []string{"auth", "refresh"}, token: expiringJWT(time.Hour), rt: oldRT, idp: refreshOK,
			audience: "api://nmp", wantCode: 0, wantToken: newToken, wantRT: newRT, wantRefresh: true},
		{name: "refresh: refused by the server, nothing saved", args: []string{"auth", "refresh"}, token: opaque, rt: oldRT, idp: refreshOK, refused: true,
			wantCode: 3, wantErr: "refuses the refreshed token, so nothing was saved: the identity provider issued an opaque access token", wantToken: opaque, wantRT: oldRT, wantRefresh: true},
		{name: "refresh: server without OIDC", args: []string{"auth", "refresh"}, token: opaque, rt: oldRT, noOIDC: true,
			wantCode: 3, wantErr: "no OIDC login configured"},
		{name: "logout: not logged in", args: []string{"auth", "logout"}, noConfig: true, wantCode: 0, wantErr: "Not logged in"},
		{name: "logout", args: []string{"auth", "logout"}, token: opaque, rt: oldRT, env: map[string]string{"NMP_ACCESS_TOKEN": envTok},
			wantCode: 0, wantErr: "NMP_ACCESS_TOKEN is still set", wantToken: "-", wantRT: "-"},
		{name: "auto refresh before a server call", args: []string{"workspaces", "list"}, token: expiringJWT(4 * time.Minute), rt: oldRT, idp: refreshOK,
			wantCode: 0, wantToken: newToken, wantRT: newRT, wantRefresh: true},
		{name: "auto refresh: session expired", args: []string{"members", "list"}, token: expiringJWT(time.Minute), rt: oldRT, idp: oauthErr("invalid_grant", ""),
			wantCode: 3, wantErr: "session expired", wantRefresh: true},
		{name: "auto refresh: not for a token good for 6 minutes", args: []string{"workspaces", "list"}, token: expiringJWT(6 * time.Minute), rt: oldRT, idp: refreshOK,
			wantCode: 0},
		{name: "auto refresh: never for an opaque token", args: []string{"workspaces", "list"}, token: opaque, rt: oldRT, idp: refreshOK, wantCode: 0},
		{name: "auto refresh: no refresh token, current token used", args: []string{"workspaces", "list"}, token: expiringJWT(time.Minute), wantCode: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idp := newFakeIdP(t)
			idp.token = tt.idp
			api := newFakeAPI(t)
			if tt.noOIDC {
				api.set("GET /apis/auth/discovery", 200, `{"auth_enabled":true,"oidc":null}`)
			} else {
				api.set("GET /apis/auth/discovery", 200, discoveryBody(idp.URL, func(o map[string]any) {
					if tt.audience != "" {
						o["audience"] = tt.audience
					}
				}))
			}
			if tt.refused {
				refuseTokens(api)
			}
			env := map[string]string{}
			var path string
			if !tt.noConfig {
				path = writeConfig(t, authConfig(api.URL, tt.token, tt.rt, scope))
				env["NMP_CONFIG_FILE"] = path
			} else {
				env["NMP_BASE_URL"] = api.URL
			}
			for k, v := range tt.env {
				env[k] = v
			}
			res := runCLI(t, env, "", tt.args...)
			if res.code != tt.wantCode || !strings.Contains(res.stdout, tt.wantOut) || !strings.Contains(res.stderr, tt.wantErr) {
				t.Fatalf("exit %d (want %d)\nstdout: %s(want %q)\nstderr: %s(want %q)", res.code, tt.wantCode, res.stdout, tt.wantOut, res.stderr, tt.wantErr)
			}
			var refreshes []url.Values
			for _, f := range idp.requests() {
				if f.Get("grant_type") == "refresh_token" {
					refreshes = append(refreshes, f)
				}
			}
			if (len(refreshes) == 1) != tt.wantRefresh || len(refreshes) > 1 {
				t.Errorf("%d refresh requests, want one: %v", len(refreshes), tt.wantRefresh)
			}
			for _, f := range refreshes {
				if f.Get("audience") != tt.audience || f.Has("resource") {
					t.Errorf("refresh request: audience %q, want %q", f["audience"], tt.audience)
				}
				if f.Get("client_id") != "nmp-cli" || f.Get("refresh_token") != oldRT || f.Get("scope") != scope || f.Has("client_secret") {
					t.Errorf("refresh request: client_id %q, scope %q, refresh token sent %v", f.Get("client_id"), f.Get("scope"), f.Get("refresh_token") == oldRT)
				}
			}
			for _, secret := range []string{oldRT, newRT} {
				if strings.Contains(res.stdout+res.stderr, secret) {
					t.Error("a refresh token was printed")
				}
			}
			if tt.args[1] != "token" && tt.wantOut != envTok+"\n" {
				for _, tok := range []string{tt.token, newToken, envTok} {
					if len(tok) > 12 && strings.Contains(res.stdout+res.stderr, tok) {
						t.Error("a token was printed by a command other than auth token")
					}
				}
			}
			if path != "" && (tt.wantToken != "" || tt.wantRT != "") {
				u := savedUserIn(t, path)
				got := func(k string) string {
					if v, ok := u[k].(string); ok {
						return v
					}
					return "-"
				}
				if tt.wantToken != "" && got("token") != tt.wantToken {
					t.Errorf("saved token %q, want %q", got("token"), tt.wantToken)
				}
				if tt.wantRT != "" && got("refresh_token") != tt.wantRT {
					t.Errorf("saved refresh token %q, want %q", got("refresh_token"), tt.wantRT)
				}
				if tt.args[1] == "logout" && (u["type"] != "no-auth" || u["scope"] != nil) {
					t.Errorf("after logout: %v", u)
				}
			}
			// The API request, if any, carries the token after refresh.
			for _, r := range api.requests() {
				if r.RequestURI == "/apis/auth/discovery" {
					if r.Header.Get("Authorization") != "" {
						t.Error("discovery was sent a token")
					}
					continue
				}
				want := tt.token
				if tt.wantToken != "" {
					want = tt.wantToken
				}
				if r.RequestURI == "/apis/auth/v2/self-check" {
					want = newToken // the check of the refreshed token
				}
				if got := r.Header.Get("Authorization"); got != "Bearer "+want {
					t.Errorf("Authorization %.30q…, want the token %.20q…", got, want)
				}
			}
		})
	}
}

func decodeUnsigned(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[2] != "" {
		t.Fatalf("not an unsigned JWT: %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// TestUnsignedLogin: --unsigned-token mints the documented claims, and an
// expiring unsigned token is re-minted with the same claims and lifetime
// before a server call.
func TestUnsignedLogin(t *testing.T) {
	api := newFakeAPI(t)
	api.set("GET /apis/auth/discovery", 200, `{"auth_enabled":true,"oidc":null}`)
	home := t.TempDir()
	env := map[string]string{"HOME": home, "NMP_BASE_URL": api.URL}
	run := func(args ...string) result {
		t.Helper()
		environ := []string{}
		for k, v := range env {
			environ = append(environ, k+"="+v)
		}
		var stdout, stderr strings.Builder
		code := Run(t.Context(), args, strings.NewReader(""), &stdout, &stderr, environ)
		return result{code, stdout.String(), stderr.String()}
	}
	path := filepath.Join(home, ".config", "nmp", "config.yaml")
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, h, c map[string]any)
	}{
		{"all claims", []string{"--email", "bob@example.com", "--principal-id", "u-42", "--group", "g1", "--group", "g2",
			"--scope", "platform:read  platform:write", "--audience", "nmp", "--issuer", "dev", "--expires-in", "120"},
			func(t *testing.T, h, c map[string]any) {
				if h["alg"] != "none" || h["typ"] != "JWT" || c["sub"] != "u-42" || c["email"] != "bob@example.com" ||
					fmt.Sprint(c["groups"]) != "[g1 g2]" || c["scope"] != "platform:read platform:write" || c["aud"] != "nmp" || c["iss"] != "dev" ||
					c["exp"].(float64)-c["iat"].(float64) != 120 {
					t.Errorf("header %v claims %v", h, c)
				}
			}},
		{"defaults", []string{"--email", "bob@example.com"}, func(t *testing.T, _, c map[string]any) {
			if c["sub"] != "bob@example.com" || fmt.Sprint(c["groups"]) != "[]" || c["exp"].(float64)-c["iat"].(float64) != 3600 {
				t.Errorf("claims %v", c)
			}
			for _, k := range []string{"scope", "aud", "iss"} {
				if _, ok := c[k]; ok {
					t.Errorf("unexpected %s", k)
				}
			}
		}},
		{"no exp", []string{"--email", "bob@example.com", "--no-exp"}, func(t *testing.T, _, c map[string]any) {
			if _, ok := c["exp"]; ok {
				t.Errorf("claims %v", c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(append([]string{"auth", "login", "--unsigned-token"}, tt.args...)...)
			if res.code != 0 || !strings.Contains(res.stderr, "Logged in as bob@example.com (context default)") {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			u := savedUserIn(t, path)
			h, c := decodeUnsigned(t, u["token"].(string))
			tt.check(t, h, c)
			if u["refresh_token"] != nil {
				t.Error("refresh token saved")
			}
		})
	}

	t.Run("re-minted before a server call with the same claims and lifetime", func(t *testing.T) {
		if res := run("auth", "login", "--unsigned-token", "--email", "bob@example.com", "--group", "g1", "--expires-in", "120"); res.code != 0 {
			t.Fatal(res.stderr)
		}
		// Make it expire in 20 s: issued 100 s ago.
		_, c := decodeUnsigned(t, savedUserIn(t, path)["token"].(string))
		c["iat"], c["exp"] = c["iat"].(float64)-100, c["exp"].(float64)-100
		b, _ := json.Marshal(c)
		old := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + base64.RawURLEncoding.EncodeToString(b) + "."
		data, _ := os.ReadFile(path)
		cur := savedUserIn(t, path)["token"].(string)
		if err := os.WriteFile(path, []byte(strings.Replace(string(data), cur, old, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		if res := run("workspaces", "list"); res.code != 0 {
			t.Fatal(res.stderr)
		}
		reqs := api.requests()
		sent := strings.TrimPrefix(reqs[len(reqs)-1].Header.Get("Authorization"), "Bearer ")
		if sent == old {
			t.Fatal("the expiring token was sent")
		}
		_, n := decodeUnsigned(t, sent)
		if n["exp"].(float64)-n["iat"].(float64) != 120 || n["iat"].(float64) < float64(time.Now().Unix()-5) ||
			n["email"] != "bob@example.com" || fmt.Sprint(n["groups"]) != "[g1]" {
			t.Errorf("re-minted claims %v", n)
		}
		if savedUserIn(t, path)["token"] != sent {
			t.Error("the re-minted token was not saved")
		}
		// A forced refresh re-mints too.
		if res := run("auth", "refresh"); res.code != 0 {
			t.Errorf("auth refresh: exit %d %s", res.code, res.stderr)
		}
	})
}

// TestCloudSyncedConfigWarning: writing the config file in a cloud-synced
// folder warns, on login and on any other write.
func TestCloudSyncedConfigWarning(t *testing.T) {
	api := newFakeAPI(t)
	api.set("GET /apis/auth/discovery", 200, `{"auth_enabled":true,"oidc":null}`)
	tests := []struct {
		name     string
		home     string
		wantWarn bool
	}{
		{"Dropbox", "Dropbox", true},
		{"OneDrive for business", "OneDrive - Contoso", true},
		{"iCloud Drive", "Library/Mobile Documents/com~apple~CloudDocs", true},
		{"Google Drive", "Google Drive/My Drive", true},
		{"local", "work", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), tt.home)
			env := map[string]string{"HOME": home, "NMP_BASE_URL": api.URL}
			for _, args := range [][]string{
				{"auth", "login", "--unsigned-token", "--email", "a@example.com"},
				{"config", "set", "--workspace", "ml-team"},
				{"auth", "logout"},
			} {
				environ := []string{}
				for k, v := range env {
					environ = append(environ, k+"="+v)
				}
				var stdout, stderr strings.Builder
				if code := Run(t.Context(), args, strings.NewReader(""), &stdout, &stderr, environ); code != 0 {
					t.Fatalf("%v: exit %d %s", args, code, stderr.String())
				}
				got := strings.Count(stderr.String(), "is in the cloud-synced folder")
				if (got == 1) != tt.wantWarn || got > 1 {
					t.Errorf("%v: %d warnings:\n%s", args, got, stderr.String())
				}
			}
		})
	}
}
