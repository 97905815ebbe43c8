// Package ident is the syntax of the platform's identifiers in one place:
// principal ids and their reserved prefixes, emails, permission ids and
// scopes (authn.md "Identity headers", authz.md "Roles and permissions",
// "Scopes"). Authentication, the policy, the API and the configuration all
// validate with these functions, so they can never disagree.
package ident

import (
	"regexp"
	"strings"
)

// Limits of identity values.
const (
	MaxPrincipalIDLen = 256
	MaxEmailLen       = 320
	// MaxListItems bounds a principal's groups and a request's scopes.
	MaxListItems = 100
)

// Special principals.
const (
	// Wildcard is the binding principal meaning any authenticated caller;
	// it is never a caller's own id.
	Wildcard = "*"
	// ServicePrefix starts the id of an internal service principal.
	ServicePrefix = "service:"
	// ServiceAccountPrefix starts the id of an access key's service
	// account.
	ServiceAccountPrefix = "service-account:"
)

var (
	rePrincipalID = regexp.MustCompile(`^[A-Za-z0-9@._\-:+/|]+$`)
	reEmail       = regexp.MustCompile(`^[^@\s]+@[^@\s]+$`)
	seg           = `[a-z0-9]+(-[a-z0-9]+)*`
	rePermission  = regexp.MustCompile(`^` + seg + `(\.` + seg + `)+$`)
	reScope       = regexp.MustCompile(`^` + seg + `:` + seg + `$`)
)

// ValidPrincipalID reports whether id is a principal id: 1-256 characters
// from [A-Za-z0-9@._-:+/|]. Groups use the same syntax.
func ValidPrincipalID(id string) bool {
	return len(id) <= MaxPrincipalIDLen && rePrincipalID.MatchString(id)
}

// ValidBindingPrincipal reports whether v may be bound to a role: "*" or a
// principal id.
func ValidBindingPrincipal(v string) bool { return v == Wildcard || ValidPrincipalID(v) }

// ValidEmail reports whether s is an email as the platform accepts it: at
// most 320 characters, one "@" with no whitespace around it.
func ValidEmail(s string) bool { return len(s) <= MaxEmailLen && reEmail.MatchString(s) }

// IsService reports whether id names an internal service principal (it
// starts with "service:"), exactly as the policy's svc rule does.
func IsService(id string) bool { return strings.HasPrefix(id, ServicePrefix) }

// IsServiceAccount reports whether id names an access key's service
// account (it starts with "service-account:").
func IsServiceAccount(id string) bool { return strings.HasPrefix(id, ServiceAccountPrefix) }

// Reserved reports whether an id from outside (a token's subject or
// groups) starts with "service:" or "service-account:" in any letter case:
// only identity headers and access keys may carry those.
func Reserved(id string) bool {
	l := strings.ToLower(id)
	return IsService(l) || IsServiceAccount(l)
}

// PermissionShaped reports whether s has the syntax of a permission id
// (seg(.seg)+, seg = [a-z0-9]+(-[a-z0-9]+)*). Declared permission ids
// must have it; a scope with it is refused.
func PermissionShaped(s string) bool { return rePermission.MatchString(s) }

// ValidScope reports whether s is an endpoint scope (<group>:<access>,
// both segments as in permission ids).
func ValidScope(s string) bool { return reScope.MatchString(s) }

// WorkspacePermissions are the permissions an endpoint checks in one
// workspace.
type WorkspacePermissions struct {
	Workspace   string
	Permissions []string
}

// PermissionsByWorkspace groups an endpoint's permissions by the workspace
// each is checked in, in first-seen order: "w/p" is p checked in w, any
// other permission is checked in workspace.
func PermissionsByWorkspace(perms []string, workspace string) []WorkspacePermissions {
	var out []WorkspacePermissions
	for _, perm := range perms {
		ws, id := workspace, perm
		if w, rest, ok := strings.Cut(perm, "/"); ok {
			ws, id = w, rest
		}
		i := 0
		for i < len(out) && out[i].Workspace != ws {
			i++
		}
		if i == len(out) {
			out = append(out, WorkspacePermissions{Workspace: ws})
		}
		out[i].Permissions = append(out[i].Permissions, id)
	}
	return out
}
