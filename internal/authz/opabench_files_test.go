package authz_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authzbench"
)

// TestWriteOPAFiles (here, not in authzbench, so that OPA's library is
// linked into one test binary only): the files written for opa bench hold the shipped data
// document (with its index) and the probe, which the shipped policy grants.
func TestWriteOPAFiles(t *testing.T) {
	e, err := authzbench.Engine(1000)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bench")
	if err := authzbench.WriteOPAFiles(dir, e); err != nil {
		t.Fatal(err)
	}
	var data, input map[string]any
	for name, v := range map[string]*map[string]any{"data.json": &data, "input.json": &input} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	authzData, _ := data["authz"].(map[string]any)
	if _, ok := authzData["index"]; !ok {
		t.Fatal("data.json: data.authz has no index")
	}
	if ps, _ := authzData["principals"].(map[string]any); ps["probe@example.com"] == nil {
		t.Fatal("data.json: the probe's bindings are missing")
	}
	opts := []func(*rego.Rego){rego.Query("data.authz.allow"), rego.Store(inmem.NewFromObject(data)), rego.Input(input)}
	for _, f := range authz.PolicyFiles() {
		opts = append(opts, rego.Module(f.Name, string(f.Data)))
	}
	rs, err := rego.New(opts...).Eval(context.Background())
	if err != nil || len(rs) != 1 {
		t.Fatalf("eval: %v %v", rs, err)
	}
	got, _ := rs[0].Expressions[0].Value.(map[string]any)
	if got["allowed"] != true || got["reason"] != "permission_granted" {
		t.Fatalf("probe decision %v, want allowed by permission_granted", got)
	}
}
