package doctor_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/devidp/devidptest"
	"github.com/nmp-project/nmp/internal/doctor"
	"github.com/nmp-project/nmp/internal/gateway"
	"github.com/nmp-project/nmp/internal/hardening"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/testenv/nginxtest"
)

// run runs every probe with o (a config path in a fresh private directory
// unless set) and returns the report.
func run(t *testing.T, o doctor.Options) hardening.Report {
	t.Helper()
	if o.ConfigPath == "" {
		o.ConfigPath = filepath.Join(t.TempDir(), "config.yaml")
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	r := doctor.Run(context.Background(), o)
	for _, id := range doctor.IDs() {
		if !slices.ContainsFunc(r.Findings, func(f hardening.Finding) bool { return f.ID == id }) {
			t.Errorf("no finding %s", id)
		}
	}
	return r
}

// find returns the one finding with id.
func find(t *testing.T, r hardening.Report, id string) hardening.Finding {
	t.Helper()
	var out []hardening.Finding
	for _, f := range r.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%d findings %s in %s", len(out), id, dump(r))
	}
	return out[0]
}

func dump(r hardening.Report) string {
	b, _ := json.MarshalIndent(r, "", "  ")
	return string(b)
}

func want(t *testing.T, r hardening.Report, id string, sev hardening.Severity, seen ...string) hardening.Finding {
	t.Helper()
	f := find(t, r, id)
	if f.Severity != sev {
		t.Fatalf("%s: severity %s, want %s: %+v", id, f.Severity, sev, f)
	}
	text := f.Seen + " " + strings.Join(f.Details, " ")
	for _, s := range seen {
		if !strings.Contains(text, s) {
			t.Fatalf("%s: %q does not mention %q", id, text, s)
		}
	}
	if sev != hardening.Pass && sev != hardening.Info && f.Fix == "" && f.Severity != hardening.Unknown {
		t.Fatalf("%s: %s without a fix", id, sev)
	}
	if f.Source != doctor.SourceClient {
		t.Fatalf("%s: source %q", id, f.Source)
	}
	return f
}

func production(issuer string) func(*config.Config) {
	return func(c *config.Config) {
		c.Auth.Enabled = true
		c.Auth.OIDC.Enabled = true
		c.Auth.OIDC.Issuer = issuer
		c.Auth.OIDC.ClientID = "nmp-cli"
		admin := "root@example.com"
		c.Auth.AdminEmail = &admin
	}
}

// TestAgainstServer runs the probes against real servers configured in
// the ways the checks tell apart.
func TestAgainstServer(t *testing.T) {
	iss := oidctest.New(t)
	tests := []struct {
		name   string
		mutate func(*config.Config)
		check  func(t *testing.T, r hardening.Report)
	}{
		{"auth disabled", nil, func(t *testing.T, r hardening.Report) {
			want(t, r, "validation.discovery", hardening.Error, `"auth_enabled": false`)
			want(t, r, "validation.unauthenticated", hardening.Error, "HTTP 200")
			want(t, r, "gateway.strip_headers", hardening.Unknown, "HTTP 200")
			want(t, r, "authn.issuer_https", hardening.Info, "no OIDC issuer")
			want(t, r, "authn.password_grant", hardening.Info)
		}},
		{"development mode trusts identity headers from any peer", func(c *config.Config) {
			c.Auth.Enabled = true
			admin := "root@example.com"
			c.Auth.AdminEmail = &admin
		}, func(t *testing.T, r hardening.Report) {
			want(t, r, "validation.discovery", hardening.Pass)
			want(t, r, "validation.unauthenticated", hardening.Pass, "HTTP 401")
			f := want(t, r, "gateway.strip_headers", hardening.Error, "X-NMP-Principal-Id: HTTP 200", "X-NMP-Principal-Email: HTTP 400 invalid_header")
			if len(f.Details) != 6 {
				t.Fatalf("want one detail per header: %q", f.Details)
			}
		}},
		{"production refuses identity headers from an untrusted peer", production(iss.URL), func(t *testing.T, r hardening.Report) {
			want(t, r, "validation.discovery", hardening.Pass)
			want(t, r, "validation.unauthenticated", hardening.Pass)
			f := want(t, r, "gateway.strip_headers", hardening.Info, "refuses them")
			for _, h := range doctor.HeaderNames() {
				if !strings.Contains(strings.Join(f.Details, "\n"), h+": HTTP 401 untrusted_identity_headers") {
					t.Fatalf("%s not judged: %q", h, f.Details)
				}
			}
			want(t, r, "authn.issuer_https", hardening.Info, iss.URL, "loopback")
			want(t, r, "gateway.base_url_https", hardening.Info, "loopback")
			want(t, r, "validation.clock_skew", hardening.Pass)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := servertest.Start(t, tt.mutate)
			srv.WaitReady(t)
			tt.check(t, run(t, doctor.Options{BaseURL: srv.URL}))
		})
	}
}

// forgetfulNginx is a reverse proxy that passes every client header on.
func forgetfulNginx(upstream string) func(prefix, listen string) (string, error) {
	return func(prefix, listen string) (string, error) {
		return `daemon off;
master_process off;
worker_processes 1;
pid ` + prefix + `/nginx.pid;
error_log ` + prefix + `/error.log warn;
events { worker_connections 64; }
http {
    access_log ` + prefix + `/access.log;
    client_body_temp_path ` + prefix + `/client_body;
    proxy_temp_path ` + prefix + `/proxy;
    fastcgi_temp_path ` + prefix + `/fastcgi;
    uwsgi_temp_path ` + prefix + `/uwsgi;
    scgi_temp_path ` + prefix + `/scgi;
    server {
        listen ` + listen + `;
        location / { proxy_pass http://` + strings.TrimPrefix(upstream, "http://") + `; }
    }
}
`, nil
	}
}

// TestStripHeadersBehindNginx puts a real nginx in front of a server that
// trusts it: one that forgets to strip the identity headers (each is
// caught, by name) and the documented one that strips them (pass).
func TestStripHeadersBehindNginx(t *testing.T) {
	iss := oidctest.New(t)
	trusting := func(c *config.Config) {
		production(iss.URL)(c)
		c.Auth.TrustedProxies = []string{"127.0.0.1/32"}
	}
	t.Run("forgets to strip", func(t *testing.T) {
		srv := servertest.Start(t, trusting)
		gw := nginxtest.Start(t, forgetfulNginx(srv.URL))
		f := want(t, run(t, doctor.Options{BaseURL: gw}), "gateway.strip_headers", hardening.Error, "X-NMP-Principal-Id")
		for _, h := range doctor.HeaderNames() {
			line := ""
			for _, d := range f.Details {
				if strings.HasPrefix(d, h+":") {
					line = d
				}
			}
			if line == "" || strings.Contains(line, "stripped") {
				t.Fatalf("%s is not reported as reaching nmp: %q", h, f.Details)
			}
		}
		if !strings.Contains(f.Seen, "X-NMP-Principal-Email") {
			t.Fatalf("the seen text names every accepted header: %s", f.Seen)
		}
	})
	t.Run("strips them", func(t *testing.T) {
		srv := servertest.Start(t, trusting)
		gw := nginxtest.Start(t, func(prefix, listen string) (string, error) {
			return gateway.NginxConfig{Prefix: prefix, Listen: listen, Upstream: strings.TrimPrefix(srv.URL, "http://")}.Render()
		})
		f := want(t, run(t, doctor.Options{BaseURL: gw}), "gateway.strip_headers", hardening.Pass, "strips them")
		if len(f.Details) != 6 {
			t.Fatalf("one detail per header: %q", f.Details)
		}
	})
}

// startDevIDP runs the development IdP with the CLI client nmp-cli, whose
// password grant is on or off, and a server that trusts it.
func startDevIDP(t *testing.T, passwordGrant bool) string {
	t.Helper()
	cfg := config.Default().DevIDP
	cli := cfg.Clients[0]
	if !passwordGrant {
		cli = devidptest.WithoutPasswordGrant(cli)
	}
	cfg.Clients = []config.DevIDPClient{cli}
	cfg.Users = []config.DevIDPUser{{Username: "alice", Password: "alice-Pw-0d9e8c7b", Email: "alice@example.com"}}
	srv := servertest.Start(t, production(devidptest.Start(t, cfg, nil)))
	return srv.URL
}

func TestPasswordGrant(t *testing.T) {
	tests := []struct {
		name    string
		grantOn bool
		sev     hardening.Severity
		seen    string
	}{
		{"grant on", true, hardening.Warning, "accepts the password grant"},
		{"grant off", false, hardening.Pass, "unauthorized_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := startDevIDP(t, tt.grantOn)
			f := want(t, run(t, doctor.Options{BaseURL: base}), "authn.password_grant", tt.sev, tt.seen, `"nmp-cli"`)
			if tt.sev == hardening.Warning && !strings.Contains(f.Fix, "service-account") {
				t.Fatalf("fix lacks the checklist's advice: %s", f.Fix)
			}
		})
	}
}

func TestTokenLifetime(t *testing.T) {
	iss := oidctest.New(t)
	tests := []struct {
		name    string
		token   string
		refresh bool
		sev     hardening.Severity
		seen    string
	}{
		{"no token", "", false, hardening.Info, "No token"},
		{"one hour", iss.Mint(t, oidctest.Claims{Subject: "a", TTL: time.Hour}), false, hardening.Pass, "1h0m0s"},
		{"eight hours", iss.Mint(t, oidctest.Claims{Subject: "a", TTL: 8 * time.Hour}), true, hardening.Warning, "8h0m0s"},
		{"refresh token held", iss.Mint(t, oidctest.Claims{Subject: "a", TTL: 15 * time.Minute}), true, hardening.Pass, "A refresh token is held"},
		{"opaque token", "opaque-token-4c1e9a", false, hardening.Unknown, "opaque"},
	}
	srv := servertest.Start(t, production(iss.URL))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, doctor.Options{BaseURL: srv.URL, Token: tt.token, RefreshToken: tt.refresh})
			want(t, r, "authn.token_lifetime", tt.sev, tt.seen)
			if tt.token != "" && strings.Contains(dump(r), tt.token) {
				t.Fatal("the token appears in the report")
			}
		})
	}
}

func TestClockSkew(t *testing.T) {
	srv := servertest.Start(t, nil)
	tests := []struct {
		name   string
		offset time.Duration
		sev    hardening.Severity
		seen   string
	}{
		{"in sync", 0, hardening.Pass, "agrees"},
		{"two minutes ahead", 2 * time.Minute, hardening.Warning, "ahead of"},
		{"ten minutes behind", -10 * time.Minute, hardening.Error, "behind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := func() time.Time { return time.Now().Add(tt.offset) }
			want(t, run(t, doctor.Options{BaseURL: srv.URL, Now: now}), "validation.clock_skew", tt.sev, tt.seen)
		})
	}
}

func TestConfigFile(t *testing.T) {
	srv := servertest.Start(t, nil)
	tests := []struct {
		name    string
		dir     string // under a fresh temp dir
		fileMod os.FileMode
		dirMod  os.FileMode
		git     bool
		sev     hardening.Severity
		seen    string
	}{
		{"private", "nmp", 0o600, 0o700, false, hardening.Pass, "is private"},
		{"readable by others", "nmp", 0o644, 0o700, false, hardening.Error, "file mode 0644"},
		{"directory listable", "nmp", 0o600, 0o755, false, hardening.Warning, "mode 0755"},
		{"directory writable by the group", "nmp", 0o600, 0o770, false, hardening.Error, "mode 0770"},
		{"in Dropbox", "Dropbox/nmp", 0o600, 0o700, false, hardening.Warning, `"Dropbox"`},
		{"in Nextcloud", "Nextcloud/nmp", 0o600, 0o700, false, hardening.Warning, `"Nextcloud"`},
		{"inside a git work tree", "repo/nmp", 0o600, 0o700, true, hardening.Warning, "git work tree"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, tt.dir)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if tt.git {
				gitInit(t, filepath.Join(root, "repo"))
			}
			path := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(path, []byte("contexts: []\n"), tt.fileMod); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.fileMod); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tt.dirMod); err != nil {
				t.Fatal(err)
			}
			want(t, run(t, doctor.Options{BaseURL: srv.URL, ConfigPath: path}), "secrets.config_file", tt.sev, tt.seen)
		})
	}
	t.Run("no file", func(t *testing.T) {
		want(t, run(t, doctor.Options{BaseURL: srv.URL}), "secrets.config_file", hardening.Info, "no config file")
	})
}

// gitInit makes dir a git work tree: with git when installed, else with
// the .git directory git would create.
func gitInit(t *testing.T, dir string) {
	t.Helper()
	if bin, err := exec.LookPath("git"); err == nil {
		if out, err := exec.Command(bin, "init", "-q", dir).CombinedOutput(); err != nil {
			t.Fatalf("git init: %v %s", err, out)
		}
		return
	}
	if err := os.MkdirAll(filepath.Join(dir, ".git"), 0o700); err != nil {
		t.Fatal(err)
	}
}

func TestCIScopes(t *testing.T) {
	iss := oidctest.New(t)
	srv := servertest.Start(t, nil)
	tests := []struct {
		name, ci, token, savedScope string
		sev                         hardening.Severity
		seen                        string
	}{
		{"not CI", "", iss.Mint(t, oidctest.Claims{Subject: "a", Scope: "platform:write"}), "", hardening.Info, "Not a CI"},
		{"CI with a write scope", "true", iss.Mint(t, oidctest.Claims{Subject: "a", Scope: "openid platform:read platform:write"}), "", hardening.Warning, "platform:write"},
		{"CI with read scopes", "true", iss.Mint(t, oidctest.Claims{Subject: "a", Scope: "openid platform:read"}), "", hardening.Pass, "platform:read"},
		{"CI with an unscoped token", "1", iss.Mint(t, oidctest.Claims{Subject: "a", Scope: "openid email"}), "", hardening.Warning, "without API scopes"},
		{"CI with an opaque token saved with write scope", "true", "opaque-ci-token-77b2", "platform:read entities:write", hardening.Warning, "entities:write"},
		{"CI without token", "true", "", "", hardening.Info, "no token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"CI": tt.ci}
			r := run(t, doctor.Options{BaseURL: srv.URL, Token: tt.token, SavedScope: tt.savedScope, Getenv: func(k string) string { return env[k] }})
			f := want(t, r, "authz.ci_scopes", tt.sev, tt.seen)
			if tt.sev == hardening.Warning && !strings.Contains(f.Fix, "nmp auth login --scope platform:read") {
				t.Fatalf("fix: %s", f.Fix)
			}
		})
	}
}

// TestServerReport asks the server for its report. Until the server
// offers GET /apis/auth/v2/hardening the PlatformAdmin gets the "does not
// offer" finding; once it does, its findings (Source "server") are added.
func TestServerReport(t *testing.T) {
	iss := oidctest.New(t)
	srv := servertest.Start(t, production(iss.URL))
	srv.WaitReady(t)
	t.Run("not signed in", func(t *testing.T) {
		want(t, run(t, doctor.Options{BaseURL: srv.URL}), "server.report", hardening.Unknown, "sign in as a PlatformAdmin")
	})
	t.Run("PlatformAdmin", func(t *testing.T) {
		admin := iss.Mint(t, oidctest.Claims{Subject: "u-root", Email: "root@example.com"})
		r := run(t, doctor.Options{BaseURL: srv.URL, Token: admin})
		var server []hardening.Finding
		for _, f := range r.Findings {
			if f.Source == "server" {
				server = append(server, f)
			}
		}
		if len(server) == 0 {
			want(t, r, "server.report", hardening.Unknown, "does not offer a hardening report")
			return
		}
		want(t, r, "server.report", hardening.Pass, "The server reported")
	})
	t.Run("token not sent over plain http", func(t *testing.T) {
		r := run(t, doctor.Options{BaseURL: "http://nmp.invalid", Token: "tok-5f0c2b", Timeout: time.Second})
		want(t, r, "server.report", hardening.Unknown, "not sent")
		want(t, r, "gateway.base_url_https", hardening.Error, "clear text")
	})
}

// TestUnreachableIsUnknown: a server that never answers makes every
// network check Unknown within the timeout, never Pass.
func TestUnreachableIsUnknown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() }) // accepted by the kernel, never answered
	start := time.Now()
	r := run(t, doctor.Options{BaseURL: "http://" + ln.Addr().String(), Timeout: 300 * time.Millisecond})
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
	for _, id := range []string{"validation.discovery", "validation.unauthenticated", "validation.clock_skew",
		"gateway.strip_headers", "authn.issuer_https", "authn.password_grant", "server.report"} {
		want(t, r, id, hardening.Unknown, "Could not check")
	}
}
