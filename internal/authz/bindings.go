package authz

import (
	"hash/maphash"
	"maps"
	"slices"

	"github.com/nmp-project/nmp/internal/store"
)

// nShards splits the binding index so that a change copies one shard
// (about 1/1024 of the principals), not the whole index.
const nShards = 1024

// smallEntry is the size up to which a principal's workspaces are kept in
// a slice; beyond it, in a map.
const smallEntry = 8

// wsRoles are the roles bound to a principal in one workspace.
type wsRoles struct {
	workspace string
	roles     roleSet
}

// entry holds one principal's bindings. Entries are immutable once
// published; changes build a new entry.
type entry struct {
	small []wsRoles
	big   map[string]roleSet
}

func (e *entry) roles(workspace string) roleSet {
	if e.big != nil {
		return e.big[workspace]
	}
	for _, w := range e.small {
		if w.workspace == workspace {
			return w.roles
		}
	}
	return roleSet{}
}

// with returns a copy of e with the role set of workspace replaced.
func (e *entry) with(workspace string, rs roleSet) *entry {
	n := &entry{}
	if e != nil && e.big != nil {
		n.big = maps.Clone(e.big)
	} else {
		if e != nil {
			n.small = make([]wsRoles, 0, len(e.small)+1)
			for _, w := range e.small {
				if w.workspace != workspace {
					n.small = append(n.small, w)
				}
			}
		}
		if rs.empty() {
			return n
		}
		if len(n.small) < smallEntry {
			n.small = append(n.small, wsRoles{workspace, rs})
			return n
		}
		n.big = make(map[string]roleSet, len(n.small)+1)
		for _, w := range n.small {
			n.big[w.workspace] = w.roles
		}
		n.small = nil
	}
	if rs.empty() {
		delete(n.big, workspace)
	} else {
		n.big[workspace] = rs
	}
	return n
}

func (e *entry) isEmpty() bool { return e == nil || len(e.small) == 0 && len(e.big) == 0 }

// bindingIndex maps principal -> workspace -> roles. It is immutable:
// apply returns a new index sharing every untouched shard.
type bindingIndex struct {
	seed   maphash.Seed
	shards [nShards]map[string]*entry
}

func (b *bindingIndex) shard(principal string) int {
	return int(maphash.String(b.seed, principal) % nShards)
}

func (b *bindingIndex) roles(principal, workspace string) roleSet {
	e := b.shards[b.shard(principal)][principal]
	if e == nil {
		return roleSet{}
	}
	return e.roles(workspace)
}

// eachWorkspace calls fn for every workspace in which principal holds at
// least one role (entries never keep an empty role set).
func (b *bindingIndex) eachWorkspace(principal string, fn func(workspace string)) {
	e := b.shards[b.shard(principal)][principal]
	if e == nil {
		return
	}
	for _, w := range e.small {
		fn(w.workspace)
	}
	for ws := range e.big {
		fn(ws)
	}
}

// buildIndex indexes every active binding. Workspace names are interned
// so that a million bindings share a few thousand strings.
func buildIndex(p *policy, bindings []store.RoleBinding) *bindingIndex {
	b := &bindingIndex{seed: maphash.MakeSeed()}
	intern := map[string]string{}
	sets := map[string]map[string]roleSet{}
	for _, rb := range bindings {
		ri, ok := p.roleIndex[rb.Role]
		if !ok || rb.RevokedAt != nil {
			continue
		}
		ws, ok := intern[rb.Workspace]
		if !ok {
			ws = rb.Workspace
			intern[ws] = ws
		}
		m := sets[rb.Principal]
		if m == nil {
			m = map[string]roleSet{}
			sets[rb.Principal] = m
		}
		rs := m[ws]
		rs.add(ri)
		m[ws] = rs
	}
	for principal, m := range sets {
		var e *entry
		for ws, rs := range m {
			e = e.with(ws, rs)
		}
		i := b.shard(principal)
		if b.shards[i] == nil {
			b.shards[i] = map[string]*entry{}
		}
		b.shards[i][principal] = e
	}
	return b
}

// apply returns a new index with the changed bindings (active or revoked,
// in revision order) applied; untouched shards are shared.
func (b *bindingIndex) apply(p *policy, changes []store.RoleBinding) *bindingIndex {
	n := &bindingIndex{seed: b.seed, shards: b.shards}
	cloned := map[int]bool{}
	for _, rb := range changes {
		ri, ok := p.roleIndex[rb.Role]
		if !ok {
			continue
		}
		i := n.shard(rb.Principal)
		if !cloned[i] {
			n.shards[i] = maps.Clone(n.shards[i])
			if n.shards[i] == nil {
				n.shards[i] = map[string]*entry{}
			}
			cloned[i] = true
		}
		e := n.shards[i][rb.Principal]
		var rs roleSet
		if e != nil {
			rs = e.roles(rb.Workspace)
		}
		if rb.RevokedAt != nil {
			rs.remove(ri)
		} else {
			rs.add(ri)
		}
		if e = e.with(rb.Workspace, rs); e.isEmpty() {
			delete(n.shards[i], rb.Principal)
		} else {
			n.shards[i][rb.Principal] = e
		}
	}
	return n
}

// principals renders the index as data.authz.principals for OPA.
func (b *bindingIndex) principals(p *policy) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	add := func(principal, ws string, rs roleSet) {
		if out[principal] == nil {
			out[principal] = map[string][]string{}
		}
		var names []string
		rs.each(func(i int) { names = append(names, p.roleNames[i]) })
		slices.Sort(names) // by name, not role index: the OPA bundle's bytes depend on it
		out[principal][ws] = names
	}
	for _, shard := range b.shards {
		for principal, e := range shard {
			for _, w := range e.small {
				add(principal, w.workspace, w.roles)
			}
			for ws, rs := range e.big {
				add(principal, ws, rs)
			}
		}
	}
	return out
}
