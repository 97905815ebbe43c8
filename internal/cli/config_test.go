package cli

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/cli/clientconfig"
	"gopkg.in/yaml.v3"
)

// configEnv returns an environment whose config file is path (not yet
// existing) under a fresh HOME.
func configEnv(t *testing.T) (env map[string]string, path string) {
	t.Helper()
	home := t.TempDir()
	return map[string]string{"HOME": home}, filepath.Join(home, ".config", "nmp", "config.yaml")
}

func loadConfig(t *testing.T, path string) *clientconfig.File {
	t.Helper()
	f, err := clientconfig.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestConfigSetCreatesDefaultContext(t *testing.T) {
	env, path := configEnv(t)
	res := runCLI(t, env, "", "config", "set", "--base-url", "https://nmp.example.com", "--workspace", "ml-team", "-o", "json")
	if res.code != 0 || res.stdout != "" || !strings.Contains(res.stderr, `Context "default" created.`) {
		t.Fatalf("got %+v", res)
	}
	f := loadConfig(t, path)
	want := `current_context: default
clusters:
  - name: default-cluster
    base_url: https://nmp.example.com
    certificate_authority: null
users:
  - name: default-user
    type: no-auth
contexts:
  - name: default
    cluster: default-cluster
    user: default-user
    workspace: ml-team
    preferences:
      output_format: json
`
	data, _ := os.ReadFile(path)
	if string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}
	if f.CurrentContext != "default" {
		t.Errorf("current = %q", f.CurrentContext)
	}
	info, _ := os.Stat(path)
	dirInfo, _ := os.Stat(filepath.Dir(path))
	if info.Mode().Perm() != 0o600 || dirInfo.Mode().Perm() != 0o700 {
		t.Errorf("modes %v %v", info.Mode(), dirInfo.Mode())
	}
}

func TestConfigSetContexts(t *testing.T) {
	env, path := configEnv(t)
	steps := []struct {
		args        []string
		wantCurrent string
	}{
		{[]string{"config", "set", "--context", "dev", "--base-url", "http://dev:8080"}, "dev"}, // the first context becomes current
		{[]string{"config", "set", "--context", "prod", "--base-url", "https://prod"}, "dev"},   // later ones do not
		{[]string{"config", "set", "-c", "prod", "--activate"}, "prod"},
		{[]string{"config", "use-context", "dev"}, "dev"},
		{[]string{"config", "set", "--workspace", "w1"}, "dev"}, // current context updated
	}
	for _, s := range steps {
		if res := runCLI(t, env, "", s.args...); res.code != 0 {
			t.Fatalf("%v: %+v", s.args, res)
		}
		if got := loadConfig(t, path).CurrentContext; got != s.wantCurrent {
			t.Fatalf("after %v current = %q, want %q", s.args, got, s.wantCurrent)
		}
	}
	f := loadConfig(t, path)
	if f.Context("dev").Workspace != "w1" || f.Context("prod").Workspace != "" {
		t.Errorf("workspace set on the wrong context: %+v", f.Contexts)
	}
	if f.Cluster("prod-cluster").BaseURL != "https://prod" || f.Cluster("dev-cluster").BaseURL != "http://dev:8080" {
		t.Errorf("clusters = %+v", f.Clusters)
	}
	res := runCLI(t, env, "", "config", "current-context")
	if res.code != 0 || res.stdout != "dev\n" {
		t.Errorf("current-context = %+v", res)
	}
	env["NMP_CURRENT_CONTEXT"] = "prod"
	if res := runCLI(t, env, "", "config", "current-context"); res.stdout != "prod\n" {
		t.Errorf("current-context with NMP_CURRENT_CONTEXT = %+v", res)
	}
}

func TestConfigSetNewContextGetsEffectiveBaseURL(t *testing.T) {
	env, path := configEnv(t)
	env["NMP_BASE_URL"] = "http://from-env:9"
	if res := runCLI(t, env, "", "config", "set", "--workspace", "w"); res.code != 0 {
		t.Fatal(res)
	}
	if got := loadConfig(t, path).Cluster("default-cluster").BaseURL; got != "http://from-env:9" {
		t.Errorf("base_url = %q", got)
	}
}

func TestConfigSetAccessToken(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		stdin     string
		wantCode  int
		wantToken string
		wantWarn  bool
	}{
		{"from stdin", []string{"--access-token", "-"}, "  stdin-token-value\n", 0, "stdin-token-value", false},
		{"from the command line warns", []string{"--access-token", "cli-token"}, "", 0, "cli-token", true},
		{"empty stdin", []string{"--access-token", "-"}, "\n", ExitUsage, "", false},
		{"token with spaces", []string{"--access-token", "-"}, "a b", ExitUsage, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, path := configEnv(t)
			// A previous login's refresh token and scope must go.
			if err := clientconfig.Update(path, func(f *clientconfig.File) error {
				f.EnsureContext("default", "http://x")
				u := f.User("default-user")
				u.Type, u.Token, u.RefreshToken, u.Scope = "oauth", "old", "old-refresh", "openid"
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			res := runCLI(t, env, tt.stdin, append([]string{"config", "set"}, tt.args...)...)
			if res.code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %s", res.code, tt.wantCode, res.stderr)
			}
			if got := strings.Contains(res.stderr, "Warning: a token on the command line"); got != tt.wantWarn {
				t.Errorf("warning %v, want %v: %q", got, tt.wantWarn, res.stderr)
			}
			if strings.Contains(res.stderr+res.stdout, "stdin-token-value") {
				t.Error("token echoed")
			}
			if tt.wantCode != 0 {
				return
			}
			u := loadConfig(t, path).User("default-user")
			if u.Type != "oauth" || u.Token != tt.wantToken || u.RefreshToken != "" || u.Scope != "" {
				t.Errorf("user = %+v", u)
			}
		})
	}
}

func TestConfigSetCertificateAuthority(t *testing.T) {
	env, path := configEnv(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := runCLI(t, env, "", "config", "set", "--certificate-authority", ca); res.code != 0 {
		t.Fatal(res)
	}
	if got := loadConfig(t, path).Cluster("default-cluster").CertificateAuthority; got == nil || *got != ca {
		t.Errorf("certificate_authority = %v", got)
	}
	if res := runCLI(t, env, "", "config", "set", "--certificate-authority", ""); res.code != 0 {
		t.Fatal(res)
	}
	if got := loadConfig(t, path).Cluster("default-cluster").CertificateAuthority; got != nil {
		t.Errorf("certificate_authority not cleared: %v", *got)
	}
}

func TestConfigSetCertificateAuthorityData(t *testing.T) {
	env, path := configEnv(t)
	data := base64.StdEncoding.EncodeToString([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	tests := []struct {
		name     string
		value    string
		wantCode int
		want     string // the saved value when wantCode is 0
	}{
		{name: "base64 PEM saved", value: data, want: data},
		{name: "not base64 refused", value: "%%%", wantCode: ExitUsage, want: data},
		{name: "base64 of something else refused", value: base64.StdEncoding.EncodeToString([]byte("hello")), wantCode: ExitUsage, want: data},
		{name: "empty clears", value: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, env, "", "config", "set", "--certificate-authority-data", tt.value)
			if res.code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %s", res.code, tt.wantCode, res.stderr)
			}
			if got := loadConfig(t, path).Cluster("default-cluster").CertificateAuthorityData; got != tt.want {
				t.Errorf("certificate_authority_data = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConfigSetPreservesUnknownKeys(t *testing.T) {
	path := writeConfig(t, configWithContext("http://x", "t", "w")+"extension: {keep: me}\n")
	if res := runCLI(t, map[string]string{"NMP_CONFIG_FILE": path}, "", "config", "set", "--workspace", "w2"); res.code != 0 {
		t.Fatal(res)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "extension: {keep: me}") {
		t.Errorf("unknown key lost:\n%s", data)
	}
}

func TestConfigView(t *testing.T) {
	cfg := `current_context: dev
clusters:
  - {name: dev-cluster, base_url: "http://dev:8080"}
  - {name: prod-cluster, base_url: "https://prod", certificate_authority: /etc/ca.pem}
users:
  - {name: dev-user, type: oauth, token: "eyJhbGciOiJSUzI1NiJ9.secret-payload.sig", refresh_token: "refresh-secret-value-123", scope: openid, secret_extra: hidden}
  - {name: prod-user, type: oauth, token: "short-tok"}
contexts:
  - {name: dev, cluster: dev-cluster, user: dev-user, workspace: ml-team}
  - {name: prod, cluster: prod-cluster, user: prod-user}
`
	tests := []struct {
		name         string
		args         []string
		wantContexts []string
	}{
		{"current context", []string{"config", "view"}, []string{"dev"}},
		{"all contexts", []string{"config", "view", "--all-contexts"}, []string{"dev", "prod"}},
		{"all contexts as json", []string{"config", "view", "--all-contexts", "-o", "json"}, []string{"dev", "prod"}},
		{"--context selects", []string{"config", "view", "--context", "prod"}, []string{"prod"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, cfg)
			res := runCLI(t, map[string]string{"NMP_CONFIG_FILE": path}, "", tt.args...)
			if res.code != 0 {
				t.Fatal(res)
			}
			for _, secret := range []string{"secret-payload", "refresh-secret", "short-tok", "hidden"} {
				if strings.Contains(res.stdout, secret) {
					t.Errorf("view leaks %q:\n%s", secret, res.stdout)
				}
			}
			var view configView
			if err := yaml.Unmarshal([]byte(res.stdout), &view); err != nil { // JSON is YAML too
				t.Fatal(err)
			}
			var names []string
			for _, c := range view.Contexts {
				names = append(names, c.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.wantContexts, ",") || view.ConfigFile != path {
				t.Errorf("view = %+v", view)
			}
			for _, c := range view.Contexts {
				switch c.Name {
				case "dev":
					if c.User.Token != "eyJhbGci…(redacted)" || c.User.RefreshToken != "refresh-…(redacted)" || c.Cluster.BaseURL != "http://dev:8080" || c.Workspace != "ml-team" {
						t.Errorf("dev = %+v %+v %+v", c, c.User, c.Cluster)
					}
				case "prod":
					if c.User.Token != "…(redacted)" || c.Cluster.CertificateAuthority == nil {
						t.Errorf("prod = %+v %+v", c.User, c.Cluster)
					}
				}
			}
		})
	}
}

func TestLegacyUserMigratedOnWrite(t *testing.T) {
	path := writeConfig(t, `current_context: old
clusters: [{name: old-cluster, base_url: "http://x"}]
users: [{name: old-user, type: api-key, token: dev@example.com}]
contexts: [{name: old, cluster: old-cluster, user: old-user}]
`)
	if res := runCLI(t, map[string]string{"NMP_CONFIG_FILE": path}, "", "config", "set", "--workspace", "w"); res.code != 0 {
		t.Fatal(res)
	}
	u := loadConfig(t, path).User("old-user")
	if u.Type != "oauth" || !strings.HasPrefix(u.Token, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.") || !strings.HasSuffix(u.Token, ".") {
		t.Errorf("user = %+v", u)
	}
}

func TestLoosePermissionWarning(t *testing.T) {
	api := newFakeAPI(t)
	path := writeConfig(t, configWithContext(api.URL, "", "ml-team"))
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	res := runCLI(t, map[string]string{"NMP_CONFIG_FILE": path}, "", "members", "list", "-o", "json")
	if res.code != 0 || !strings.Contains(res.stderr, "accessible by group or others") || !strings.HasPrefix(res.stdout, "[") {
		t.Errorf("got %+v", res)
	}
	if res := runCLI(t, map[string]string{"NMP_CONFIG_FILE": path}, "", "config", "use-context", "dev"); res.code != 0 {
		t.Fatal(res)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("mode after write = %v", info.Mode())
	}
}
