package hardening

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
)

// bindings opens a SQLite store holding the built-in workspaces and
// exactly the given (principal, workspace, role) bindings.
func bindings(t *testing.T, list ...[3]string) *sqlstore.Store {
	t.Helper()
	st := authztest.Store(t, store.Seed{})
	ctx := context.Background()
	for _, b := range list {
		if _, err := st.GetWorkspace(ctx, b[1]); err != nil {
			if _, _, err := st.CreateWorkspace(ctx, store.NewWorkspace{Name: b[1]}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.CreateRoleBinding(ctx, store.NewRoleBinding{Principal: b[0], Workspace: b[1], Role: b[2], By: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// failingScan is a store whose reads fail (the database is down).
type failingScan struct{}

func (failingScan) ScanActiveBindings(context.Context, func(p, w, r string) error) (int64, error) {
	return 0, errors.New("database is down")
}

var fixedNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func checks(mutate func(*config.Config), b BindingScanner) *ServerChecks {
	cfg := config.Default()
	cfg.Auth.Enabled = true
	if mutate != nil {
		mutate(cfg)
	}
	return &ServerChecks{Config: cfg, Bindings: b, PDP: PDPStatus{Provider: "embedded"}, Now: func() time.Time { return fixedNow }}
}

func find(t *testing.T, r Report, id string) Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("no finding %s in %+v", id, r.Findings)
	return Finding{}
}

// staleDetails is what 52 workspaces of 22 stale members each show: 50
// workspaces of 20 names, then a line for the rest.
func staleDetails() []string {
	var names []string
	for p := range 20 {
		names = append(names, fmt.Sprintf("u%02d", p))
	}
	var out []string
	for w := range 50 {
		out = append(out, fmt.Sprintf("w%02d: %s (and 2 more)", w, strings.Join(names, ", ")))
	}
	return append(out, "… and 2 more workspaces")
}

func TestStaleMembers(t *testing.T) {
	var asked time.Time
	tests := []struct {
		name   string
		source StaleMembersFunc
		want   Severity
		seen   string
		detail []string
	}{
		{name: "not recorded", want: Unknown, seen: "last-seen times are not recorded by this server"},
		{name: "source fails", source: func(context.Context, time.Time) (map[string][]string, error) {
			return nil, errors.New("no such table")
		}, want: Unknown, seen: "no such table"},
		{name: "nobody stale", source: func(_ context.Context, since time.Time) (map[string][]string, error) {
			asked = since
			return map[string][]string{}, nil
		}, want: Pass, seen: "90 days"},
		{name: "stale members listed per workspace, * excepted", source: func(_ context.Context, since time.Time) (map[string][]string, error) {
			asked = since
			return map[string][]string{"ml": {"zed@example.com", "bob@example.com"}, "default": {"*"}, "eu": {"carol"}}, nil
		}, want: Warning, seen: "3 member(s) not seen for 90 days or more, in 2 workspace(s)",
			detail: []string{"eu: carol", "ml: bob@example.com, zed@example.com"}},
		{name: "long lists are cut, counts are not", source: func(_ context.Context, since time.Time) (map[string][]string, error) {
			asked = since
			out := map[string][]string{}
			for w := range 52 {
				ws := fmt.Sprintf("w%02d", w)
				for p := range 22 {
					out[ws] = append(out[ws], fmt.Sprintf("u%02d", p))
				}
			}
			return out, nil
		}, want: Warning, seen: "1144 member(s) not seen for 90 days or more, in 52 workspace(s)",
			detail: staleDetails()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked = time.Time{}
			c := checks(nil, bindings(t))
			c.StaleMembers = tt.source
			f := find(t, c.Report(context.Background()), "authz.stale_members")
			if f.Severity != tt.want || !strings.Contains(f.Seen, tt.seen) {
				t.Fatalf("%s %q, want %s %q", f.Severity, f.Seen, tt.want, tt.seen)
			}
			if strings.Join(f.Details, "|") != strings.Join(tt.detail, "|") {
				t.Fatalf("details %q, want %q", f.Details, tt.detail)
			}
			if tt.want == Warning && !strings.Contains(f.Fix, "--stale 90d") {
				t.Fatalf("fix %q", f.Fix)
			}
			if tt.want == Pass || tt.want == Warning {
				if want := fixedNow.Add(-90 * 24 * time.Hour); !asked.Equal(want) {
					t.Fatalf("asked for members not seen since %v, want %v", asked, want)
				}
			}
		})
	}
}

func TestSharedMailbox(t *testing.T) {
	tests := []struct {
		name, email string
		shared      bool
	}{
		{"a person", "alice.smith@example.com", false},
		{"a person with a plus tag", "alice+nmp@example.com", false},
		{"admin", "admin@example.com", true},
		{"admin with a plus tag", "Admin+nmp@example.com", true},
		{"team", "team@example.com", true},
		{"it", "it@example.com", true},
		{"support", "support@example.com", true},
		{"noreply", "noreply@example.com", true},
		{"no-reply", "no-reply@example.com", true},
		{"security", "security@example.com", true},
		{"a -team list", "ml-team@example.com", true},
		{"a dl- list", "dl-platform@example.com", true},
		{"a group", "platform-group@example.com", true},
		{"a -list", "admins-list@example.com", true},
		{"a name containing it", "smith@example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shared, why := SharedMailbox(tt.email)
			if shared != tt.shared || shared && why == "" {
				t.Fatalf("SharedMailbox(%q) = %v %q", tt.email, shared, why)
			}
		})
	}
}

func TestPublicRange(t *testing.T) {
	tests := []struct {
		name, prefix string
		public       bool
	}{
		{"loopback", "127.0.0.1/32", false},
		{"RFC 1918", "10.1.0.0/16", false},
		{"RFC 1918 172.16/12", "172.20.0.0/16", false},
		{"wider than RFC 1918", "10.0.0.0/7", true},
		{"shared address space", "100.64.1.0/24", false},
		{"IPv6 unique local", "fd00::/8", false},
		{"IPv6 loopback", "::1/128", false},
		{"documentation range (public)", "203.0.113.0/24", true},
		{"a public host", "8.8.8.8/32", true},
		{"IPv6 global", "2001:db8::/32", true},
		{"everything", "0.0.0.0/0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := publicRange(netip.MustParsePrefix(tt.prefix)); got != tt.public {
				t.Fatalf("publicRange(%s) = %v", tt.prefix, got)
			}
		})
	}
}

func TestBindingFindings(t *testing.T) {
	tests := []struct {
		name     string
		bindings [][3]string
		failing  bool
		id       string
		want     Severity
		detail   string
	}{
		{name: "store down: platform admins unknown", failing: true, id: "authz.platform_admins", want: Unknown},
		{name: "store down: wildcard bindings unknown", failing: true, id: "authz.wildcard_bindings", want: Unknown},
		{name: "* Viewer in default is fine", bindings: [][3]string{{"*", "default", "Viewer"}, {"a@x.io", "system", "PlatformAdmin"}},
			id: "authz.wildcard_bindings", want: Pass, detail: "default: * holds Viewer (the default workspace)"},
		{name: "* WorkspaceCreator in system is not Editor", bindings: [][3]string{{"*", "system", "WorkspaceCreator"}},
			id: "authz.wildcard_bindings", want: Pass},
		{name: "group at Editor is reviewed", bindings: [][3]string{{"ml-team", "ml", "Editor"}},
			id: "authz.wildcard_bindings", want: Info, detail: "ml: ml-team holds Editor (a group, or a user bound by id"},
		{name: "group at Viewer is fine", bindings: [][3]string{{"ml-team", "ml", "Viewer"}},
			id: "authz.wildcard_bindings", want: Pass},
		{name: "* PlatformAdmin", bindings: [][3]string{{"*", "system", "PlatformAdmin"}},
			id: "authz.platform_admins", want: Error, detail: "*"},
		{name: "PlatformAdmin outside system does not count", bindings: [][3]string{{"a@x.io", "ml", "PlatformAdmin"}},
			id: "authz.platform_admins", want: Warning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b BindingScanner = failingScan{}
			if !tt.failing {
				b = bindings(t, tt.bindings...)
			}
			f := find(t, checks(nil, b).Report(context.Background()), tt.id)
			if f.Severity != tt.want {
				t.Fatalf("%s: %+v", f.Severity, f)
			}
			if tt.want == Unknown && !strings.Contains(f.Seen, "database is down") {
				t.Fatalf("unknown without its reason: %q", f.Seen)
			}
			if tt.detail != "" && !strings.Contains(strings.Join(f.Details, "\n"), tt.detail) {
				t.Fatalf("details %q lack %q", f.Details, tt.detail)
			}
		})
	}
}

// TestIssuerKeys: the algorithms of an issuer's keys decide whether its
// tokens can be accepted; a symmetric key in a JWKS is a warning.
func TestIssuerKeys(t *testing.T) {
	tests := []struct {
		name    string
		keys    string
		want    Severity
		algs    string
		problem string
	}{
		{name: "RS256 and ES256", keys: `[{"kty":"RSA","alg":"RS256","use":"sig"},{"kty":"EC","crv":"P-256"}]`, want: Info, algs: "ES256 RS256"},
		{name: "encryption keys are skipped", keys: `[{"kty":"RSA","alg":"RS256"},{"kty":"RSA","alg":"RSA-OAEP","use":"enc"}]`, want: Info, algs: "RS256"},
		{name: "only HS256", keys: `[{"kty":"oct","alg":"HS256"}]`, want: Warning, algs: "HS256", problem: "symmetric"},
		{name: "only ES512", keys: `[{"kty":"EC","crv":"P-521"}]`, want: Warning, algs: "ES512", problem: "no signing key with an accepted algorithm"},
		{name: "empty key set", keys: `[]`, want: Warning, algs: "none", problem: "no signing key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
				_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks"})
			})
			mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(`{"keys":` + tt.keys + `}`))
			})
			c := checks(func(c *config.Config) { c.Auth.OIDC.AdditionalIssuers = []string{srv.URL} }, bindings(t))
			f := find(t, c.Report(context.Background()), "authn.additional_issuers")
			if f.Severity != tt.want || len(f.Details) != 1 {
				t.Fatalf("%s %q", f.Severity, f.Details)
			}
			if !strings.Contains(f.Details[0], "signing algorithms "+tt.algs) || !strings.Contains(f.Details[0], tt.problem) {
				t.Fatalf("detail %q, want algorithms %q and %q", f.Details[0], tt.algs, tt.problem)
			}
		})
	}
}

// TestIssuerProbeTimeout: an issuer that accepts the connection but never
// answers is reported after the probe timeout, not waited for.
func TestIssuerProbeTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := checks(func(c *config.Config) { c.Auth.OIDC.AdditionalIssuers = []string{srv.URL} }, bindings(t))
	c.ProbeTimeout = 100 * time.Millisecond
	f := find(t, c.Report(context.Background()), "authn.additional_issuers")
	if f.Severity != Warning || !strings.Contains(strings.Join(f.Details, ""), "no answer within 100ms") {
		t.Fatalf("%s %q", f.Severity, f.Details)
	}
}

// TestIssuerProbeCancelled: a probe the caller cancelled is unknown,
// never a pass.
func TestIssuerProbeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := checks(func(c *config.Config) {
		c.Auth.OIDC.Enabled = true
		c.Auth.OIDC.Issuer = "http://127.0.0.1:1"
		c.Auth.OIDC.AdditionalIssuers = []string{"http://127.0.0.1:1/other"}
	}, bindings(t))
	r := c.Report(ctx)
	if f := find(t, r, "authn.additional_issuers"); f.Severity != Unknown {
		t.Fatalf("cancelled probe: %+v", f)
	}
	if f := find(t, r, "authn.oidc"); f.Severity == Pass {
		t.Fatalf("cancelled primary probe passed: %+v", f)
	}
}

func TestClientSecretAgeUsesTheClock(t *testing.T) {
	path := t.TempDir() + "/secret"
	if err := writeFile(path, fixedNow.Add(-89*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	c := checks(func(c *config.Config) { c.Auth.OIDC.Introspection.ClientSecretFile = &path }, bindings(t))
	if f := find(t, c.Report(context.Background()), "secrets.client_secret_age"); f.Severity != Pass || !strings.Contains(f.Seen, "89 days") {
		t.Fatalf("89 days: %+v", f)
	}
	c.Now = func() time.Time { return fixedNow.Add(2 * 24 * time.Hour) }
	if f := find(t, c.Report(context.Background()), "secrets.client_secret_age"); f.Severity != Warning || !strings.Contains(f.Seen, "91 days") {
		t.Fatalf("91 days: %+v", f)
	}
	missing := t.TempDir() + "/missing"
	c.Config.Auth.OIDC.Introspection.ClientSecretFile = &missing
	if f := find(t, c.Report(context.Background()), "secrets.client_secret_age"); f.Severity != Unknown {
		t.Fatalf("missing file: %+v", f)
	}
}

func writeFile(path string, modified time.Time) error {
	if err := os.WriteFile(path, []byte("s3cr3t\n"), 0o600); err != nil {
		return err
	}
	return os.Chtimes(path, modified, modified)
}
