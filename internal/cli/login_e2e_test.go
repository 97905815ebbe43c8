package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/cli"
	"github.com/nmp-project/nmp/internal/testenv"
)

// TestLoginFlowsAgainstDevIDP logs in with each flow against the
// development IdP, then runs the seed's deployment validation (workspaces
// list) and a members list against a real server that trusts the IdP.
func TestLoginFlowsAgainstDevIDP(t *testing.T) {
	t.Parallel()
	st := startAuthStack(t, stackOptions{fastClock: true})
	deviceCode := regexp.MustCompile(`enter the code: ([A-Z0-9-]+)`)
	verifyURL := regexp.MustCompile(`open this URL in a browser:\s+(\S+)`)
	authURL := regexp.MustCompile(`(http://127\.0\.0\.1:\d+/authorize\?\S+)`)

	tests := []struct {
		name string
		args []string
		env  []string
		// drive signs in at the IdP while the CLI waits: from the URL the
		// CLI opened (opened) or from its live stderr (stderr).
		drive func(t *testing.T, opened string, stderr *testenv.Buffer)
		// opens tells whether the CLI must open a browser.
		opens bool
	}{
		{
			name: "password grant with NMP_OIDC_PASSWORD",
			args: []string{"auth", "login", "--username", "alice"},
			env:  []string{"NMP_OIDC_PASSWORD=" + alicePassword},
		},
		{
			name: "password grant from NMP_OIDC_USERNAME and NMP_OIDC_PASSWORD",
			args: []string{"auth", "login"},
			env:  []string{"NMP_OIDC_USERNAME=alice", "NMP_OIDC_PASSWORD=" + alicePassword},
		},
		{
			// The seed's deployment validation, verbatim: "nmp auth login"
			// then "nmp workspaces list".
			name:  "device code, browser opened on verification_uri_complete",
			args:  []string{"auth", "login"},
			env:   []string{"NMP_BASE_URL=" + st.srv.URL},
			opens: true,
			drive: func(t *testing.T, opened string, _ *testenv.Buffer) {
				if body := devIDPApproveDevice(t, opened, "alice", alicePassword); !strings.Contains(body, "Device authorized") {
					t.Errorf("approval page:\n%s", body)
				}
			},
		},
		{
			name: "device code with --no-browser, code typed from the terminal",
			args: []string{"auth", "login", "--no-browser"},
			drive: func(t *testing.T, _ string, stderr *testenv.Buffer) {
				code := waitFor(t, stderr, deviceCode)
				uri := waitFor(t, stderr, verifyURL)
				if body := devIDPApproveDevice(t, uri+"?user_code="+url.QueryEscape(code), "alice", alicePassword); !strings.Contains(body, "Device authorized") {
					t.Errorf("approval page:\n%s", body)
				}
			},
		},
		{
			name:  "browser with PKCE",
			args:  []string{"auth", "login", "--browser"},
			opens: true,
			drive: func(t *testing.T, opened string, _ *testenv.Buffer) {
				if page := devIDPBrowserLogin(t, opened, "alice", alicePassword); !strings.Contains(page, "you can close this window") {
					t.Errorf("callback page:\n%s", page)
				}
			},
		},
		{
			name: "browser with PKCE, --no-browser and a fixed --callback-port",
			args: []string{"auth", "login", "--browser", "--no-browser", "--callback-port", fmt.Sprint(freePort(t))},
			drive: func(t *testing.T, _ string, stderr *testenv.Buffer) {
				if page := devIDPBrowserLogin(t, waitFor(t, stderr, authURL), "alice", alicePassword); !strings.Contains(page, "you can close this window") {
					t.Errorf("callback page:\n%s", page)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRunner(t, tt.env...)
			var opened sync.WaitGroup
			var openedURL string
			ctx := cli.WithDevicePollInterval(context.Background(), time.Second)
			ctx = cli.WithBrowserOpener(ctx, func(_ context.Context, u string) error {
				if !tt.opens {
					t.Errorf("browser opened with --no-browser: %s", u)
					return nil
				}
				openedURL = u
				opened.Go(func() { tt.drive(t, u, nil) })
				return nil
			})
			live := &testenv.Buffer{}
			done := make(chan struct{})
			if tt.drive != nil && !tt.opens {
				go func() {
					defer close(done)
					tt.drive(t, "", live)
				}()
			} else {
				close(done)
			}
			start := time.Now()
			args := tt.args
			if !slices.ContainsFunc(tt.env, func(e string) bool { return strings.HasPrefix(e, "NMP_BASE_URL=") }) {
				args = append(args, "--base-url", st.srv.URL)
			}
			res := r.runWith(ctx, live, args...)
			opened.Wait()
			<-done
			if res.code != 0 {
				t.Fatalf("login: exit %d\n%s", res.code, res.stderr)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("login took %s", d)
			}
			if tt.opens && openedURL == "" {
				t.Error("no browser was opened")
			}
			if !strings.Contains(res.stderr, "Logged in as alice@example.com (context default)") {
				t.Errorf("stderr:\n%s", res.stderr)
			}
			if password := tt.drive == nil && !tt.opens; password != strings.Contains(res.stderr, "bypasses multi-factor authentication") {
				t.Errorf("password grant %v, but the MFA warning is wrong:\n%s", password, res.stderr)
			}
			u := r.user()
			if u.Type != "oauth" || u.Token == "" || u.RefreshToken == "" || u.Scope != loginScopes {
				t.Errorf("saved user: type %q, token %v, refresh token %v, scope %q", u.Type, u.Token != "", u.RefreshToken != "", u.Scope)
			}
			if c := claims(t, u.Token); c["email"] != "alice@example.com" || !strings.Contains(fmt.Sprint(c["scope"]), "platform:write") {
				t.Errorf("token claims %v", c)
			}
			if got := mode(t, r.configPath()); got != 0o600 {
				t.Errorf("config file mode %04o", got)
			}
			if got := mode(t, filepath.Dir(r.configPath())); got != 0o700 {
				t.Errorf("config dir mode %04o", got)
			}
			// The seed's deployment validation, and a members list.
			if out := r.ok("workspaces", "list").stdout; !strings.Contains(out, "default") {
				t.Errorf("workspaces list:\n%s", out)
			}
			r.ok("members", "list", "--workspace", "default")
			var status map[string]any
			if err := json.Unmarshal([]byte(r.ok("auth", "status", "-o", "json").stdout), &status); err != nil {
				t.Fatal(err)
			}
			if status["email"] != "alice@example.com" || status["credential_source"] != "config" || status["refresh_token"] != true ||
				status["usable"] != true || status["principal"] != "alice" || status["token_kind"] != "jwt" {
				t.Errorf("status %v", status)
			}
		})
	}
}

// TestRefreshLockConcurrency: several nmp processes (separate App
// instances) find the saved token about to expire at the same time;
// exactly one refresh request reaches the IdP and all of them end up with
// the new token.
// TestLoginAudienceAgainstDevIDP runs the password login against a server
// that expects the audience api://nmp. The dev IdP issues every token for
// its configured dev_idp.audience and ignores the requested one: when that
// is api://nmp the saved token works; when it is the default (client_id)
// the server refuses the token, and the CLI says why and saves nothing.
func TestLoginAudienceAgainstDevIDP(t *testing.T) {
	for _, tt := range []struct {
		name        string
		idpAudience string
		wantCode    int
		wantErr     string
	}{
		{"IdP issues the server's audience", "api://nmp", 0, "Logged in as alice@example.com"},
		{"IdP ignores the requested audience", "", 3, `the server at %s refuses the new token, so nothing was saved: ` +
			`the token's audience (aud) is ["nmp-cli"] but the server expects "api://nmp": the identity provider ignored the requested audience`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := startAuthStack(t, stackOptions{idpAudience: tt.idpAudience, serverAudience: "api://nmp"})
			r := newRunner(t, "NMP_BASE_URL="+st.srv.URL, "NMP_OIDC_PASSWORD="+alicePassword)
			res := r.run("auth", "login", "--username", "alice")
			want := tt.wantErr
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, st.srv.URL)
			}
			if res.code != tt.wantCode || !strings.Contains(res.stderr, want) {
				t.Fatalf("exit %d, want %d and %q:\n%s", res.code, tt.wantCode, want, res.stderr)
			}
			if tt.wantCode != 0 {
				if strings.Contains(res.stderr, "Logged in") {
					t.Error("a refused login says it logged in")
				}
				if _, err := os.Stat(r.configPath()); err == nil && r.user().Token != "" {
					t.Error("a refused token was saved")
				}
				return
			}
			if aud := claims(t, r.user().Token)["aud"]; fmt.Sprint(aud) != "api://nmp" && fmt.Sprint(aud) != "[api://nmp]" {
				t.Errorf("aud %v", aud)
			}
			r.ok("workspaces", "list")
		})
	}
}

func TestRefreshLockConcurrency(t *testing.T) {
	st := startAuthStack(t, stackOptions{})
	r := newRunner(t, "NMP_BASE_URL="+st.srv.URL, "NMP_OIDC_PASSWORD="+alicePassword)
	r.ok("auth", "login", "--username", "alice")
	if n := st.refreshes.Load(); n != 0 {
		t.Fatalf("%d refreshes before the test", n)
	}

	expiring := func() string {
		now := time.Now()
		return fakeJWT(map[string]any{"sub": "alice", "email": "alice@example.com", "iat": now.Add(-time.Hour).Unix(), "exp": now.Add(time.Minute).Unix()})
	}
	old := expiring()
	r.setUser(func(u map[string]any) { u["token"] = old })

	const procs = 6
	var wg sync.WaitGroup
	outs := make([]runResult, procs)
	for i := range procs {
		wg.Go(func() {
			if i%2 == 0 {
				outs[i] = r.run("auth", "token")
			} else {
				outs[i] = r.run("workspaces", "list", "-o", "json")
			}
		})
	}
	wg.Wait()
	if n := st.refreshes.Load(); n != 1 {
		t.Errorf("%d refresh requests reached the IdP, want exactly 1", n)
	}
	saved := r.user().Token
	if saved == old {
		t.Fatal("the token was not replaced")
	}
	for i, res := range outs {
		if res.code != 0 {
			t.Errorf("process %d: exit %d: %s", i, res.code, res.stderr)
		}
		if i%2 == 0 && strings.TrimSpace(res.stdout) != saved {
			t.Errorf("process %d printed a token other than the saved one", i)
		}
	}
	if exp := claims(t, saved)["exp"].(float64); time.Until(time.Unix(int64(exp), 0)) < 50*time.Minute {
		t.Errorf("new token expires in %s", time.Until(time.Unix(int64(exp), 0)))
	}

	// The hook is in one place: every server-calling command refreshes,
	// unless --no-auto-refresh or NMP_ACCESS_TOKEN.
	t.Run("no refresh with --no-auto-refresh or NMP_ACCESS_TOKEN", func(t *testing.T) {
		r.setUser(func(u map[string]any) { u["token"] = expiring() })
		before := st.refreshes.Load()
		if res := r.run("workspaces", "list", "--no-auto-refresh"); res.code != 3 || !strings.Contains(res.stderr, "HTTP 401") {
			t.Errorf("--no-auto-refresh with the fake token: exit %d %s", res.code, res.stderr)
		}
		envRunner := &runner{t: t, home: r.home, ctx: r.ctx, env: append(append([]string{}, r.env...), "NMP_ACCESS_TOKEN="+expiring())}
		if res := envRunner.run("workspaces", "list"); res.code != 3 {
			t.Errorf("NMP_ACCESS_TOKEN: exit %d", res.code)
		}
		if n := st.refreshes.Load() - before; n != 0 {
			t.Errorf("%d refreshes", n)
		}
		r.ok("auth", "can-i", "GET", "/v2/workspaces")
		if n := st.refreshes.Load() - before; n != 1 {
			t.Errorf("auth can-i: %d refreshes, want 1", n)
		}
	})
}

// TestSecretsNeverPrinted runs a whole session with --verbose and checks
// that no access token, refresh token, password or client secret appears
// in any output or log, except the stdout of nmp auth token.
func TestSecretsNeverPrinted(t *testing.T) {
	libLogs := &testenv.Buffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(libLogs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(prev)

	st := startAuthStack(t, stackOptions{})
	r := newRunner(t)
	secrets := map[string]string{"alice's password": alicePassword, "bob's password": bobPassword, "client secret": ciSecret}
	collect := func(label string) {
		u := r.user()
		if u.Token != "" {
			secrets[label+" access token"] = u.Token
		}
		if u.RefreshToken != "" {
			secrets[label+" refresh token"] = u.RefreshToken
		}
	}
	var tokenOut []string

	r.ok("auth", "login", "--username", "alice", "--password", alicePassword, "--base-url", st.srv.URL, "-v")
	collect("login")
	r.ok("workspaces", "list", "-v")
	r.ok("members", "list", "-w", "default", "-v")
	r.ok("auth", "refresh", "-v")
	collect("refreshed")
	r.setUser(func(u map[string]any) {
		u["token"] = fakeJWT(map[string]any{"sub": "alice", "exp": time.Now().Unix() + 30})
	})
	r.ok("workspaces", "list", "-v", "-o", "json") // automatic refresh
	collect("auto-refreshed")
	r.ok("auth", "status", "-v")
	r.ok("auth", "status", "-o", "yaml")
	tokenOut = append(tokenOut, r.ok("auth", "token", "-v").stdout)
	r.ok("auth", "token", "--decode")
	r.ok("config", "view", "-v")
	r.ok("auth", "can-i", "GET", "/v2/workspaces", "-v")
	// A failed password login: the IdP's error must not echo the password.
	if res := r.run("auth", "login", "--username", "bob", "--password", "wrong-"+bobPassword, "-v"); res.code != 3 {
		t.Errorf("wrong password: exit %d", res.code)
	}
	secrets["wrong password"] = "wrong-" + bobPassword
	r.setUser(func(u map[string]any) { u["refresh_token"] = "bogus-refresh-token-value-1234" })
	secrets["bogus refresh token"] = "bogus-refresh-token-value-1234"
	if res := r.run("auth", "refresh", "-v"); res.code != 3 || !strings.Contains(res.stderr, "session expired") {
		t.Errorf("invalid refresh token: exit %d %s", res.code, res.stderr)
	}
	r.ok("auth", "logout", "-v")

	if len(tokenOut) != 1 || strings.TrimSpace(tokenOut[0]) != secrets["auto-refreshed access token"] {
		t.Error("nmp auth token did not print the current token")
	}
	// Everything else: the CLI transcript minus auth token's stdout, the
	// server's and the IdP's logs, and zitadel's (slog default).
	transcript := strings.Replace(r.transcript.String(), tokenOut[0], "<auth token output>", 1)
	outputs := map[string]string{
		"CLI transcript": transcript,
		"server logs":    st.srv.Logs(),
		"IdP logs":       st.idpLogs.String(),
		"library logs":   libLogs.String(),
	}
	if !strings.Contains(transcript, "nmp: POST "+st.idpURL+"/token -> 200") {
		t.Errorf("verbose output lacks the IdP requests:\n%s", transcript)
	}
	for what, out := range outputs {
		for name, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Errorf("%s contains the %s", what, name)
			}
		}
	}
	if len(secrets) < 9 {
		t.Errorf("only %d secrets collected", len(secrets))
	}
}

// TestConfigFileProtection: login writes a 0600 file in a 0700 directory;
// a group/world-readable file is warned about and fixed by the login.
func TestConfigFileProtection(t *testing.T) {
	st := startAuthStack(t, stackOptions{})
	r := newRunner(t, "NMP_BASE_URL="+st.srv.URL, "NMP_OIDC_PASSWORD="+alicePassword)
	if err := os.MkdirAll(filepath.Dir(r.configPath()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.configPath(), []byte("current_context: ''\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(r.configPath(), 0o644); err != nil {
		t.Fatal(err)
	}
	res := r.ok("auth", "login", "--username", "alice")
	if !strings.Contains(res.stderr, "accessible by group or others (mode 0644)") {
		t.Errorf("no permission warning:\n%s", res.stderr)
	}
	if got := mode(t, r.configPath()); got != 0o600 {
		t.Errorf("mode after login %04o", got)
	}
	if res := r.ok("auth", "status"); strings.Contains(res.stderr, "accessible by group") {
		t.Errorf("warning after the fix:\n%s", res.stderr)
	}
}
