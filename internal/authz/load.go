package authz

import (
	"context"
	"fmt"
	"hash/maphash"
	"time"
)

// ActiveBindingScanner streams every active binding and the policy
// revision they were read at, from one consistent snapshot (the store).
type ActiveBindingScanner interface {
	ScanActiveBindings(ctx context.Context, fn func(principal, workspace, role string) error) (revision int64, err error)
}

// LoadFrom replaces every binding with those the source streams (a full
// reload), building the index while the rows arrive (on a second
// goroutine, a batch at a time), without holding them all first. It
// returns the revision read. If that revision is below the engine's
// current one it returns an error wrapping ErrStale and keeps the current
// snapshot; an equal revision reloads. Decisions are the same as after a
// Load of the same bindings.
func (e *Engine) LoadFrom(ctx context.Context, src ActiveBindingScanner, now time.Time) (int64, error) {
	cur := e.snap.Load()
	bld := newIndexBuilder(cur.policy, cur.index)
	revision, err := pipeline(ctx, src, bld)
	if err != nil {
		return 0, err
	}
	index := bld.finish()
	e.mu.Lock()
	defer e.mu.Unlock()
	cur = e.snap.Load()
	if revision < cur.revision {
		return revision, fmt.Errorf("%w: read revision %d, engine at %d", ErrStale, revision, cur.revision)
	}
	e.snap.Store(&snapshot{policy: cur.policy, index: index, revision: revision, loaded: true, reloaded: now})
	return revision, nil
}

// loadBatch is how many rows the scan hands to the builder at a time.
const loadBatch = 2048

// pipeline runs the scan and the index build on two goroutines, so that
// reading rows (mostly the database driver) and indexing them overlap.
func pipeline(ctx context.Context, src ActiveBindingScanner, bld *indexBuilder) (int64, error) {
	batches := make(chan [][3]string, 4)
	free := make(chan [][3]string, 6)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for batch := range batches {
			for _, r := range batch {
				_ = bld.add(r[0], r[1], r[2])
			}
			clear(batch)
			select {
			case free <- batch[:0]:
			default:
			}
		}
	}()
	batch := make([][3]string, 0, loadBatch)
	revision, err := src.ScanActiveBindings(ctx, func(principal, workspace, role string) error {
		batch = append(batch, [3]string{principal, workspace, role})
		if len(batch) == loadBatch {
			batches <- batch
			select {
			case batch = <-free:
			default:
				batch = make([][3]string, 0, loadBatch)
			}
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		batches <- batch
	}
	close(batches)
	<-done
	return revision, err
}

// indexBuilder builds a bindingIndex from a stream of bindings. Entries
// are private to the builder until finish, so it fills them in place.
// Rows grouped by principal (as SQLite returns them) are collected into
// one run and become an exact-size entry when the principal changes; rows
// in any other order merge into the entry already built.
type indexBuilder struct {
	p      *policy
	b      *bindingIndex
	hint   [nShards]int
	intern map[string]string

	principal string
	started   bool
	run       []wsRoles      // the current principal's workspaces
	runIndex  map[string]int // workspace -> position in run, once run is long
	// unsorted is set once a principal arrives out of byte order; until
	// then every run is a principal not seen before.
	unsorted bool
	flushed  bool
	last     string // the last principal flushed
}

// newIndexBuilder starts an index; prev (the current one, if any) gives
// the hash seed and the shard sizes to pre-size the new shards with.
func newIndexBuilder(p *policy, prev *bindingIndex) *indexBuilder {
	x := &indexBuilder{p: p, b: &bindingIndex{}, intern: map[string]string{}}
	if prev != nil && prev.seed != (maphash.Seed{}) {
		// The same seed puts each principal in the same shard as before.
		x.b.seed = prev.seed
		for i, m := range prev.shards {
			x.hint[i] = len(m)
		}
	} else {
		x.b.seed = maphash.MakeSeed()
	}
	return x
}

// add takes one active binding; unknown roles are skipped (as buildIndex
// does).
func (x *indexBuilder) add(principal, workspace, role string) error {
	ri := x.role(role)
	if ri < 0 {
		return nil
	}
	if !x.started || principal != x.principal {
		x.flush()
		x.principal, x.started = principal, true
	}
	if x.runIndex != nil {
		if j, ok := x.runIndex[workspace]; ok {
			x.run[j].roles.add(ri)
			return nil
		}
	} else {
		for j := range x.run {
			if x.run[j].workspace == workspace {
				x.run[j].roles.add(ri)
				return nil
			}
		}
	}
	ws, ok := x.intern[workspace]
	if !ok {
		ws = workspace
		x.intern[ws] = ws
	}
	var rs roleSet
	rs.add(ri)
	x.run = append(x.run, wsRoles{ws, rs})
	if x.runIndex != nil {
		x.runIndex[ws] = len(x.run) - 1
	} else if len(x.run) > smallEntry {
		x.runIndex = make(map[string]int, 2*len(x.run))
		for j, w := range x.run {
			x.runIndex[w.workspace] = j
		}
	}
	return nil
}

// role is the index of a role name, -1 if undefined. A policy has a
// handful of roles: comparing names beats hashing them once per row.
func (x *indexBuilder) role(name string) int {
	if len(x.p.roleNames) > 16 {
		if ri, ok := x.p.roleIndex[name]; ok {
			return ri
		}
		return -1
	}
	for i, n := range x.p.roleNames {
		if n == name {
			return i
		}
	}
	return -1
}

// flush stores the current run in its shard.
func (x *indexBuilder) flush() {
	if len(x.run) == 0 {
		return
	}
	i := x.b.shard(x.principal)
	m := x.b.shards[i]
	if m == nil {
		m = make(map[string]*entry, x.hint[i])
		x.b.shards[i] = m
	}
	// A principal not above the last one flushed may have been seen.
	if x.flushed && x.principal <= x.last {
		x.unsorted = true
	}
	x.last, x.flushed = x.principal, true
	if e := m[x.principal]; x.unsorted && e != nil {
		for _, w := range x.run {
			e.merge(w.workspace, w.roles)
		}
	} else {
		m[x.principal] = newEntry(x.run)
	}
	clear(x.run)
	x.run = x.run[:0]
	x.runIndex = nil
}

// finish returns the index; the builder must not be used afterwards.
func (x *indexBuilder) finish() *bindingIndex {
	x.flush()
	b := x.b
	*x = indexBuilder{}
	return b
}

// newEntry makes an entry of the workspaces in run (distinct, non-empty
// role sets), sized exactly.
func newEntry(run []wsRoles) *entry {
	if len(run) <= smallEntry {
		return &entry{small: append(make([]wsRoles, 0, len(run)), run...)}
	}
	big := make(map[string]roleSet, len(run))
	for _, w := range run {
		big[w.workspace] = w.roles
	}
	return &entry{big: big}
}

// merge adds rs to the roles of workspace, in place: only for entries not
// yet published (the builder's). The small slice is reallocated exactly,
// so that entries built from rows in any order take no more memory than
// entries built from grouped rows.
func (e *entry) merge(workspace string, rs roleSet) {
	if e.big != nil {
		cur := e.big[workspace]
		cur.or(rs)
		e.big[workspace] = cur
		return
	}
	for j := range e.small {
		if e.small[j].workspace == workspace {
			e.small[j].roles.or(rs)
			return
		}
	}
	if len(e.small) < smallEntry {
		small := make([]wsRoles, len(e.small), len(e.small)+1)
		copy(small, e.small)
		e.small = append(small, wsRoles{workspace, rs})
		return
	}
	e.big = make(map[string]roleSet, len(e.small)+1)
	for _, w := range e.small {
		e.big[w.workspace] = w.roles
	}
	e.big[workspace] = rs
	e.small = nil
}
