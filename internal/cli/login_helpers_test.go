package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nmp-project/nmp/internal/cli"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/devidp"
	"github.com/nmp-project/nmp/internal/devidp/devidptest"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/testenv"
)

// Credentials of the development IdP in these tests. All of them are
// checked never to appear in any output.
const (
	alicePassword = "alice-Pw-5e1c0a9d77"
	bobPassword   = "bob-Pw-c81f2b6e04"
	ciSecret      = "ci-Secret-9a7d3f1e55"
	loginScopes   = "openid profile email offline_access platform:read platform:write"
)

// authStack is the development IdP and a platform server that trusts it.
type authStack struct {
	idpURL  string
	srv     *servertest.Server
	idpLogs *testenv.Buffer
	// refreshes counts refresh_token grants that reached the IdP.
	refreshes atomic.Int64
	// tokenRequests counts every POST /token.
	tokenRequests atomic.Int64
}

type stackOptions struct {
	// fastClock runs the IdP's clock ten times faster than the wall clock,
	// so that a CLI polling every second is never told to slow down.
	fastClock bool
	// idpAudience is the dev IdP's dev_idp.audience (the aud of all its
	// tokens; "" = the client_id); serverAudience the server's
	// auth.oidc.audience ("" = the client_id).
	idpAudience, serverAudience string
}

func startAuthStack(t *testing.T, o stackOptions) *authStack {
	t.Helper()
	st := &authStack{idpLogs: &testenv.Buffer{}}
	cfg := config.Default().DevIDP
	cfg.Users = []config.DevIDPUser{
		{Username: "alice", Password: alicePassword, Email: "alice@example.com", Groups: []string{"ml"}},
		{Username: "bob", Password: bobPassword, Email: "bob@example.com"},
	}
	if o.idpAudience != "" {
		cfg.Audience = &o.idpAudience
	}
	secret := ciSecret
	cfg.Clients = append(cfg.Clients, config.DevIDPClient{
		ClientID: "ci", ClientSecret: &secret, GrantTypes: []string{config.GrantTypeClientCredentials},
		Scopes: []string{"platform:read"},
	})
	opts := []devidp.Option{devidp.WithLogger(slog.New(slog.NewTextHandler(st.idpLogs, &slog.HandlerOptions{Level: slog.LevelDebug})))}
	if o.fastClock {
		base := time.Now()
		opts = append(opts, devidp.WithClock(func() time.Time { return base.Add(10 * time.Since(base)) }))
	}
	st.idpURL = devidptest.Start(t, cfg, st.count, opts...)
	st.srv = servertest.Start(t, func(c *config.Config) {
		admin := "admin@example.com"
		c.Auth.Enabled = true
		c.Auth.AdminEmail = &admin
		c.Auth.OIDC.Enabled = true
		c.Auth.OIDC.Issuer = st.idpURL
		c.Auth.OIDC.ClientID = "nmp-cli"
		c.Auth.OIDC.DefaultScopes = loginScopes
		if o.serverAudience != "" {
			c.Auth.OIDC.Audience = &o.serverAudience
		}
	})
	return st
}

// count wraps the IdP's handler to count token requests by grant type.
func (st *authStack) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/token" {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
			r.Body = io.NopCloser(bytes.NewReader(body))
			st.tokenRequests.Add(1)
			if form, err := url.ParseQuery(string(body)); err == nil && form.Get("grant_type") == "refresh_token" {
				st.refreshes.Add(1)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// runner runs the CLI in-process with an explicit environment and a
// temporary HOME, and keeps a transcript of every output.
type runner struct {
	t          *testing.T
	home       string
	env        []string
	ctx        context.Context
	transcript testenv.Buffer
}

func newRunner(t *testing.T, env ...string) *runner {
	home := t.TempDir()
	return &runner{t: t, home: home, env: append([]string{"HOME=" + home}, env...), ctx: context.Background()}
}

type runResult struct {
	code           int
	stdout, stderr string
}

func (r *runner) run(args ...string) runResult {
	r.t.Helper()
	return r.runWith(r.ctx, nil, args...)
}

// runWith runs with ctx; a non-nil stderr also receives stderr live.
func (r *runner) runWith(ctx context.Context, live io.Writer, args ...string) runResult {
	r.t.Helper()
	var stdout, stderr testenv.Buffer
	var errw io.Writer = &stderr
	if live != nil {
		errw = io.MultiWriter(&stderr, live)
	}
	code := cli.Run(ctx, args, strings.NewReader(""), &stdout, errw, r.env)
	// The arguments are left out: they hold test passwords, which are not
	// output.
	fmt.Fprintf(&r.transcript, "$ nmp %s … (exit %d)\n--- stdout\n%s--- stderr\n%s", args[0], code, stdout.String(), stderr.String())
	return runResult{code, stdout.String(), stderr.String()}
}

func (r *runner) ok(args ...string) runResult {
	r.t.Helper()
	res := r.run(args...)
	if res.code != 0 {
		r.t.Fatalf("nmp %v: exit %d\nstdout: %s\nstderr: %s", args, res.code, res.stdout, res.stderr)
	}
	return res
}

func (r *runner) configPath() string { return filepath.Join(r.home, ".config", "nmp", "config.yaml") }

// savedUser is the first user of the config file.
type savedUser struct {
	Name         string `yaml:"name"`
	Type         string `yaml:"type"`
	Token        string `yaml:"token"`
	RefreshToken string `yaml:"refresh_token"`
	Scope        string `yaml:"scope"`
}

func (r *runner) user() savedUser {
	r.t.Helper()
	var f struct {
		Users []savedUser `yaml:"users"`
	}
	data, err := os.ReadFile(r.configPath())
	if err != nil {
		r.t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &f); err != nil || len(f.Users) == 0 {
		r.t.Fatalf("config: %v\n%s", err, data)
	}
	return f.Users[0]
}

// setUser rewrites fields of the first user of the config file.
func (r *runner) setUser(mutate func(u map[string]any)) {
	r.t.Helper()
	data, err := os.ReadFile(r.configPath())
	if err != nil {
		r.t.Fatal(err)
	}
	var f map[string]any
	if err := yaml.Unmarshal(data, &f); err != nil {
		r.t.Fatal(err)
	}
	mutate(f["users"].([]any)[0].(map[string]any))
	out, _ := yaml.Marshal(f)
	if err := os.WriteFile(r.configPath(), out, 0o600); err != nil {
		r.t.Fatal(err)
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// claims decodes a JWT's claims without verification.
func claims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeJWT is an RS256-looking JWT with the given claims and a bogus
// signature: the CLI reads claims unverified, the server would refuse it.
func fakeJWT(c map[string]any) string {
	enc := base64.RawURLEncoding
	body, _ := json.Marshal(c)
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT","kid":"x"}`)) + "." + enc.EncodeToString(body) + "." + enc.EncodeToString([]byte("not-a-signature"))
}

// browserClient is an HTTP client with cookies that follows redirects, as
// a browser would.
func browserClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

func formFields(body string) url.Values {
	v := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(body, -1) {
		v.Set(m[1], htmlUnescape(m[2]))
	}
	return v
}

func htmlUnescape(s string) string {
	r := strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">", "&#61;", "=")
	return r.Replace(s)
}

func readBody(t *testing.T, do func() (*http.Response, error)) (int, string, string) {
	t.Helper()
	resp, err := do()
	if err != nil {
		t.Errorf("request: %v", err)
		return 0, "", ""
	}
	defer testenv.Close(t, resp.Body)
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Request.URL.String()
}

// devIDPBrowserLogin signs in on the dev IdP's /authorize form as a
// browser would and follows the redirect to the CLI's loopback callback;
// it returns the callback page.
func devIDPBrowserLogin(t *testing.T, authURL, username, password string) string {
	b := browserClient(t)
	status, body, final := readBody(t, func() (*http.Response, error) { return b.Get(authURL) })
	if status != http.StatusOK {
		t.Errorf("GET authorize: HTTP %d", status)
		return ""
	}
	form := formFields(body)
	form.Set("username", username)
	form.Set("password", password)
	u, _ := url.Parse(final)
	status, body, _ = readBody(t, func() (*http.Response, error) { return b.PostForm(u.Scheme+"://"+u.Host+"/authorize", form) })
	if status == 0 {
		return ""
	}
	return fmt.Sprintf("HTTP %d\n%s", status, body)
}

// devIDPApproveDevice approves a device flow on the dev IdP's /device form.
func devIDPApproveDevice(t *testing.T, verificationURIComplete, username, password string) string {
	b := browserClient(t)
	status, body, final := readBody(t, func() (*http.Response, error) { return b.Get(verificationURIComplete) })
	if status != http.StatusOK {
		t.Errorf("GET /device: HTTP %d", status)
		return ""
	}
	u, _ := url.Parse(final)
	form := formFields(body)
	form.Set("user_code", u.Query().Get("user_code"))
	form.Set("username", username)
	form.Set("password", password)
	_, body, _ = readBody(t, func() (*http.Response, error) { return b.PostForm(u.Scheme+"://"+u.Host+"/device", form) })
	return body
}

// waitFor polls buf until re matches, returning the first group.
func waitFor(t *testing.T, buf *testenv.Buffer, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(buf.String()); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("no match for %s in:\n%s", re, buf.String())
	return ""
}
