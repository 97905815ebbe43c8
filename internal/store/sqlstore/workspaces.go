package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/nmp-project/nmp/internal/store"
)

const workspaceCols = `w.id, w.name, w.description, w.created_at, w.created_by, w.updated_at, w.updated_by`

func readWorkspace(scan func(...any) error) (store.Workspace, error) {
	var w store.Workspace
	err := scan(&w.ID, &w.Name, &w.Description, &w.CreatedAt, &w.CreatedBy, &w.UpdatedAt, &w.UpdatedBy)
	return w, err
}

var workspaceColumns = map[string]column{
	"name":        {expr: "w.name"},
	"description": {expr: "w.description"},
	"created_by":  {expr: "w.created_by"},
	"created_at":  {expr: "w.created_at", kind: colTime},
	"updated_at":  {expr: "w.updated_at", kind: colTime},
}

// CreateWorkspace inserts a workspace and, when in.Admin is set, its
// creator's Admin binding in the same transaction.
func (s *Store) CreateWorkspace(ctx context.Context, in store.NewWorkspace) (store.Workspace, int64, error) {
	now := s.now()
	w := store.Workspace{ID: uuid.NewString(), Name: in.Name, Description: in.Description,
		Audit: store.Audit{CreatedAt: now, CreatedBy: in.By, UpdatedAt: now, UpdatedBy: in.By}}
	var rev int64
	err := s.tx(ctx, func(c conn) error {
		if _, err := s.lockPolicy(ctx, c); err != nil {
			return err
		}
		if _, err := getWorkspace(ctx, c, in.Name); err == nil {
			return store.Conflict("already_exists", "Workspace '%s' already exists", in.Name)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := insertWorkspace(ctx, c, w); err != nil {
			return err
		}
		if err := s.audit(ctx, c, auditChange{action: store.AuditWorkspaceCreate, workspace: w.Name, target: w.Name,
			after: store.AuditWorkspaceState{Name: w.Name, Description: w.Description}}); err != nil {
			return err
		}
		if in.Admin == "" {
			return nil
		}
		var err error
		rev, err = s.bump(ctx, c)
		if err != nil {
			return err
		}
		by := in.Admin
		if in.By != nil {
			by = *in.By
		}
		if _, err = s.insertBinding(ctx, c, bindingName(in.Admin, in.Name, "Admin"), in.Admin, in.Name, "Admin", by, now, rev); err != nil {
			return err
		}
		return s.auditMember(ctx, c, in.Name, in.Admin, nil, []string{adminRole})
	})
	return w, rev, err
}

func insertWorkspace(ctx context.Context, c conn, w store.Workspace) error {
	_, err := c.exec(ctx, `INSERT INTO workspaces (id, name, description, created_at, created_by, updated_at, updated_by)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, w.ID, w.Name, w.Description, w.CreatedAt, w.CreatedBy, w.UpdatedAt, w.UpdatedBy)
	return err
}

func getWorkspace(ctx context.Context, c conn, name string) (store.Workspace, error) {
	w, err := one(ctx, c, readWorkspace, `SELECT `+workspaceCols+` FROM workspaces w WHERE w.name = ?`, name)
	if errors.Is(err, sql.ErrNoRows) {
		return w, store.WorkspaceNotFound(name)
	}
	return w, err
}

// GetWorkspace returns a workspace by name.
func (s *Store) GetWorkspace(ctx context.Context, name string) (store.Workspace, error) {
	return getWorkspace(ctx, s.read(), name)
}

// ListWorkspaces lists workspaces visible to vis (all when nil).
func (s *Store) ListWorkspaces(ctx context.Context, opts store.ListOptions, vis *store.Visibility) (store.Page[store.Workspace], error) {
	l := &listQuery{selectCols: workspaceCols, from: "workspaces w", idExpr: "w.id", columns: workspaceColumns}
	restrictVisible(s.d, l, "w.name", vis)
	return runList(ctx, s.read(), l, opts, readWorkspace)
}

// restrictVisible keeps rows whose workspace name (expr) is in vis, with
// one parameter whatever the size of the set.
func restrictVisible(d *dialect, l *listQuery, workspaceExpr string, vis *store.Visibility) {
	if vis == nil {
		return
	}
	if len(vis.Workspaces) == 0 {
		l.and("1 = 0")
		return
	}
	cond, arg := d.inSet(workspaceExpr, vis.Workspaces)
	l.and(cond, arg)
}

// UpdateWorkspace replaces the description.
func (s *Store) UpdateWorkspace(ctx context.Context, name, description string, by store.Actor) (store.Workspace, error) {
	var w store.Workspace
	err := s.tx(ctx, func(c conn) error {
		now := s.now()
		res, err := c.exec(ctx, `UPDATE workspaces SET description = ?, updated_at = ?, updated_by = ? WHERE name = ?`,
			description, now, by, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.WorkspaceNotFound(name)
		}
		w, err = getWorkspace(ctx, c, name)
		return err
	})
	return w, err
}

// DeleteWorkspace deletes an empty, non-built-in workspace and revokes all
// its bindings in the same transaction.
func (s *Store) DeleteWorkspace(ctx context.Context, name string, _ store.Actor) (store.Deleted, error) {
	if name == store.DefaultWorkspace || name == store.SystemWorkspace {
		return store.Deleted{}, store.Conflict("protected_workspace", "Workspace '%s' is built in and cannot be deleted", name)
	}
	var del store.Deleted
	err := s.tx(ctx, func(c conn) error {
		if _, err := s.lockPolicy(ctx, c); err != nil {
			return err
		}
		w, err := getWorkspace(ctx, c, name)
		if err != nil {
			return err
		}
		if err := checkWorkspaceEmpty(ctx, c, w); err != nil {
			return err
		}
		del = store.Deleted{ID: w.ID, DeletedAt: s.now()}
		active, err := collect(ctx, c, readBinding, `SELECT `+bindingCols+` FROM role_bindings b
			WHERE b.workspace = ? AND b.revoked_at IS NULL ORDER BY b.principal, b.role, b.id`, name)
		if err != nil {
			return err
		}
		before := store.AuditWorkspaceState{Name: w.Name, Description: w.Description}
		for _, b := range active {
			before.RevokedBindings = append(before.RevokedBindings, bindingState(b))
		}
		if len(active) > 0 {
			if del.Revision, err = s.bump(ctx, c); err != nil {
				return err
			}
			if _, err := c.exec(ctx, `UPDATE role_bindings SET revoked_at = ?, revision = ? WHERE workspace = ? AND revoked_at IS NULL`,
				del.DeletedAt, del.Revision, name); err != nil {
				return err
			}
		}
		if _, err = c.exec(ctx, `DELETE FROM workspaces WHERE id = ?`, w.ID); err != nil {
			return err
		}
		return s.audit(ctx, c, auditChange{action: store.AuditWorkspaceDelete, workspace: w.Name, target: w.Name, before: before})
	})
	return del, err
}

func checkWorkspaceEmpty(ctx context.Context, c conn, w store.Workspace) error {
	rows, err := c.query(ctx, `SELECT 'project', count(*) FROM projects WHERE workspace_id = ?
		UNION ALL SELECT entity_type, count(*) FROM entities WHERE workspace_id = ? GROUP BY entity_type`, w.ID, w.ID)
	if err != nil {
		return err
	}
	defer rows.Close() //nolint:errcheck // read-only; rows.Err() reports a failed read
	var parts []string
	var projects string
	for rows.Next() {
		var typ string
		var n int
		if err := rows.Scan(&typ, &n); err != nil {
			return err
		}
		switch {
		case n == 0:
		case typ == "project":
			projects = fmt.Sprintf("project (%d)", n)
		default:
			parts = append(parts, fmt.Sprintf("%s (%d)", typ, n))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	sort.Strings(parts)
	if projects != "" {
		parts = append([]string{projects}, parts...)
	}
	if len(parts) == 0 {
		return nil
	}
	return store.Conflict("workspace_not_empty",
		"Cannot delete workspace '%s': workspace contains entities that must be deleted first: %s", w.Name, strings.Join(parts, ", "))
}
