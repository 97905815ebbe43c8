package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/ident"
)

// forbidden is the 403 of a deny for the identified caller p: code
// "forbidden", a detail that says what was missing, and machine-readable
// fields: "reason" (the decision point's rule), "principal" (and "email")
// as the server identified the caller, and from the public endpoint table
// for method and path, "required_permissions" and "workspace" (where they
// are checked: the workspace the caller named in the path, else system)
// or "required_scopes". Nothing comes from role bindings: the body says
// what the endpoint asks, never who holds what.
func (s *Server) forbidden(p *authn.Principal, d authz.Decision, method, path string) *apierror.Error {
	extra := map[string]any{"reason": d.Reason, "principal": p.ID}
	if p.Email != "" {
		extra["email"] = p.Email
	}
	var req authz.Requirement
	found := false
	if s.roles != nil {
		req, found = s.roles.Requirement(method, path)
	}
	detail := "Forbidden"
	switch d.Reason {
	case "permission_missing", "bundle_forbidden":
		if found && len(req.Permissions) > 0 {
			extra["required_permissions"] = req.Permissions
			extra["workspace"] = req.Workspace
			detail += ": requires " + describePermissions(req.Permissions, req.Workspace)
			if d.Reason == "bundle_forbidden" && len(req.Scopes) > 0 {
				extra["required_scopes"] = req.Scopes
				detail += " and, for a token with colon scopes, one of the scopes " + strings.Join(req.Scopes, ", ")
			}
		}
	case "scope_missing":
		if found && len(req.Scopes) > 0 {
			extra["required_scopes"] = req.Scopes
			detail += ": the token's scopes include none of " + strings.Join(req.Scopes, ", ")
		}
	case "entities_internal":
		detail += ": this entity-store path is open to service principals and PlatformAdmin only"
	case "callers_restricted":
		if found && len(req.Callers) == 1 && req.Callers[0] == authz.CallersServicePrincipal {
			detail += ": only service principals may call this endpoint"
		} else {
			detail += ": service principals may not call this endpoint"
		}
	case "unknown_endpoint":
		detail += ": no endpoint rule covers this method and path"
	case "endpoint_denied", "prefix_denied":
		detail += ": this endpoint is denied by the policy"
	case "no_policy_data":
		detail += ": the policy data is not loaded yet"
	}
	return &apierror.Error{Status: http.StatusForbidden, Code: "forbidden", Detail: detail, Extra: extra}
}

// describePermissions renders the endpoint's permissions grouped by the
// workspace each is checked in: "permission p in workspace 'w'",
// "permissions p, q in workspace 'w' and permission r in workspace 'x'".
func describePermissions(perms []string, workspace string) string {
	groups := ident.PermissionsByWorkspace(perms, workspace)
	parts := make([]string, 0, len(groups))
	for _, g := range groups {
		parts = append(parts, fmt.Sprintf("%s %s in workspace '%s'", permissionNoun(len(g.Permissions)), strings.Join(g.Permissions, ", "), g.Workspace))
	}
	return strings.Join(parts, " and ")
}

func permissionNoun(n int) string {
	if n > 1 {
		return "permissions"
	}
	return "permission"
}
