package authz_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/bundle"
	"github.com/nmp-project/nmp/internal/testenv"
	"github.com/nmp-project/nmp/internal/testenv/opatest"
)

// TestCorpusThroughExternalOPA runs the whole case corpus through a real
// `opa run --server` loaded with the bundle bytes the server would serve
// for each corpus file's policy (static data, the file's extra data and
// bindings), over OPA's REST API: every answer must equal the native
// evaluator's and the case's expectation. Files whose bindings are not
// loaded are left out: the bundle endpoint never serves a policy before
// its first load.
func TestCorpusThroughExternalOPA(t *testing.T) {
	t.Parallel()
	opatest.Binary(t)
	total := 0
	for name, f := range loadCorpus(t) {
		if f.BindingsLoaded != nil && !*f.BindingsLoaded {
			continue
		}
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			e := newEngine(t, f)
			b, err := bundle.Build(e.BundleData())
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "bundle.tar.gz")
			if err := os.WriteFile(file, b.Bytes, 0o600); err != nil {
				t.Fatal(err)
			}
			o := opatest.Start(t, "--bundle", file)
			for i, c := range f.Cases {
				input, err := jsonValue(c.Input)
				if err != nil {
					t.Fatal(err)
				}
				label := fmt.Sprintf("%s case %d %q", name, i, c.Note)
				got := askOPA(t, o.URL, c.Entrypoint, input)
				checkCase(t, label, c, got)
				m, _ := input.(map[string]any)
				native := evalNative(e, c.Entrypoint, m)
				for _, k := range []string{"allowed", "reason", "has_role", "headers"} {
					if !reflect.DeepEqual(got[k], native[k]) {
						t.Errorf("%s: OPA %s=%v, native %v", label, k, got[k], native[k])
					}
				}
				total++
			}
		})
	}
	t.Logf("%d corpus cases through the external OPA", total)
}

// askOPA posts {"input": input} to OPA's data API for entrypoint.
func askOPA(t *testing.T, base, entrypoint string, input any) map[string]any {
	t.Helper()
	body, err := json.Marshal(map[string]any{"input": input})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/v1/data/authz/"+entrypoint, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, resp.Body)
	var out struct {
		Result map[string]any `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("OPA %s: status %d, %v", entrypoint, resp.StatusCode, err)
	}
	return out.Result
}
