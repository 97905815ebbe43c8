package authz_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/store"
)

// newEngine builds the native engine for a corpus file: static data plus
// the file's extra data, with its bindings loaded (unless the file says
// they are not).
func newEngine(t testing.TB, f corpusFile) *authz.Engine {
	t.Helper()
	var bs []store.RoleBinding
	for i, b := range f.Bindings {
		bs = append(bs, store.RoleBinding{ID: fmt.Sprint(i), Principal: b.Principal, Workspace: b.Workspace, Role: b.Role, Revision: 1})
	}
	return authztest.Engine(t, f.ExtraData, bs, f.BindingsLoaded == nil || *f.BindingsLoaded)
}

// evalNative answers one corpus case in the shape of the Rego result.
func evalNative(e *authz.Engine, entrypoint string, input map[string]any) map[string]any {
	switch entrypoint {
	case "allow":
		d := e.Allow(authz.AllowInput(input))
		return map[string]any{"allowed": d.Allowed, "reason": d.Reason,
			"headers": map[string]any{"X-NMP-Authorized": fmt.Sprint(d.Allowed)}}
	case "has_permissions":
		return map[string]any{"allowed": e.HasPermissions(authz.PermissionsFromInput(input))}
	case "has_role":
		return map[string]any{"has_role": e.HasRole(authz.RoleFromInput(input))}
	}
	return nil
}

// TestNativeCorpus runs the shared corpus through the native evaluator;
// TestRegoCorpus runs the same cases through the Rego policy.
func TestNativeCorpus(t *testing.T) {
	total := 0
	for name, f := range loadCorpus(t) {
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			e := newEngine(t, f)
			for i, c := range f.Cases {
				input, err := jsonValue(c.Input)
				if err != nil {
					t.Fatal(err)
				}
				m, _ := input.(map[string]any)
				checkCase(t, fmt.Sprintf("%s case %d %q", name, i, c.Note), c, evalNative(e, c.Entrypoint, m))
				total++
			}
		})
	}
	t.Logf("%d corpus cases", total)
}
