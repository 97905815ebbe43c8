// Package authz holds the authorization model: the static policy data of
// the built-in services (embedded) and the role catalog derived from it.
package authz

import (
	_ "embed"
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"
)

//go:embed data/static.yaml
var staticData []byte

// Roles that exist but can never be granted through the members API.
const (
	RolePlatformAdmin = "PlatformAdmin"
	RoleServiceSystem = "ServiceSystem"
	RoleAdmin         = "Admin"
)

// Role is a named permission set that may include other roles.
type Role struct {
	Description string   `yaml:"description"`
	Includes    []string `yaml:"includes"`
	Permissions []string `yaml:"permissions"`
}

// Catalog is the set of defined roles.
type Catalog struct {
	roles map[string]Role
}

// StaticCatalog returns the roles of the embedded static data.
func StaticCatalog() (*Catalog, error) {
	var doc struct {
		Roles map[string]Role `yaml:"roles"`
	}
	if err := yaml.Unmarshal(staticData, &doc); err != nil {
		return nil, fmt.Errorf("embedded authorization data: %w", err)
	}
	return &Catalog{roles: doc.Roles}, nil
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

// Names returns the defined role names, sorted.
func (c *Catalog) Names() []string {
	out := make([]string, 0, len(c.roles))
	for name := range c.roles {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
