package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nmp-project/nmp/internal/cli"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// nmp runs the CLI in-process against a real server.
type nmp struct {
	t   *testing.T
	env []string
}

func newNMP(t *testing.T, srv *servertest.Server) *nmp {
	home := t.TempDir()
	return &nmp{t: t, env: []string{"HOME=" + home, "NMP_BASE_URL=" + srv.URL}}
}

func (n *nmp) run(args ...string) (int, string, string) {
	n.t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb, n.env)
	return code, out.String(), errb.String()
}

func (n *nmp) ok(args ...string) string {
	n.t.Helper()
	code, out, errOut := n.run(args...)
	if code != 0 {
		n.t.Fatalf("nmp %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// TestCLIAgainstServer is the acceptance flow: create a workspace,
// add members, list them with both command forms; every -o json output
// parses; errors exit 3 with the server's detail.
func TestCLIAgainstServer(t *testing.T) {
	srv := servertest.Start(t, nil)
	n := newNMP(t, srv)
	n.ok("config", "set", "--base-url", srv.URL, "--workspace", "ml-team")

	n.ok("workspaces", "create", "ml-team", "--description", "ML team")
	n.ok("members", "create", "--workspace", "ml-team", "--principal", "bob@example.com", "--roles", "Viewer")
	n.ok("workspaces", "members", "create", "-w", "ml-team", "--principal", "*", "--roles", "Viewer,Editor")

	var members []struct {
		Principal string   `json:"principal"`
		Roles     []string `json:"roles"`
	}
	for _, args := range [][]string{
		{"members", "list", "--workspace", "ml-team", "-o", "json"},
		{"workspaces", "members", "list", "-w", "ml-team", "--output-format", "json"},
		{"members", "list", "-o", "json"}, // workspace from the context
	} {
		out := n.ok(args...)
		if err := json.Unmarshal([]byte(out), &members); err != nil {
			t.Fatalf("%v: not JSON: %v\n%s", args, err, out)
		}
		if len(members) != 2 || members[0].Principal != "*" || strings.Join(members[0].Roles, ",") != "Editor,Viewer" ||
			members[1].Principal != "bob@example.com" {
			t.Fatalf("%v: members %+v", args, members)
		}
	}
	table := n.ok("members", "list", "-w", "ml-team")
	if !strings.Contains(table, "PRINCIPAL") || !strings.Contains(table, "bob@example.com") {
		t.Fatalf("table:\n%s", table)
	}
	var yamlMembers []map[string]any
	if err := yaml.Unmarshal([]byte(n.ok("members", "list", "-o", "yaml")), &yamlMembers); err != nil || len(yamlMembers) != 2 {
		t.Fatalf("yaml: %v %v", yamlMembers, err)
	}

	for _, args := range [][]string{
		{"workspaces", "list", "-o", "json"},
		{"workspaces", "get", "ml-team", "-o", "json"},
		{"workspaces", "update", "ml-team", "--description", "new", "-o", "json"},
		{"members", "update", "bob@example.com", "-w", "ml-team", "--roles", "Editor", "-o", "json"},
		{"members", "delete", "bob@example.com", "-w", "ml-team", "-o", "json"},
	} {
		var v any
		if err := json.Unmarshal([]byte(n.ok(args...)), &v); err != nil {
			t.Fatalf("%v: not JSON: %v", args, err)
		}
	}
	var wss []map[string]any
	_ = json.Unmarshal([]byte(n.ok("workspaces", "list", "-o", "json", "--sort", "name")), &wss)
	if len(wss) != 3 || wss[0]["name"] != "default" || wss[1]["name"] != "ml-team" {
		t.Fatalf("workspaces %v", wss)
	}

	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"duplicate workspace", []string{"workspaces", "create", "ml-team"}, 3, "Error: Workspace 'ml-team' already exists (HTTP 409)"},
		{"exist-ok", []string{"workspaces", "create", "ml-team", "--exist-ok"}, 0, ""},
		{"missing member", []string{"members", "delete", "nobody", "-w", "ml-team"}, 3, "(HTTP 404)"},
		{"protected", []string{"workspaces", "delete", "default"}, 3, "built in and cannot be deleted (HTTP 409)"},
		{"unknown role", []string{"members", "create", "-w", "ml-team", "--principal", "x", "--roles", "Owner"}, 3, "Unknown role 'Owner' (HTTP 422)"},
		{"roles required", []string{"members", "create", "-w", "ml-team", "--principal", "x"}, 2, ""},
		{"bad name", []string{"workspaces", "create", "Bad"}, 3, "(HTTP 422)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := n.run(tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tc.code, errOut, tc.stderr)
			}
		})
	}
}

// TestServicesRunConfigErrors: a bad configuration exits 1 with one line
// per problem, each naming its key.
func TestServicesRunConfigErrors(t *testing.T) {
	var out, errb bytes.Buffer
	env := []string{"HOME=" + t.TempDir(), "NMP_AUTH_TOKEN_LEEWAY_SECONDS=999", "NMP_SERVICE_LOG_FORMAT=xml"}
	code := cli.Run(context.Background(), []string{"services", "run"}, strings.NewReader(""), &out, &errb, env)
	if code != 1 {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "Error: ") || !strings.HasPrefix(lines[1], "Error: ") ||
		!strings.Contains(errb.String(), "auth.token_leeway_seconds") || !strings.Contains(errb.String(), "service.log_format") {
		t.Fatalf("stderr:\n%s", errb.String())
	}
}
