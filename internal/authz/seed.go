package authz

import (
	"strings"

	"github.com/nmp-project/nmp/internal/ident"
	"github.com/nmp-project/nmp/internal/store"
)

// SeedName is the name of a seeded binding: the principal with "@" and
// "." replaced by "-" ("*" becomes "wildcard"), the workspace and the
// role, joined by "-" and lowercased (authz.md).
func SeedName(principal, workspace, role string) string {
	p := principal
	if p == ident.Wildcard {
		p = "wildcard"
	}
	p = strings.NewReplacer("@", "-", ".", "-").Replace(p)
	return strings.ToLower(p + "-" + workspace + "-" + role)
}

// Seed returns the bindings created at start (authz.md "Seeding"): the
// admin email (if any) as PlatformAdmin in system, "*" as Editor in the
// default workspace, and "*" as Viewer and WorkspaceCreator in system.
func Seed(adminEmail, defaultWorkspace string) store.Seed {
	type grant struct{ principal, workspace, role string }
	grants := []grant{
		{ident.Wildcard, defaultWorkspace, "Editor"},
		{ident.Wildcard, store.SystemWorkspace, "Viewer"},
		{ident.Wildcard, store.SystemWorkspace, "WorkspaceCreator"},
	}
	if adminEmail != "" {
		grants = append([]grant{{adminEmail, store.SystemWorkspace, RolePlatformAdmin}}, grants...)
	}
	var s store.Seed
	for _, g := range grants {
		s.Bindings = append(s.Bindings, store.SeedBinding{
			Name: SeedName(g.principal, g.workspace, g.role), Principal: g.principal, Workspace: g.workspace, Role: g.role,
		})
	}
	return s
}
