package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"slices"
	"sort"

	"github.com/google/uuid"

	"github.com/nmp-project/nmp/internal/store"
)

const bindingCols = `b.id, b.name, b.principal, b.workspace, b.role, b.granted_by, b.granted_at, b.revoked_at, b.revision`

func readBinding(scan func(...any) error) (store.RoleBinding, error) {
	var b store.RoleBinding
	err := scan(&b.ID, &b.Name, &b.Principal, &b.Workspace, &b.Role, &b.GrantedBy, &b.GrantedAt, &b.RevokedAt, &b.Revision)
	return b, err
}

var bindingColumns = map[string]column{
	"created_at": {expr: "b.granted_at", kind: colTime},
	"granted_at": {expr: "b.granted_at", kind: colTime},
	"revoked_at": {expr: "b.revoked_at", kind: colTime},
	"principal":  {expr: "b.principal"},
	"workspace":  {expr: "b.workspace"},
	"role":       {expr: "b.role"},
	"granted_by": {expr: "b.granted_by"},
	"is_active":  {expr: "b.revoked_at IS NULL", kind: colBool},
}

// adminRole is the role whose last holder in a workspace cannot leave.
const adminRole = "Admin"

// bindingName is the name of an API-created binding: "rb-" and the first
// 24 hex digits of sha256("<principal>:<workspace>:<role>").
func bindingName(principal, workspace, role string) string {
	sum := sha256.Sum256([]byte(principal + ":" + workspace + ":" + role))
	return "rb-" + hex.EncodeToString(sum[:])[:24]
}

// lockPolicy takes the policy lock that serializes every binding writer
// for the rest of the transaction and returns the current revision.
func (s *Store) lockPolicy(ctx context.Context, c conn) (int64, error) {
	var rev int64
	err := c.row(ctx, s.d.lockPolicy).Scan(&rev)
	return rev, err
}

// bump increments the policy revision (under the policy lock) and
// announces it to other replicas when the transaction commits.
func (s *Store) bump(ctx context.Context, c conn) (int64, error) {
	var rev int64
	if err := c.row(ctx, `UPDATE policy_state SET revision = revision + 1 WHERE id = 1 RETURNING revision`).Scan(&rev); err != nil {
		return 0, err
	}
	if c.t != nil {
		c.t.revision = rev
	}
	return rev, s.d.notify(ctx, c, revisionNotice(rev))
}

func (s *Store) insertBinding(ctx context.Context, c conn, name, principal, workspace, role, by string, at store.Timestamp, rev int64) (store.RoleBinding, error) {
	b := store.RoleBinding{ID: uuid.NewString(), Name: name, Principal: principal, Workspace: workspace,
		Role: role, GrantedBy: by, GrantedAt: at, Revision: rev}
	_, err := c.exec(ctx, `INSERT INTO role_bindings (id, name, principal, workspace, role, granted_by, granted_at, revision)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, b.ID, b.Name, b.Principal, b.Workspace, b.Role, b.GrantedBy, b.GrantedAt, b.Revision)
	return b, err
}

func revokeBindings(ctx context.Context, c conn, at store.Timestamp, rev int64, ids []string) error {
	for _, id := range ids {
		if _, err := c.exec(ctx, `UPDATE role_bindings SET revoked_at = ?, revision = ? WHERE id = ?`, at, rev, id); err != nil {
			return err
		}
	}
	return nil
}

// activeBindingsOf returns the active bindings of principal in workspace,
// oldest first.
func activeBindingsOf(ctx context.Context, c conn, workspace, principal string) ([]store.RoleBinding, error) {
	return collect(ctx, c, readBinding, `SELECT `+bindingCols+` FROM role_bindings b
		WHERE b.workspace = ? AND b.principal = ? AND b.revoked_at IS NULL ORDER BY b.granted_at, b.id`, workspace, principal)
}

func collect[T any](ctx context.Context, c conn, read scanner[T], q string, args ...any) ([]T, error) {
	rows, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close() //nolint:errcheck // read-only; rows.Err() reports a failed read
	var out []T
	for rows.Next() {
		v, err := read(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func countAdmins(ctx context.Context, c conn, workspace string) (int, error) {
	var n int
	err := c.row(ctx, `SELECT count(DISTINCT principal) FROM role_bindings WHERE workspace = ? AND role = ? AND revoked_at IS NULL`,
		workspace, adminRole).Scan(&n)
	return n, err
}

// guardLastAdmin runs change and refuses it (rolling back) when it would
// leave a workspace that had at least one Admin principal with none.
func guardLastAdmin(ctx context.Context, c conn, workspace string, change func() error) error {
	before, err := countAdmins(ctx, c, workspace)
	if err != nil {
		return err
	}
	if err := change(); err != nil {
		return err
	}
	after, err := countAdmins(ctx, c, workspace)
	if err != nil {
		return err
	}
	if before > 0 && after == 0 {
		return store.Conflict("last_admin", "Cannot remove the last Admin of workspace '%s'", workspace)
	}
	return nil
}

func memberOf(principal string, bs []store.RoleBinding) store.Member {
	m := store.Member{Principal: principal, Roles: []string{}}
	for i, b := range bs {
		if i == 0 || b.GrantedAt.Before(m.GrantedAt.Time) {
			m.GrantedAt, m.GrantedBy = b.GrantedAt, b.GrantedBy
		}
		if !slices.Contains(m.Roles, b.Role) {
			m.Roles = append(m.Roles, b.Role)
		}
	}
	sort.Strings(m.Roles)
	return m
}

// ListMembers groups the workspace's active bindings by principal.
func (s *Store) ListMembers(ctx context.Context, workspace string) ([]store.Member, error) {
	var members []store.Member
	err := s.snapshot(ctx, func(c conn) error {
		if _, err := getWorkspace(ctx, c, workspace); err != nil {
			return err
		}
		bs, err := collect(ctx, c, readBinding, `SELECT `+bindingCols+` FROM role_bindings b
			WHERE b.workspace = ? AND b.revoked_at IS NULL ORDER BY b.principal, b.granted_at, b.id`, workspace)
		if err != nil {
			return err
		}
		members = []store.Member{}
		for i := 0; i < len(bs); {
			j := i
			for j < len(bs) && bs[j].Principal == bs[i].Principal {
				j++
			}
			members = append(members, memberOf(bs[i].Principal, bs[i:j]))
			i = j
		}
		return nil
	})
	return members, err
}

// memberWrite is the shared frame of member writes: policy lock, workspace
// check, the principal's current bindings, the change, and the member view
// afterwards.
func (s *Store) memberWrite(ctx context.Context, workspace, principal string,
	change func(c conn, current []store.RoleBinding, rev func() (int64, error)) error) (store.MemberChange, error) {
	var out store.MemberChange
	err := s.tx(ctx, func(c conn) error {
		if _, err := s.lockPolicy(ctx, c); err != nil {
			return err
		}
		if _, err := getWorkspace(ctx, c, workspace); err != nil {
			return err
		}
		current, err := activeBindingsOf(ctx, c, workspace, principal)
		if err != nil {
			return err
		}
		revision := func() (int64, error) {
			if out.Revision == 0 {
				out.Revision, err = s.bump(ctx, c)
			}
			return out.Revision, err
		}
		if err := change(c, current, revision); err != nil {
			return err
		}
		after, err := activeBindingsOf(ctx, c, workspace, principal)
		if err != nil {
			return err
		}
		out.Member = memberOf(principal, after)
		return s.auditMember(ctx, c, workspace, principal, memberOf(principal, current).Roles, out.Member.Roles)
	})
	return out, err
}

// auditMember records the change of a member's roles from before to
// after (nothing when they are equal): a creation when the principal held
// no role, a deletion when it holds none any more.
func (s *Store) auditMember(ctx context.Context, c conn, workspace, principal string, before, after []string) error {
	if slices.Equal(before, after) {
		return nil
	}
	ch := auditChange{action: store.AuditMemberUpdate, workspace: workspace, target: principal,
		before: store.AuditMemberState{Roles: before}, after: store.AuditMemberState{Roles: after}}
	switch {
	case len(before) == 0:
		ch.action, ch.before = store.AuditMemberCreate, nil
	case len(after) == 0:
		ch.action, ch.after = store.AuditMemberDelete, nil
	}
	return s.audit(ctx, c, ch)
}

// bindingState is the audit state of a binding.
func bindingState(b store.RoleBinding) store.AuditBindingState {
	return store.AuditBindingState{Principal: b.Principal, Workspace: b.Workspace, Role: b.Role, GrantedBy: b.GrantedBy}
}

func heldRoles(bs []store.RoleBinding) map[string]string {
	held := make(map[string]string, len(bs))
	for _, b := range bs {
		held[b.Role] = b.ID
	}
	return held
}

func (s *Store) grant(ctx context.Context, c conn, workspace, principal string, roles []string, held map[string]string, by string, rev func() (int64, error)) error {
	now := s.now()
	for _, role := range roles {
		if _, ok := held[role]; ok {
			continue
		}
		r, err := rev()
		if err != nil {
			return err
		}
		if _, err := s.insertBinding(ctx, c, bindingName(principal, workspace, role), principal, workspace, role, by, now, r); err != nil {
			return err
		}
		held[role] = ""
	}
	return nil
}

// AddMember grants the roles the principal does not hold yet.
func (s *Store) AddMember(ctx context.Context, workspace, principal string, roles []string, by string) (store.MemberChange, error) {
	return s.memberWrite(ctx, workspace, principal, func(c conn, current []store.RoleBinding, rev func() (int64, error)) error {
		held := heldRoles(current)
		missing := 0
		for _, r := range roles {
			if _, ok := held[r]; !ok {
				missing++
			}
		}
		if missing == 0 {
			return store.Conflict("member_exists", "Member '%s' already has the requested roles in workspace '%s'", principal, workspace)
		}
		return s.grant(ctx, c, workspace, principal, roles, held, by, rev)
	})
}

// SetMemberRoles makes roles the member's exact role set.
func (s *Store) SetMemberRoles(ctx context.Context, workspace, principal string, roles []string, by string) (store.MemberChange, error) {
	return s.memberWrite(ctx, workspace, principal, func(c conn, current []store.RoleBinding, rev func() (int64, error)) error {
		if len(current) == 0 {
			return memberNotFound(principal, workspace)
		}
		return guardLastAdmin(ctx, c, workspace, func() error {
			var revoke []string
			for _, b := range current {
				if !slices.Contains(roles, b.Role) {
					revoke = append(revoke, b.ID)
				}
			}
			if len(revoke) > 0 {
				r, err := rev()
				if err != nil {
					return err
				}
				if err := revokeBindings(ctx, c, s.now(), r, revoke); err != nil {
					return err
				}
			}
			return s.grant(ctx, c, workspace, principal, roles, heldRoles(current), by, rev)
		})
	})
}

// RemoveMember revokes every active binding of the principal.
func (s *Store) RemoveMember(ctx context.Context, workspace, principal string) (store.Deleted, error) {
	var del store.Deleted
	_, err := s.memberWrite(ctx, workspace, principal, func(c conn, current []store.RoleBinding, rev func() (int64, error)) error {
		if len(current) == 0 {
			return memberNotFound(principal, workspace)
		}
		return guardLastAdmin(ctx, c, workspace, func() error {
			r, err := rev()
			if err != nil {
				return err
			}
			del = store.Deleted{ID: principal, DeletedAt: s.now(), Revision: r}
			ids := make([]string, len(current))
			for i, b := range current {
				ids[i] = b.ID
			}
			return revokeBindings(ctx, c, del.DeletedAt, r, ids)
		})
	})
	return del, err
}

func memberNotFound(principal, workspace string) error {
	return store.NotFound("member_not_found", "Member '%s' not found in workspace '%s'", principal, workspace)
}

// CreateRoleBinding creates an API binding (workspace "" means system).
func (s *Store) CreateRoleBinding(ctx context.Context, in store.NewRoleBinding) (store.RoleBinding, error) {
	if in.Workspace == "" {
		in.Workspace = store.SystemWorkspace
	}
	var b store.RoleBinding
	err := s.tx(ctx, func(c conn) error {
		if _, err := s.lockPolicy(ctx, c); err != nil {
			return err
		}
		if _, err := getWorkspace(ctx, c, in.Workspace); err != nil {
			return err
		}
		current, err := activeBindingsOf(ctx, c, in.Workspace, in.Principal)
		if err != nil {
			return err
		}
		if _, held := heldRoles(current)[in.Role]; held {
			return store.Conflict("already_exists", "Principal '%s' already has role '%s' in workspace '%s'", in.Principal, in.Role, in.Workspace)
		}
		rev, err := s.bump(ctx, c)
		if err != nil {
			return err
		}
		b, err = s.insertBinding(ctx, c, bindingName(in.Principal, in.Workspace, in.Role), in.Principal, in.Workspace, in.Role, in.By, s.now(), rev)
		if err != nil {
			return err
		}
		return s.audit(ctx, c, auditChange{action: store.AuditRoleBindingCreate, workspace: b.Workspace, target: b.Name,
			after: bindingState(b)})
	})
	return b, err
}

// GetRoleBinding returns the active binding with that name, else the most
// recently revoked one.
func (s *Store) GetRoleBinding(ctx context.Context, name string) (store.RoleBinding, error) {
	return getBinding(ctx, s.read(), name)
}

func getBinding(ctx context.Context, c conn, name string) (store.RoleBinding, error) {
	b, err := one(ctx, c, readBinding, `SELECT `+bindingCols+` FROM role_bindings b WHERE b.name = ?
		ORDER BY CASE WHEN b.revoked_at IS NULL THEN 0 ELSE 1 END, b.revoked_at DESC, b.id LIMIT 1`, name)
	if errors.Is(err, sql.ErrNoRows) {
		return b, store.NotFound("not_found", "Role binding '%s' not found", name)
	}
	return b, err
}

// ListRoleBindings lists bindings, active and revoked.
func (s *Store) ListRoleBindings(ctx context.Context, opts store.ListOptions) (store.Page[store.RoleBinding], error) {
	l := &listQuery{selectCols: bindingCols, from: "role_bindings b", idExpr: "b.id", columns: bindingColumns}
	return runList(ctx, s.read(), l, opts, readBinding)
}

// RevokeRoleBinding soft-deletes the active binding with that name.
func (s *Store) RevokeRoleBinding(ctx context.Context, name string) (store.Deleted, error) {
	var del store.Deleted
	err := s.tx(ctx, func(c conn) error {
		if _, err := s.lockPolicy(ctx, c); err != nil {
			return err
		}
		b, err := getBinding(ctx, c, name)
		if err != nil {
			return err
		}
		if b.RevokedAt != nil {
			return store.Conflict("already_revoked", "Role binding '%s' is already revoked", name)
		}
		return guardLastAdmin(ctx, c, b.Workspace, func() error {
			rev, err := s.bump(ctx, c)
			if err != nil {
				return err
			}
			del = store.Deleted{ID: b.ID, DeletedAt: s.now(), Revision: rev}
			if err := revokeBindings(ctx, c, del.DeletedAt, rev, []string{b.ID}); err != nil {
				return err
			}
			return s.audit(ctx, c, auditChange{action: store.AuditRoleBindingDelete, workspace: b.Workspace, target: b.Name,
				before: bindingState(b)})
		})
	})
	return del, err
}

// ActiveBindings returns every active binding at one revision.
func (s *Store) ActiveBindings(ctx context.Context) (store.PolicyBindings, error) {
	return s.bindings(ctx, `b.revoked_at IS NULL`)
}

// BindingChanges returns bindings changed after the given revision.
func (s *Store) BindingChanges(ctx context.Context, after int64) (store.PolicyBindings, error) {
	pb, err := s.bindings(ctx, `b.revision > ?`, after)
	pb.Since = after
	return pb, err
}

func (s *Store) bindings(ctx context.Context, where string, args ...any) (store.PolicyBindings, error) {
	var pb store.PolicyBindings
	err := s.snapshot(ctx, func(c conn) error {
		if err := c.row(ctx, `SELECT revision FROM policy_state WHERE id = 1`).Scan(&pb.Revision); err != nil {
			return err
		}
		var err error
		pb.Bindings, err = collect(ctx, c, readBinding, `SELECT `+bindingCols+` FROM role_bindings b WHERE `+where+` ORDER BY b.revision, b.id`, args...)
		return err
	})
	return pb, err
}

// PolicyRevision returns the current policy revision.
func (s *Store) PolicyRevision(ctx context.Context) (int64, error) {
	var rev int64
	err := s.read().row(ctx, `SELECT revision FROM policy_state WHERE id = 1`).Scan(&rev)
	return rev, err
}

// EnsureBuiltins creates the built-in workspaces and the seed bindings. A
// seed binding is skipped when a binding with its name exists, active or
// revoked (so an operator's revocation survives restarts), or when the
// same grant is already active under another name.
func (s *Store) EnsureBuiltins(ctx context.Context, seed store.Seed) error {
	return s.tx(ctx, func(c conn) error {
		if _, err := s.lockPolicy(ctx, c); err != nil {
			return err
		}
		now := s.now()
		for _, name := range []string{store.DefaultWorkspace, store.SystemWorkspace} {
			if _, err := getWorkspace(ctx, c, name); err == nil {
				continue
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			at := s.now() // distinct stamps keep the built-ins' order stable
			w := store.Workspace{ID: uuid.NewString(), Name: name, Audit: store.Audit{CreatedAt: at, UpdatedAt: at}}
			if err := insertWorkspace(ctx, c, w); err != nil {
				return err
			}
			if err := s.audit(ctx, c, auditChange{action: store.AuditWorkspaceCreate, workspace: name, target: name,
				after: store.AuditWorkspaceState{Name: name}}); err != nil {
				return err
			}
		}
		var rev int64
		for _, sb := range seed.Bindings {
			var n int
			if err := c.row(ctx, `SELECT count(*) FROM role_bindings WHERE name = ?
				OR (principal = ? AND workspace = ? AND role = ? AND revoked_at IS NULL)`,
				sb.Name, sb.Principal, sb.Workspace, sb.Role).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			if rev == 0 {
				var err error
				if rev, err = s.bump(ctx, c); err != nil {
					return err
				}
			}
			b, err := s.insertBinding(ctx, c, sb.Name, sb.Principal, sb.Workspace, sb.Role, "system", now, rev)
			if err != nil {
				return err
			}
			if err := s.audit(ctx, c, auditChange{action: store.AuditRoleBindingCreate, workspace: b.Workspace, target: b.Name,
				after: bindingState(b)}); err != nil {
				return err
			}
		}
		return nil
	})
}
