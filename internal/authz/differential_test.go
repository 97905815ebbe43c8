package authz_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
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
	return allowInputDoc(r.IntN(6) == 0, " , ", id, email, groups, method, path, scopes)
}

// allowInputDoc renders an allow input: the Envoy form (identity in the
// x-nmp-* headers, groups joined with groupSep) or the direct form.
func allowInputDoc(envoy bool, groupSep, id, email string, groups []string, method, path string, scopes []string) map[string]any {
	if envoy {
		headers := map[string]any{}
		if id != "" {
			headers["x-nmp-principal-id"] = id
		}
		if email != "" {
			headers["x-nmp-principal-email"] = email
		}
		if len(groups) > 0 {
			headers["x-nmp-principal-groups"] = strings.Join(groups, groupSep)
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

// diffDocument is the static data, with extraDiff merged if extra.
func diffDocument(extra bool) (*authz.Document, error) {
	doc, err := authz.StaticDocument()
	if err != nil {
		return nil, err
	}
	if extra {
		if err := doc.MergeExtra([]byte(extraDiff), "differential"); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// diffPatterns returns the document's endpoint patterns, sorted: ranging
// over doc.Endpoints (a map) would make the cases depend on Go's map
// iteration order instead of on the seed alone.
func diffPatterns(extra bool) ([]string, error) {
	doc, err := diffDocument(extra)
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(doc.Endpoints)), nil
}

// diffCase is one generated request: the entrypoint and its input. A
// constructed case (differential_anchor_test.go) also names the answer it
// must get: a reason of allow, or "true"/"false".
type diffCase struct {
	Entrypoint string         `json:"entrypoint"`
	Input      map[string]any `json:"input"`
	Want       string         `json:"want,omitempty"`
	Note       string         `json:"note,omitempty"`
}

// diffState is one policy state (static data, optionally with extraDiff;
// bindings loaded or not) and the cases run against it.
type diffState struct {
	Extra    bool                `json:"extra"`
	Loaded   bool                `json:"loaded"`
	Bindings []store.RoleBinding `json:"bindings"`
	Cases    []diffCase          `json:"cases"`
}

// Shape of a run: states x casesPerState random cases, then the
// constructed states (anchorStates).
const diffStates, diffCasesPerState = 8, 1300

// generateDiff returns every state and case of a run. It is a pure
// function of the seed: all randomness comes from PCGs seeded with it
// (one stream for the random states, one for the constructed ones, so
// that adding a constructed case does not change the random ones), and
// nothing ranges over a map.
func generateDiff(seed uint64) ([]diffState, error) {
	r := rand.New(rand.NewPCG(seed, 0x6e6d70))
	var patterns [2][]string
	for i, extra := range []bool{false, true} {
		var err error
		if patterns[i], err = diffPatterns(extra); err != nil {
			return nil, err
		}
	}
	states := make([]diffState, 0, diffStates)
	for st := 0; st < diffStates; st++ {
		s := diffState{Extra: st%2 == 1, Loaded: st != 2}
		if s.Loaded {
			s.Bindings = randomBindings(r)
		}
		pats := patterns[0]
		if s.Extra {
			pats = patterns[1]
		}
		s.Cases = make([]diffCase, 0, diffCasesPerState)
		for i := 0; i < diffCasesPerState; i++ {
			c := diffCase{Entrypoint: "allow", Input: randomAllowInput(r, pats)}
			switch r.IntN(10) {
			case 0:
				c = diffCase{Entrypoint: "has_permissions", Input: randomPermissionsInput(r)}
			case 1:
				c = diffCase{Entrypoint: "has_role", Input: randomRoleInput(r)}
			}
			s.Cases = append(s.Cases, c)
		}
		states = append(states, s)
	}
	return append(states, anchorStates(rand.New(rand.NewPCG(seed, 0x616e63686f72)))...), nil
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

// diffReplay is the command that reruns TestDifferential on seed's cases.
func diffReplay(seed uint64) string {
	return fmt.Sprintf("NMP_DIFF_SEED=%d go test ./internal/authz -run '^TestDifferential$' -count=1", seed)
}

// diffLoadTime is the reload time given to the engine: a constant, so
// that nothing in a run depends on the clock but the default seed.
var diffLoadTime = time.Unix(0, 0).UTC()

// TestDifferential feeds the same randomized data and inputs to the
// native evaluator and to the Rego policy through OPA's Go library and
// requires identical answers (allowed and reason, has_permissions,
// has_role): at least 10,000 random cases per run, plus constructed cases
// that reach every reason of allow and both answers of has_permissions
// and has_role whatever the seed. The cases are a pure function of the
// seed, which a failure prints with the command that replays it.
func TestDifferential(t *testing.T) {
	seed := diffSeed(t)
	t.Logf("seed %d", seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("TestDifferential failed with seed %d; replay the same cases with:\n  %s", seed, diffReplay(seed))
		}
	})
	states, err := generateDiff(seed)
	if err != nil {
		t.Fatal(err)
	}
	wantReasons, err := policyReasons()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The policy is compiled once; each state's queries are prepared
	// against it and the state's data.
	compiler, err := ast.CompileModules(policyModules(t, false))
	if err != nil {
		t.Fatalf("compile the policy: %v", err)
	}
	// Under the race detector (which slows OPA's evaluator about eightfold
	// and finds nothing in this single-goroutine test) every
	// randomStride-th random case is evaluated; the constructed cases, which
	// carry the coverage checks below, always are. .ci/run runs this test
	// again without -race, every case.
	randomStride := 1
	if raceBuild {
		randomStride = 16
		t.Logf("race build: every %dth random case is evaluated (all of them without -race)", randomStride)
	}
	cases, randomCases, mismatches := 0, 0, 0
	reasons := map[string]int{}     // allow reasons, all cases
	answers := map[string]int{}     // has_permissions and has_role answers, all cases
	constructed := map[string]int{} // answers of the constructed cases
	for st, s := range states {
		doc, err := diffDocument(s.Extra)
		if err != nil {
			t.Fatal(err)
		}
		e, err := authz.NewEngine(doc)
		if err != nil {
			t.Fatal(err)
		}
		if s.Loaded {
			if err := e.Load(store.PolicyBindings{Revision: 1, Bindings: s.Bindings}, diffLoadTime); err != nil {
				t.Fatal(err)
			}
		}
		data := e.DataDocument()
		requireIndexed(t, data) // the shipped data: the policy's fast path
		if !s.Loaded {
			delete(data, "principals")
		}
		prepared := map[string]rego.PreparedEvalQuery{}
		for _, ep := range []string{"allow", "has_permissions", "has_role"} {
			if prepared[ep], err = rego.New(rego.Query("data.authz."+ep), rego.Compiler(compiler),
				rego.Store(inmem.NewFromObject(map[string]any{"authz": data}))).PrepareForEval(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for i, c := range s.Cases {
			if c.Want == "" && i%randomStride != 0 {
				continue
			}
			ep := c.Entrypoint
			normalized, err := jsonValue(c.Input)
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
			if c.Want == "" {
				randomCases++
			}
			answer := answerOf(ep, want)
			if ep == "allow" {
				reasons[answer]++
			} else {
				answers[ep+" "+answer]++
			}
			if c.Want != "" {
				constructed[ep+" "+answer]++
				if answer != c.Want {
					in, _ := json.Marshal(c.Input)
					t.Errorf("state %d: constructed case %q: rego answers %s %s with %s, want %s", st, c.Note, ep, in, answer, c.Want)
				}
			}
			if !sameAnswer(ep, got, want) {
				mismatches++
				in, _ := json.Marshal(c.Input)
				t.Errorf("state %d (extra data %v): %s %s\n native %v\n rego   %v", st, s.Extra, ep, in, got, want)
				if mismatches >= 10 {
					t.Fatalf("stopping after %d mismatches", mismatches)
				}
			}
		}
	}
	if randomCases < 10000/randomStride {
		t.Fatalf("only %d random cases", randomCases)
	}
	t.Logf("%d cases (%d random), %d mismatches; allow reasons: %v; other answers: %v", cases, randomCases, mismatches, reasons, answers)
	// Every reason the policy can return, and both answers of has_permissions
	// and has_role, must be reached, by the constructed cases at least, so
	// that this holds for every seed; it fails only if the generator or the
	// evaluators break.
	for _, reason := range wantReasons {
		if reasons[reason] == 0 {
			t.Errorf("no case reached reason %s", reason)
		} else if constructed["allow "+reason] == 0 {
			t.Errorf("no constructed case reached reason %s; add one to anchorTemplates", reason)
		}
	}
	for _, ep := range []string{"has_permissions", "has_role"} {
		for _, answer := range []string{"true", "false"} {
			if constructed[ep+" "+answer] == 0 {
				t.Errorf("no constructed %s case answered %s", ep, answer)
			}
		}
	}
	for _, answer := range slices.Sorted(maps.Keys(reasons)) {
		if !slices.Contains(wantReasons, answer) {
			t.Errorf("allow returned reason %q, which the policy source does not list", answer)
		}
	}
}

// answerOf is the answer compared with a constructed case's want: the
// reason of allow, else "true" or "false".
func answerOf(ep string, result map[string]any) string {
	switch ep {
	case "allow":
		return fmt.Sprint(result["reason"])
	case "has_permissions":
		return fmt.Sprint(result["allowed"])
	}
	return fmt.Sprint(result["has_role"])
}

// TestDiffCasesDeterministic: TestDifferential's cases (states, bindings
// and inputs) are a pure function of the seed, so NMP_DIFF_SEED replays a
// failure exactly. Generating several times in one process would differ if
// the generator ranged over a map (Go randomizes each iteration).
func TestDiffCasesDeterministic(t *testing.T) {
	render := func(seed uint64) []byte {
		t.Helper()
		states, err := generateDiff(seed)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(states)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	seeds, repeats := []uint64{0, 1, 0x6e6d70, uint64(time.Now().UnixNano())}, 3
	if raceBuild {
		// single-goroutine generation: the race detector finds nothing
		// and slows it; .ci/run runs the whole test without -race
		seeds, repeats = []uint64{0x6e6d70, uint64(time.Now().UnixNano())}, 1
	}
	for _, seed := range seeds {
		first := render(seed)
		for i := 0; i < repeats; i++ {
			if again := render(seed); !bytes.Equal(first, again) {
				t.Fatalf("seed %d: generation %d differs from the first (%s vs %s)", seed, i+2, digest(first), digest(again))
			}
		}
		if other := render(seed + 1); bytes.Equal(first, other) {
			t.Fatalf("seeds %d and %d generate the same cases", seed, seed+1)
		}
	}
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
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
