package authz_test

import (
	"slices"
	"testing"

	"github.com/nmp-project/nmp/internal/authz"
)

// TestCatalogRequirement: the lookup that explains a refusal finds the
// same endpoint row the evaluator matches (alias, trailing slash, HEAD
// falling back to GET, escaped segments) and the workspace the permissions
// are checked in; operator extra data is included.
func TestCatalogRequirement(t *testing.T) {
	doc, err := authz.StaticDocument()
	if err != nil {
		t.Fatal(err)
	}
	extra := []byte(`
permissions:
  jobs:
    run: {description: Run jobs}
endpoints:
  /apis/jobs/v1/{workspace}/run:
    post: {permissions: ["jobs.run", "system/workspaces.read"], scopes: ["jobs:write"]}
`)
	if err := doc.MergeExtra(extra, "jobs.yaml"); err != nil {
		t.Fatal(err)
	}
	c := authz.NewCatalog(doc)
	tests := []struct {
		name, method, path string
		ok                 bool
		pattern, ws        string
		perms, scopes      []string
	}{
		{"members create via the alias", "POST", "/v2/workspaces/default/members", true,
			"/apis/entities/v2/workspaces/{workspace}/members", "default", []string{"workspaces.members.create"}, []string{"entities:write", "platform:write"}},
		{"collection: the system workspace", "GET", "/apis/entities/v2/workspaces/", true,
			"/apis/entities/v2/workspaces", "system", []string{"workspaces.list"}, []string{"entities:read", "platform:read"}},
		{"HEAD uses the GET row", "HEAD", "/v2/workspaces/ml-team", true,
			"/apis/entities/v2/workspaces/{name}", "ml-team", []string{"workspaces.read"}, []string{"entities:read", "platform:read"}},
		{"escaped segment decoded, query ignored", "put", "/v2/workspaces/ml%2Dteam/projects/p1?x=1", true,
			"/apis/entities/v2/workspaces/{workspace}/projects/{name}", "ml-team", []string{"projects.update"}, []string{"entities:write", "platform:write"}},
		{"extra data, cross-workspace permission", "POST", "/apis/jobs/v1/team-a/run", true,
			"/apis/jobs/v1/{workspace}/run", "team-a", []string{"jobs.run", "system/workspaces.read"}, []string{"jobs:write"}},
		{"unknown method", "PATCH", "/v2/workspaces", false, "", "", nil, nil},
		{"unknown path", "GET", "/apis/nothing", false, "", "", nil, nil},
		{"invalid path", "GET", "/v2/workspaces/../x", false, "", "", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := c.Requirement(tc.method, tc.path)
			if ok != tc.ok {
				t.Fatalf("ok %v, want %v (%+v)", ok, tc.ok, r)
			}
			if !ok {
				return
			}
			if r.Pattern != tc.pattern || r.Workspace != tc.ws || !slices.Equal(r.Permissions, tc.perms) || !slices.Equal(r.Scopes, tc.scopes) {
				t.Fatalf("%+v, want pattern %s workspace %s permissions %v scopes %v", r, tc.pattern, tc.ws, tc.perms, tc.scopes)
			}
		})
	}
	// The answer is a copy: changing it does not change the catalog.
	r, _ := c.Requirement("GET", "/v2/workspaces")
	r.Permissions[0] = "changed"
	if again, _ := c.Requirement("GET", "/v2/workspaces"); again.Permissions[0] != "workspaces.list" {
		t.Fatal("the catalog's table was changed through an answer")
	}
}

func TestCatalogPathWorkspace(t *testing.T) {
	doc, err := authz.StaticDocument()
	if err != nil {
		t.Fatal(err)
	}
	c := authz.NewCatalog(doc)
	tests := []struct {
		name, method, path, ws string
		ok                     bool
	}{
		{"members via the alias", "POST", "/v2/workspaces/team-a/members", "team-a", true},
		{"workspace itself", "GET", "/apis/entities/v2/workspaces/team-b?x=1", "team-b", true},
		{"collection names none", "GET", "/apis/entities/v2/workspaces", "", false},
		{"auth endpoint names none", "POST", "/apis/auth/v2/self-check", "", false},
		{"unknown path", "GET", "/nowhere", "", false},
		{"invalid path", "GET", "/apis/entities/v2/workspaces/../x", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws, ok := c.PathWorkspace(tc.method, tc.path)
			if ws != tc.ws || ok != tc.ok {
				t.Errorf("PathWorkspace(%s %s) = %q, %v; want %q, %v", tc.method, tc.path, ws, ok, tc.ws, tc.ok)
			}
		})
	}
}
