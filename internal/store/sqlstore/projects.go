package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/nmp-project/nmp/internal/store"
)

const projectCols = `p.id, p.name, w.name, p.description, p.created_at, p.created_by, p.updated_at, p.updated_by`
const projectFrom = `projects p JOIN workspaces w ON w.id = p.workspace_id`

func readProject(scan func(...any) error) (store.Project, error) {
	var p store.Project
	err := scan(&p.ID, &p.Name, &p.Workspace, &p.Description, &p.CreatedAt, &p.CreatedBy, &p.UpdatedAt, &p.UpdatedBy)
	return p, err
}

var projectColumns = map[string]column{
	"name":       {expr: "p.name"},
	"created_by": {expr: "p.created_by"},
	"created_at": {expr: "p.created_at", kind: colTime},
	"updated_at": {expr: "p.updated_at", kind: colTime},
}

func projectNotFound(workspace, name string) error {
	return store.NotFound("not_found", "Project '%s' not found in workspace '%s'", name, workspace)
}

// CreateProject creates a project in an existing workspace.
func (s *Store) CreateProject(ctx context.Context, in store.NewProject) (store.Project, error) {
	var p store.Project
	err := s.tx(ctx, func(c conn) error {
		w, err := getWorkspace(ctx, c, in.Workspace)
		if err != nil {
			return err
		}
		if _, err := getProject(ctx, c, in.Workspace, in.Name); err == nil {
			return store.Conflict("already_exists", "Project '%s' already exists in workspace '%s'", in.Name, in.Workspace)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		now := s.now()
		p = store.Project{ID: "project-" + shortID(), Name: in.Name, Workspace: w.Name, Description: in.Description,
			Audit: store.Audit{CreatedAt: now, CreatedBy: in.By, UpdatedAt: now, UpdatedBy: in.By}}
		_, err = c.exec(ctx, `INSERT INTO projects (id, workspace_id, name, description, created_at, created_by, updated_at, updated_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, p.ID, w.ID, p.Name, p.Description, p.CreatedAt, p.CreatedBy, p.UpdatedAt, p.UpdatedBy)
		return err
	})
	return p, err
}

func getProject(ctx context.Context, c conn, workspace, name string) (store.Project, error) {
	p, err := one(ctx, c, readProject, `SELECT `+projectCols+` FROM `+projectFrom+` WHERE w.name = ? AND p.name = ?`, workspace, name)
	if errors.Is(err, sql.ErrNoRows) {
		return p, projectNotFound(workspace, name)
	}
	return p, err
}

// GetProject returns a project; a missing workspace is reported as such.
func (s *Store) GetProject(ctx context.Context, workspace, name string) (store.Project, error) {
	var p store.Project
	err := s.snapshot(ctx, func(c conn) error {
		if _, err := getWorkspace(ctx, c, workspace); err != nil {
			return err
		}
		var err error
		p, err = getProject(ctx, c, workspace, name)
		return err
	})
	return p, err
}

// ListProjects lists the projects of a workspace.
func (s *Store) ListProjects(ctx context.Context, workspace string, opts store.ListOptions) (store.Page[store.Project], error) {
	var page store.Page[store.Project]
	err := s.snapshot(ctx, func(c conn) error {
		if _, err := getWorkspace(ctx, c, workspace); err != nil {
			return err
		}
		l := &listQuery{selectCols: projectCols, from: projectFrom, idExpr: "p.id", columns: projectColumns}
		l.and("w.name = ?", workspace)
		var err error
		page, err = runList(ctx, c, l, opts, readProject)
		return err
	})
	return page, err
}

// UpdateProject replaces the description.
func (s *Store) UpdateProject(ctx context.Context, workspace, name, description string, by store.Actor) (store.Project, error) {
	var p store.Project
	err := s.tx(ctx, func(c conn) error {
		if _, err := getWorkspace(ctx, c, workspace); err != nil {
			return err
		}
		cur, err := getProject(ctx, c, workspace, name)
		if err != nil {
			return err
		}
		now := s.now()
		if _, err := c.exec(ctx, `UPDATE projects SET description = ?, updated_at = ?, updated_by = ? WHERE id = ?`,
			description, now, by, cur.ID); err != nil {
			return err
		}
		p, err = getProject(ctx, c, workspace, name)
		return err
	})
	return p, err
}

// DeleteProject deletes a project no entity references.
func (s *Store) DeleteProject(ctx context.Context, workspace, name string) (store.Deleted, error) {
	var del store.Deleted
	err := s.tx(ctx, func(c conn) error {
		if _, err := getWorkspace(ctx, c, workspace); err != nil {
			return err
		}
		p, err := getProject(ctx, c, workspace, name)
		if err != nil {
			return err
		}
		var n int
		if err := c.row(ctx, `SELECT count(*) FROM entities WHERE project_id = ?`, p.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.Conflict("project_not_empty", "Cannot delete project '%s': %d entities reference it", name, n)
		}
		del = store.Deleted{ID: p.ID, DeletedAt: s.now()}
		_, err = c.exec(ctx, `DELETE FROM projects WHERE id = ?`, p.ID)
		return err
	})
	return del, err
}
