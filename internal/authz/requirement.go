package authz

import (
	"slices"

	"github.com/nmp-project/nmp/internal/store"
)

// Requirement is what the endpoint table asks of one method and path: the
// row a decision would match. It explains a refusal; it decides nothing
// (decisions are the policy decision point's).
type Requirement struct {
	// Pattern is the matched endpoint pattern.
	Pattern string
	// Permissions are the endpoint's permissions as the table lists them:
	// "p" is checked in Workspace, "w/p" in workspace w.
	Permissions []string
	// Scopes are the endpoint's scopes; a token with colon scopes needs
	// one of them.
	Scopes []string
	// Callers restricts the kind of caller (CallersServicePrincipal,
	// CallersPrincipal); empty: any.
	Callers []string
	// Workspace is where Permissions without a workspace of their own are
	// checked: the path's workspace segment as the caller sent it, else the
	// system workspace.
	Workspace string
}

// Requirement returns the endpoint table's row for method and path (an
// escaped request path; the /v2/workspaces alias and a trailing slash are
// canonicalized, a query is ignored), the same row the evaluator matches.
// ok is false for an invalid path or when no row matches.
func (c *Catalog) Requirement(method, path string) (Requirement, bool) {
	if c.endpoints == nil {
		return Requirement{}, false
	}
	_, segs, ok := requestPath(path)
	if !ok {
		return Requirement{}, false
	}
	rt, found := c.endpoints.lookup(method, segs)
	if !found {
		return Requirement{}, false
	}
	ws, hasWS := rt.pat.workspace(segs)
	if !hasWS {
		ws = store.SystemWorkspace
	}
	return Requirement{Pattern: rt.pat.text, Permissions: slices.Clone(rt.ep.Permissions),
		Scopes: slices.Clone(rt.ep.Scopes), Callers: slices.Clone(rt.ep.Callers), Workspace: ws}, true
}

// compileCatalogEndpoints indexes a validated document's endpoints for
// Requirement; nil (no lookups) if they do not compile, which a validated
// document rules out.
func compileCatalogEndpoints(d *Document) *endpointIndex {
	idx, err := compileEndpoints(d.Endpoints)
	if err != nil {
		return nil
	}
	return idx
}

// PathWorkspace returns the workspace that method and path name in their
// endpoint row's workspace placeholder; ok is false for an invalid path,
// no matching row, or a row that names no workspace.
func (c *Catalog) PathWorkspace(method, path string) (string, bool) {
	if c.endpoints == nil {
		return "", false
	}
	_, segs, ok := requestPath(path)
	if !ok {
		return "", false
	}
	rt, found := c.endpoints.lookup(method, segs)
	if !found {
		return "", false
	}
	return rt.pat.workspace(segs)
}
