package authz

import "strings"

// The PDP entrypoints take OPA-style input documents. These conversions
// read them leniently, exactly like the Rego policy does (a value of the
// wrong type counts as absent), so both evaluators see the same request;
// the HTTP layer validates strictly before converting.

func str(v any) string {
	s, _ := v.(string)
	return s
}

// strList keeps the non-empty strings of a list; anything else is empty.
func strList(v any) []string {
	xs, _ := v.([]any)
	var out []string
	for _, x := range xs {
		if s, ok := x.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}

func field(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[k]
	}
	return v
}

// AllowInput reads an allow input in the direct form or the Envoy form
// (attributes.request.http.{method, path, headers} with lower-case
// x-nmp-principal-id, -email, -groups (comma-separated) and x-nmp-scopes
// (space-separated)). A path that is not a string yields an invalid path.
func AllowInput(in map[string]any) Input {
	if http, ok := field(in, "attributes", "request", "http").(map[string]any); ok {
		headers, _ := http["headers"].(map[string]any)
		h := func(name string) string { return str(headers[name]) }
		var groups []string
		for _, g := range strings.Split(h("x-nmp-principal-groups"), ",") {
			if g = strings.TrimSpace(g); g != "" {
				groups = append(groups, g)
			}
		}
		var scopes []string
		for _, s := range strings.Split(h("x-nmp-scopes"), " ") {
			if s != "" {
				scopes = append(scopes, s)
			}
		}
		return Input{PrincipalID: h("x-nmp-principal-id"), PrincipalEmail: h("x-nmp-principal-email"),
			PrincipalGroups: groups, Scopes: scopes, Method: str(http["method"]), Path: pathOf(http["path"])}
	}
	return Input{
		PrincipalID: str(in["principal_id"]), PrincipalEmail: str(in["principal_email"]),
		PrincipalGroups: strList(in["principal_groups"]), OnBehalfOf: str(in["on_behalf_of_principal_id"]),
		Method: str(in["method"]), Path: pathOf(in["path"]), Scopes: strList(in["scopes"]),
	}
}

// pathOf maps a non-string path to one that is always invalid.
func pathOf(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

// PermissionsFromInput reads a has_permissions input. A permissions value
// that is not a list of strings yields no permissions (a deny).
func PermissionsFromInput(in map[string]any) PermissionsInput {
	out := PermissionsInput{
		PrincipalID: str(in["principal_id"]), PrincipalEmail: str(in["principal_email"]),
		PrincipalGroups: strList(in["principal_groups"]), OnBehalfOf: str(in["on_behalf_of_principal_id"]),
		Workspace: str(in["workspace"]),
	}
	perms, _ := in["permissions"].([]any)
	for _, p := range perms {
		s, ok := p.(string)
		if !ok {
			return PermissionsInput{}
		}
		out.Permissions = append(out.Permissions, s)
	}
	return out
}

// RoleFromInput reads a has_role input.
func RoleFromInput(in map[string]any) RoleInput {
	return RoleInput{
		PrincipalID: str(in["principal_id"]), PrincipalEmail: str(in["principal_email"]),
		PrincipalGroups: strList(in["principal_groups"]), Workspace: str(in["workspace"]), Role: str(in["role"]),
	}
}
