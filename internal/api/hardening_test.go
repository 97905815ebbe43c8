package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/hardening"
	"github.com/nmp-project/nmp/internal/server"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/testenv"
	"github.com/nmp-project/nmp/internal/tlsconfig/tlstest"
)

const hardeningPath = "/apis/auth/v2/hardening"

// getReport fetches the hardening report with the given headers and
// returns it by finding id.
func getReport(t *testing.T, client *http.Client, url string, header ...string) map[string]hardening.Finding {
	t.Helper()
	req, err := http.NewRequest("GET", url+hardeningPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", hardeningPath, resp.Status)
	}
	var r hardening.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	byID := make(map[string]hardening.Finding, len(r.Findings))
	for _, f := range r.Findings {
		if f.Source != hardening.SourceServer {
			t.Errorf("%s: source %q, want server", f.ID, f.Source)
		}
		if _, dup := byID[f.ID]; dup {
			t.Errorf("finding %s reported twice", f.ID)
		}
		byID[f.ID] = f
	}
	return byID
}

// serverFindings are the ids every server report holds.
var serverFindings = []string{"authn.enabled", "authn.oidc", "authn.development_mode", "authn.unsigned_jwt",
	"authn.admin_email", "authn.additional_issuers", "authn.max_token_lifetime", "authz.platform_admins",
	"authz.wildcard_bindings", "authz.stale_members", "gateway.trusted_proxies", "gateway.tls", "policy.pdp",
	"secrets.client_secret_age"}

// reportingBase is production mode against a live test issuer, with the
// test's loopback peer trusted to send identity headers (so that a case
// can break OIDC and still be asked), a person as admin_email and a 1 h
// token lifetime limit.
func reportingBase(iss *oidctest.Issuer) func(*config.Config) {
	return func(c *config.Config) {
		production("127.0.0.1")(c)
		c.Auth.OIDC.Issuer = iss.URL
		admin := "alice.smith@example.com"
		c.Auth.AdminEmail = &admin
		c.Auth.OIDC.MaxTokenLifetimeSeconds = 3600
	}
}

// hardeningCaller is the identity of the per-finding requests: a service
// principal sent by the trusted loopback peer (or in development mode),
// nothing when auth is off.
func hardeningCaller(c *config.Config) []string {
	if !c.Auth.Enabled {
		return nil
	}
	return []string{"X-NMP-Principal-Id", "service:hardening-test"}
}

func writeSecret(t *testing.T, mode os.FileMode, age time.Duration) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(path, []byte("s3cr3t-value-never-shown\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
	then := time.Now().Add(-age)
	if err := os.Chtimes(path, then, then); err != nil {
		t.Fatal(err)
	}
	return path
}

func introspectionWith(secretFile, secretValue string) func(*config.Config) {
	return func(c *config.Config) {
		c.Auth.OIDC.Introspection.Enabled = true
		c.Auth.OIDC.Introspection.ClientID = "nmp-introspect"
		if secretFile != "" {
			c.Auth.OIDC.Introspection.ClientSecretFile = &secretFile
		}
		if secretValue != "" {
			c.Auth.OIDC.Introspection.ClientSecretValue = &secretValue
		}
	}
}

func grant(t *testing.T, st store.Store, principal, workspace, role string) {
	t.Helper()
	ctx := context.Background()
	if workspace != store.SystemWorkspace && workspace != store.DefaultWorkspace {
		if _, err := st.GetWorkspace(ctx, workspace); err != nil {
			if _, _, err := st.CreateWorkspace(ctx, store.NewWorkspace{Name: workspace}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := st.CreateRoleBinding(ctx, store.NewRoleBinding{Principal: principal, Workspace: workspace, Role: role, By: "test"}); err != nil {
		t.Fatal(err)
	}
}

func granting(principal, workspace, role string) func(*testing.T, store.Store) {
	return func(t *testing.T, st store.Store) { grant(t, st, principal, workspace, role) }
}

// TestHardeningFindings: a server configured wrong for exactly one item
// reports that item's id with the right severity and fix.
func TestHardeningFindings(t *testing.T) {
	iss := oidctest.New(t)
	oldSecret := writeSecret(t, 0o600, 100*24*time.Hour)
	looseSecret := writeSecret(t, 0o644, 24*time.Hour)
	tests := []struct {
		name   string
		mutate func(*config.Config)
		setup  func(t *testing.T, st store.Store)
		id     string
		want   hardening.Severity
		// fix and seen must appear in the finding's Fix and Seen.
		fix, seen string
		// detail must appear in one of its Details.
		detail string
		// unready: the server never becomes ready (do not wait for it).
		unready bool
	}{
		{name: "auth disabled", mutate: func(c *config.Config) { c.Auth.Enabled = false },
			id: "authn.enabled", want: hardening.Error, fix: "auth.enabled: true", seen: "every request is allowed"},
		{name: "no identity provider", mutate: func(c *config.Config) { c.Auth.OIDC.Enabled = false },
			id: "authn.oidc", want: hardening.Warning, fix: "auth.oidc.enabled: true"},
		{name: "issuer that does not answer", mutate: func(c *config.Config) { c.Auth.OIDC.Issuer = "http://127.0.0.1:1" },
			id: "authn.oidc", want: hardening.Warning, fix: "auth.oidc.issuer", seen: "does not answer"},
		{name: "issuer with a trailing slash", mutate: func(c *config.Config) { c.Auth.OIDC.Issuer = iss.URL + "/" },
			id: "authn.oidc", want: hardening.Warning, fix: "auth.oidc.issuer", seen: "trailing slash"},
		{name: "development mode", mutate: func(c *config.Config) { c.Auth.OIDC.Enabled = false },
			id: "authn.development_mode", want: hardening.Error, fix: "auth.oidc.enabled: true", seen: "from any peer"},
		{name: "unsigned tokens in production", mutate: func(c *config.Config) { c.Auth.AllowUnsignedJWT = true },
			id: "authn.unsigned_jwt", want: hardening.Error, fix: "auth.allow_unsigned_jwt: false"},
		{name: "every address trusted", mutate: func(c *config.Config) { c.Auth.TrustedProxies = []string{"0.0.0.0/0"} },
			id: "gateway.trusted_proxies", want: hardening.Error, fix: "auth.trusted_proxies", detail: "0.0.0.0/0: every address"},
		{name: "every IPv6 address trusted", mutate: func(c *config.Config) { c.Auth.TrustedProxies = []string{"127.0.0.1", "::/0"} },
			id: "gateway.trusted_proxies", want: hardening.Error, fix: "auth.trusted_proxies", detail: "::/0: every address"},
		{name: "public range trusted", mutate: func(c *config.Config) { c.Auth.TrustedProxies = []string{"127.0.0.1", "10.0.0.0/8", "203.0.113.0/24"} },
			id: "gateway.trusted_proxies", want: hardening.Warning, fix: "auth.trusted_proxies", detail: "203.0.113.0/24: a public range"},
		{name: "no admin_email", mutate: func(c *config.Config) { c.Auth.AdminEmail = nil },
			id: "authn.admin_email", want: hardening.Warning, fix: "auth.admin_email"},
		{name: "admin_email a shared mailbox", mutate: func(c *config.Config) { e := "admin@example.com"; c.Auth.AdminEmail = &e },
			id: "authn.admin_email", want: hardening.Warning, fix: "one person", seen: "admin@example.com"},
		{name: "admin_email a distribution list", mutate: func(c *config.Config) { e := "platform-team@example.com"; c.Auth.AdminEmail = &e },
			id: "authn.admin_email", want: hardening.Warning, fix: "one person", seen: "distribution list"},
		{name: "no PlatformAdmin", mutate: func(c *config.Config) { c.Auth.AdminEmail = nil },
			id: "authz.platform_admins", want: hardening.Warning, fix: "auth.admin_email", seen: "no principal holds PlatformAdmin"},
		{name: "two PlatformAdmins", setup: granting("bob@example.com", store.SystemWorkspace, "PlatformAdmin"),
			id: "authz.platform_admins", want: hardening.Warning, fix: "role-bindings", detail: "bob@example.com"},
		{name: "PlatformAdmin bound to a group", setup: granting("platform-admins", store.SystemWorkspace, "PlatformAdmin"),
			id: "authz.platform_admins", want: hardening.Error, fix: "one person", detail: "platform-admins"},
		{name: "the seeded default workspace binding", id: "authz.wildcard_bindings", want: hardening.Warning,
			fix: "nmp members update '*'", detail: "default: * holds Editor"},
		{name: "wildcard Admin in another workspace", setup: granting("*", "ml", "Admin"),
			id: "authz.wildcard_bindings", want: hardening.Warning, seen: "ml", detail: "ml: * holds Admin"},
		{name: "slow policy safety net", mutate: func(c *config.Config) { c.Auth.PolicyDataRefreshInterval = 900 },
			id: "policy.pdp", want: hardening.Warning, fix: "auth.policy_data_refresh_interval", seen: "15m0s"},
		{name: "external OPA that does not answer", mutate: func(c *config.Config) {
			c.Auth.Enabled = false // with auth on, OPA would decide (fail closed) this very request
			c.Auth.PolicyDecisionPointProvider = "opa"
			c.Auth.PolicyDecisionPointBaseURL = "http://127.0.0.1:1"
		}, unready: true, id: "policy.pdp", want: hardening.Error, fix: "auth.policy_decision_point_base_url", seen: "pdp"},
		{name: "plain HTTP advertised to clients", mutate: func(c *config.Config) { c.Platform.BaseURL = "http://nmp.example.com" },
			id: "gateway.tls", want: hardening.Warning, fix: "service.tls.cert_file", seen: "http://nmp.example.com"},
		{name: "client secret file older than 90 days", mutate: introspectionWith(oldSecret, ""),
			id: "secrets.client_secret_age", want: hardening.Warning, fix: "rotate", seen: "100 days ago"},
		{name: "client secret file readable by others", mutate: introspectionWith(looseSecret, ""),
			id: "secrets.client_secret_age", want: hardening.Warning, fix: "chmod 600", seen: "group or others"},
		{name: "inline client secret", mutate: introspectionWith("", "inline-s3cr3t-never-shown"),
			id: "secrets.client_secret_age", want: hardening.Warning, fix: "client_secret_file", seen: "set as a value"},
		{name: "no token lifetime limit", mutate: func(c *config.Config) { c.Auth.OIDC.MaxTokenLifetimeSeconds = 0 },
			id: "authn.max_token_lifetime", want: hardening.Warning, fix: "max_token_lifetime_seconds: 3600"},
		{name: "tokens valid for a week", mutate: func(c *config.Config) { c.Auth.OIDC.MaxTokenLifetimeSeconds = 7 * 86400 },
			id: "authn.max_token_lifetime", want: hardening.Warning, fix: "max_token_lifetime_seconds: 3600", seen: "604800"},
		{name: "additional issuer that does not answer", mutate: func(c *config.Config) { c.Auth.OIDC.AdditionalIssuers = []string{"https://127.0.0.1:1"} },
			id: "authn.additional_issuers", want: hardening.Warning, fix: "auth.oidc.additional_issuers", detail: "does not answer"},
		{name: "stale members without last-seen times", mutate: func(c *config.Config) { c.Auth.LastSeenIntervalSeconds = 0 },
			id: "authz.stale_members", want: hardening.Unknown, seen: "last-seen times are not recorded", fix: "auth.last_seen_interval_seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mutate := reportingBase(iss)
			if tt.mutate != nil {
				mutate = func(c *config.Config) { reportingBase(iss)(c); tt.mutate(c) }
			}
			srv := servertest.Start(t, mutate)
			if !tt.unready {
				srv.WaitReady(t) // the policy change feed connects a moment after the listener opens
			}
			if tt.setup != nil {
				tt.setup(t, srv.Store())
			}
			findings := getReport(t, servertest.Client, srv.URL, hardeningCaller(srv.Config)...)
			for _, id := range serverFindings {
				if _, ok := findings[id]; !ok {
					t.Errorf("finding %s missing", id)
				}
			}
			f, ok := findings[tt.id]
			if !ok {
				t.Fatalf("no finding %s", tt.id)
			}
			if f.Severity != tt.want {
				t.Fatalf("%s: severity %s, want %s: %+v", tt.id, f.Severity, tt.want, f)
			}
			if !strings.Contains(f.Fix, tt.fix) || !strings.Contains(f.Seen, tt.seen) {
				t.Fatalf("%s: fix %q (want %q), seen %q (want %q)", tt.id, f.Fix, tt.fix, f.Seen, tt.seen)
			}
			if tt.detail != "" && !strings.Contains(strings.Join(f.Details, "\n"), tt.detail) {
				t.Fatalf("%s: details %q lack %q", tt.id, f.Details, tt.detail)
			}
			if f.Section == "" || f.Title == "" {
				t.Fatalf("%s: section %q, title %q", tt.id, f.Section, f.Title)
			}
			for _, g := range findings {
				all := g.Seen + g.Fix + strings.Join(g.Details, "")
				if strings.Contains(all, "s3cr3t") {
					t.Fatalf("%s shows a secret: %+v", g.ID, g)
				}
			}
		})
	}
}

// TestHardeningHardened: TLS served, OIDC with a live issuer, one
// PlatformAdmin who is a person, no "*" Editor: no finding is a warning
// or an error, and every one is pass or info except the stale members,
// unknown while this server records no last-seen times.
func TestHardeningHardened(t *testing.T) {
	iss := oidctest.New(t)
	ca := tlstest.NewCA(t, "test CA")
	certFile, keyFile := ca.Server(t, "nmp").Write(t, t.TempDir())
	ln := servertest.Listen(t)
	base := "https://" + ln.Addr().String()
	srv := servertest.StartOn(t, ln, func(c *config.Config) {
		c.Auth.Enabled = true
		c.Auth.OIDC.Enabled = true
		c.Auth.OIDC.Issuer = iss.URL
		c.Auth.OIDC.ClientID = "nmp-cli"
		c.Auth.OIDC.MaxTokenLifetimeSeconds = 3600
		admin := "alice.smith@example.com"
		c.Auth.AdminEmail = &admin
		c.Platform.BaseURL = base
		c.Service.TLS = config.TLSConfig{CertFile: certFile, KeyFile: keyFile}
	})
	srv.WaitReady(t)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()
	alice := iss.Mint(t, oidctest.Claims{Subject: "u-alice", Email: "alice.smith@example.com"})

	// Before: the seeded "*" Editor of the default workspace is a warning.
	if f := getReport(t, client, base, bearer(alice)...)["authz.wildcard_bindings"]; f.Severity != hardening.Warning {
		t.Fatalf("seeded * Editor: %+v", f)
	}
	req, err := http.NewRequest("DELETE", base+"/apis/auth/v2/iam/role-bindings/wildcard-default-editor", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke the * Editor binding: %s", resp.Status)
	}

	findings := getReport(t, client, base, bearer(alice)...)
	for _, id := range serverFindings {
		f, ok := findings[id]
		if !ok {
			t.Errorf("finding %s missing", id)
			continue
		}
		want := []hardening.Severity{hardening.Pass, hardening.Info}
		if f.Severity != want[0] && (len(want) == 1 || f.Severity != want[1]) {
			t.Errorf("%s: %s, want %v: %s (fix: %s)", id, f.Severity, want, f.Seen, f.Fix)
		}
	}
	if f := findings["gateway.tls"]; f.Severity != hardening.Pass {
		t.Errorf("TLS served by nmp: %+v", f)
	}
	if f := findings["authz.platform_admins"]; f.Severity != hardening.Pass || !strings.Contains(f.Seen, "alice.smith@example.com") {
		t.Errorf("one PlatformAdmin: %+v", f)
	}
}

// TestHardeningAccess: the report is a PDP decision like any other:
// PlatformAdmin 200, the Admin of a workspace 403, anonymous 401.
func TestHardeningAccess(t *testing.T) {
	iss := oidctest.New(t)
	srv := servertest.Start(t, withOIDC(iss))
	srv.WaitReady(t)
	root := iss.Mint(t, oidctest.Claims{Subject: "u-root", Email: "root@example.com"})
	bob := iss.Mint(t, oidctest.Claims{Subject: "u-bob", Email: "bob@example.com"})
	if got, m := callJSON(t, "POST", srv.URL+"/v2/workspaces", `{"name": "bobs"}`, bearer(bob)...); got != 201 {
		t.Fatalf("bob creates a workspace (and becomes its Admin): %d %v", got, m)
	}
	tests := []struct {
		name   string
		header []string
		status int
		code   string
	}{
		{"PlatformAdmin", bearer(root), 200, ""},
		{"Admin of a workspace", bearer(bob), 403, "forbidden"},
		{"anonymous", nil, 401, ""},
		{"PlatformAdmin with an entities-only token", bearer(iss.Mint(t, oidctest.Claims{Subject: "u-root", Email: "root@example.com", Scope: "entities:read"})), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, m := callJSON(t, "GET", srv.URL+hardeningPath, "", tt.header...)
			if got != tt.status || (tt.code != "" && m["code"] != tt.code) {
				t.Fatalf("%d %v, want %d %s", got, m, tt.status, tt.code)
			}
			if got == 200 {
				if _, ok := m["findings"].([]any); !ok {
					t.Fatalf("no findings: %v", m)
				}
			}
		})
	}
}

// jwksIssuer serves a discovery document naming issuer and a key set with
// one ES256 key on a fresh test server (TLS when ca is set).
func jwksIssuer(t *testing.T, issuer func(r *http.Request) string, ca *tlstest.CA) *httptest.Server {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer(r), "jwks_uri": issuer(r) + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	srv := httptest.NewUnstartedServer(mux)
	if ca != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "idp").TLS(t)}, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

// TestHardeningAdditionalIssuers: each additional issuer is probed
// concurrently; its details say whether discovery and JWKS answer, whether
// it is https and which algorithms it signs with.
func TestHardeningAdditionalIssuers(t *testing.T) {
	iss := oidctest.New(t)
	ca := tlstest.NewCA(t, "idp CA")
	secure := jwksIssuer(t, func(r *http.Request) string { return "https://" + r.Host }, ca)
	// The plain-HTTP issuer has a non-loopback name; the probe client
	// resolves it to its loopback test server.
	const plainName = "idp.example.test"
	plain := jwksIssuer(t, func(*http.Request) string { return "http://" + plainName }, nil)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	probe := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr == plainName+":80" {
				addr = plain.Listener.Addr().String()
			}
			return dialer.DialContext(ctx, network, addr)
		},
	}}
	t.Cleanup(probe.CloseIdleConnections)
	down := "https://127.0.0.1:1"
	tests := []struct {
		name    string
		issuers []string
		want    hardening.Severity
		// lines: a fragment of each issuer's detail line, in order.
		lines []string
	}{
		{name: "one https issuer that answers", issuers: []string{secure.URL}, want: hardening.Info,
			lines: []string{secure.URL + ": https; discovery answers; JWKS answers (1 key); signing algorithms ES256"}},
		{name: "https, http and one that does not answer", issuers: []string{secure.URL, "http://" + plainName, down}, want: hardening.Warning,
			lines: []string{
				secure.URL + ": https; discovery answers; JWKS answers (1 key); signing algorithms ES256",
				"http://" + plainName + ": http (no TLS); discovery answers; JWKS answers (1 key); signing algorithms ES256 — uses http:// to a non-loopback host",
				down + ": https; discovery does not answer; JWKS not tried; signing algorithms none — discovery document:",
			}},
		{name: "none", want: hardening.Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := servertest.Start(t, func(c *config.Config) {
				reportingBase(iss)(c)
				c.Auth.OIDC.AdditionalIssuers = tt.issuers
			}, server.WithProbeClient(probe))
			srv.WaitReady(t)
			f := getReport(t, servertest.Client, srv.URL, hardeningCaller(srv.Config)...)["authn.additional_issuers"]
			if f.Severity != tt.want {
				t.Fatalf("severity %s, want %s: %+v", f.Severity, tt.want, f)
			}
			if len(f.Details) != len(tt.lines) {
				t.Fatalf("details %q, want %d lines", f.Details, len(tt.lines))
			}
			for i, want := range tt.lines {
				if !strings.Contains(f.Details[i], want) {
					t.Errorf("detail %d: %q lacks %q", i, f.Details[i], want)
				}
			}
		})
	}
}

// TestHardeningStaleMembers: a member granted 200 days ago and never seen
// is reported stale in its workspace; once it makes a request (recorded
// and written), the finding passes. A member granted yesterday is never
// stale.
func TestHardeningStaleMembers(t *testing.T) {
	clk := newMovingClock()
	srv := servertest.Start(t, devMode, server.WithClock(clk.Now))
	as(t, srv, root, "POST", ws, `{"name": "ml-team"}`, 201, "")
	as(t, srv, root, "POST", ws+"/ml-team/members", `{"principal": "bob@example.com", "roles": ["Viewer"]}`, 201, "")
	clk.Advance(199 * 24 * time.Hour)
	as(t, srv, root, "POST", ws+"/ml-team/members", `{"principal": "carol@example.com", "roles": ["Viewer"]}`, 201, "")
	clk.Advance(24 * time.Hour)
	flushLastSeen(t, srv) // root's own requests

	f := getReport(t, servertest.Client, srv.URL, "X-NMP-Principal-Id", root)["authz.stale_members"]
	if f.Severity != hardening.Warning || strings.Join(f.Details, "|") != "ml-team: bob@example.com" {
		t.Fatalf("bob never seen in 200 days: %+v", f)
	}

	as(t, srv, "bob@example.com", "GET", ws+"/ml-team", "", 200, "")
	flushLastSeen(t, srv)
	if f := getReport(t, servertest.Client, srv.URL, "X-NMP-Principal-Id", root)["authz.stale_members"]; f.Severity != hardening.Pass {
		t.Fatalf("bob seen just now: %+v", f)
	}
}
