package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
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
// (public, PKCE) client may also use the device grant: the example's own
// DeviceClient is confidential (HTTP Basic with a secret), while nmp is a
// public client. Client fields are unexported, so the client is wrapped.
type publicDeviceStorage struct{ *storage.Storage }

func (s publicDeviceStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return withDeviceGrant{c}, nil
}

type withDeviceGrant struct{ op.Client }

func (c withDeviceGrant) GrantTypes() []oidc.GrantType {
	return append(slices.Clone(c.Client.GrantTypes()), oidc.GrantTypeDeviceCode)
}

// zitadelOP serves zitadel/oidc's example OP (exampleop.SetupServer with
// the example storage and its login and device pages) on 127.0.0.1, with
// the example's NativeClient "native" registered for loopback redirects.
type zitadelOP struct {
	url       string
	refreshes atomic.Int64
}

func startZitadelOP(t *testing.T) *zitadelOP {
	t.Helper()
	z := &zitadelOP{}
	var h atomic.Pointer[http.Handler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/oauth/token" {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
			r.Body = io.NopCloser(bytes.NewReader(body))
			if f, err := url.ParseQuery(string(body)); err == nil && f.Get("grant_type") == "refresh_token" {
				z.refreshes.Add(1)
			}
		}
		(*h.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	z.url = srv.URL
	clients := map[string]*storage.Client{"native": storage.NativeClient("native", "http://127.0.0.1/callback")}
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
// example OP with its own login and device pages. Its access tokens are
// opaque: the login is saved, and opaque tokens are never refreshed
// automatically. A scope the OP does not grant fails the login (exit 3)
// and saves nothing.
func TestLoginAgainstZitadelExampleOP(t *testing.T) {
	z := startZitadelOP(t)
	srv := servertest.Start(t, func(c *config.Config) {
		admin := "admin@example.com"
		c.Auth.Enabled = true
		c.Auth.AdminEmail = &admin
		c.Auth.OIDC.Enabled = true
		c.Auth.OIDC.Issuer = z.url
		c.Auth.OIDC.ClientID = "native"
		c.Auth.OIDC.DefaultScopes = "openid profile email offline_access"
	})

	tests := []struct {
		name     string
		args     []string
		drive    func(t *testing.T, opened string) string
		wantPage string
		wantCode int
		// refreshable: the example storage binds refresh tokens from the
		// device flow to no client (getInfoFromRequest knows only code and
		// refresh requests), so it refuses to refresh them: invalid_grant.
		refreshable bool
	}{
		{"device code", []string{"auth", "login"}, z.approveDevice, "", 0, false},
		{"browser with PKCE", []string{"auth", "login", "--browser"}, z.browserLogin, "you can close this window", 0, true},
		{"scope not granted", []string{"auth", "login", "--browser", "--scope", "platform:read"}, z.browserLogin, "did not grant the scopes platform:read", 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z.refreshes.Store(0)
			r := newRunner(t, "NMP_BASE_URL="+srv.URL)
			var wg sync.WaitGroup
			var page string
			ctx := cli.WithDevicePollInterval(context.Background(), time.Second)
			ctx = cli.WithBrowserOpener(ctx, func(_ context.Context, u string) error {
				wg.Go(func() { page = tt.drive(t, u) })
				return nil
			})
			res := r.runWith(ctx, nil, tt.args...)
			wg.Wait()
			if res.code != tt.wantCode {
				t.Fatalf("exit %d, want %d\n%s", res.code, tt.wantCode, res.stderr)
			}
			if tt.wantPage != "" && !strings.Contains(page, tt.wantPage) {
				t.Errorf("callback page lacks %q:\n%s", tt.wantPage, page)
			}
			if tt.wantCode != 0 {
				if !strings.Contains(res.stderr, "nothing was saved") {
					t.Errorf("stderr:\n%s", res.stderr)
				}
				if res := r.run("auth", "status"); res.code != 1 {
					t.Errorf("status after the failed login: exit %d", res.code)
				}
				return
			}
			if !strings.Contains(res.stderr, "Logged in as ") {
				t.Errorf("stderr:\n%s", res.stderr)
			}
			u := r.user()
			if u.Type != "oauth" || u.Token == "" || u.RefreshToken == "" || u.Scope != "openid profile email offline_access" {
				t.Errorf("saved user: type %q, token %v, refresh token %v, scope %q", u.Type, u.Token != "", u.RefreshToken != "", u.Scope)
			}
			var status map[string]any
			if err := json.Unmarshal([]byte(r.ok("auth", "status", "-o", "json").stdout), &status); err != nil {
				t.Fatal(err)
			}
			if status["token_kind"] != "opaque" || status["usable"] != true || status["refresh_token"] != true {
				t.Errorf("status %v", status)
			}
			// An opaque token is not refreshed automatically, only on demand.
			if tok := strings.TrimSpace(r.ok("auth", "token").stdout); tok != u.Token {
				t.Error("auth token printed another token")
			}
			if z.refreshes.Load() != 0 {
				t.Errorf("%d automatic refreshes of an opaque token", z.refreshes.Load())
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
			if after := r.user(); after.Token == u.Token || after.RefreshToken == "" || after.RefreshToken == u.RefreshToken {
				t.Error("the forced refresh saved no new tokens")
			}
		})
	}
}
