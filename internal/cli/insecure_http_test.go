package cli

import (
	"errors"
	"strings"
	"testing"
)

// TestInsecureHTTPRule: the client of the nmp server refuses plain http://
// to a host that is not loopback unless --insecure-http is given; loopback
// http and https are always allowed.
func TestInsecureHTTPRule(t *testing.T) {
	tests := []struct {
		name     string
		baseURL  string
		insecure bool
		wantErr  bool
	}{
		{name: "loopback http", baseURL: "http://127.0.0.1:8080"},
		{name: "localhost http", baseURL: "http://localhost:8080"},
		{name: "ipv6 loopback http", baseURL: "http://[::1]:8080"},
		{name: "remote http refused", baseURL: "http://nmp.example.com", wantErr: true},
		{name: "remote http by address refused", baseURL: "http://10.1.2.3:8080", wantErr: true},
		{name: "remote http with --insecure-http", baseURL: "http://nmp.example.com", insecure: true},
		{name: "remote https", baseURL: "https://nmp.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := NewApp(strings.NewReader(""), &strings.Builder{}, &strings.Builder{}, nil)
			app.Global.InsecureHTTP = tt.insecure
			c, err := app.serverClient(tt.baseURL, serverTrust{}, "a-token")
			if !tt.wantErr {
				if err != nil || c == nil {
					t.Fatalf("serverClient(%s) = %v", tt.baseURL, err)
				}
				return
			}
			var ee *ExitError
			if !errors.As(err, &ee) || ee.Code != ExitUsage {
				t.Fatalf("serverClient(%s) = %v, want a usage error", tt.baseURL, err)
			}
			for _, want := range []string{"clear text", "--insecure-http", "https://"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// TestInsecureHTTPEveryCommand: every command that sends a token to the
// server refuses a remote http:// base URL before any request, exit 2.
func TestInsecureHTTPEveryCommand(t *testing.T) {
	config := writeConfig(t, `current_context: dev
clusters:
  - {name: dev-cluster, base_url: "http://nmp.example.com"}
users:
  - {name: dev-user, type: oauth, token: "tok", refresh_token: "refresh"}
contexts:
  - {name: dev, cluster: dev-cluster, user: dev-user, workspace: ws}
`)
	tests := []struct {
		name string
		args []string
	}{
		{name: "workspaces list", args: []string{"workspaces", "list"}},
		{name: "members create", args: []string{"members", "create", "--principal", "bob@example.com", "--roles", "Viewer"}},
		{name: "auth can-i", args: []string{"auth", "can-i", "GET", "/v2/workspaces"}},
		{name: "auth login", args: []string{"auth", "login", "--username", "alice", "--password", "pw"}},
		{name: "auth refresh", args: []string{"auth", "refresh"}},
		{name: "base URL from the flag", args: []string{"workspaces", "list", "--base-url", "http://10.0.0.7:8080"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, map[string]string{"NMP_CONFIG_FILE": config}, "", tt.args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, "clear text") || !strings.Contains(r.stderr, "--insecure-http") {
				t.Fatalf("exit %d, stderr %q; want exit 2 explaining the refusal", r.code, r.stderr)
			}
		})
	}
}
