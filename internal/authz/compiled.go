package authz

import (
	"fmt"
	"math/bits"
	"sort"
	"strings"
)

// Limits of the compiled policy (bitset sizes).
const (
	maxRoles       = 128
	maxPermissions = 1024
)

// roleSet is a set of role indexes.
type roleSet [maxRoles / 64]uint64

func (s *roleSet) add(i int)     { s[i/64] |= 1 << (i % 64) }
func (s *roleSet) remove(i int)  { s[i/64] &^= 1 << (i % 64) }
func (s roleSet) has(i int) bool { return s[i/64]&(1<<(i%64)) != 0 }
func (s roleSet) empty() bool    { return s == roleSet{} }
func (s *roleSet) or(o roleSet)  { s[0] |= o[0]; s[1] |= o[1] }
func (s roleSet) each(fn func(i int)) {
	for w, word := range s {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			fn(w*64 + b)
			word &^= 1 << b
		}
	}
}

// permSet is a set of permission indexes plus the "*" wildcard.
type permSet struct {
	bits [maxPermissions / 64]uint64
	all  bool
}

func (s *permSet) add(i int) { s.bits[i/64] |= 1 << (i % 64) }

func (s *permSet) or(o *permSet) {
	s.all = s.all || o.all
	for i := range s.bits {
		s.bits[i] |= o.bits[i]
	}
}

// has reports whether permission i is held; an undeclared permission
// (i < 0) is held only through "*".
func (s *permSet) has(i int) bool { return s.all || i >= 0 && s.bits[i/64]&(1<<(i%64)) != 0 }

// permReq is one required permission: in the request's workspace, or in
// another one ("w2/p").
type permReq struct {
	workspace string // "" = the request's workspace
	index     int
}

// compiledEndpoint is an endpoint entry with its permissions resolved.
type compiledEndpoint struct {
	Endpoint
	reqs []permReq
}

// policy is the compiled static part of the policy.
type policy struct {
	doc          *Document
	roleIndex    map[string]int
	roleNames    []string
	rolePerms    []permSet // expanded through includes
	permIndex    map[string]int
	endpoints    *endpointIndex
	denied       []string
	platformRole int
	serviceRole  int
	bundleScopes []string
	bundleReq    permReq
}

// bundlePath is the OPA bundle endpoint (authz.md row 10).
const bundlePath = "/apis/auth/v2/iam/opa-bundle.tar.gz"

func compile(doc *Document) (*policy, error) {
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	p := &policy{doc: doc, roleIndex: map[string]int{}, permIndex: map[string]int{}, denied: doc.Config.DeniedPrefixes}
	ids := doc.PermissionIDs()
	if len(ids) > maxPermissions {
		return nil, fmt.Errorf("at most %d permissions can be declared", maxPermissions)
	}
	for i, id := range ids {
		p.permIndex[id] = i
	}
	names := make([]string, 0, len(doc.Roles))
	for name := range doc.Roles {
		names = append(names, name)
	}
	sort.Strings(names)
	p.roleNames = names
	for i, name := range names {
		p.roleIndex[name] = i
	}
	p.rolePerms = make([]permSet, len(names))
	for i, name := range names {
		p.expand(name, &p.rolePerms[i], 0)
	}
	var ok bool
	if p.platformRole, ok = p.roleIndex[RolePlatformAdmin]; !ok {
		return nil, fmt.Errorf("role %s must be defined", RolePlatformAdmin)
	}
	if p.serviceRole, ok = p.roleIndex[RoleServiceSystem]; !ok {
		return nil, fmt.Errorf("role %s must be defined", RoleServiceSystem)
	}
	idx, err := compileEndpoints(doc.Endpoints)
	if err != nil {
		return nil, err
	}
	for _, routes := range idx.byMethod {
		for _, r := range routes {
			r.ep.reqs = p.requirements(r.ep.Permissions)
		}
	}
	p.endpoints = idx
	p.bundleScopes = doc.Endpoints[bundlePath]["get"].Scopes
	p.bundleReq, _ = p.requirement("iam.bundle.read")
	return p, nil
}

func (p *policy) expand(role string, into *permSet, depth int) {
	if depth > maxIncludeDepth {
		return
	}
	r := p.doc.Roles[role]
	for _, perm := range r.Permissions {
		if perm == "*" {
			into.all = true
			continue
		}
		into.add(p.permIndex[perm])
	}
	for _, inc := range r.Includes {
		p.expand(inc, into, depth+1)
	}
}

func (p *policy) requirements(perms []string) []permReq {
	reqs := make([]permReq, 0, len(perms))
	for _, perm := range perms {
		r, _ := p.requirement(perm)
		reqs = append(reqs, r)
	}
	return reqs
}

// requirement resolves a permission id ("p" or "w2/p", split at the
// first "/"). An undeclared permission gets index -1, which only "*"
// satisfies.
func (p *policy) requirement(perm string) (permReq, bool) {
	q := permReq{index: -1}
	if ws, id, ok := strings.Cut(perm, "/"); ok {
		q.workspace, perm = ws, id
	}
	i, ok := p.permIndex[perm]
	if ok {
		q.index = i
	}
	return q, ok
}
