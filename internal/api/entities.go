package api

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/query"
)

var entitySchema = query.Schema{
	Sort: []string{"name", "created_at", "updated_at"},
	Filters: map[string]query.Kind{"name": query.String, "parent": query.String, "project": query.String,
		"created_by": query.String, "created_at": query.Timestamp, "updated_at": query.Timestamp},
	DataFilters: true,
}

// validListWorkspace accepts a workspace name or "-" (all workspaces).
func validListWorkspace(v string, loc ...string) error {
	if v == store.AllWorkspaces {
		return nil
	}
	return validName(v, loc...)
}

// entityKey reads workspace, type, name and the optional ?parent=.
func entityKey(r *http.Request) (store.EntityKey, error) {
	var k store.EntityKey
	var err error
	if k.Workspace, err = pathValue(r, "workspace", validName); err != nil {
		return k, err
	}
	if k.EntityType, err = pathValue(r, "type", validEntityType); err != nil {
		return k, err
	}
	if k.Name, err = pathValue(r, "name", validEntityName); err != nil {
		return k, err
	}
	if vs, ok := r.URL.Query()["parent"]; ok {
		if len(vs) != 1 {
			return k, apierror.Validation("must be given once", "query", "parent")
		}
		if err := validEntityName(vs[0], "query", "parent"); err != nil {
			return k, err
		}
		k.Parent = &vs[0]
	}
	return k, nil
}

// validData requires a JSON object.
func validData(data json.RawMessage) error {
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		return apierror.Validation("must be a JSON object", "body", "data")
	}
	return nil
}

func validOptionalName(v *string, loc ...string) error {
	if v == nil {
		return nil
	}
	return validName(*v, loc...)
}

func (s *Server) listEntities(w http.ResponseWriter, r *http.Request) error {
	ws, err := pathValue(r, "workspace", validListWorkspace)
	if err != nil {
		return err
	}
	typ, err := pathValue(r, "type", validEntityType)
	if err != nil {
		return err
	}
	q, err := query.Parse(r.URL.Query(), entitySchema)
	if err != nil {
		return err
	}
	var vis *store.Visibility // one workspace: the middleware's decision covers it
	if ws == store.AllWorkspaces {
		if vis, err = s.visibility(r); err != nil {
			return err
		}
	}
	page, err := s.store.ListEntities(r.Context(), ws, typ, q.Options, vis)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageBody(page, q.Sort, q.Filter))
	return nil
}

func (s *Server) createEntity(w http.ResponseWriter, r *http.Request) error {
	ws, err := pathValue(r, "workspace", validName)
	if err != nil {
		return err
	}
	typ, err := pathValue(r, "type", validEntityType)
	if err != nil {
		return err
	}
	in := store.NewEntity{EntityKey: store.EntityKey{Workspace: ws, EntityType: typ}, By: actor(r)}
	if err := decodeBody(r, field{"name", &in.Name, true}, field{"parent", &in.Parent, false},
		field{"project", &in.Project, false}, field{"data", &in.Data, true}); err != nil {
		return err
	}
	if err := firstError(validEntityName(in.Name, "body", "name"), validOptionalEntityName(in.Parent, "body", "parent"),
		validOptionalName(in.Project, "body", "project"), validData(in.Data)); err != nil {
		return err
	}
	e, err := s.store.CreateEntity(r.Context(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, e)
	return nil
}

func validOptionalEntityName(v *string, loc ...string) error {
	if v == nil {
		return nil
	}
	return validEntityName(*v, loc...)
}

func (s *Server) getEntity(w http.ResponseWriter, r *http.Request) error {
	k, err := entityKey(r)
	if err != nil {
		return err
	}
	e, err := s.store.GetEntity(r.Context(), k)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (s *Server) updateEntity(w http.ResponseWriter, r *http.Request) error {
	k, err := entityKey(r)
	if err != nil {
		return err
	}
	in := store.EntityUpdate{EntityKey: k, By: actor(r)}
	if err := decodeBody(r, field{"data", &in.Data, true}, field{"project", &in.Project, false},
		field{"db_version", &in.DBVersion, false}); err != nil {
		return err
	}
	if in.DBVersion != nil && *in.DBVersion < 1 {
		return apierror.Validation("must be at least 1", "body", "db_version")
	}
	if err := firstError(validOptionalName(in.Project, "body", "project"), validData(in.Data)); err != nil {
		return err
	}
	e, err := s.store.UpdateEntity(r.Context(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (s *Server) deleteEntity(w http.ResponseWriter, r *http.Request) error {
	k, err := entityKey(r)
	if err != nil {
		return err
	}
	del, err := s.store.DeleteEntity(r.Context(), k)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deleteBody("Entity deleted", del))
	return nil
}

func (s *Server) getEntityByID(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if len(id) > 300 {
		return apierror.Validation("is too long", "path", "id")
	}
	e, err := s.store.GetEntityByID(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}
