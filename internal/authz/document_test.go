package authz_test

import (
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/authz"
)

// TestExtraData: operator extra data is merged by authz.md's rules and
// every invalid document is refused with an error naming the problem.
func TestExtraData(t *testing.T) {
	tests := []struct {
		name, extra, wantErr string
	}{
		{"the spec's reports example", extraDiff, ""},
		{"identical permission redefinition", `permissions: {workspaces: {read: {description: Read a workspace}}}`, ""},
		{"existing role gains permissions", `
permissions: {x: {y: {description: d}}}
roles: {Viewer: {permissions: [x.y]}}`, ""},
		{"different permission redefinition", `permissions: {workspaces: {read: {description: other}}}`, "already defined differently"},
		{"principals are not allowed", `principals: {"*": {workspaces: {default: [Admin]}}}`, "principals cannot be set"},
		{"PlatformAdmin is immutable", `roles: {PlatformAdmin: {permissions: [workspaces.read]}}`, "immutable"},
		{"ServiceSystem is immutable", `roles: {ServiceSystem: {permissions: []}}`, "immutable"},
		{"star role", `roles: {"*": {permissions: []}}`, "not allowed"},
		{"duplicate endpoint", `endpoints: {/apis/entities/v2/workspaces: {get: {permissions: []}}}`, "already defined"},
		{"undeclared permission in endpoint", `endpoints: {/apis/x: {get: {permissions: [x.undeclared]}}}`, "undeclared permission"},
		{"undeclared permission in role", `roles: {R: {permissions: [x.undeclared]}}`, "undeclared permission"},
		{"malformed scope", `endpoints: {/apis/x: {get: {permissions: [], scopes: [read]}}}`, "group:access"},
		{"unknown method", `endpoints: {/apis/x: {GET: {permissions: []}}}`, "unknown method"},
		{"unknown callers", `endpoints: {/apis/x: {get: {permissions: [], callers: [anyone]}}}`, "callers"},
		{"unknown include", `roles: {R: {includes: [Nope], permissions: []}}`, "unknown role"},
		{"include cycle", `roles: {A: {includes: [B], permissions: []}, B: {includes: [A], permissions: []}}`, "cycle"},
		{"include chain too deep", `roles:
  R1: {includes: [R2], permissions: []}
  R2: {includes: [R3], permissions: []}
  R3: {includes: [R4], permissions: []}
  R4: {includes: [R5], permissions: []}
  R5: {includes: [R6], permissions: []}
  R6: {includes: [R7], permissions: []}
  R7: {permissions: []}`, "deeper than 5"},
		{"ambiguous patterns", `endpoints:
  /apis/a/{x}/b: {get: {permissions: []}}
  /apis/a/c/{y}: {get: {permissions: []}}`, "equal rank"},
		{"unknown key", `endpoint: {}`, "field endpoint not found"},
		{"denied prefix must be absolute", `config: {denied_prefixes: [apis/x]}`, "must start with /"},
		{"malformed permission id", `permissions: {Bad: {x: {description: d}}}`, "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := authz.StaticDocument()
			if err != nil {
				t.Fatal(err)
			}
			err = doc.MergeExtra([]byte(tc.extra), "extra.yaml")
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "extra.yaml")):
				t.Fatalf("got %v, want an error about %q naming the file", err, tc.wantErr)
			}
			if err == nil {
				if _, err := authz.NewEngine(doc); err != nil {
					t.Fatalf("merged document does not compile: %v", err)
				}
			}
		})
	}
}

func TestLoadDocumentFiles(t *testing.T) {
	if _, err := authz.LoadDocument([]string{"/nonexistent/extra.yaml"}); err == nil {
		t.Fatal("a missing extra data file was accepted")
	}
}

func TestPolicyFilesShipOnlyThePolicy(t *testing.T) {
	files := authz.PolicyFiles()
	if len(files) == 0 {
		t.Fatal("no policy files embedded")
	}
	for _, f := range files {
		if strings.HasSuffix(f.Name, "_test.rego") || !strings.HasSuffix(f.Name, ".rego") {
			t.Errorf("shipped %s", f.Name)
		}
		if !strings.Contains(string(f.Data), "package authz") {
			t.Errorf("%s: not the authz package", f.Name)
		}
	}
}
