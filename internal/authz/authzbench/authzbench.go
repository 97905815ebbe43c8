// Package authzbench holds the workload of the policy decision point's
// benchmarks (docs/benchmarks.md), shared by the Go benchmarks and by the
// files written for the opa CLI's own benchmark (opa bench): role
// bindings of a given count and the probe request.
package authzbench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/store"
)

// Sizes are the binding counts the benchmarks run at.
var Sizes = []int{100, 10_000, 1_000_000}

// Bindings makes n bindings: about n/3 users over n/10 workspaces with
// Viewer, Editor or Admin, plus the probe user (Editor in ws-0) and the
// seed bindings. The same n gives the same bindings.
func Bindings(n int) []store.RoleBinding {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	users, workspaces := max(n/3, 1), max(n/10, 1)
	roles := []string{"Viewer", "Editor", "Admin"}
	bs := make([]store.RoleBinding, 0, n+4)
	for i := 0; i < n; i++ {
		bs = append(bs, store.RoleBinding{ID: fmt.Sprint(i), Principal: fmt.Sprintf("user-%d@example.com", r.IntN(users)),
			Workspace: fmt.Sprintf("ws-%d", r.IntN(workspaces)), Role: roles[r.IntN(3)], Revision: 1})
	}
	bs = append(bs,
		store.RoleBinding{ID: "p", Principal: "probe@example.com", Workspace: "ws-0", Role: "Editor", Revision: 1},
		store.RoleBinding{ID: "s1", Principal: "*", Workspace: "default", Role: "Editor", Revision: 1},
		store.RoleBinding{ID: "s2", Principal: "*", Workspace: "system", Role: "Viewer", Revision: 1},
		store.RoleBinding{ID: "s3", Principal: "admin@example.com", Workspace: "system", Role: "PlatformAdmin", Revision: 1})
	return bs
}

// Probe is the benchmarked request: an Editor of ws-0 creating a project
// there (reason permission_granted: endpoint lookup, role expansion,
// scope layer).
var Probe = authz.Input{PrincipalID: "probe", PrincipalEmail: "probe@example.com", PrincipalGroups: []string{"team-a"},
	Method: "POST", Path: "/apis/entities/v2/workspaces/ws-0/projects", Scopes: []string{"openid", "platform:write"}}

// ProbeInput is Probe as the input document of the allow entrypoint.
func ProbeInput() map[string]any {
	return map[string]any{"principal_id": Probe.PrincipalID, "principal_email": Probe.PrincipalEmail,
		"principal_groups": []any{"team-a"}, "method": Probe.Method, "path": Probe.Path,
		"scopes": []any{"openid", "platform:write"}}
}

// Engine returns an engine on the built-in policy with Bindings(n)
// loaded, checked to grant the probe.
func Engine(n int) (*authz.Engine, error) {
	doc, err := authz.StaticDocument()
	if err != nil {
		return nil, err
	}
	e, err := authz.NewEngine(doc)
	if err != nil {
		return nil, err
	}
	if err := e.Load(store.PolicyBindings{Revision: 1, Bindings: Bindings(n)}, time.Now()); err != nil {
		return nil, err
	}
	if d := e.Allow(Probe); !d.Allowed || d.Reason != "permission_granted" {
		return nil, fmt.Errorf("probe decision %+v, want permission_granted", d)
	}
	return e, nil
}

// WriteOPAFiles writes dir/data.json ({"authz": data.authz}, as the
// bundle ships it) and dir/input.json (the probe) for
//
//	opa bench -d internal/authz/policy -d dir/data.json -i dir/input.json data.authz.allow
func WriteOPAFiles(dir string, e *authz.Engine) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, v := range map[string]any{"data.json": map[string]any{"authz": e.DataDocument()}, "input.json": ProbeInput()} {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
