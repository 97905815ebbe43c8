package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const introYAML = `
auth:
  enabled: true
  oidc:
    enabled: true
    issuer: https://idp.example.com
    client_id: nmp-cli
    introspection:
      enabled: true
      client_id: nmp-server
`

// TestIntrospectionSecretFromEnv: the secret comes from
// NMP_AUTH_OIDC__INTROSPECTION__CLIENT_SECRET and is returned as is.
func TestIntrospectionSecretFromEnv(t *testing.T) {
	cfg, _, _, err := loadYAML(t, introYAML, "NMP_AUTH_OIDC__INTROSPECTION__CLIENT_SECRET=env-Secret-1")
	if err != nil {
		t.Fatal(err)
	}
	got, insecure, err := cfg.Auth.OIDC.Introspection.ClientSecret()
	if err != nil || got != "env-Secret-1" || insecure {
		t.Fatalf("secret %q, insecure %v, err %v", got, insecure, err)
	}
}

// TestIntrospectionSecretFile: read and trimmed; group- or world-readable
// files are flagged; a missing or empty file is an error naming the key,
// never the content.
func TestIntrospectionSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(p, mode)
		return p
	}
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string
		insecure      bool
		err           string
	}{
		{"owner only", "file-Secret\n", 0o600, "file-Secret", false, ""},
		{"world readable", "file-Secret", 0o644, "file-Secret", true, ""},
		{"empty", " \n", 0o600, "", false, "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(tc.name, tc.content, tc.mode)
			c := IntrospectionConfig{ClientSecretFile: &p}
			got, insecure, err := c.ClientSecret()
			if got != tc.want || insecure != tc.insecure || (err == nil) != (tc.err == "") ||
				(err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("secret %q, insecure %v, err %v", got, insecure, err)
			}
		})
	}
	missing := filepath.Join(dir, "missing")
	c := IntrospectionConfig{ClientSecretFile: &missing}
	if _, _, err := c.ClientSecret(); err == nil || !strings.Contains(err.Error(), "client_secret_file") {
		t.Fatalf("err %v", err)
	}
	if _, _, err := (&IntrospectionConfig{}).ClientSecret(); err != ErrNoClientSecret {
		t.Fatalf("err %v", err)
	}
}

// TestIntrospectionValidation: the requirements when enabled; messages
// never show the secret.
func TestIntrospectionValidation(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "s")
	tests := []struct {
		name string
		yaml string
		env  []string
		want string
	}{
		{"no secret", introYAML, nil, "auth.oidc.introspection.client_secret_file: client_secret_file or client_secret"},
		{"both secrets", introYAML + "      client_secret_file: " + secretFile + "\n", []string{"NMP_AUTH_OIDC__INTROSPECTION__CLIENT_SECRET=Sup3r-Secret"},
			"auth.oidc.introspection.client_secret: set either"},
		{"no client id", strings.Replace(introYAML, "client_id: nmp-server", "client_id: ''", 1), []string{"NMP_AUTH_OIDC__INTROSPECTION__CLIENT_SECRET=Sup3r-Secret"},
			"auth.oidc.introspection.client_id: required"},
		{"oidc off", strings.Replace(introYAML, "    enabled: true\n    issuer", "    enabled: false\n    issuer", 1), []string{"NMP_AUTH_OIDC__INTROSPECTION__CLIENT_SECRET=Sup3r-Secret"},
			"auth.oidc.introspection.enabled: requires auth.oidc.enabled"},
		{"bad endpoint", introYAML, []string{"NMP_AUTH_OIDC__INTROSPECTION__CLIENT_SECRET=Sup3r-Secret", "NMP_AUTH_OIDC__INTROSPECTION_ENDPOINT=ftp://x"},
			"auth.oidc.introspection_endpoint: must be an absolute"},
		{"rate zero", introYAML, []string{"NMP_AUTH_OIDC__INTROSPECTION__CLIENT_SECRET=Sup3r-Secret", "NMP_AUTH_OIDC__INTROSPECTION__MAX_REQUESTS_PER_SECOND=0"},
			"auth.oidc.introspection.max_requests_per_second: must be at least 1"},
		{"negative ttl", introYAML, []string{"NMP_AUTH_OIDC__INTROSPECTION__CLIENT_SECRET=Sup3r-Secret", "NMP_AUTH_OIDC__INTROSPECTION__CACHE_TTL_SECONDS=-1"},
			"auth.oidc.introspection.cache_ttl_seconds: must be at least 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := loadYAML(t, tc.yaml, tc.env...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "Sup3r-Secret") {
				t.Fatalf("secret in the error: %v", err)
			}
		})
	}
}
