package bundle_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/testenv"
)

// TestOPALoadsTheBundle: the opa CLI loads the built archive as a bundle
// (manifest, roots, Rego v1 policy, data) and its decisions from it are the
// engine's.
func TestOPALoadsTheBundle(t *testing.T) {
	opa, err := exec.LookPath("opa")
	if err != nil {
		testenv.Missing(t, "opa", "not on PATH")
	}
	e := authztest.StaticEngine(t)
	load(t, e, 12, []store.RoleBinding{
		{ID: "1", Principal: "alice@example.com", Workspace: "ml", Role: "Editor", Revision: 10},
		{ID: "2", Principal: "root@example.com", Workspace: store.SystemWorkspace, Role: authz.RolePlatformAdmin, Revision: 11},
		{ID: "3", Principal: "*", Workspace: store.SystemWorkspace, Role: "Viewer", Revision: 12},
	})
	b := build(t, e)
	file := filepath.Join(t.TempDir(), "bundle.tar.gz")
	if err := os.WriteFile(file, b.Bytes, 0o600); err != nil {
		t.Fatal(err)
	}
	const projects = "/apis/entities/v2/workspaces/ml/projects"
	const bundlePath = "/apis/auth/v2/iam/opa-bundle.tar.gz"
	cases := []struct {
		name  string
		input authz.Input
		want  authz.Decision
	}{
		{"editor creates a project", authz.Input{PrincipalID: "alice@example.com", Method: "POST", Path: projects},
			authz.Decision{Allowed: true, Reason: "permission_granted"}},
		{"stranger may not", authz.Input{PrincipalID: "bob@example.com", Method: "POST", Path: projects},
			authz.Decision{Reason: "permission_missing"}},
		{"service reads the bundle", authz.Input{PrincipalID: "service:opa", Method: "GET", Path: bundlePath},
			authz.Decision{Allowed: true, Reason: "permission_granted"}},
		{"viewer may not read the bundle", authz.Input{PrincipalID: "bob@example.com", Method: "GET", Path: bundlePath},
			authz.Decision{Reason: "bundle_forbidden"}},
		{"admin reads the bundle", authz.Input{PrincipalID: "root@example.com", Method: "GET", Path: bundlePath},
			authz.Decision{Allowed: true, Reason: "platform_admin"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := json.Marshal(tc.input)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(opa, "eval", "--bundle", file, "--stdin-input", "--format", "json", "data.authz.allow")
			cmd.Stdin = bytes.NewReader(in)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("opa eval: %v\n%s", err, out)
			}
			var res struct {
				Result []struct {
					Expressions []struct {
						Value authz.Decision `json:"value"`
					} `json:"expressions"`
				} `json:"result"`
			}
			if err := json.Unmarshal(out, &res); err != nil || len(res.Result) != 1 || len(res.Result[0].Expressions) != 1 {
				t.Fatalf("opa eval output %s (%v)", out, err)
			}
			got, engine := res.Result[0].Expressions[0].Value, e.Allow(tc.input)
			if got != tc.want || engine != tc.want {
				t.Fatalf("OPA from the bundle: %+v; engine: %+v; want %+v", got, engine, tc.want)
			}
		})
	}
}
