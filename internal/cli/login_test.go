package cli

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"gopkg.in/yaml.v3"

	"github.com/nmp-project/nmp/internal/client"
	"github.com/nmp-project/nmp/internal/testenv"
)

const testPassword = "pw-Secret-8d1e4c"

// fakeIdP is a scriptable OAuth server: each endpoint answers with the
// function set for it (404 when none).
type fakeIdP struct {
	*httptest.Server
	mu     sync.Mutex
	token  func(w http.ResponseWriter, form url.Values)
	device func(w http.ResponseWriter, form url.Values)
	forms  []url.Values
}

func newFakeIdP(t *testing.T) *fakeIdP {
	f := &fakeIdP{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f.mu.Lock()
		f.forms = append(f.forms, r.PostForm)
		token, device := f.token, f.device
		f.mu.Unlock()
		switch {
		case r.URL.Path == "/token" && token != nil:
			token(w, r.PostForm)
		case r.URL.Path == "/device" && device != nil:
			device(w, r.PostForm)
		case r.URL.Path == "/.well-known/openid-configuration":
			jsonReply(w, 200, map[string]any{"issuer": f.URL, "token_endpoint": f.URL + "/token"})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeIdP) requests() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.forms)
}

func jsonReply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthErr(code, desc string) func(http.ResponseWriter, url.Values) {
	return func(w http.ResponseWriter, _ url.Values) {
		jsonReply(w, 400, map[string]string{"error": code, "error_description": desc})
	}
}

// testJWT is an unverifiable RS256-shaped JWT with the given claims.
func testJWT(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(b) + ".c2ln"
}

// grant answers a token request with a JWT for alice holding scope.
func grant(scope string, withResponseScope bool) func(http.ResponseWriter, url.Values) {
	return func(w http.ResponseWriter, _ url.Values) {
		resp := map[string]any{
			"access_token":  testJWT(map[string]any{"sub": "alice", "email": "alice@example.com", "scope": scope, "exp": time.Now().Add(time.Hour).Unix()}),
			"refresh_token": "rt-" + fmt.Sprint(time.Now().UnixNano()),
			"token_type":    "Bearer",
			"expires_in":    3600,
		}
		if withResponseScope {
			resp["scope"] = scope
		}
		jsonReply(w, 200, resp)
	}
}

// grantClaims answers a token request with a JWT for alice with the
// given claims added (or replaced).
func grantClaims(extra map[string]any) func(http.ResponseWriter, url.Values) {
	return func(w http.ResponseWriter, _ url.Values) {
		c := map[string]any{"sub": "alice", "email": "alice@example.com", "exp": time.Now().Add(time.Hour).Unix()}
		for k, v := range extra {
			c[k] = v
		}
		jsonReply(w, 200, map[string]any{"access_token": testJWT(c), "refresh_token": "rt-2", "token_type": "Bearer"})
	}
}

// refuseTokens makes the server refuse every token, as its pipeline does
// for a token it cannot validate.
func refuseTokens(a *fakeAPI) {
	a.set("POST /apis/auth/v2/self-check", 401, `{"detail":"Invalid bearer token","code":"invalid_token"}`)
}

func discoveryBody(idp string, mutate func(o map[string]any)) string {
	o := map[string]any{
		"issuer": idp, "authorization_endpoint": idp + "/authorize", "token_endpoint": idp + "/token",
		"device_authorization_endpoint": idp + "/device", "userinfo_endpoint": nil, "client_id": "nmp-cli",
		"default_scopes": "openid offline_access platform:read platform:write", "scope_prefix": nil,
	}
	if mutate != nil {
		mutate(o)
	}
	b, _ := json.Marshal(map[string]any{"auth_enabled": true, "oidc": o})
	return string(b)
}

// savedUser reads the first user of the config file under home, nil if
// there is no file.
func savedUserIn(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Users []map[string]any `yaml:"users"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Users) == 0 {
		return nil
	}
	return f.Users[0]
}

// TestLoginExitCodes covers each failure class of nmp auth login with its
// exit code, and that nothing is saved when it fails.
func TestLoginExitCodes(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		// discovery is the body of GET /apis/auth/discovery ("" = default
		// pointing at the fake IdP); idp scripts the IdP.
		discovery func(idp string) string
		idp       func(f *fakeIdP)
		// callback, for --browser, is what the "browser" sends to the
		// redirect URI, given the authorization URL.
		callback func(authURL *url.URL) url.Values
		cancel   time.Duration // cancel the run after this long
		deadAPI  bool
		// api scripts the server beyond discovery (the self-check).
		api      func(a *fakeAPI)
		wantCode int
		wantErr  string
		// wantSaved: a token must be saved; otherwise nothing may be.
		wantSaved bool
		noRefresh bool // the IdP returns no refresh token
		wantPage  string
	}{
		{name: "auth disabled: no login needed", args: []string{"auth", "login"},
			discovery: func(string) string { return `{"auth_enabled":false,"oidc":null}` }, wantCode: 0, wantErr: "no login is needed"},
		{name: "unsigned token refused with OIDC", args: []string{"auth", "login", "--unsigned-token", "--email", "a@example.com"}, wantCode: 2, wantErr: "unsigned tokens are refused"},
		{name: "no OIDC configured", args: []string{"auth", "login"},
			discovery: func(string) string { return `{"auth_enabled":true,"oidc":null}` }, wantCode: 3, wantErr: "server has no OIDC login configured"},
		{name: "unsigned token without --email", args: []string{"auth", "login", "--unsigned-token"}, wantCode: 2, wantErr: "requires --email"},
		{name: "development flag without --unsigned-token", args: []string{"auth", "login", "--email", "a@example.com"}, wantCode: 2, wantErr: "--email requires --unsigned-token"},
		{name: "--browser with --username", args: []string{"auth", "login", "--browser", "--username", "a"}, wantCode: 2, wantErr: "cannot be combined"},
		{name: "--password without --username", args: []string{"auth", "login", "--password", "x"}, wantCode: 2, wantErr: "--password requires --username"},
		{name: "--callback-port without --browser", args: []string{"auth", "login", "--callback-port", "9999"}, wantCode: 2, wantErr: "requires --browser"},
		{name: "unknown flag", args: []string{"auth", "login", "--bogus"}, wantCode: 2, wantErr: "unknown flag"},
		{name: "password grant without a password or terminal", args: []string{"auth", "login", "--username", "alice"},
			wantCode: 2, wantErr: "no password: set NMP_OIDC_PASSWORD"},
		{name: "password refused; the IdP's echo of the password is redacted", args: []string{"auth", "login", "--username", "alice"},
			env: map[string]string{"NMP_OIDC_PASSWORD": testPassword},
			idp: func(f *fakeIdP) {
				f.token = oauthErr("invalid_grant", "bad password "+testPassword+" for alice\x1b[31m")
			}, wantCode: 3, wantErr: "password login failed: invalid_grant: bad password [REDACTED]"},
		{name: "IdP error page without OAuth error: status only", args: []string{"auth", "login", "--username", "alice"},
			env: map[string]string{"NMP_OIDC_PASSWORD": testPassword},
			idp: func(f *fakeIdP) {
				f.token = func(w http.ResponseWriter, form url.Values) {
					w.WriteHeader(500)
					fmt.Fprintf(w, "<html>crash: password=%s</html>", form.Get("password"))
				}
			}, wantCode: 3, wantErr: "password login failed: HTTP 500 Internal Server Error"},
		{name: "IdP unreachable", args: []string{"auth", "login", "--username", "alice"},
			env: map[string]string{"NMP_OIDC_PASSWORD": testPassword},
			discovery: func(string) string {
				return discoveryBody(closed.URL, nil)
			}, wantCode: 3, wantErr: "cannot reach " + closed.URL},
		{name: "server unreachable", args: []string{"auth", "login"}, deadAPI: true, wantCode: 3, wantErr: "cannot reach"},
		{name: "discovery fails", args: []string{"auth", "login"},
			discovery: func(string) string { return "" }, wantCode: 3, wantErr: "(HTTP 500)"},
		{name: "no device endpoint", args: []string{"auth", "login"},
			discovery: func(idp string) string {
				return discoveryBody(idp, func(o map[string]any) { o["device_authorization_endpoint"] = nil })
			}, wantCode: 3, wantErr: "use --browser or --username"},
		{name: "no authorization endpoint for --browser", args: []string{"auth", "login", "--browser"},
			discovery: func(idp string) string {
				return discoveryBody(idp, func(o map[string]any) { o["authorization_endpoint"] = nil })
			}, wantCode: 3, wantErr: "no authorization endpoint"},
		{name: "device authorization refused", args: []string{"auth", "login", "--no-browser"},
			idp:      func(f *fakeIdP) { f.device = oauthErr("unauthorized_client", "no device flow for you") },
			wantCode: 3, wantErr: "starting the device login failed: unauthorized_client: no device flow for you"},
		{name: "device login denied", args: []string{"auth", "login", "--no-browser"},
			idp: func(f *fakeIdP) {
				f.device = deviceStart(600)
				f.token = oauthErr("access_denied", "")
			}, wantCode: 3, wantErr: "denied"},
		{name: "device code expired at the IdP", args: []string{"auth", "login", "--no-browser"},
			idp: func(f *fakeIdP) {
				f.device = deviceStart(600)
				f.token = oauthErr("expired_token", "")
			}, wantCode: 3, wantErr: "the device code expired"},
		{name: "device code expires while pending", args: []string{"auth", "login", "--no-browser"},
			idp: func(f *fakeIdP) {
				f.device = deviceStart(2)
				f.token = oauthErr("authorization_pending", "")
			}, wantCode: 3, wantErr: "the device code expired"},
		{name: "device login cancelled (Ctrl-C)", args: []string{"auth", "login", "--no-browser"},
			idp: func(f *fakeIdP) {
				f.device = deviceStart(600)
				f.token = oauthErr("authorization_pending", "")
			}, cancel: 1500 * time.Millisecond, wantCode: 1, wantErr: "Error: cancelled"},
		{name: "device login, other IdP error", args: []string{"auth", "login", "--no-browser"},
			idp: func(f *fakeIdP) {
				f.device = deviceStart(600)
				f.token = oauthErr("server_error", "database down")
			}, wantCode: 3, wantErr: "device login failed: server_error: database down"},
		{name: "device login succeeds after pending", args: []string{"auth", "login", "--no-browser"},
			idp: func(f *fakeIdP) {
				f.device = deviceStart(600)
				n := 0
				ok := grant("openid offline_access platform:read platform:write", true)
				f.token = func(w http.ResponseWriter, form url.Values) {
					if n++; n < 2 {
						oauthErr("authorization_pending", "")(w, form)
						return
					}
					ok(w, form)
				}
			}, wantCode: 0, wantSaved: true},
		{name: "scope not granted (response scope)", args: []string{"auth", "login", "--username", "alice"},
			env:      map[string]string{"NMP_OIDC_PASSWORD": testPassword},
			idp:      func(f *fakeIdP) { f.token = grant("openid platform:read", true) },
			wantCode: 3, wantErr: "did not grant the scopes platform:write"},
		{name: "scope not granted (token claims)", args: []string{"auth", "login", "--username", "alice"},
			env:      map[string]string{"NMP_OIDC_PASSWORD": testPassword},
			idp:      func(f *fakeIdP) { f.token = grant("openid", false) },
			wantCode: 3, wantErr: "did not grant the scopes platform:read platform:write"},
		{name: "scopes granted (token claims)", args: []string{"auth", "login", "--username", "alice"},
			env:      map[string]string{"NMP_OIDC_PASSWORD": testPassword},
			idp:      func(f *fakeIdP) { f.token = grant("platform:read platform:write", false) },
			wantCode: 0, wantSaved: true},
		{name: "state mismatch", args: []string{"auth", "login", "--browser"},
			callback: func(*url.URL) url.Values { return url.Values{"code": {"c"}, "state": {"forged"}} },
			wantCode: 3, wantErr: "state mismatch", wantPage: "Login failed"},
		{name: "login refused at the IdP", args: []string{"auth", "login", "--browser"},
			callback: func(u *url.URL) url.Values {
				return url.Values{"error": {"access_denied"}, "error_description": {"user said no"}, "state": {u.Query().Get("state")}}
			},
			wantCode: 3, wantErr: "the identity provider refused the login: access_denied: user said no", wantPage: "Login failed"},
		{name: "code exchange refused", args: []string{"auth", "login", "--browser"},
			idp: func(f *fakeIdP) { f.token = oauthErr("invalid_grant", "code expired") },
			callback: func(u *url.URL) url.Values {
				return url.Values{"code": {"the-code"}, "state": {u.Query().Get("state")}}
			},
			wantCode: 3, wantErr: "exchanging the authorization code failed: invalid_grant: code expired", wantPage: "Login failed"},
		{name: "server refuses an opaque token", args: []string{"auth", "login", "--username", "alice"},
			env: map[string]string{"NMP_OIDC_PASSWORD": testPassword},
			idp: func(f *fakeIdP) {
				f.token = func(w http.ResponseWriter, _ url.Values) {
					jsonReply(w, 200, map[string]any{"access_token": "opaque-access-token-5d1c", "refresh_token": "rt-1", "token_type": "Bearer"})
				}
			},
			api: refuseTokens, wantCode: 3, wantErr: "refuses the new token, so nothing was saved: the identity provider issued an opaque access token (not a JWT)"},
		{name: "server refuses a token for another audience", args: []string{"auth", "login", "--username", "alice"},
			env: map[string]string{"NMP_OIDC_PASSWORD": testPassword},
			discovery: func(idp string) string {
				return discoveryBody(idp, func(o map[string]any) { o["audience"] = "api://nmp" })
			},
			idp: func(f *fakeIdP) {
				f.token = grantClaims(map[string]any{"iss": f.URL, "aud": []string{"nmp-cli", "account"}})
			},
			api: refuseTokens, wantCode: 3,
			wantErr: `the token's audience (aud) is ["nmp-cli","account"] but the server expects "api://nmp": the identity provider ignored the requested audience; to fix it, configure the identity provider`},
		{name: "server refuses a token whose issuer differs by a trailing slash", args: []string{"auth", "login", "--username", "alice"},
			env: map[string]string{"NMP_OIDC_PASSWORD": testPassword},
			idp: func(f *fakeIdP) { f.token = grantClaims(map[string]any{"iss": f.URL + "/", "aud": "nmp-cli"}) },
			api: refuseTokens, wantCode: 3, wantErr: "differ only by a trailing slash"},
		{name: "server refuses an expired token", args: []string{"auth", "login", "--username", "alice"},
			env: map[string]string{"NMP_OIDC_PASSWORD": testPassword},
			idp: func(f *fakeIdP) {
				f.token = grantClaims(map[string]any{"iss": f.URL, "aud": "nmp-cli", "exp": time.Now().Add(-time.Hour).Unix()})
			},
			api: refuseTokens, wantCode: 3, wantErr: "the token expired at "},
		{name: "server refuses a token for another reason: its detail", args: []string{"auth", "login", "--username", "alice"},
			env: map[string]string{"NMP_OIDC_PASSWORD": testPassword},
			discovery: func(idp string) string {
				return discoveryBody(idp, func(o map[string]any) { o["audience"] = "nmp-cli" })
			},
			idp: func(f *fakeIdP) { f.token = grantClaims(map[string]any{"iss": f.URL, "aud": "nmp-cli"}) },
			api: refuseTokens, wantCode: 3, wantErr: "nothing was saved: the server says: Invalid bearer token"},
		{name: "server accepts but does not allow (403): saved", args: []string{"auth", "login", "--username", "alice"},
			env: map[string]string{"NMP_OIDC_PASSWORD": testPassword},
			idp: func(f *fakeIdP) { f.token = grant("openid offline_access platform:read platform:write", true) },
			api: func(a *fakeAPI) {
				a.set("POST /apis/auth/v2/self-check", 403, `{"detail":"Forbidden","code":"forbidden"}`)
			}, wantCode: 0, wantSaved: true, wantErr: "Logged in as alice@example.com"},
		{name: "server cannot tell (503): saved with a warning", args: []string{"auth", "login", "--username", "alice"},
			env: map[string]string{"NMP_OIDC_PASSWORD": testPassword},
			idp: func(f *fakeIdP) { f.token = grant("openid offline_access platform:read platform:write", true) },
			api: func(a *fakeAPI) {
				a.set("POST /apis/auth/v2/self-check", 503, `{"detail":"PDP unavailable","code":"pdp_unavailable"}`)
			}, wantCode: 0, wantSaved: true, wantErr: "could not confirm that the server accepts the new token (PDP unavailable); saving it anyway"},
		{name: "browser login refused by the server: the page says so", args: []string{"auth", "login", "--browser"},
			idp: func(f *fakeIdP) {
				f.token = func(w http.ResponseWriter, _ url.Values) {
					jsonReply(w, 200, map[string]any{"access_token": "opaque-access-token-5d1c", "token_type": "Bearer"})
				}
			},
			callback: func(u *url.URL) url.Values {
				return url.Values{"code": {"the-code"}, "state": {u.Query().Get("state")}}
			},
			api: refuseTokens, wantCode: 3, wantErr: "opaque access token", wantPage: "Login failed"},
		{name: "issuer differs from the IdP's by a trailing slash: named, not unreachable", args: []string{"auth", "login"},
			discovery: func(idp string) string {
				return discoveryBody(idp, func(o map[string]any) {
					o["issuer"] = idp + "/"
					o["token_endpoint"], o["authorization_endpoint"], o["device_authorization_endpoint"] = nil, nil, nil
				})
			}, wantCode: 3, wantErr: "only by a trailing slash"},
		{name: "no token endpoint, IdP down: unreachable", args: []string{"auth", "login"},
			discovery: func(string) string {
				return discoveryBody(closed.URL, func(o map[string]any) { o["token_endpoint"] = nil })
			}, wantCode: 3, wantErr: "cannot be read from here either"},
		{name: "browser login", args: []string{"auth", "login", "--browser"},
			idp: func(f *fakeIdP) { f.token = grant("openid offline_access platform:read platform:write", true) },
			callback: func(u *url.URL) url.Values {
				return url.Values{"code": {"the-code"}, "state": {u.Query().Get("state")}}
			},
			wantCode: 0, wantSaved: true, wantPage: "you can close this window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case has its own IdP, API, home and environment, and
			// Run takes nothing from the process: the cases run side by
			// side (the device flow's cases wait whole seconds between
			// polls, as RFC 8628 counts).
			t.Parallel()
			idp := newFakeIdP(t)
			if tt.idp != nil {
				tt.idp(idp)
			}
			api := newFakeAPI(t)
			body := discoveryBody(idp.URL, nil)
			if tt.discovery != nil {
				body = tt.discovery(idp.URL)
			}
			if body == "" {
				api.set("GET /apis/auth/discovery", 500, `{"detail":"boom"}`)
			} else {
				api.set("GET /apis/auth/discovery", 200, body)
			}
			if tt.api != nil {
				tt.api(api)
			}
			base := api.URL
			if tt.deadAPI {
				base = closed.URL
			}
			home := t.TempDir()
			environ := []string{"HOME=" + home}
			for k, v := range tt.env {
				environ = append(environ, k+"="+v)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel > 0 {
				time.AfterFunc(tt.cancel, cancel)
			}
			ctx = withLoginHooks(ctx, loginHooks{devicePollInterval: time.Second})
			var page string
			var wg sync.WaitGroup
			if tt.callback != nil {
				ctx = withLoginHooks(ctx, loginHooks{openBrowser: func(_ context.Context, raw string) error {
					u, err := url.Parse(raw)
					if err != nil {
						return err
					}
					wg.Go(func() {
						resp, err := http.Get(u.Query().Get("redirect_uri") + "?" + tt.callback(u).Encode())
						if err != nil {
							t.Errorf("callback: %v", err)
							return
						}
						b, _ := io.ReadAll(resp.Body)
						testenv.Close(t, resp.Body)
						page = string(b)
					})
					return nil
				}})
			}
			var stdout, stderr strings.Builder
			code := Run(ctx, append(tt.args, "--base-url", base), strings.NewReader(""), &stdout, &stderr, environ)
			wg.Wait()
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("exit %d (want %d), stderr:\n%s\nwant %q", code, tt.wantCode, stderr.String(), tt.wantErr)
			}
			if strings.Contains(stderr.String(), testPassword) || strings.Contains(stdout.String(), testPassword) || strings.Contains(page, testPassword) {
				t.Error("the password was printed")
			}
			if strings.ContainsRune(stderr.String(), '\x1b') {
				t.Error("an escape sequence reached the terminal")
			}
			if tt.wantPage != "" && !strings.Contains(page, tt.wantPage) {
				t.Errorf("callback page lacks %q:\n%s", tt.wantPage, page)
			}
			u := savedUserIn(t, filepath.Join(home, ".config", "nmp", "config.yaml"))
			saved := u != nil && u["token"] != nil
			if saved != tt.wantSaved {
				t.Errorf("saved user %v, want a saved token: %v", u, tt.wantSaved)
			}
			if tt.wantSaved && (u["refresh_token"] == nil) != tt.noRefresh {
				t.Errorf("saved refresh token %v", u["refresh_token"])
			}
			// Public client: client_id in the body, never a secret.
			for _, f := range idp.requests() {
				if f.Has("client_secret") || (f.Get("grant_type") != "" && f.Get("client_id") != "nmp-cli") {
					t.Errorf("token request %v", f.Get("grant_type"))
				}
			}
		})
	}
}

// deviceStart answers the device authorization request.
func deviceStart(expiresIn int) func(http.ResponseWriter, url.Values) {
	return func(w http.ResponseWriter, form url.Values) {
		jsonReply(w, 200, map[string]any{
			"device_code": "dc-123", "user_code": "ABCD-EFGH", "verification_uri": "https://idp.example/device",
			"verification_uri_complete": "https://idp.example/device?user_code=ABCD-EFGH", "expires_in": expiresIn, "interval": 1,
		})
	}
}

func TestLoginRequestsPerFlow(t *testing.T) {
	idp := newFakeIdP(t)
	idp.token = grant("openid offline_access p/platform:read", true)
	api := newFakeAPI(t)
	api.set("GET /apis/auth/discovery", 200, discoveryBody(idp.URL, func(o map[string]any) {
		o["scope_prefix"] = "p"
		o["default_scopes"] = "openid offline_access platform:write"
	}))
	res := runCLI(t, map[string]string{"NMP_BASE_URL": api.URL, "NMP_OIDC_USERNAME": "alice", "NMP_OIDC_PASSWORD": testPassword},
		"", "auth", "login", "--scope", "platform:read")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	reqs := idp.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	f := reqs[0]
	want := url.Values{"grant_type": {"password"}, "client_id": {"nmp-cli"}, "username": {"alice"}, "password": {testPassword},
		"scope": {"openid offline_access p/platform:read"}}
	for k := range want {
		if f.Get(k) != want.Get(k) {
			t.Errorf("%s = %q, want %q", k, f.Get(k), want.Get(k))
		}
	}
}

// TestLoginSendsAudience checks that every flow asks the IdP for the
// audience the server announces (authorization and device authorization
// requests, every token request, refresh), and for none when the server
// expects the client_id.
func TestLoginSendsAudience(t *testing.T) {
	t.Parallel()
	flows := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"password", []string{"auth", "login", "--username", "alice"}, map[string]string{"NMP_OIDC_PASSWORD": testPassword}},
		{"device code", []string{"auth", "login", "--no-browser"}, nil},
		{"browser with PKCE", []string{"auth", "login", "--browser"}, nil},
	}
	for _, audience := range []string{"api://nmp", "nmp-cli"} {
		for _, fl := range flows {
			t.Run(fl.name+", server audience "+audience, func(t *testing.T) {
				want := audience
				if audience == "nmp-cli" { // the client_id: nothing to ask for
					want = ""
				}
				idp := newFakeIdP(t)
				idp.device = deviceStart(600)
				idp.token = grant("openid offline_access platform:read platform:write", true)
				api := newFakeAPI(t)
				api.set("GET /apis/auth/discovery", 200, discoveryBody(idp.URL, func(o map[string]any) { o["audience"] = audience }))
				var authURLAudience []string
				var wg sync.WaitGroup
				ctx := withLoginHooks(context.Background(), loginHooks{devicePollInterval: time.Second,
					openBrowser: func(_ context.Context, raw string) error {
						u, err := url.Parse(raw)
						if err != nil {
							return err
						}
						authURLAudience = u.Query()["audience"]
						wg.Go(func() {
							resp, err := http.Get(u.Query().Get("redirect_uri") + "?" + url.Values{"code": {"c"}, "state": {u.Query().Get("state")}}.Encode())
							if err == nil {
								_ = resp.Body.Close()
							}
						})
						return nil
					}})
				environ := []string{"HOME=" + t.TempDir(), "NMP_BASE_URL=" + api.URL}
				for k, v := range fl.env {
					environ = append(environ, k+"="+v)
				}
				var stdout, stderr strings.Builder
				code := Run(ctx, fl.args, strings.NewReader(""), &stdout, &stderr, environ)
				wg.Wait()
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr.String())
				}
				if fl.name == "browser with PKCE" && strings.Join(authURLAudience, ",") != want {
					t.Errorf("authorization URL audience %q, want %q", authURLAudience, want)
				}
				n := 0
				for _, f := range idp.requests() {
					if f.Get("client_id") == "" {
						continue // the discovery document
					}
					n++
					if strings.Join(f["audience"], ",") != want || f.Has("resource") {
						t.Errorf("%s request: audience %q, resource %q; want audience %q", cmp.Or(f.Get("grant_type"), "device authorization"), f["audience"], f["resource"], want)
					}
				}
				if n == 0 {
					t.Error("no request reached the IdP")
				}
			})
		}
	}
}

func TestRequestedScopes(t *testing.T) {
	prefix := func(p string) *string { return &p }
	tests := []struct {
		name     string
		defaults string
		prefix   *string
		flag     string
		flagSet  bool
		want     string
	}{
		{"defaults", "openid email platform:read", nil, "", false, "openid email platform:read"},
		{"--scope keeps defaults without colon", "openid offline_access platform:read platform:write", nil, "platform:read", true, "openid offline_access platform:read"},
		{"--scope empty", "openid platform:read", nil, "", true, "openid"},
		{"prefix with slash added", "openid platform:read", prefix("api://nmp"), "", false, "openid api://nmp/platform:read"},
		{"prefix kept with slash", "openid platform:read", prefix("api://nmp/"), "", false, "openid api://nmp/platform:read"},
		{"prefix on .default", "openid", prefix("api://nmp"), ".default x", true, "openid api://nmp/.default x"},
		{"already prefixed and repeated", "openid api://nmp/platform:read", prefix("api://nmp"), "platform:read openid", true, "openid api://nmp/platform:read"},
		{"empty prefix", "platform:read", prefix(""), "", false, "platform:read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &client.OIDCDiscovery{DefaultScopes: tt.defaults, ScopePrefix: tt.prefix}
			if got := strings.Join(requestedScopes(o, tt.flag, tt.flagSet), " "); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMissingScopes(t *testing.T) {
	tok := func(responseScope string, claims map[string]any) *oauth2.Token {
		t := &oauth2.Token{AccessToken: "opaque"}
		if claims != nil {
			t.AccessToken = testJWT(claims)
		}
		extra := map[string]any{}
		if responseScope != "" {
			extra["scope"] = responseScope
		}
		return t.WithExtra(extra)
	}
	req := []string{"openid", "p/platform:read", "p/platform:write"}
	tests := []struct {
		name string
		tok  *oauth2.Token
		want string
	}{
		{"response scope wins", tok("p/platform:read p/platform:write", map[string]any{"scope": ""}), ""},
		{"response scope lacks one", tok("openid p/platform:read", nil), "p/platform:write"},
		{"claims without prefix", tok("", map[string]any{"scope": "platform:read platform:write"}), ""},
		{"scp array", tok("", map[string]any{"scp": []string{"platform:read"}}), "p/platform:write"},
		{"openid not required", tok("p/platform:read p/platform:write", nil), ""},
		{"opaque token, no response scope: as requested", tok("", nil), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(missingScopes(req, tt.tok, "p/"), " "); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
