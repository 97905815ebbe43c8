package authz_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/store"
)

// extraDiff is operator extra data exercising what the static data does
// not: the "-" rule, {workspace_id}, cross-workspace permissions, denied
// prefixes, deny and callers flags, an operator role and scopes.
const extraDiff = `
permissions:
  reports: {reports: {read: {description: Read}, list: {description: List}, create: {description: Create}}}
  ops: {run: {description: Run}}
roles:
  Viewer: {permissions: [reports.reports.read, reports.reports.list]}
  Editor: {permissions: [reports.reports.create]}
  Operator: {description: Runs things, includes: [Viewer], permissions: [ops.run]}
endpoints:
  /apis/reports/v2/workspaces/{workspace}/reports:
    get: {permissions: [reports.reports.list], scopes: ["reports:read", "platform:read"]}
    post: {permissions: [reports.reports.create], scopes: ["reports:write", "platform:write"]}
  /apis/reports/v2/workspaces/{workspace}/reports/{name}:
    get: {permissions: [reports.reports.read]}
    head: {permissions: [reports.reports.list]}
  /apis/reports/health: {get: {permissions: [], public: true}}
  /apis/files/v1/-/{rest}: {get: {permissions: [ops.run]}}
  /apis/files/v1/-/fixed: {get: {permissions: []}}
  /apis/ops/v1/tenants/{workspace_id}/run: {post: {permissions: [ops.run, "system/workspaces.list"]}}
  /apis/ops/v1/internal: {get: {permissions: [], deny: true}}
  /apis/ops/v1/svc: {post: {permissions: [], callers: [service_principal]}}
  /apis/ops/v1/mine: {get: {permissions: [], callers: [principal], scopes: ["ops:read"]}}
config:
  denied_prefixes: [/apis/legacy, /apis/ops/v1/old/]
`

var (
	diffPrincipals = []string{"alice", "bob", "carol@example.com", "root@example.com", "g-ml", "g-ops", "*", "service:jobs", "service:studio", "dave"}
	diffWorkspaces = []string{"default", "system", "ml", "ops", "-"}
	diffRoles      = []string{"Viewer", "Editor", "Admin", "PlatformAdmin", "WorkspaceCreator", "JobRunner", "ServiceSystem", "Operator", "Ghost"}
	diffIDs        = []string{"", "alice", "bob", "dave", "service:jobs", "service:studio", "*", "eve"}
	diffEmails     = []string{"", "", "carol@example.com", "root@example.com", "alice"}
	diffGroups     = []string{"g-ml", "g-ops", "*", "nobody"}
	diffMethods    = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "get", "Post", "", "OPTIONS"}
	diffScopes     = [][]string{nil, {"openid"}, {"platform:read"}, {"platform:write"}, {"entities:read"}, {"entities:write", "openid"},
		{"auth:read"}, {"reports:read"}, {"ops:read", "profile"}, {"a.b"}, {"PLATFORM:READ"}, {"platform:read", "platform:write"}}
	diffSegments = []string{"ml", "ops", "default", "system", "-", "x", "a%2Fb", "%2D", "ml+1", "%6Dl", "%zz", "..", "%2e", "", "fixed", "members"}
	diffPerms    = []string{"workspaces.read", "workspaces.members.create", "projects.create", "reports.reports.read", "ops.run",
		"system/workspaces.list", "ml/projects.read", "unknown.perm", "iam.bundle.read", "entities.read"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// randomPath fills a random endpoint pattern (or noise) with random
// segments and decorations: alias, trailing slash, query, fragment.
func randomPath(r *rand.Rand, patterns []string) string {
	var p string
	switch r.IntN(10) {
	case 0:
		p = "/" + pick(r, []string{"apis/legacy/x", "apis/ops/v1/old", "apis/other/thing", "apis/entities/v2/entities/dataset-1",
			"APIS/entities/v2/workspaces", "apis/auth/v2/iam/opa-bundle%2Etar.gz", "apis/entities/v2", "", "v2/workspaces"})
	default:
		p = pick(r, patterns)
		for strings.Contains(p, "{") {
			i := strings.Index(p, "{")
			j := strings.Index(p, "}")
			p = p[:i] + pick(r, diffSegments) + p[j+1:]
		}
		if strings.HasPrefix(p, "/apis/entities/v2/workspaces") && r.IntN(3) == 0 {
			p = strings.TrimPrefix(p, "/apis/entities")
		}
		if strings.HasPrefix(p, "/apis/files/v1/-/") && r.IntN(2) == 0 {
			p += "/" + pick(r, diffSegments)
		}
	}
	switch r.IntN(8) {
	case 0:
		p += "/"
	case 1:
		p += "?page=2"
	case 2:
		p += "#frag"
	case 3:
		p += "//"
	}
	return p
}

func randomIdentity(r *rand.Rand) (string, string, []string) {
	var groups []string
	for _, g := range diffGroups {
		if r.IntN(4) == 0 {
			groups = append(groups, g)
		}
	}
	return pick(r, diffIDs), pick(r, diffEmails), groups
}

func toAny(xs []string) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// randomAllowInput returns an allow input document, direct or Envoy form.
func randomAllowInput(r *rand.Rand, patterns []string) map[string]any {
	id, email, groups := randomIdentity(r)
	method, path, scopes := pick(r, diffMethods), randomPath(r, patterns), pick(r, diffScopes)
	if r.IntN(6) == 0 {
		headers := map[string]any{}
		if id != "" {
			headers["x-nmp-principal-id"] = id
		}
		if email != "" {
			headers["x-nmp-principal-email"] = email
		}
		if len(groups) > 0 {
			headers["x-nmp-principal-groups"] = strings.Join(groups, " , ")
		}
		if len(scopes) > 0 {
			headers["x-nmp-scopes"] = strings.Join(scopes, " ")
		}
		return map[string]any{"attributes": map[string]any{"request": map[string]any{"http": map[string]any{
			"method": method, "path": path, "headers": headers}}}}
	}
	in := map[string]any{"principal_id": id, "method": method, "path": path}
	if email != "" {
		in["principal_email"] = email
	}
	if groups != nil {
		in["principal_groups"] = toAny(groups)
	}
	if scopes != nil {
		in["scopes"] = toAny(scopes)
	}
	return in
}

func randomPermissionsInput(r *rand.Rand) map[string]any {
	id, email, groups := randomIdentity(r)
	var perms []string
	for n := r.IntN(3); n >= 0; n-- {
		perms = append(perms, pick(r, diffPerms))
	}
	in := map[string]any{"principal_id": id, "principal_email": email, "principal_groups": toAny(groups),
		"workspace": pick(r, diffWorkspaces), "permissions": toAny(perms)}
	if r.IntN(4) == 0 {
		in["on_behalf_of_principal_id"] = pick(r, diffIDs)
	}
	return in
}

func randomRoleInput(r *rand.Rand) map[string]any {
	id, email, groups := randomIdentity(r)
	return map[string]any{"principal_id": id, "principal_email": email, "principal_groups": toAny(groups),
		"workspace": pick(r, diffWorkspaces), "role": pick(r, diffRoles)}
}

func randomBindings(r *rand.Rand) []store.RoleBinding {
	var bs []store.RoleBinding
	for i := 0; i < 10+r.IntN(50); i++ {
		bs = append(bs, store.RoleBinding{ID: strconv.Itoa(i), Principal: pick(r, diffPrincipals),
			Workspace: pick(r, diffWorkspaces), Role: pick(r, diffRoles), Revision: 1})
	}
	return bs
}

// diffSeed is NMP_DIFF_SEED if set (to replay a failure), else the clock.
func diffSeed(t *testing.T) uint64 {
	if s := os.Getenv("NMP_DIFF_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("NMP_DIFF_SEED: %v", err)
		}
		return v
	}
	return uint64(time.Now().UnixNano())
}

// TestDifferential feeds the same randomized data and inputs to the
// native evaluator and to the Rego policy through OPA's Go library and
// requires identical answers (allowed and reason, has_permissions,
// has_role): at least 10,000 cases per run.
func TestDifferential(t *testing.T) {
	seed := diffSeed(t)
	t.Logf("seed %d (replay with NMP_DIFF_SEED=%d)", seed, seed)
	r := rand.New(rand.NewPCG(seed, 0x6e6d70))
	ctx := context.Background()
	mods := policyModules(t, false)
	const states, perState = 8, 1300
	cases, mismatches := 0, 0
	reasons := map[string]int{}
	for st := 0; st < states; st++ {
		doc, err := authz.StaticDocument()
		if err != nil {
			t.Fatal(err)
		}
		if st%2 == 1 {
			if err := doc.MergeExtra([]byte(extraDiff), "differential"); err != nil {
				t.Fatal(err)
			}
		}
		e, err := authz.NewEngine(doc)
		if err != nil {
			t.Fatal(err)
		}
		loaded := st != 2
		if loaded {
			e.Load(store.PolicyBindings{Revision: 1, Bindings: randomBindings(r)}, time.Now())
		}
		data := e.DataDocument()
		if !loaded {
			delete(data, "principals")
		}
		var patterns []string
		for p := range doc.Endpoints {
			patterns = append(patterns, p)
		}
		prepared := map[string]rego.PreparedEvalQuery{}
		for _, ep := range []string{"allow", "has_permissions", "has_role"} {
			opts := []func(*rego.Rego){rego.Query("data.authz." + ep), rego.Store(inmem.NewFromObject(map[string]any{"authz": data}))}
			for p, src := range mods {
				opts = append(opts, rego.Module(p, src))
			}
			if prepared[ep], err = rego.New(opts...).PrepareForEval(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < perState; i++ {
			ep, input := "allow", randomAllowInput(r, patterns)
			switch k := r.IntN(10); {
			case k == 0:
				ep, input = "has_permissions", randomPermissionsInput(r)
			case k == 1:
				ep, input = "has_role", randomRoleInput(r)
			}
			normalized, err := jsonValue(input)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := prepared[ep].Eval(ctx, rego.EvalInput(normalized))
			if err != nil || len(rs) != 1 {
				t.Fatalf("rego %s: %v %v", ep, rs, err)
			}
			want, _ := rs[0].Expressions[0].Value.(map[string]any)
			got := evalNative(e, ep, normalized.(map[string]any))
			cases++
			if ep == "allow" {
				reasons[fmt.Sprint(want["reason"])]++
			}
			if !sameAnswer(ep, got, want) {
				mismatches++
				in, _ := json.Marshal(input)
				t.Errorf("state %d (extra data %v): %s %s\n native %v\n rego   %v", st, st%2 == 1, ep, in, got, want)
				if mismatches >= 10 {
					t.Fatalf("stopping after %d mismatches (seed %d)", mismatches, seed)
				}
			}
		}
	}
	if cases < 10000 {
		t.Fatalf("only %d cases", cases)
	}
	t.Logf("%d cases, %d mismatches; allow reasons: %v", cases, mismatches, reasons)
	// The generator must reach deep rows, not only early denials.
	for _, reason := range []string{"permission_granted", "permission_missing", "scope_missing", "platform_admin",
		"entities_internal", "public_endpoint", "invalid_path", "unknown_endpoint", "cross_workspace_read"} {
		if reasons[reason] == 0 {
			t.Errorf("no case reached reason %s; widen the generator", reason)
		}
	}
}

func sameAnswer(ep string, got, want map[string]any) bool {
	switch ep {
	case "allow":
		return got["allowed"] == want["allowed"] && got["reason"] == want["reason"]
	case "has_permissions":
		return got["allowed"] == want["allowed"]
	}
	return got["has_role"] == want["has_role"]
}
