package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantInErr string
	}{
		{"unknown command", []string{"frobnicate"}, nil, `unknown command "frobnicate"`},
		{"unknown subcommand", []string{"workspaces", "frobnicate"}, nil, `unknown command "frobnicate"`},
		{"unknown flag", []string{"workspaces", "list", "--bogus"}, nil, "unknown flag: --bogus"},
		{"bad flag value", []string{"workspaces", "list", "--page", "x"}, nil, "invalid argument"},
		{"missing argument", []string{"workspaces", "get"}, nil, "accepts 1 arg"},
		{"extra argument", []string{"workspaces", "delete", "a", "b"}, nil, "accepts 1 arg"},
		{"create without name", []string{"workspaces", "create"}, nil, "missing name"},
		{"name and --name disagree", []string{"workspaces", "create", "a", "--name", "b"}, nil, "disagree"},
		{"update without --description", []string{"workspaces", "update", "ml-team"}, nil, `required flag(s) "description"`},
		{"members create without --roles", []string{"members", "create", "bob", "-w", "ml-team"}, nil, `required flag(s) "roles"`},
		{"members create with empty --roles", []string{"members", "create", "bob", "-w", "ml-team", "--roles", " , "}, nil, "at least one role"},
		{"members update without --roles", []string{"members", "update", "bob", "-w", "ml-team"}, nil, `required flag(s) "roles"`},
		{"members delete without principal", []string{"members", "delete", "-w", "ml-team"}, nil, "missing principal"},
		{"missing workspace", []string{"members", "list"}, nil, "no workspace"},
		{"missing workspace for create", []string{"workspaces", "members", "create", "bob", "--roles", "Viewer"}, nil, "no workspace"},
		{"bad filter", []string{"workspaces", "list", "--filter", "name"}, nil, "invalid --filter"},
		{"bad filter operator", []string{"workspaces", "list", "--filter", "name[like]=x"}, nil, "invalid --filter"},
		{"page zero", []string{"workspaces", "list", "--page", "0"}, nil, "--page must be at least 1"},
		{"page with all pages", []string{"workspaces", "list", "--page", "2", "--all-pages"}, nil, "cannot be combined"},
		{"bad output format flag", []string{"workspaces", "list", "-o", "xml"}, nil, `invalid output format "xml"`},
		{"bad output format env", []string{"workspaces", "list"}, map[string]string{"NMP_OUTPUT_FORMAT": "csv"}, `invalid output format "csv"`},
		{"bad base URL", []string{"workspaces", "list", "--base-url", "localhost:8080"}, nil, "invalid base URL"},
		{"config set without settings", []string{"config", "set"}, nil, "nothing to set"},
		{"config set with --context only", []string{"config", "set", "--context", "x"}, nil, "nothing to set"},
		{"config use-context without name", []string{"config", "use-context"}, nil, "accepts 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t)
			env := map[string]string{"NMP_BASE_URL": api.URL}
			for k, v := range tt.env {
				env[k] = v
			}
			res := runCLI(t, env, "", tt.args...)
			if res.code != ExitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", res.code, ExitUsage, res.stderr)
			}
			if !strings.HasPrefix(res.stderr, "Error: ") || !strings.Contains(res.stderr, tt.wantInErr) {
				t.Errorf("stderr = %q, want Error: …%s…", res.stderr, tt.wantInErr)
			}
			if !strings.Contains(res.stderr, "--help\" for usage") {
				t.Errorf("stderr lacks a usage hint: %q", res.stderr)
			}
			if n := len(api.requests()); n != 0 {
				t.Errorf("%d requests sent for a usage error", n)
			}
		})
	}
}

func TestRemoteErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		route      string
		status     int
		body       string
		wantStderr string
	}{
		{"not found", []string{"workspaces", "get", "nope"}, "GET " + wsPath + "/nope", 404,
			`{"detail":"Workspace 'nope' not found","code":"not_found"}`, "Error: Workspace 'nope' not found (HTTP 404)\n"},
		{"conflict", []string{"workspaces", "create", "ml-team"}, "POST " + wsPath, 409,
			`{"detail":"Workspace 'ml-team' already exists","code":"already_exists"}`, "Error: Workspace 'ml-team' already exists (HTTP 409)\n"},
		{"last admin", []string{"members", "delete", "alice@example.com", "-w", "ml-team"}, "DELETE " + membersPath + "/alice@example.com", 409,
			`{"detail":"Cannot remove the last Admin","code":"last_admin"}`, "Error: Cannot remove the last Admin (HTTP 409)\n"},
		{"forbidden", []string{"workspaces", "delete", "ml-team"}, "DELETE " + wsPath + "/ml-team", 403,
			`{"detail":"Forbidden","code":"forbidden"}`, "Error: Forbidden (HTTP 403)\n"},
		{"unauthorized gets a login hint", []string{"workspaces", "list"}, "GET " + wsPath, 401,
			`{"detail":"Unauthorized","code":"unauthorized"}`, "Error: Unauthorized (HTTP 401)\nHint: run \"nmp auth login\"\n"},
		{"gateway error without JSON", []string{"workspaces", "list"}, "GET " + wsPath, 502,
			`<html>oops</html>`, "Error: Bad Gateway (HTTP 502)\n"},
		{"escape sequences are neutralized", []string{"workspaces", "get", "x"}, "GET " + wsPath + "/x", 404,
			`{"detail":"bad \u001b[31mred\u001b[0m"}`, "Error: bad  [31mred [0m (HTTP 404)\n"},
		{"invalid success body", []string{"workspaces", "get", "x"}, "GET " + wsPath + "/x", 200,
			`not json`, "Error: invalid response from server (HTTP 200)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t)
			api.set(tt.route, tt.status, tt.body)
			res := runCLI(t, map[string]string{"NMP_BASE_URL": api.URL}, "", tt.args...)
			if res.code != ExitRemote {
				t.Errorf("exit %d, want %d", res.code, ExitRemote)
			}
			if !strings.HasPrefix(res.stderr, tt.wantStderr) || res.stdout != "" {
				t.Errorf("stderr = %q, want %q; stdout = %q", res.stderr, tt.wantStderr, res.stdout)
			}
		})
	}
}

func TestUnreachableServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	res := runCLI(t, map[string]string{"NMP_BASE_URL": url}, "", "workspaces", "list", "-o", "json")
	if res.code != ExitRemote || !strings.HasPrefix(res.stderr, "Error: cannot reach "+url) || res.stdout != "" {
		t.Errorf("got %+v", res)
	}
}

func TestCancelled(t *testing.T) {
	api := newFakeAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := runCLIContext(ctx, t, map[string]string{"NMP_BASE_URL": api.URL}, "", "workspaces", "list")
	if res.code != ExitLocal || res.stderr != "Error: cancelled\n" {
		t.Errorf("got %+v", res)
	}
}

func TestLocalErrors(t *testing.T) {
	dangling := "current_context: a\ncontexts:\n  - {name: a, cluster: gone, user: gone}\n"
	tests := []struct {
		name      string
		config    string // written to NMP_CONFIG_FILE unless empty
		env       map[string]string
		args      []string
		wantInErr string
	}{
		{"NMP_CONFIG_FILE missing", "", map[string]string{"NMP_CONFIG_FILE": "/nonexistent/config.yaml"}, []string{"workspaces", "list"}, "does not exist"},
		{"config not YAML", "current_context: [", nil, []string{"workspaces", "list"}, "not valid"},
		{"dangling reference", dangling, nil, []string{"workspaces", "list"}, `unknown cluster "gone"`},
		{"dangling reference on write", dangling, nil, []string{"config", "set", "--workspace", "w"}, `unknown cluster "gone"`},
		{"unknown --context", configWithContext("http://x", "t", "w"), nil, []string{"workspaces", "list", "--context", "nope"}, "context not found"},
		{"unknown NMP_CURRENT_CONTEXT", configWithContext("http://x", "t", "w"), map[string]string{"NMP_CURRENT_CONTEXT": "nope"}, []string{"workspaces", "list"}, "context not found"},
		{"use-context unknown", configWithContext("http://x", "t", "w"), nil, []string{"config", "use-context", "nope"}, "context not found"},
		{"current-context none", "", nil, []string{"config", "current-context"}, "no current context"},
		{"missing CA file", "", nil, []string{"config", "set", "--certificate-authority", "/nonexistent/ca.pem"}, "no such file"},
		{"invalid CA file", "", nil, []string{"config", "set", "--certificate-authority", "/dev/null"}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t)
			env := map[string]string{"NMP_BASE_URL": api.URL}
			if tt.config != "" {
				env["NMP_CONFIG_FILE"] = writeConfig(t, tt.config)
			}
			for k, v := range tt.env {
				env[k] = v
			}
			res := runCLI(t, env, "", tt.args...)
			if res.code != ExitLocal {
				t.Errorf("exit %d, want %d (stderr %q)", res.code, ExitLocal, res.stderr)
			}
			if !strings.HasPrefix(res.stderr, "Error: ") || !strings.Contains(res.stderr, tt.wantInErr) {
				t.Errorf("stderr = %q, want Error: …%s…", res.stderr, tt.wantInErr)
			}
			if n := len(api.requests()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

func TestExistOK(t *testing.T) {
	conflict := `{"detail":"Workspace 'ml-team' already exists","code":"already_exists"}`
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantReqs string
	}{
		{"without --exist-ok", []string{"workspaces", "create", "ml-team"}, ExitRemote, "POST " + wsPath},
		{"with --exist-ok", []string{"workspaces", "create", "ml-team", "--exist-ok", "-o", "json"}, ExitOK,
			"POST " + wsPath + ",GET " + wsPath + "/ml-team"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t)
			api.set("POST "+wsPath, 409, conflict)
			res := runCLI(t, map[string]string{"NMP_BASE_URL": api.URL}, "", tt.args...)
			if res.code != tt.wantCode {
				t.Errorf("exit %d, want %d (%q)", res.code, tt.wantCode, res.stderr)
			}
			var got []string
			for _, r := range api.requests() {
				got = append(got, r.Method+" "+r.RequestURI)
			}
			if strings.Join(got, ",") != tt.wantReqs {
				t.Errorf("requests = %v, want %s", got, tt.wantReqs)
			}
			if tt.wantCode == ExitOK && !strings.Contains(res.stdout, `"name": "ml-team"`) {
				t.Errorf("stdout = %q", res.stdout)
			}
		})
	}
	t.Run("other errors are not swallowed", func(t *testing.T) {
		api := newFakeAPI(t)
		api.set("POST "+wsPath, 422, `{"detail":"bad name","code":"validation_error"}`)
		if res := runCLI(t, map[string]string{"NMP_BASE_URL": api.URL}, "", "workspaces", "create", "X", "--exist-ok"); res.code != ExitRemote {
			t.Errorf("exit %d, want %d", res.code, ExitRemote)
		}
	})
}

func TestVersionAndHelp(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStdout string
	}{
		{"--version", []string{"--version"}, "nmp version dev\n"},
		{"--version after a command", []string{"members", "create", "--version"}, "nmp version dev\n"},
		{"bare nmp prints help", nil, "Usage:"},
		{"bare group prints help", []string{"workspaces"}, "Available Commands:"},
		{"--help", []string{"members", "create", "--help"}, "--roles"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, nil, "", tt.args...)
			if res.code != ExitOK || !strings.Contains(res.stdout, tt.wantStdout) {
				t.Errorf("got %+v, want exit 0 and stdout containing %q", res, tt.wantStdout)
			}
		})
	}
}
