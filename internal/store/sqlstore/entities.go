package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/nmp-project/nmp/internal/store"
)

const entityCols = `e.id, w.name, e.entity_type, e.name, e.parent, p.name, e.data, e.created_at, e.created_by, e.updated_at, e.updated_by, e.db_version`
const entityFrom = `entities e JOIN workspaces w ON w.id = e.workspace_id LEFT JOIN projects p ON p.id = e.project_id`

func readEntity(scan func(...any) error) (store.Entity, error) {
	var e store.Entity
	var data []byte
	err := scan(&e.ID, &e.Workspace, &e.EntityType, &e.Name, &e.Parent, &e.Project, &data,
		&e.CreatedAt, &e.CreatedBy, &e.UpdatedAt, &e.UpdatedBy, &e.DBVersion)
	e.Data = data
	return e, err
}

var entityColumns = map[string]column{
	"name":       {expr: "e.name"},
	"parent":     {expr: "e.parent"},
	"project":    {expr: "p.name"},
	"created_by": {expr: "e.created_by"},
	"created_at": {expr: "e.created_at", kind: colTime},
	"updated_at": {expr: "e.updated_at", kind: colTime},
}

func entityNotFound(k store.EntityKey) error {
	return store.NotFound("not_found", "Entity '%s' of type '%s' not found in workspace '%s'", k.Name, k.EntityType, k.Workspace)
}

// projectID resolves a project name in a workspace; nil stays nil.
func projectID(ctx context.Context, c conn, workspaceID, workspace string, name *string) (*string, error) {
	if name == nil {
		return nil, nil
	}
	var id string
	err := c.row(ctx, `SELECT id FROM projects WHERE workspace_id = ? AND name = ?`, workspaceID, *name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.Invalid("validation_error", "Project '%s' not found in workspace '%s'", *name, workspace)
	}
	return &id, err
}

// CreateEntity stores a new entity; (workspace, type, parent, name) is unique.
func (s *Store) CreateEntity(ctx context.Context, in store.NewEntity) (store.Entity, error) {
	var e store.Entity
	err := s.tx(ctx, func(c conn) error {
		w, err := getWorkspace(ctx, c, in.Workspace)
		if err != nil {
			return err
		}
		pid, err := projectID(ctx, c, w.ID, w.Name, in.Project)
		if err != nil {
			return err
		}
		if _, err := getEntity(ctx, c, in.EntityKey); err == nil {
			return store.Conflict("already_exists", "Entity '%s' of type '%s' already exists in workspace '%s'", in.Name, in.EntityType, in.Workspace)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		now := s.now()
		id := in.EntityType + "-" + shortID()
		if _, err := c.exec(ctx, `INSERT INTO entities (id, workspace_id, entity_type, name, parent, project_id, data, db_version,
			created_at, created_by, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, `+s.d.jsonParam+`, 1, ?, ?, ?, ?)`,
			id, w.ID, in.EntityType, in.Name, in.Parent, pid, string(in.Data), now, in.By, now, in.By); err != nil {
			return err
		}
		e, err = getEntityBy(ctx, c, "e.id = ?", id)
		return err
	})
	return e, err
}

func getEntityBy(ctx context.Context, c conn, where string, args ...any) (store.Entity, error) {
	return one(ctx, c, readEntity, `SELECT `+entityCols+` FROM `+entityFrom+` WHERE `+where, args...)
}

func getEntity(ctx context.Context, c conn, k store.EntityKey) (store.Entity, error) {
	e, err := getEntityBy(ctx, c, `w.name = ? AND e.entity_type = ? AND e.name = ? AND coalesce(e.parent, '') = ?`,
		k.Workspace, k.EntityType, k.Name, deref(k.Parent))
	if errors.Is(err, sql.ErrNoRows) {
		return e, entityNotFound(k)
	}
	return e, err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// GetEntity returns an entity by workspace, type, name and parent.
func (s *Store) GetEntity(ctx context.Context, k store.EntityKey) (store.Entity, error) {
	var e store.Entity
	err := s.snapshot(ctx, func(c conn) error {
		if _, err := getWorkspace(ctx, c, k.Workspace); err != nil {
			return err
		}
		var err error
		e, err = getEntity(ctx, c, k)
		return err
	})
	return e, err
}

// GetEntityByID returns an entity by id.
func (s *Store) GetEntityByID(ctx context.Context, id string) (store.Entity, error) {
	e, err := getEntityBy(ctx, s.read(), "e.id = ?", id)
	if errors.Is(err, sql.ErrNoRows) {
		return e, store.NotFound("not_found", "Entity '%s' not found", id)
	}
	return e, err
}

// ListEntities lists entities of a type in one workspace or in all.
func (s *Store) ListEntities(ctx context.Context, workspace, entityType string, opts store.ListOptions, vis *store.Visibility) (store.Page[store.Entity], error) {
	var page store.Page[store.Entity]
	err := s.snapshot(ctx, func(c conn) error {
		l := &listQuery{selectCols: entityCols, from: entityFrom, idExpr: "e.id", columns: entityColumns, dataCol: "e.data"}
		l.and("e.entity_type = ?", entityType)
		if workspace == store.AllWorkspaces {
			restrictVisible(s.d, l, "w.name", vis)
		} else {
			if _, err := getWorkspace(ctx, c, workspace); err != nil {
				return err
			}
			l.and("w.name = ?", workspace)
		}
		var err error
		page, err = runList(ctx, c, l, opts, readEntity)
		return err
	})
	return page, err
}

// UpdateEntity replaces data (and project) with optimistic locking.
func (s *Store) UpdateEntity(ctx context.Context, in store.EntityUpdate) (store.Entity, error) {
	var e store.Entity
	err := s.tx(ctx, func(c conn) error {
		w, err := getWorkspace(ctx, c, in.Workspace)
		if err != nil {
			return err
		}
		cur, err := getEntity(ctx, c, in.EntityKey)
		if err != nil {
			return err
		}
		if in.DBVersion != nil && *in.DBVersion != cur.DBVersion {
			return versionConflict(cur)
		}
		pid, err := projectID(ctx, c, w.ID, w.Name, in.Project)
		if err != nil {
			return err
		}
		res, err := c.exec(ctx, `UPDATE entities SET data = `+s.d.jsonParam+`, project_id = ?, updated_at = ?, updated_by = ?,
			db_version = db_version + 1 WHERE id = ? AND db_version = ?`,
			string(in.Data), pid, s.now(), in.By, cur.ID, cur.DBVersion)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return versionConflict(cur)
		}
		e, err = getEntityBy(ctx, c, "e.id = ?", cur.ID)
		return err
	})
	return e, err
}

func versionConflict(e store.Entity) error {
	return store.Conflict("version_conflict", "Entity '%s' was modified concurrently (db_version %d is current); reload and retry", e.Name, e.DBVersion)
}

// DeleteEntity deletes an entity.
func (s *Store) DeleteEntity(ctx context.Context, k store.EntityKey) (store.Deleted, error) {
	var del store.Deleted
	err := s.tx(ctx, func(c conn) error {
		if _, err := getWorkspace(ctx, c, k.Workspace); err != nil {
			return err
		}
		e, err := getEntity(ctx, c, k)
		if err != nil {
			return err
		}
		del = store.Deleted{ID: e.ID, DeletedAt: s.now()}
		_, err = c.exec(ctx, `DELETE FROM entities WHERE id = ?`, e.ID)
		return err
	})
	return del, err
}
