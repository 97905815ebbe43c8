package authz

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

// The Rego twin of the native evaluator, shipped in the OPA bundle. The
// *_test.rego unit tests are embedded with the directory but never
// returned by PolicyFiles.
//
//go:embed policy
var policyFS embed.FS

// PolicyFile is one shipped Rego file.
type PolicyFile struct {
	Name string // file name inside the bundle's policy/ directory
	Data []byte
}

// PolicyFiles returns the shipped Rego policy files sorted by name,
// without the opa test files.
func PolicyFiles() []PolicyFile {
	entries, err := fs.ReadDir(policyFS, "policy")
	if err != nil {
		panic("authz: embedded policy directory: " + err.Error()) // cannot happen: checked at build time
	}
	var out []PolicyFile
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".rego") || strings.HasSuffix(name, "_test.rego") {
			continue
		}
		data, err := policyFS.ReadFile("policy/" + name)
		if err != nil {
			panic("authz: embedded policy file: " + err.Error())
		}
		out = append(out, PolicyFile{Name: name, Data: data})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
