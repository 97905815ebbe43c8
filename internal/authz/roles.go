// Package authz is the authorization model and the embedded policy
// decision point: the static policy data of the built-in services
// (embedded), operator extra data, and a native evaluator over an indexed,
// atomically swapped snapshot of the role bindings. The Rego policy in
// policy/ implements the same algorithm for external OPA.
package authz

import (
	_ "embed"
	"slices"
	"sort"
)

//go:embed data/static.yaml
var staticData []byte

// Roles with special meaning.
const (
	RolePlatformAdmin = "PlatformAdmin"
	RoleServiceSystem = "ServiceSystem"
	RoleAdmin         = "Admin"
)

// Catalog is the static vocabulary of a policy document: the defined roles
// and the declared permission ids. It decides nothing; decisions are the
// policy decision point's.
type Catalog struct {
	roles       map[string]Role
	permissions []string // sorted
	endpoints   *endpointIndex
}

// NewCatalog returns the roles and permission ids of a policy document.
func NewCatalog(d *Document) *Catalog {
	return &Catalog{roles: d.Roles, permissions: d.PermissionIDs(), endpoints: compileCatalogEndpoints(d)}
}

// StaticCatalog returns the vocabulary of the embedded static data.
func StaticCatalog() (*Catalog, error) {
	d, err := StaticDocument()
	if err != nil {
		return nil, err
	}
	return NewCatalog(d), nil
}

// Defined reports whether the role exists.
func (c *Catalog) Defined(role string) bool {
	_, ok := c.roles[role]
	return ok
}

// Assignable reports whether the role may be granted through the members
// API: any defined role except PlatformAdmin and ServiceSystem.
func (c *Catalog) Assignable(role string) bool {
	return c.Defined(role) && role != RolePlatformAdmin && role != RoleServiceSystem
}

// Declared reports whether id is a declared permission id.
func (c *Catalog) Declared(id string) bool {
	_, found := slices.BinarySearch(c.permissions, id)
	return found
}

// Names returns the defined role names, sorted.
func (c *Catalog) Names() []string {
	out := make([]string, 0, len(c.roles))
	for name := range c.roles {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
