package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/text/language"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/nmp-project/nmp/internal/cli"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// The one user of the OP. The example's device pages complete the flow
// with the typed username as the subject, and its storage looks users up
// by id: so this user's id is its username (the example's own users'
// are not, which breaks their device logins with the openid scope).
const (
	zitadelUser     = "zed"
	zitadelPassword = "zed-Pw-4b7e0c2d19"
)

// zitadelUsers is a storage.UserStore holding that user.
type zitadelUsers struct{}

func (zitadelUsers) user() *storage.User {
	return &storage.User{ID: zitadelUser, Username: zitadelUser, Password: zitadelPassword,
		FirstName: "Zed", LastName: "User", Email: "zed@example.org", EmailVerified: true, PreferredLanguage: language.English}
}

func (u zitadelUsers) GetUserByID(id string) *storage.User {
	if id == zitadelUser {
		return u.user()
	}
	return nil
}

func (u zitadelUsers) GetUserByUsername(name string) *storage.User { return u.GetUserByID(name) }

func (zitadelUsers) ExampleClientID() string { return "service" }

// publicDeviceStorage is zitadel's example storage, except that its native
// (public, PKCE) clients may also use the device grant: the example's own
// DeviceClient is confidential (HTTP Basic with a secret), while nmp is a
// public client. Client fields are unexported, so clients are wrapped.
// The client "native" keeps the example's opaque access tokens;
// "native-jwt" gets JWT access tokens (op.AccessTokenTypeJWT), whose aud
// is the client_id: the OP ignores any requested audience.
type publicDeviceStorage struct{ *storage.Storage }

func (s publicDeviceStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return nmpClient{c, id == "native-jwt"}, nil
}

type nmpClient struct {
	op.Client
	jwt bool
}

func (c nmpClient) GrantTypes() []oidc.GrantType {
	return append(slices.Clone(c.Client.GrantTypes()), oidc.GrantTypeDeviceCode)
}

func (c nmpClient) AccessTokenType() op.AccessTokenType {
	if c.jwt {
		return op.AccessTokenTypeJWT
	}
	return c.Client.AccessTokenType()
}

// zitadelOP serves zitadel/oidc's example OP (exampleop.SetupServer with
// the example storage and its login and device pages) on 127.0.0.1, with
// the native clients "native" and "native-jwt" registered for loopback
// redirects. It records the audience parameters it receives.
type zitadelOP struct {
	url       string
	refreshes atomic.Int64
	mu        sync.Mutex
	audiences []string // "<endpoint> <audience>" of each request with one
}

func (z *zitadelOP) requestedAudiences() []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return slices.Clone(z.audiences)
}

func startZitadelOP(t *testing.T) *zitadelOP {
	t.Helper()
	z := &zitadelOP{}
	var h atomic.Pointer[http.Handler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		params := r.URL.Query()
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
			r.Body = io.NopCloser(bytes.NewReader(body))
			params, _ = url.ParseQuery(string(body))
			if r.URL.Path == "/oauth/token" && params.Get("grant_type") == "refresh_token" {
				z.refreshes.Add(1)
			}
		}
		if a := params["audience"]; len(a) > 0 {
			z.mu.Lock()
			z.audiences = append(z.audiences, r.URL.Path+" "+strings.Join(a, ","))
			z.mu.Unlock()
		}
		(*h.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	z.url = srv.URL
	clients := map[string]*storage.Client{
		"native":     storage.NativeClient("native", "http://127.0.0.1/callback"),
		"native-jwt": storage.NativeClient("native-jwt", "http://127.0.0.1/callback"),
	}
	st := publicDeviceStorage{storage.NewStorageWithClients(zitadelUsers{}, clients)}
	router := http.Handler(exampleop.SetupServer(srv.URL, st, nil, false))
	h.Store(&router)
	return z
}

func (z *zitadelOP) username() string { return zitadelUser }

// browserLogin signs in on the example's /login/username page and follows
// the redirects to the CLI's loopback callback.
func (z *zitadelOP) browserLogin(t *testing.T, authURL string) string {
	b := browserClient(t)
	status, body, final := readBody(t, func() (*http.Response, error) { return b.Get(authURL) })
	if status != http.StatusOK || !strings.Contains(final, "/login/username") {
		t.Errorf("authorize: HTTP %d at %s\n%s", status, final, body)
		return ""
	}
	id := regexpField(body, "id")
	_, page, _ := readBody(t, func() (*http.Response, error) {
		return b.PostForm(z.url+"/login/username", url.Values{"id": {id}, "username": {z.username()}, "password": {zitadelPassword}})
	})
	return page
}

// approveDevice completes the example's device pages: code + credentials,
// then "Allow".
func (z *zitadelOP) approveDevice(t *testing.T, verificationURIComplete string) string {
	b := browserClient(t)
	_, body, final := readBody(t, func() (*http.Response, error) { return b.Get(verificationURIComplete) })
	code := regexpField(body, "user_code")
	if code == "" {
		t.Errorf("device page at %s has no user_code:\n%s", final, body)
		return ""
	}
	_, body, _ = readBody(t, func() (*http.Response, error) {
		return b.PostForm(z.url+"/device/login", url.Values{"user_code": {code}, "username": {z.username()}, "password": {zitadelPassword}})
	})
	if !strings.Contains(body, "confirm?action=allowed") {
		t.Errorf("device login:\n%s", body)
		return ""
	}
	_, body, _ = readBody(t, func() (*http.Response, error) { return b.Get(z.url + "/device/confirm?action=allowed") })
	return body
}

func regexpField(body, name string) string {
	return formFields(body).Get(name)
}

// TestLoginAgainstZitadelExampleOP logs in with the device and the PKCE
// flows against an OpenID provider nobody here wrote: zitadel/oidc's
// example OP with its own login and device pages, and checks that the
// CLI saves only what the server accepts.
//
//   - Client "native" gets the example's opaque access tokens. The server
//     validates JWTs locally, so it refuses them: the login fails (exit 3)
//     with the opaque-token explanation and saves nothing. (Before the
//     post-login check the CLI saved them and every command got a 401.)
//   - Client "native-jwt" gets JWT access tokens with aud = client_id: the
//     saved token works against the server, and a forced refresh saves a
//     new one the server accepts.
//   - With a server audience other than the client_id, the CLI asks the OP
//     for it (audience parameter); the OP ignores it, so the login fails
//     naming both audiences.
//   - A scope the OP does not grant fails the login before any of this.
//
// The OP's tokens live 5 minutes, inside the CLI's refresh window, so the
// commands after the login run with --no-auto-refresh.
func TestLoginAgainstZitadelExampleOP(t *testing.T) {
	t.Parallel()
	z := startZitadelOP(t)
	server := func(clientID, audience string) string {
		return servertest.Start(t, func(c *config.Config) {
			admin := "admin@example.com"
			c.Auth.Enabled = true
			c.Auth.AdminEmail = &admin
			c.Auth.OIDC.Enabled = true
			c.Auth.OIDC.Issuer = z.url
			c.Auth.OIDC.ClientID = clientID
			if audience != "" {
				c.Auth.OIDC.Audience = &audience
			}
			c.Auth.OIDC.DefaultScopes = "openid profile email offline_access"
		}).URL
	}
	opaqueSrv, jwtSrv, audSrv := server("native", ""), server("native-jwt", ""), server("native-jwt", "api://nmp")

	tests := []struct {
		name     string
		server   string
		args     []string
		drive    func(t *testing.T, opened string) string
		wantPage string
		wantCode int
		wantErr  string
		// wantAudiences are the audience parameters the OP must receive.
		wantAudiences []string
		// refreshable: the example storage binds refresh tokens from the
		// device flow to no client (getInfoFromRequest knows only code and
		// refresh requests), so it refuses to refresh them: invalid_grant.
		refreshable bool
	}{
		{name: "device code, opaque token refused", server: opaqueSrv, args: []string{"auth", "login"}, drive: z.approveDevice,
			wantCode: 3, wantErr: "refuses the new token, so nothing was saved: the identity provider issued an opaque access token (not a JWT)"},
		{name: "browser with PKCE, opaque token refused", server: opaqueSrv, args: []string{"auth", "login", "--browser"}, drive: z.browserLogin,
			wantPage: "opaque access token", wantCode: 3, wantErr: "the identity provider issued an opaque access token (not a JWT)"},
		{name: "scope not granted", server: opaqueSrv, args: []string{"auth", "login", "--browser", "--scope", "platform:read"}, drive: z.browserLogin,
			wantPage: "did not grant the scopes platform:read", wantCode: 3, wantErr: "did not grant the scopes platform:read; nothing was saved"},
		{name: "device code, JWT", server: jwtSrv, args: []string{"auth", "login"}, drive: z.approveDevice},
		{name: "browser with PKCE, JWT", server: jwtSrv, args: []string{"auth", "login", "--browser"}, drive: z.browserLogin,
			wantPage: "you can close this window", refreshable: true},
		{name: "device code, requested audience ignored", server: audSrv, args: []string{"auth", "login"}, drive: z.approveDevice,
			wantCode: 3, wantErr: `the token's audience (aud) is ["native-jwt"] but the server expects "api://nmp": the identity provider ignored the requested audience`,
			wantAudiences: []string{"/device_authorization api://nmp", "/oauth/token api://nmp"}},
		{name: "browser with PKCE, requested audience ignored", server: audSrv, args: []string{"auth", "login", "--browser"}, drive: z.browserLogin,
			wantPage: "the identity provider ignored the requested audience", wantCode: 3, wantErr: `but the server expects "api://nmp"`,
			wantAudiences: []string{"/auth api://nmp", "/oauth/token api://nmp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z.refreshes.Store(0)
			z.mu.Lock()
			z.audiences = nil
			z.mu.Unlock()
			r := newRunner(t, "NMP_BASE_URL="+tt.server)
			var wg sync.WaitGroup
			var page string
			ctx := cli.WithDevicePollInterval(context.Background(), time.Second)
			ctx = cli.WithBrowserOpener(ctx, func(_ context.Context, u string) error {
				wg.Go(func() { page = tt.drive(t, u) })
				return nil
			})
			res := r.runWith(ctx, nil, tt.args...)
			wg.Wait()
			if res.code != tt.wantCode || !strings.Contains(res.stderr, tt.wantErr) {
				t.Fatalf("exit %d, want %d and %q\n%s", res.code, tt.wantCode, tt.wantErr, res.stderr)
			}
			if tt.wantPage != "" && !strings.Contains(page, tt.wantPage) {
				t.Errorf("callback page lacks %q:\n%s", tt.wantPage, page)
			}
			if got := z.requestedAudiences(); !slices.Equal(compactStrings(got), tt.wantAudiences) {
				t.Errorf("audiences requested at the OP: %q, want %q", got, tt.wantAudiences)
			}
			if tt.wantCode != 0 {
				if !strings.Contains(res.stderr, "nothing was saved") || strings.Contains(res.stderr, "Logged in") {
					t.Errorf("stderr:\n%s", res.stderr)
				}
				if res := r.run("auth", "status"); res.code != 1 {
					t.Errorf("status after the failed login: exit %d", res.code)
				}
				return
			}
			if !strings.Contains(res.stderr, "Logged in as zed (context default)") {
				t.Errorf("stderr:\n%s", res.stderr)
			}
			u := r.user()
			if u.Type != "oauth" || u.Token == "" || u.RefreshToken == "" || u.Scope != "openid profile email offline_access" {
				t.Errorf("saved user: type %q, token %v, refresh token %v, scope %q", u.Type, u.Token != "", u.RefreshToken != "", u.Scope)
			}
			if aud := claims(t, u.Token)["aud"]; fmt.Sprint(aud) != "[native-jwt]" {
				t.Errorf("aud %v", aud)
			}
			// The saved token works: the server identifies the user.
			// The saved token works: the server identifies the user (any
			// authenticated user may list workspaces).
			if res := r.run("auth", "can-i", "GET", "/apis/entities/v2/workspaces", "--no-auto-refresh"); res.code != 0 || !strings.HasPrefix(res.stdout, "yes") {
				t.Errorf("the saved token does not work: exit %d %s%s", res.code, res.stdout, res.stderr)
			}
			res = r.run("auth", "refresh")
			if z.refreshes.Load() != 1 {
				t.Errorf("forced refresh: %d refresh requests", z.refreshes.Load())
			}
			if !tt.refreshable {
				if res.code != 3 || !strings.Contains(res.stderr, `session expired, run "nmp auth login"`) {
					t.Errorf("refresh refused by the OP: exit %d %s", res.code, res.stderr)
				}
				return
			}
			if res.code != 0 {
				t.Fatalf("refresh: exit %d %s", res.code, res.stderr)
			}
			after := r.user()
			if after.Token == u.Token || after.RefreshToken == "" || after.RefreshToken == u.RefreshToken {
				t.Error("the forced refresh saved no new tokens")
			}
			if res := r.run("auth", "can-i", "GET", "/apis/entities/v2/workspaces", "--no-auto-refresh"); res.code != 0 || !strings.HasPrefix(res.stdout, "yes") {
				t.Errorf("the refreshed token does not work: exit %d %s%s", res.code, res.stdout, res.stderr)
			}
		})
	}
}

// compactStrings drops consecutive repeats (the device flow polls the
// token endpoint more than once).
func compactStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Compact(slices.Clone(s))
}
