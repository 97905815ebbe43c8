package authz_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authzbench"
	"github.com/nmp-project/nmp/internal/store"
)

// evalRego evaluates query on data.authz = data with the shipped policy
// and returns the value of its only expression.
func evalRego(t *testing.T, query string, data map[string]any, input any) (any, bool) {
	t.Helper()
	opts := []func(*rego.Rego){rego.Query(query), rego.Store(inmem.NewFromObject(map[string]any{"authz": data}))}
	if input != nil {
		opts = append(opts, rego.Input(input))
	}
	mods := policyModules(t, false)
	for _, p := range slices.Sorted(maps.Keys(mods)) {
		opts = append(opts, rego.Module(p, mods[p]))
	}
	rs, err := rego.New(opts...).Eval(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if len(rs) == 0 {
		return nil, false
	}
	return rs[0].Expressions[0].Value, true
}

// TestRegoIndexComputedEqualsShipped: the index the policy computes when
// data.authz has none (the opa unit tests' path) is exactly the one the
// PDP ships (regoindex.go), for the built-in data and for every extra data
// of the corpus and of the differential test.
func TestRegoIndexComputedEqualsShipped(t *testing.T) {
	extras := map[string][]byte{"static data only": nil, "differential extra data": []byte(extraDiff)}
	for name, f := range loadCorpus(t) {
		if len(f.ExtraData) > 0 {
			b, err := json.Marshal(f.ExtraData)
			if err != nil {
				t.Fatal(err)
			}
			extras["corpus "+name] = b
		}
	}
	if len(extras) < 3 {
		t.Fatalf("only %d data sets; the corpus has no extra data any more?", len(extras))
	}
	for _, name := range slices.Sorted(maps.Keys(extras)) {
		t.Run(name, func(t *testing.T) {
			doc, err := authz.StaticDocument()
			if err != nil {
				t.Fatal(err)
			}
			if extras[name] != nil {
				if err := doc.MergeExtra(extras[name], name); err != nil {
					t.Fatal(err)
				}
			}
			e, err := authz.NewEngine(doc)
			if err != nil {
				t.Fatal(err)
			}
			data := e.DataDocument()
			requireIndexed(t, data)
			want := data["index"]
			delete(data, "index")
			if indexed, _ := evalRego(t, "x := data.authz.indexed", data, nil); indexed != nil {
				t.Fatalf("data without index: indexed = %v", indexed)
			}
			got, ok := evalRego(t, "data.authz.computed_index", data, nil)
			if !ok {
				t.Fatal("computed_index is undefined")
			}
			if got, err = jsonValue(got); err != nil { // OPA's json.Number as float64
				t.Fatal(err)
			}
			if d := firstDiff(got, want, "index"); d != "" {
				t.Fatalf("the Rego-computed index differs from the Go-built one: %s", d)
			}
		})
	}
}

// TestRegoReadsShippedIndex: with an index in the data the policy decides
// from it (altering the index alters the decision), and with an index of
// another version it ignores it and computes its own.
func TestRegoReadsShippedIndex(t *testing.T) {
	e, err := authzbench.Engine(100)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(ix map[string]any)
		want   string
	}{
		{"as shipped", func(map[string]any) {}, "permission_granted"},
		{"no POST routes in the index", func(ix map[string]any) { delete(ix["routes"].(map[string]any), "post") }, "unknown_endpoint"},
		{"no POST shapes of 6 segments", func(ix map[string]any) { delete(ix["exact"].(map[string]any)["post"].(map[string]any), "6") }, "unknown_endpoint"},
		{"Editor emptied in the index", func(ix map[string]any) { ix["roles"].(map[string]any)["Editor"] = map[string]any{} }, "permission_missing"},
		{"a denied prefix only in the index", func(ix map[string]any) { ix["denied_prefixes"] = []any{"/apis/entities"} }, "prefix_denied"},
		{"unknown index version: computed, index ignored", func(ix map[string]any) {
			ix["version"] = float64(2)
			ix["roles"] = map[string]any{}
			ix["routes"] = map[string]any{}
		}, "permission_granted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := e.DataDocument()
			tc.change(data["index"].(map[string]any))
			got, ok := evalRego(t, "data.authz.allow.reason", data, authzbench.ProbeInput())
			if !ok || got != tc.want {
				t.Fatalf("reason %v (defined %v), want %s", got, ok, tc.want)
			}
		})
	}
}

// TestDataDocumentDeterministic: the data document (with its index) is
// byte-identical whatever the order bindings were loaded in and however
// often it is rendered, so every replica ships the same bundle.
func TestDataDocumentDeterministic(t *testing.T) {
	render := func(bs []store.RoleBinding) []byte {
		t.Helper()
		doc, err := authz.StaticDocument()
		if err != nil {
			t.Fatal(err)
		}
		if err := doc.MergeExtra([]byte(extraDiff), "extra.yaml"); err != nil {
			t.Fatal(err)
		}
		e, err := authz.NewEngine(doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Load(store.PolicyBindings{Revision: 1, Bindings: bs}, time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(e.DataDocument())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bs := authzbench.Bindings(300)
	first := render(bs)
	reversed := slices.Clone(bs)
	slices.Reverse(reversed)
	for i, again := range [][]byte{render(bs), render(reversed), render(bs)} {
		if !bytes.Equal(first, again) {
			t.Fatalf("rendering %d differs from the first (%s vs %s)", i+2, digest(first), digest(again))
		}
	}
}

// firstDiff describes the first difference between two JSON values (""
// when equal).
func firstDiff(got, want any, path string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: rego %.200v, go %.200v", path, got, want)
		}
		for _, k := range slices.Sorted(maps.Keys(w)) {
			if d := firstDiff(g[k], w[k], path+"."+k); d != "" {
				return d
			}
		}
		for _, k := range slices.Sorted(maps.Keys(g)) {
			if _, ok := w[k]; !ok {
				return fmt.Sprintf("%s.%s: only in rego (%.200v)", path, k, g[k])
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: rego %.200v, go %.200v", path, got, want)
		}
		for i := range w {
			if d := firstDiff(g[i], w[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Sprintf("%s: rego %.200v, go %.200v", path, got, want)
	}
	return ""
}
