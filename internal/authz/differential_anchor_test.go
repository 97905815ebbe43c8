package authz_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/store"
)

// Constructed ("anchor") cases of TestDifferential. The random cases reach
// every reason only most of the time (platform_admin, for one, needs a
// random PlatformAdmin binding in system that some random request then
// uses); these cases reach each reason of allow, and both answers of
// has_permissions and has_role, in every run. Each names the answer it
// must get from the policy, and TestDifferential checks it, so a reason
// that becomes unreachable still fails the run. The details (input form,
// which identity field holds the principal, path decorations, method
// case, which of several equivalent requests, noise bindings) are drawn
// from the seed like everything else.

// Anchor identities and workspace. None of them is in the random
// generator's pools (diffPrincipals, diffIDs, diffEmails, diffGroups), and
// the noise bindings of the anchor states never bind "*", so the noise
// cannot change an anchor case's answer.
const (
	anchorUser         = "anchor-user"             // Viewer in anchorWS
	anchorAdmin        = "anchor-root@example.com" // PlatformAdmin in system
	anchorService      = "service:anchor"          // no binding: implicit ServiceSystem everywhere
	anchorBoundService = "service:anchor-bound"    // Viewer in "-": no implicit ServiceSystem there
	anchorNobody       = "anchor-nobody"           // no binding
	anchorUnbound      = "anchor-unbound"          // an extra group with no binding
	anchorWS           = "anchor-ws"
)

var anchorBindings = []store.RoleBinding{
	{ID: "anchor-0", Principal: anchorUser, Workspace: anchorWS, Role: "Viewer", Revision: 1},
	{ID: "anchor-1", Principal: anchorAdmin, Workspace: "system", Role: "PlatformAdmin", Revision: 1},
	{ID: "anchor-2", Principal: anchorBoundService, Workspace: "-", Role: "Viewer", Revision: 1},
}

// anchorVariants is how many seeded instances of each template a state gets.
const anchorVariants = 3

// anchorTemplate builds one constructed case; want is the reason (allow)
// or "true"/"false" (has_permissions, has_role) the policy must answer.
type anchorTemplate struct {
	note       string
	want       string
	extraOnly  bool // needs extraDiff (deny entries, denied prefixes)
	unloaded   bool // for the state without bindings
	entrypoint string
	build      func(r *rand.Rand) map[string]any
}

// anchorIdentity places a non-service principal id in the principal id,
// the email or the groups, sometimes next to an unbound group.
func anchorIdentity(r *rand.Rand, id string) (string, string, []string) {
	pid, email := "anchor-other", ""
	var groups []string
	switch r.IntN(3) {
	case 0:
		pid = id
	case 1:
		email = id
	default:
		groups = append(groups, id)
	}
	if r.IntN(2) == 0 {
		groups = append(groups, anchorUnbound)
	}
	return pid, email, groups
}

// anchorServiceIdentity: a service principal must be the principal id.
func anchorServiceIdentity(r *rand.Rand, id string) (string, string, []string) {
	if r.IntN(2) == 0 {
		return id, "", []string{anchorUnbound}
	}
	return id, "", nil
}

// anchorMethod returns m in upper or lower case (both evaluators upper-case it).
func anchorMethod(r *rand.Rand, m string) string {
	if r.IntN(3) == 0 {
		return strings.ToLower(m)
	}
	return m
}

// anchorDecorate adds a decoration that leaves the canonical path alone.
func anchorDecorate(r *rand.Rand, p string) string {
	return p + pick(r, []string{"", "", "/", "?page=2", "#frag"})
}

// anchorAllow returns an allow input, direct or Envoy form.
func anchorAllow(r *rand.Rand, pid, email string, groups []string, method, path string, scopes []string) map[string]any {
	return allowInputDoc(r.IntN(3) == 0, ",", pid, email, groups, method, path, scopes)
}

// anchorReq is one method and path.
type anchorReq struct{ method, path string }

// userAllow: the user (non-service, not admin) sends one of reqs.
func userAllow(id string, scopes []string, reqs ...anchorReq) func(r *rand.Rand) map[string]any {
	return func(r *rand.Rand) map[string]any {
		pid, email, groups := anchorIdentity(r, id)
		q := pick(r, reqs)
		return anchorAllow(r, pid, email, groups, anchorMethod(r, q.method), anchorDecorate(r, q.path), scopes)
	}
}

// serviceAllow: the service principal id sends one of reqs.
func serviceAllow(id string, reqs ...anchorReq) func(r *rand.Rand) map[string]any {
	return func(r *rand.Rand) map[string]any {
		pid, email, groups := anchorServiceIdentity(r, id)
		q := pick(r, reqs)
		return anchorAllow(r, pid, email, groups, anchorMethod(r, q.method), anchorDecorate(r, q.path), nil)
	}
}

// anyoneAllow: a random anchor identity (or none) sends one of reqs.
func anyoneAllow(scopes []string, decorate bool, reqs ...anchorReq) func(r *rand.Rand) map[string]any {
	return func(r *rand.Rand) map[string]any {
		var pid, email string
		var groups []string
		switch r.IntN(4) {
		case 0:
			pid, email, groups = anchorIdentity(r, anchorUser)
		case 1:
			pid, email, groups = anchorIdentity(r, anchorAdmin)
		case 2:
			pid, email, groups = anchorServiceIdentity(r, anchorService)
		}
		q := pick(r, reqs)
		path := q.path
		if decorate {
			path = anchorDecorate(r, path)
		}
		return anchorAllow(r, pid, email, groups, anchorMethod(r, q.method), path, scopes)
	}
}

func permissionsInput(pid, email string, groups []string, onBehalfOf, workspace string, perms ...string) map[string]any {
	in := map[string]any{"principal_id": pid, "principal_email": email, "principal_groups": toAny(groups),
		"workspace": workspace, "permissions": toAny(perms)}
	if onBehalfOf != "" {
		in["on_behalf_of_principal_id"] = onBehalfOf
	}
	return in
}

func roleInput(pid, email string, groups []string, workspace, role string) map[string]any {
	return map[string]any{"principal_id": pid, "principal_email": email, "principal_groups": toAny(groups),
		"workspace": workspace, "role": role}
}

var (
	invalidPaths = []anchorReq{{"GET", ""}, {"GET", "relative/path"}, {"GET", "/apis/%zz"}, {"POST", "/apis/../x"},
		{"GET", "/apis/auth/./jwks"}, {"GET", "/apis//x"}, {"GET", "/apis/x//"}, {"GET", "/v2/workspaces/%2e%2e"}, {"GET", "?a=/b"}}
	publicPaths = []anchorReq{{"GET", "/health/live"}, {"HEAD", "/health/ready"}, {"GET", "/status"}, {"GET", "/metrics"},
		{"GET", "/apis/auth/jwks"}, {"POST", "/apis/auth/authenticate"}}
	protectedPaths = []anchorReq{{"GET", "/apis/auth/v2/iam/role-bindings"}, {"DELETE", "/apis/auth/v2/iam/role-bindings/x"},
		{"GET", "/apis/entities/v2/workspaces/" + anchorWS + "/projects"}, {"POST", "/apis/nothing/here"}, {"GET", "/v2/workspaces"}}
	userViewerReqs = []anchorReq{{"GET", "/apis/entities/v2/workspaces/" + anchorWS + "/projects"},
		{"HEAD", "/apis/entities/v2/workspaces/" + anchorWS + "/projects/p1"}, {"GET", "/v2/workspaces/" + anchorWS},
		{"GET", "/apis/entities/v2/workspaces/" + anchorWS + "/members"}}
	userEditorReqs = []anchorReq{{"POST", "/apis/entities/v2/workspaces/" + anchorWS + "/projects"},
		{"DELETE", "/apis/entities/v2/workspaces/" + anchorWS + "/projects/p1"}, {"PUT", "/v2/workspaces/" + anchorWS},
		{"POST", "/apis/entities/v2/workspaces/" + anchorWS + "/members"}}
)

// anchorTemplates lists the constructed cases; every reason of allow and
// both answers of has_permissions and has_role appear.
var anchorTemplates = []anchorTemplate{
	// Loaded states.
	{note: "row 1", want: "invalid_path", entrypoint: "allow", build: anyoneAllow(nil, false, invalidPaths...)},
	{note: "row 1b", want: "invalid_scope", entrypoint: "allow",
		build: func(r *rand.Rand) map[string]any {
			return anyoneAllow([]string{"openid", pick(r, []string{"a.b", "projects.read", "iam.bundle.read"})}, true,
				append(slices.Clone(publicPaths), protectedPaths...)...)(r)
		}},
	{note: "row 3", want: "endpoint_denied", extraOnly: true, entrypoint: "allow",
		build: anyoneAllow(nil, true, anchorReq{"GET", "/apis/ops/v1/internal"}, anchorReq{"HEAD", "/apis/ops/v1/internal"})},
	{note: "row 4", want: "prefix_denied", extraOnly: true, entrypoint: "allow",
		build: anyoneAllow(nil, true, anchorReq{"GET", "/apis/legacy"}, anchorReq{"POST", "/apis/legacy/x/y"},
			anchorReq{"GET", "/apis/ops/v1/old"}, anchorReq{"DELETE", "/apis/ops/v1/old/z"}, anchorReq{"GET", "/apis/%6Cegacy"})},
	{note: "row 5", want: "public_endpoint", entrypoint: "allow", build: anyoneAllow(nil, true, publicPaths...)},
	{note: "row 6", want: "no_principal", entrypoint: "allow",
		build: func(r *rand.Rand) map[string]any {
			q := pick(r, protectedPaths)
			return anchorAllow(r, "", "", nil, anchorMethod(r, q.method), anchorDecorate(r, q.path), nil)
		}},
	{note: "row 7", want: "entities_internal", entrypoint: "allow",
		build: userAllow(anchorUser, nil, anchorReq{"GET", "/apis/entities/v2/entities/e1"}, anchorReq{"POST", "/apis/entities/v2/workspaces/w1"},
			anchorReq{"GET", "/apis/entities/v2/workspaces/-/projects"}, anchorReq{"GET", "/v2/workspaces/-/members"})},
	{note: "row 8", want: "callers_restricted", entrypoint: "allow",
		build: userAllow(anchorUser, nil, anchorReq{"POST", "/apis/auth/v2/authz/allow"}, anchorReq{"POST", "/apis/auth/v2/authz/has_role"})},
	{note: "row 9", want: "callers_restricted", entrypoint: "allow",
		build: serviceAllow(anchorService, anchorReq{"GET", "/apis/auth/v2/access-keys"}, anchorReq{"DELETE", "/apis/auth/v2/access-keys/k1"},
			anchorReq{"POST", "/apis/auth/v2/access-keys/k1/rotate"})},
	{note: "row 10", want: "bundle_forbidden", entrypoint: "allow",
		build: userAllow(anchorUser, nil, anchorReq{"GET", "/apis/auth/v2/iam/opa-bundle.tar.gz"},
			anchorReq{"GET", "/apis/auth/v2/iam/opa-bundle%2Etar.gz"}, anchorReq{"POST", "/apis/auth/v2/iam/opa-bundle.tar.gz"})},
	{note: "row 11", want: "platform_admin", entrypoint: "allow",
		build: userAllow(anchorAdmin, nil, anchorReq{"GET", "/apis/auth/v2/iam/role-bindings"}, anchorReq{"POST", "/apis/nothing/here"},
			anchorReq{"POST", "/apis/entities/v2/workspaces/w1"}, anchorReq{"POST", "/apis/auth/v2/authz/allow"},
			anchorReq{"DELETE", "/apis/entities/v2/workspaces/" + anchorWS + "/projects/p1"})},
	{note: "row 12", want: "service_unknown_path", entrypoint: "allow",
		build: serviceAllow(anchorService, anchorReq{"GET", "/apis/nothing/here"}, anchorReq{"PATCH", "/apis/auth/v2/iam/role-bindings"},
			anchorReq{"GET", "/x"})},
	{note: "row 13", want: "unknown_endpoint", entrypoint: "allow",
		build: userAllow(anchorUser, nil, anchorReq{"GET", "/apis/nothing/here"}, anchorReq{"PATCH", "/apis/auth/v2/iam/role-bindings"},
			anchorReq{"GET", "/x"})},
	{note: "row 14", want: "scope_missing", entrypoint: "allow",
		build: userAllow(anchorUser, []string{"entities:read"}, anchorReq{"GET", "/apis/auth/v2/iam/role-bindings"},
			anchorReq{"POST", "/apis/auth/v2/self-check"})},
	{note: "row 15", want: "authenticated", entrypoint: "allow",
		build: userAllow(anchorUser, nil, anchorReq{"POST", "/apis/auth/v2/self-check"}, anchorReq{"GET", "/apis/auth/v2/access-keys"},
			anchorReq{"POST", "/apis/auth/v2/access-keys/k1/suspend"})},
	{note: "row 16", want: "cross_workspace_read", entrypoint: "allow",
		build: serviceAllow(anchorBoundService, anchorReq{"GET", "/apis/entities/v2/workspaces/-/projects"},
			anchorReq{"HEAD", "/apis/entities/v2/workspaces/-/members"}, anchorReq{"GET", "/v2/workspaces/-/entities/datasets"})},
	{note: "row 17", want: "permission_granted", entrypoint: "allow",
		build: serviceAllow(anchorService, anchorReq{"POST", "/apis/entities/v2/workspaces/-/projects"},
			anchorReq{"DELETE", "/apis/entities/v2/workspaces/-/projects/p1"}, anchorReq{"POST", "/v2/workspaces/-/members"})},
	{note: "row 18", want: "permission_missing", entrypoint: "allow",
		build: serviceAllow(anchorBoundService, anchorReq{"POST", "/apis/entities/v2/workspaces/-/projects"},
			anchorReq{"DELETE", "/apis/entities/v2/workspaces/-/projects/p1"}, anchorReq{"POST", "/v2/workspaces/-/members"})},
	{note: "row 19", want: "permission_granted", entrypoint: "allow", build: userAllow(anchorUser, nil, userViewerReqs...)},
	{note: "row 20", want: "permission_missing", entrypoint: "allow",
		build: func(r *rand.Rand) map[string]any {
			if r.IntN(2) == 0 {
				return userAllow(anchorUser, nil, userEditorReqs...)(r)
			}
			return userAllow(anchorNobody, nil, userViewerReqs...)(r)
		}},
	{note: "granted permissions", want: "true", entrypoint: "has_permissions",
		build: func(r *rand.Rand) map[string]any {
			switch r.IntN(3) {
			case 0:
				pid, email, groups := anchorIdentity(r, anchorUser)
				return permissionsInput(pid, email, groups, "", anchorWS, pick(r, []string{"projects.read", "workspaces.members.list"}), "projects.list")
			case 1:
				pid, email, groups := anchorIdentity(r, anchorAdmin)
				return permissionsInput(pid, email, groups, "", pick(r, []string{anchorWS, "system", "-"}), "iam.create", "unknown.perm")
			}
			pid, email, groups := anchorServiceIdentity(r, anchorService)
			return permissionsInput(pid, email, groups, "", anchorWS, "projects.create", "system/iam.delete")
		}},
	{note: "missing permissions", want: "false", entrypoint: "has_permissions",
		build: func(r *rand.Rand) map[string]any {
			switch r.IntN(3) {
			case 0:
				pid, email, groups := anchorIdentity(r, anchorUser)
				return permissionsInput(pid, email, groups, "", anchorWS, "projects.list", pick(r, []string{"projects.create", "iam.read"}))
			case 1:
				pid, email, groups := anchorIdentity(r, anchorNobody)
				return permissionsInput(pid, email, groups, "", anchorWS, "projects.list")
			}
			// On behalf of a principal without bindings: no implicit ServiceSystem.
			pid, email, groups := anchorServiceIdentity(r, anchorService)
			return permissionsInput(pid, email, groups, anchorNobody, anchorWS, "projects.list")
		}},
	{note: "bound role", want: "true", entrypoint: "has_role",
		build: func(r *rand.Rand) map[string]any {
			if r.IntN(2) == 0 {
				pid, email, groups := anchorIdentity(r, anchorUser)
				return roleInput(pid, email, groups, anchorWS, "Viewer")
			}
			pid, email, groups := anchorIdentity(r, anchorAdmin)
			return roleInput(pid, email, groups, "system", "PlatformAdmin")
		}},
	{note: "unbound role", want: "false", entrypoint: "has_role",
		build: func(r *rand.Rand) map[string]any {
			pid, email, groups := anchorIdentity(r, anchorUser)
			if r.IntN(2) == 0 {
				return roleInput(pid, email, groups, "system", "Viewer") // bound in anchorWS only
			}
			// Editor and Admin include Viewer, not the other way round.
			return roleInput(pid, email, groups, anchorWS, pick(r, []string{"Editor", "Admin", "Ghost"}))
		}},

	// The state without bindings.
	{note: "row 1 (unloaded)", want: "invalid_path", unloaded: true, entrypoint: "allow", build: anyoneAllow(nil, false, invalidPaths...)},
	{note: "row 1b (unloaded)", want: "invalid_scope", unloaded: true, entrypoint: "allow",
		build: anyoneAllow([]string{"a.b"}, true, append(slices.Clone(publicPaths), protectedPaths...)...)},
	{note: "row 2", want: "no_policy_data", unloaded: true, entrypoint: "allow",
		build: anyoneAllow(nil, true, append(slices.Clone(protectedPaths), anchorReq{"GET", "/apis/ops/v1/internal"})...)},
	{note: "row 5 (unloaded)", want: "public_endpoint", unloaded: true, entrypoint: "allow", build: anyoneAllow(nil, true, publicPaths...)},
	{note: "has_permissions (unloaded)", want: "false", unloaded: true, entrypoint: "has_permissions",
		build: func(r *rand.Rand) map[string]any {
			pid, email, groups := anchorIdentity(r, pick(r, []string{anchorUser, anchorAdmin}))
			return permissionsInput(pid, email, groups, "", anchorWS, "projects.list")
		}},
	{note: "has_role (unloaded)", want: "false", unloaded: true, entrypoint: "has_role",
		build: func(r *rand.Rand) map[string]any {
			pid, email, groups := anchorIdentity(r, anchorUser)
			return roleInput(pid, email, groups, anchorWS, "Viewer")
		}},
}

// noiseBindings are random bindings that cannot touch an anchor case: no
// anchor principal and no "*".
func noiseBindings(r *rand.Rand) []store.RoleBinding {
	var bs []store.RoleBinding
	for i, n := 0, r.IntN(30); i < n; i++ {
		p := pick(r, diffPrincipals)
		if p == "*" {
			continue
		}
		bs = append(bs, store.RoleBinding{ID: fmt.Sprintf("noise-%d", i), Principal: p,
			Workspace: pick(r, diffWorkspaces), Role: pick(r, diffRoles), Revision: 1})
	}
	return bs
}

// anchorStates returns the constructed states: static data with bindings,
// extra data with bindings, and a state without bindings (static or extra
// data, by the seed). Bindings are anchorBindings plus noise, shuffled.
func anchorStates(r *rand.Rand) []diffState {
	states := []diffState{{Extra: false, Loaded: true}, {Extra: true, Loaded: true}, {Extra: r.IntN(2) == 0, Loaded: false}}
	for i := range states {
		s := &states[i]
		if s.Loaded {
			s.Bindings = append(slices.Clone(anchorBindings), noiseBindings(r)...)
			r.Shuffle(len(s.Bindings), func(i, j int) { s.Bindings[i], s.Bindings[j] = s.Bindings[j], s.Bindings[i] })
		}
		for _, tpl := range anchorTemplates {
			if tpl.unloaded == s.Loaded || tpl.extraOnly && !s.Extra {
				continue
			}
			for v := 0; v < anchorVariants; v++ {
				s.Cases = append(s.Cases, diffCase{Entrypoint: tpl.entrypoint, Input: tpl.build(r), Want: tpl.want, Note: tpl.note})
			}
		}
		r.Shuffle(len(s.Cases), func(i, j int) { s.Cases[i], s.Cases[j] = s.Cases[j], s.Cases[i] })
	}
	return states
}

// policyReasons returns the reasons the allow entrypoint can return, read
// from the Rego policy's decision (deny("…") / grant("…")) and from the
// native evaluator's Allow (deny("…") / allow("…")); the two must agree.
func policyReasons() ([]string, error) {
	read := func(file string, re *regexp.Regexp) ([]string, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(out, m[1]) {
				out = append(out, m[1])
			}
		}
		slices.Sort(out)
		if len(out) == 0 {
			return nil, fmt.Errorf("%s: no reasons found", file)
		}
		return out, nil
	}
	rego, err := read(policyDir+"/authz.rego", regexp.MustCompile(`"reason": "([a-z_]+)"`))
	if err != nil {
		return nil, err
	}
	native, err := read("engine.go", regexp.MustCompile(`\b(?:deny|allow)\("([a-z_]+)"\)`))
	if err != nil {
		return nil, err
	}
	if !slices.Equal(rego, native) {
		return nil, fmt.Errorf("the policy's reasons %v differ from the native evaluator's %v", rego, native)
	}
	return rego, nil
}

// TestDiffAnchorsCoverPolicy: without evaluating anything, the constructed
// cases name every reason the policy can return and both answers of
// has_permissions and has_role (TestDifferential then checks that each
// case gets the answer it names).
func TestDiffAnchorsCoverPolicy(t *testing.T) {
	reasons, err := policyReasons()
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, tpl := range anchorTemplates {
		named[tpl.entrypoint+" "+tpl.want] = true
	}
	for _, reason := range reasons {
		if !named["allow "+reason] {
			t.Errorf("no constructed case for reason %s", reason)
		}
	}
	for _, want := range []string{"has_permissions true", "has_permissions false", "has_role true", "has_role false"} {
		if !named[want] {
			t.Errorf("no constructed case for %s", want)
		}
	}
	for _, s := range anchorStates(rand.New(rand.NewPCG(1, 2))) {
		if len(s.Cases) == 0 {
			t.Errorf("constructed state (extra %v, loaded %v) has no cases", s.Extra, s.Loaded)
		}
	}
}
