package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const envToken = "env-secret-token-0123456789"

func TestTokenSentAsBearerAndNeverPrinted(t *testing.T) {
	unreachable := httptest.NewServer(http.NotFoundHandler())
	unreachable.Close()
	tests := []struct {
		name   string
		args   []string
		route  string
		status int
		body   string
		dead   bool // use an unreachable server
	}{
		{name: "success with --verbose", args: []string{"workspaces", "list", "--verbose"}},
		{name: "json with -v", args: []string{"members", "list", "-w", "ml-team", "-v", "-o", "json"}},
		{name: "yaml", args: []string{"workspaces", "get", "ml-team", "-o", "yaml"}},
		{name: "401", args: []string{"workspaces", "list", "-v"}, route: "GET " + wsPath, status: 401,
			body: `{"detail":"Invalid bearer token","code":"invalid_token"}`},
		{name: "500", args: []string{"members", "create", "*", "--roles", "Viewer", "-w", "ml-team", "-v"}, route: "POST " + membersPath, status: 500,
			body: `{"detail":"Internal error","code":"internal_error"}`},
		{name: "network failure", args: []string{"workspaces", "list", "-v"}, dead: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t)
			if tt.route != "" {
				api.set(tt.route, tt.status, tt.body)
			}
			base := api.URL
			if tt.dead {
				base = unreachable.URL
			}
			res := runCLI(t, map[string]string{"NMP_BASE_URL": base, "NMP_ACCESS_TOKEN": envToken}, "", tt.args...)
			for _, out := range []string{res.stdout, res.stderr} {
				if strings.Contains(out, envToken) || strings.Contains(out, envToken[:12]) {
					t.Errorf("token printed: %q", out)
				}
			}
			for _, r := range api.requests() {
				if got := r.Header.Get("Authorization"); got != "Bearer "+envToken {
					t.Errorf("Authorization = %q", got)
				}
				assertNoIdentityHeaders(t, r.Header)
			}
		})
	}
}

func assertNoIdentityHeaders(t *testing.T, h http.Header) {
	t.Helper()
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-nmp-") {
			t.Errorf("identity header %s sent", k)
		}
	}
}

func TestTokenPrecedence(t *testing.T) {
	tests := []struct {
		name     string
		cfgToken string
		env      map[string]string
		wantAuth string
	}{
		{"NMP_ACCESS_TOKEN beats the context", "cfg-token", map[string]string{"NMP_ACCESS_TOKEN": "env-token"}, "Bearer env-token"},
		{"context token", "cfg-token", nil, "Bearer cfg-token"},
		{"no token, no header", "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t)
			env := map[string]string{"NMP_CONFIG_FILE": writeConfig(t, configWithContext(api.URL, tt.cfgToken, "ml-team"))}
			for k, v := range tt.env {
				env[k] = v
			}
			if res := runCLI(t, env, "", "members", "list"); res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			r := api.requests()[0]
			if _, present := r.Header["Authorization"]; present != (tt.wantAuth != "") || r.Header.Get("Authorization") != tt.wantAuth {
				t.Errorf("Authorization = %q (present %v), want %q", r.Header.Get("Authorization"), present, tt.wantAuth)
			}
			assertNoIdentityHeaders(t, r.Header)
		})
	}
}

func TestVerboseLogsRequests(t *testing.T) {
	api := newFakeAPI(t)
	res := runCLI(t, map[string]string{"NMP_BASE_URL": api.URL}, "", "workspaces", "list", "--page", "2", "-v", "-o", "json")
	want := "nmp: GET " + api.URL + wsPath + "?page=2 -> 200 ("
	if !strings.Contains(res.stderr, want) {
		t.Errorf("stderr = %q, want it to contain %q", res.stderr, want)
	}
	if strings.Contains(res.stdout, "nmp:") {
		t.Errorf("verbose log on stdout: %q", res.stdout)
	}
}
