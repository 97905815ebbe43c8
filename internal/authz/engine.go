package authz

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nmp-project/nmp/internal/ident"
	"github.com/nmp-project/nmp/internal/store"
)

// Input is the input of the allow entrypoint (direct form).
type Input struct {
	PrincipalID     string   `json:"principal_id"`
	PrincipalEmail  string   `json:"principal_email,omitempty"`
	PrincipalGroups []string `json:"principal_groups,omitempty"`
	OnBehalfOf      string   `json:"on_behalf_of_principal_id,omitempty"`
	Method          string   `json:"method"`
	Path            string   `json:"path"`
	Scopes          []string `json:"scopes,omitempty"`
}

// Decision is the answer of allow, with the rule that decided.
type Decision struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

// PermissionsInput is the input of has_permissions.
type PermissionsInput struct {
	PrincipalID     string   `json:"principal_id"`
	PrincipalEmail  string   `json:"principal_email,omitempty"`
	PrincipalGroups []string `json:"principal_groups,omitempty"`
	OnBehalfOf      string   `json:"on_behalf_of_principal_id,omitempty"`
	Workspace       string   `json:"workspace"`
	Permissions     []string `json:"permissions"`
}

// RoleInput is the input of has_role.
type RoleInput struct {
	PrincipalID     string   `json:"principal_id"`
	PrincipalEmail  string   `json:"principal_email,omitempty"`
	PrincipalGroups []string `json:"principal_groups,omitempty"`
	Workspace       string   `json:"workspace"`
	Role            string   `json:"role"`
}

// Subject is a caller as the policy sees it: the ids whose bindings count.
type Subject struct {
	PrincipalID string   `json:"principal_id"`
	Email       string   `json:"principal_email,omitempty"`
	Groups      []string `json:"principal_groups,omitempty"`
}

// Visible is the set of workspaces a subject may list: every workspace
// (All), or exactly Workspaces (sorted, possibly empty).
type Visible struct {
	All        bool
	Workspaces []string
}

// snapshot is one immutable state of the policy: compiled static data
// plus the binding index at a revision.
type snapshot struct {
	policy   *policy
	index    *bindingIndex
	revision int64
	loaded   bool
	reloaded time.Time
}

// Engine is the embedded policy decision point. Decisions read the
// current snapshot without locks; updates build a new snapshot and swap it
// atomically.
type Engine struct {
	snap atomic.Pointer[snapshot]
	mu   sync.Mutex // serializes updates
	memo atomic.Pointer[decisionMemo]
}

// NewEngine compiles the policy document. Until bindings are loaded every
// non-public decision is a deny (no_policy_data).
func NewEngine(doc *Document) (*Engine, error) {
	p, err := compile(doc)
	if err != nil {
		return nil, err
	}
	e := &Engine{}
	e.snap.Store(&snapshot{policy: p, index: buildIndex(p, nil)})
	return e, nil
}

// Document returns the static policy document the engine was built from.
func (e *Engine) Document() *Document { return e.snap.Load().policy.doc }

// Revision is the policy revision of the current snapshot.
func (e *Engine) Revision() int64 { return e.snap.Load().revision }

// Loaded reports whether bindings have been loaded.
func (e *Engine) Loaded() bool { return e.snap.Load().loaded }

// LastFullReload is the time of the last full load (zero if none).
func (e *Engine) LastFullReload() time.Time { return e.snap.Load().reloaded }

// ErrStale means a load or change set is older than the snapshot the
// engine holds; the engine keeps its snapshot (policy never goes back).
var ErrStale = errors.New("policy data older than the engine's snapshot")

// ErrGap means a change set starts after the engine's revision: changes in
// between are missing and only a full load can catch up.
var ErrGap = errors.New("policy changes missing between the engine's revision and the change set")

// Load replaces every binding (a full reload) with pb, the complete set of
// active bindings at pb.Revision. It refuses (ErrStale) a set older than
// the snapshot the engine holds, so a slow reload can never undo a change
// applied meanwhile.
func (e *Engine) Load(pb store.PolicyBindings, now time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.snap.Load()
	if cur.loaded && pb.Revision < cur.revision {
		return fmt.Errorf("%w: full set at revision %d, engine at %d", ErrStale, pb.Revision, cur.revision)
	}
	e.snap.Store(&snapshot{policy: cur.policy, index: buildIndex(cur.policy, pb.Bindings),
		revision: pb.Revision, loaded: true, reloaded: now})
	return nil
}

// Apply applies the bindings changed after pb.Since up to pb.Revision
// (store.BindingChanges). Changes at or below the engine's revision are
// already in the snapshot and skipped; a set that ends at or below it
// changes nothing. A set that starts after the engine's revision is a gap
// (ErrGap); before the first Load every Apply is (ErrGap).
func (e *Engine) Apply(pb store.PolicyBindings) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.snap.Load()
	switch {
	case !cur.loaded:
		return fmt.Errorf("%w: no full load yet", ErrGap)
	case pb.Revision <= cur.revision:
		return nil
	case pb.Since > cur.revision:
		return fmt.Errorf("%w: changes after %d, engine at %d", ErrGap, pb.Since, cur.revision)
	}
	var changes []store.RoleBinding
	for _, b := range pb.Bindings {
		if b.Revision > cur.revision {
			changes = append(changes, b)
		}
	}
	next := *cur
	next.index = cur.index.apply(cur.policy, changes)
	next.revision = pb.Revision
	e.snap.Store(&next)
	return nil
}

// DataDocument renders data.authz (static data plus principals) for OPA.
func (e *Engine) DataDocument() map[string]any {
	_, data := e.BundleData()
	return data
}

// BundleData returns data.authz and the revision it holds, read from one
// snapshot, so the pair is consistent.
func (e *Engine) BundleData() (revision int64, data map[string]any) {
	s := e.snap.Load()
	return s.revision, s.policy.doc.DataDocument(s.index.principals(s.policy))
}

// request is the per-decision view of the caller.
type request struct {
	s     *snapshot
	ids   []string // principal id, email, groups (non-empty, deduplicated)
	pid   string
	svc   bool
	admin bool
}

func (s *snapshot) newRequest(pid, email string, groups []string) request {
	r := request{s: s, pid: pid, svc: ident.IsService(pid)}
	r.ids = make([]string, 0, 2+len(groups))
	for _, id := range [2]string{pid, email} {
		if id != "" && !containsString(r.ids, id) {
			r.ids = append(r.ids, id)
		}
	}
	for _, id := range groups {
		if id != "" && !containsString(r.ids, id) {
			r.ids = append(r.ids, id)
		}
	}
	for _, id := range r.ids {
		if s.index.roles(id, store.SystemWorkspace).has(s.policy.platformRole) {
			r.admin = true
			break
		}
	}
	return r
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// perms is the union of the permissions of the roles bound in workspace
// to the caller's ids and "*", plus ServiceSystem for a service principal
// without an explicit binding there.
func (r request) perms(workspace string, implicitService bool) permSet {
	var rs roleSet
	for _, id := range r.ids {
		rs.or(r.s.index.roles(id, workspace))
	}
	rs.or(r.s.index.roles(ident.Wildcard, workspace))
	if implicitService && r.svc && r.s.index.roles(r.pid, workspace).empty() {
		rs.add(r.s.policy.serviceRole)
	}
	var ps permSet
	rs.each(func(i int) { ps.or(&r.s.policy.rolePerms[i]) })
	return ps
}

// hasPerms checks every requirement, each in its own workspace.
func (r request) hasPerms(workspace string, reqs []permReq, implicitService bool) bool {
	var local permSet
	computed := false
	for _, q := range reqs {
		if q.workspace != "" && q.workspace != workspace {
			if ps := r.perms(q.workspace, implicitService); !ps.has(q.index) {
				return false
			}
			continue
		}
		if !computed {
			local, computed = r.perms(workspace, implicitService), true
		}
		if !local.has(q.index) {
			return false
		}
	}
	return true
}

// ScopesOK is the scope layer: true when the token has no colon scopes,
// the endpoint lists none, or one of the endpoint's scopes was granted.
func ScopesOK(token, endpoint []string) bool {
	colon := false
	for _, s := range token {
		if strings.Contains(s, ":") {
			colon = true
			break
		}
	}
	if !colon || len(endpoint) == 0 {
		return true
	}
	for _, want := range endpoint {
		if containsString(token, want) {
			return true
		}
	}
	return false
}

func deny(reason string) Decision  { return Decision{Allowed: false, Reason: reason} }
func allow(reason string) Decision { return Decision{Allowed: true, Reason: reason} }

// Allow evaluates the allow entrypoint (authz.md "Evaluation"): the first
// matching row decides.
func (e *Engine) Allow(in Input) Decision { return e.snap.Load().allow(in) }

// allow is Allow on snapshot s.
func (s *snapshot) allow(in Input) Decision {
	p := s.policy
	canonical, segs, ok := requestPath(in.Path)
	if !ok { // row 1
		return deny("invalid_path")
	}
	// The decoded canonical path: prefixes (rows 4 and 7) and the bundle
	// path (row 10) are compared on it. Without an escape the escaped
	// canonical path is already the decoded one.
	if strings.IndexByte(canonical, '%') >= 0 {
		canonical = "/" + strings.Join(segs, "/")
	}
	for _, sc := range in.Scopes {
		if ident.PermissionShaped(sc) {
			return deny("invalid_scope")
		}
	}
	rt, found := p.endpoints.lookup(in.Method, segs)
	public := found && rt.ep.Public
	if !s.loaded && !public { // row 2
		return deny("no_policy_data")
	}
	if found && rt.ep.Deny { // row 3
		return deny("endpoint_denied")
	}
	for _, prefix := range p.denied { // row 4
		if below(canonical, strings.TrimSuffix(prefix, "/")) {
			return deny("prefix_denied")
		}
	}
	if public { // row 5
		return allow("public_endpoint")
	}
	r := s.newRequest(in.PrincipalID, in.PrincipalEmail, in.PrincipalGroups)
	if len(r.ids) == 0 { // row 6
		return deny("no_principal")
	}
	method := strings.ToUpper(in.Method)
	if !r.svc && !r.admin && strings.HasPrefix(canonical, "/apis/entities/v2/") && !entitiesPublic(method, segs) { // row 7
		return deny("entities_internal")
	}
	if found && isOnly(rt.ep.Callers, CallersServicePrincipal) && !r.svc && !r.admin { // row 8
		return deny("callers_restricted")
	}
	if found && isOnly(rt.ep.Callers, CallersPrincipal) && r.svc { // row 9
		return deny("callers_restricted")
	}
	if canonical == bundlePath { // row 10
		if mayRead := r.hasPerms(store.SystemWorkspace, []permReq{p.bundleReq}, true) && ScopesOK(in.Scopes, p.bundleScopes); !mayRead {
			return deny("bundle_forbidden")
		}
	}
	if r.admin { // row 11
		return allow("platform_admin")
	}
	if !found {
		if r.svc { // row 12
			return allow("service_unknown_path")
		}
		return deny("unknown_endpoint") // row 13
	}
	if !ScopesOK(in.Scopes, rt.ep.Scopes) { // row 14
		return deny("scope_missing")
	}
	if len(rt.ep.reqs) == 0 { // row 15
		return allow("authenticated")
	}
	ws, hasWS := rt.pat.workspace(segs)
	if hasWS && ws == store.AllWorkspaces {
		switch {
		case method == "GET" || method == "HEAD": // row 16
			return allow("cross_workspace_read")
		case r.svc && r.hasPerms(store.AllWorkspaces, rt.ep.reqs, true): // row 17
			return allow("permission_granted")
		}
		return deny("permission_missing") // row 18
	}
	if !hasWS {
		ws = store.SystemWorkspace
	}
	if r.hasPerms(ws, rt.ep.reqs, true) { // row 19
		return allow("permission_granted")
	}
	return deny("permission_missing") // row 20
}

func isOnly(list []string, v string) bool { return len(list) == 1 && list[0] == v }

// below reports whether path equals prefix or lies below it.
func below(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// entitiesPublic lists the entity-store routes open to ordinary callers
// (row 7): the workspace collection, one workspace, and a workspace's
// members, projects and entities.
func entitiesPublic(method string, segs []string) bool {
	if len(segs) < 4 || segs[0] != "apis" || segs[1] != "entities" || segs[2] != "v2" || segs[3] != "workspaces" {
		return false
	}
	switch {
	case len(segs) == 4:
		return method == "GET" || method == "HEAD" || method == "POST"
	case len(segs) == 5:
		return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE"
	}
	return segs[4] != store.AllWorkspaces && (segs[5] == "members" || segs[5] == "projects" || segs[5] == "entities")
}

// HasPermissions evaluates has_permissions: scopes are ignored; a
// PlatformAdmin has every permission; with on-behalf-of the ids are the
// user's and no ServiceSystem applies.
func (e *Engine) HasPermissions(in PermissionsInput) bool {
	s := e.snap.Load()
	if !s.loaded || in.Workspace == "" || len(in.Permissions) == 0 {
		return false
	}
	pid, implicit := in.PrincipalID, true
	if in.OnBehalfOf != "" {
		pid, implicit = in.OnBehalfOf, false
	}
	r := s.newRequest(pid, in.PrincipalEmail, in.PrincipalGroups)
	if !implicit {
		r.svc = false
	}
	if len(r.ids) == 0 {
		return false
	}
	if r.admin {
		return true
	}
	reqs := make([]permReq, len(in.Permissions))
	for i, perm := range in.Permissions {
		reqs[i], _ = s.policy.requirement(perm)
	}
	return r.hasPerms(in.Workspace, reqs, implicit)
}

// IsPlatformAdmin reports whether any of the ids holds PlatformAdmin in
// the system workspace.
func (e *Engine) IsPlatformAdmin(id, email string, groups []string) bool {
	return e.snap.Load().newRequest(id, email, groups).admin
}

// VisibleWorkspaces is the list visibility rule (api.md GET /workspaces):
// every workspace for a PlatformAdmin or a service principal, else those
// in which the principal id, the email, a group or "*" holds an active
// binding of a defined role. A subject without ids sees nothing: "*"
// stands for authenticated callers only. Before the first load nothing is
// visible.
func (e *Engine) VisibleWorkspaces(sub Subject) Visible {
	s := e.snap.Load()
	if !s.loaded {
		return Visible{Workspaces: []string{}}
	}
	r := s.newRequest(sub.PrincipalID, sub.Email, sub.Groups)
	if len(r.ids) == 0 {
		return Visible{Workspaces: []string{}}
	}
	if r.admin || r.svc {
		return Visible{All: true}
	}
	seen := map[string]bool{}
	for _, id := range append(r.ids, ident.Wildcard) {
		s.index.eachWorkspace(id, func(ws string) { seen[ws] = true })
	}
	out := make([]string, 0, len(seen))
	for ws := range seen {
		out = append(out, ws)
	}
	sort.Strings(out)
	return Visible{Workspaces: out}
}

// HasRole evaluates has_role: the role is bound directly in the workspace
// to the principal id, email or a group (no includes, no "*" unless the
// principal id is "*", no PlatformAdmin shortcut).
func (e *Engine) HasRole(in RoleInput) bool {
	s := e.snap.Load()
	ri, ok := s.policy.roleIndex[in.Role]
	if !s.loaded || !ok {
		return false
	}
	for _, id := range append([]string{in.PrincipalID, in.PrincipalEmail}, in.PrincipalGroups...) {
		if id != "" && s.index.roles(id, in.Workspace).has(ri) {
			return true
		}
	}
	return false
}
