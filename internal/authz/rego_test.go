package authz_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"gopkg.in/yaml.v3"
)

// The shared case corpus (testdata/cases/*.yaml, format in its README.md)
// run through the Rego policy with OPA's Go library. The native evaluator
// runs the same corpus; both must give the same allowed, reason and has_role.

const (
	policyDir  = "policy"
	staticFile = "data/static.yaml"
	casesGlob  = "testdata/cases/*.yaml"
)

type corpusBinding struct {
	Principal string `yaml:"principal"`
	Workspace string `yaml:"workspace"`
	Role      string `yaml:"role"`
}

type corpusWant struct {
	Allowed *bool  `yaml:"allowed"`
	Reason  string `yaml:"reason"`
	HasRole *bool  `yaml:"has_role"`
}

type corpusCase struct {
	Note       string         `yaml:"note"`
	Entrypoint string         `yaml:"entrypoint"`
	Input      map[string]any `yaml:"input"`
	Want       corpusWant     `yaml:"want"`
}

type corpusFile struct {
	Bindings       []corpusBinding `yaml:"bindings"`
	BindingsLoaded *bool           `yaml:"bindings_loaded"`
	ExtraData      map[string]any  `yaml:"extra_data"`
	Cases          []corpusCase    `yaml:"cases"`
}

// policyModules returns the shipped policy files (not the *_test.rego unit tests).
func policyModules(t testing.TB, withTests bool) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(policyDir, "*.rego"))
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string]string{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.rego") && !withTests {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		mods[p] = string(b)
	}
	if len(mods) == 0 {
		t.Fatal("no policy files")
	}
	return mods
}

// jsonValue normalises a YAML-decoded value into its JSON form (maps with
// string keys, float64 numbers).
func jsonValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func loadStatic(t testing.TB) map[string]any {
	t.Helper()
	b, err := os.ReadFile(staticFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", staticFile, err)
	}
	return doc
}

// regoDataDocument builds data.authz (authz.md "Policy data document") from
// the static data, the operator extra data (merged by the rules of
// "Operator extra authz data") and the active bindings. Test-only for now;
// the production builder will replace it.
func regoDataDocument(static, extra map[string]any, bindings []corpusBinding) (map[string]any, error) {
	v, err := jsonValue(static)
	if err != nil {
		return nil, err
	}
	doc, _ := v.(map[string]any)
	if doc == nil {
		return nil, fmt.Errorf("static data is not an object")
	}
	for _, k := range []string{"permissions", "roles", "endpoints"} {
		if _, ok := doc[k].(map[string]any); !ok {
			doc[k] = map[string]any{}
		}
	}
	cfg, _ := doc["config"].(map[string]any)
	if cfg == nil {
		cfg = map[string]any{}
		doc["config"] = cfg
	}
	if _, ok := cfg["denied_prefixes"].([]any); !ok {
		cfg["denied_prefixes"] = []any{}
	}
	if len(extra) > 0 {
		ev, err := jsonValue(extra)
		if err != nil {
			return nil, err
		}
		if err := mergeExtra(doc, ev.(map[string]any)); err != nil {
			return nil, err
		}
	}

	principals := map[string]any{}
	for _, b := range bindings {
		if b.Principal == "" || b.Workspace == "" || b.Role == "" {
			return nil, fmt.Errorf("incomplete binding %+v", b)
		}
		p, _ := principals[b.Principal].(map[string]any)
		if p == nil {
			p = map[string]any{"workspaces": map[string]any{}}
			principals[b.Principal] = p
		}
		wss := p["workspaces"].(map[string]any)
		roles, _ := wss[b.Workspace].([]any)
		if !slices.Contains(roles, any(b.Role)) {
			roles = append(roles, b.Role)
			sort.Slice(roles, func(i, j int) bool { return roles[i].(string) < roles[j].(string) })
		}
		wss[b.Workspace] = roles
	}
	doc["principals"] = principals
	if _, ok := doc["workspaces"]; !ok {
		doc["workspaces"] = map[string]any{}
	}
	return doc, nil
}

func mergeExtra(doc, extra map[string]any) error {
	for k := range extra {
		switch k {
		case "permissions", "roles", "endpoints", "config":
		default:
			return fmt.Errorf("extra data: unsupported key %q", k)
		}
	}
	if perms, ok := extra["permissions"].(map[string]any); ok {
		if err := mergePermissions(doc["permissions"].(map[string]any), perms, ""); err != nil {
			return err
		}
	}
	if roles, ok := extra["roles"].(map[string]any); ok {
		have := doc["roles"].(map[string]any)
		for name, rv := range roles {
			r, _ := rv.(map[string]any)
			if r == nil {
				return fmt.Errorf("extra data: role %q is not an object", name)
			}
			switch name {
			case "PlatformAdmin", "ServiceSystem", "*":
				return fmt.Errorf("extra data: role %q cannot be defined or extended", name)
			}
			old, _ := have[name].(map[string]any)
			if old == nil {
				have[name] = r
				continue
			}
			for _, k := range []string{"permissions", "includes"} {
				list, _ := old[k].([]any)
				add, _ := r[k].([]any)
				for _, x := range add {
					if !slices.Contains(list, x) {
						list = append(list, x)
					}
				}
				if list != nil {
					old[k] = list
				}
			}
		}
	}
	if eps, ok := extra["endpoints"].(map[string]any); ok {
		have := doc["endpoints"].(map[string]any)
		for pattern, mv := range eps {
			methods, _ := mv.(map[string]any)
			old, _ := have[pattern].(map[string]any)
			if old == nil {
				old = map[string]any{}
				have[pattern] = old
			}
			for m, e := range methods {
				if _, dup := old[m]; dup {
					return fmt.Errorf("extra data: duplicate endpoint %s %s", m, pattern)
				}
				old[m] = e
			}
		}
	}
	if cfg, ok := extra["config"].(map[string]any); ok {
		if dp, ok := cfg["denied_prefixes"].([]any); ok {
			c := doc["config"].(map[string]any)
			c["denied_prefixes"] = append(c["denied_prefixes"].([]any), dp...)
		}
	}
	return nil
}

func mergePermissions(have, add map[string]any, prefix string) error {
	for k, v := range add {
		id := strings.TrimPrefix(prefix+"."+k, ".")
		nv, _ := v.(map[string]any)
		ov, exists := have[k]
		if !exists {
			have[k] = v
			continue
		}
		om, _ := ov.(map[string]any)
		_, newLeaf := nv["description"].(string)
		_, oldLeaf := om["description"].(string)
		switch {
		case newLeaf || oldLeaf:
			if !reflect.DeepEqual(om, nv) {
				return fmt.Errorf("extra data: permission %s redefined", id)
			}
		default:
			if err := mergePermissions(om, nv, id); err != nil {
				return err
			}
		}
	}
	return nil
}

func loadCorpus(t testing.TB) map[string]corpusFile {
	t.Helper()
	paths, err := filepath.Glob(casesGlob)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no corpus files match %s", casesGlob)
	}
	out := map[string]corpusFile{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var f corpusFile
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[filepath.Base(p)] = f
	}
	return out
}

// TestRegoCorpus runs the corpus through the Rego policy twice: on the
// data the PDP ships (Engine.DataDocument, with the precomputed index: the
// path production takes) and on data without the index (regoDataDocument,
// the policy then computes the index itself, as in the opa unit tests).
//
// Under the race detector, which slows OPA's evaluator about eightfold
// and finds nothing in this single-goroutine test, it checks every second
// case on the shipped data and every sixteenth on the computed one (the
// slow variant: the policy rebuilds its index on every query), so that the
// README's test command stays within its time; .ci/run runs this test
// again without -race, every case of both variants.
func TestRegoCorpus(t *testing.T) {
	ctx := context.Background()
	shippedStride, computedStride := 1, 1
	if raceBuild {
		shippedStride, computedStride = 4, 32
		t.Logf("race build: every %dth case on the shipped data and every %dth on the computed (all of them without -race)",
			shippedStride, computedStride)
	}
	// The policy is compiled once; each file's queries are prepared
	// against it and the file's data.
	compiler, err := ast.CompileModules(policyModules(t, false))
	if err != nil {
		t.Fatalf("compile the policy: %v", err)
	}
	static := loadStatic(t)
	total := 0
	for name, f := range loadCorpus(t) {
		shipped := newEngine(t, f).DataDocument()
		requireIndexed(t, shipped)
		computed, err := regoDataDocument(static, f.ExtraData, f.Bindings)
		if err != nil {
			t.Fatalf("%s: data document: %v", name, err)
		}
		if _, ok := computed["index"]; ok {
			t.Fatalf("%s: regoDataDocument has an index", name)
		}
		for variant, doc := range map[string]map[string]any{"shipped": shipped, "computed": computed} {
			t.Run(strings.TrimSuffix(name, ".yaml")+"/"+variant, func(t *testing.T) {
				if f.BindingsLoaded != nil && !*f.BindingsLoaded {
					if len(f.Bindings) > 0 {
						t.Fatalf("%s: bindings_loaded: false with bindings", name)
					}
					delete(doc, "principals")
				}
				stride := shippedStride
				if variant == "computed" {
					stride = computedStride
				}
				total += runCorpusFile(ctx, t, name, f, compiler, doc, stride)
			})
		}
	}
	t.Logf("%d corpus cases", total)
}

// requireIndexed fails unless data.authz carries the index the policy
// reads (its fast path).
func requireIndexed(t testing.TB, data map[string]any) {
	t.Helper()
	ix, _ := data["index"].(map[string]any)
	if ix == nil || ix["version"] != float64(1) {
		t.Fatalf("data.authz has no index of version 1 (index = %.80v)", data["index"])
	}
}

// raceBuild is true when the tests run with the race detector.
var raceBuild bool

// runCorpusFile evaluates every stride-th case of a corpus file on doc
// (stride 1: all) and returns how many were checked.
func runCorpusFile(ctx context.Context, t *testing.T, name string, f corpusFile, compiler *ast.Compiler, doc map[string]any, stride int) int {
	t.Helper()
	store := inmem.NewFromObject(map[string]any{"authz": doc})
	prepared := map[string]rego.PreparedEvalQuery{}
	n := 0
	for i, c := range f.Cases {
		if i%stride != 0 {
			continue
		}
		label := fmt.Sprintf("%s case %d %q", name, i, c.Note)
		if c.Note == "" {
			t.Errorf("%s: missing note", label)
		}
		pq, ok := prepared[c.Entrypoint]
		if !ok {
			switch c.Entrypoint {
			case "allow", "has_permissions", "has_role":
			default:
				t.Fatalf("%s: unknown entrypoint %q", label, c.Entrypoint)
			}
			var err error
			pq, err = rego.New(rego.Query("data.authz."+c.Entrypoint), rego.Compiler(compiler), rego.Store(store)).PrepareForEval(ctx)
			if err != nil {
				t.Fatalf("%s: prepare: %v", name, err)
			}
			prepared[c.Entrypoint] = pq
		}
		input, err := jsonValue(c.Input)
		if err != nil {
			t.Fatalf("%s: input: %v", label, err)
		}
		rs, err := pq.Eval(ctx, rego.EvalInput(input))
		if err != nil {
			t.Errorf("%s: eval: %v", label, err)
			continue
		}
		if len(rs) != 1 || len(rs[0].Expressions) != 1 {
			t.Errorf("%s: undefined result", label)
			continue
		}
		got, _ := rs[0].Expressions[0].Value.(map[string]any)
		checkCase(t, label, c, got)
		n++
	}
	return n
}

func checkCase(t *testing.T, label string, c corpusCase, got map[string]any) {
	t.Helper()
	w := c.Want
	switch c.Entrypoint {
	case "allow":
		if w.Allowed == nil || w.Reason == "" {
			t.Errorf("%s: want needs allowed and reason", label)
			return
		}
		allowed, _ := got["allowed"].(bool)
		reason, _ := got["reason"].(string)
		hdr, _ := got["headers"].(map[string]any)
		if allowed != *w.Allowed || reason != w.Reason {
			t.Errorf("%s: got allowed=%v reason=%s, want allowed=%v reason=%s", label, allowed, reason, *w.Allowed, w.Reason)
		}
		if hdr["X-NMP-Authorized"] != fmt.Sprint(allowed) {
			t.Errorf("%s: headers %v do not match allowed=%v", label, hdr, allowed)
		}
	case "has_permissions":
		if w.Allowed == nil {
			t.Errorf("%s: want needs allowed", label)
			return
		}
		if got["allowed"] != *w.Allowed {
			t.Errorf("%s: got %v, want allowed=%v", label, got, *w.Allowed)
		}
	case "has_role":
		if w.HasRole == nil {
			t.Errorf("%s: want needs has_role", label)
			return
		}
		if got["has_role"] != *w.HasRole {
			t.Errorf("%s: got %v, want has_role=%v", label, got, *w.HasRole)
		}
	}
}

// TestRegoUnitFixtureMatchesStatic keeps the fixture of the opa unit tests
// (policy/authz_test.rego) equal to the roles and endpoints of static.yaml.
func TestRegoUnitFixtureMatchesStatic(t *testing.T) {
	ctx := context.Background()
	opts := []func(*rego.Rego){rego.Query("r := data.authz_test.static_roles; e := data.authz_test.static_endpoints")}
	for p, src := range policyModules(t, true) {
		opts = append(opts, rego.Module(p, src))
	}
	rs, err := rego.New(opts...).Eval(ctx)
	if err != nil || len(rs) != 1 {
		t.Fatalf("eval fixture: %v %v", rs, err)
	}
	static, err := jsonValue(loadStatic(t))
	if err != nil {
		t.Fatal(err)
	}
	s := static.(map[string]any)
	for binding, key := range map[string]string{"r": "roles", "e": "endpoints"} {
		got, err := jsonValue(rs[0].Bindings[binding])
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s[key]) {
			t.Errorf("policy/authz_test.rego static_%s differs from %s %s; regenerate the fixture", key, staticFile, key)
		}
	}
}

// BenchmarkRegoAllow measures OPA's prepared allow query on the static data
// with the seeded bindings (the baseline of the native evaluator's target).
func BenchmarkRegoAllow(b *testing.B) {
	ctx := context.Background()
	static := loadStatic(b)
	doc, err := regoDataDocument(static, nil, []corpusBinding{
		{"*", "default", "Editor"}, {"*", "system", "Viewer"}, {"*", "system", "WorkspaceCreator"},
		{"alice", "ml", "Admin"},
	})
	if err != nil {
		b.Fatal(err)
	}
	opts := []func(*rego.Rego){rego.Query("data.authz.allow"), rego.Store(inmem.NewFromObject(map[string]any{"authz": doc}))}
	for p, src := range policyModules(b, false) {
		opts = append(opts, rego.Module(p, src))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		b.Fatal(err)
	}
	input := map[string]any{"principal_id": "alice", "method": "POST", "path": "/apis/entities/v2/workspaces/ml/projects"}
	b.ResetTimer()
	for b.Loop() {
		rs, err := pq.Eval(ctx, rego.EvalInput(input))
		if err != nil || len(rs) != 1 {
			b.Fatal(rs, err)
		}
	}
}
