package api

import (
	"net/http"

	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/query"
)

var projectSchema = query.Schema{
	Sort: []string{"name", "created_at", "updated_at"},
	Filters: map[string]query.Kind{"name": query.String, "created_by": query.String,
		"created_at": query.Timestamp, "updated_at": query.Timestamp},
}

func (s *Server) projectPath(r *http.Request) (ws, name string, err error) {
	if ws, err = pathValue(r, "workspace", validName); err != nil {
		return
	}
	name, err = pathValue(r, "name", validName)
	return
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) error {
	ws, err := pathValue(r, "workspace", validName)
	if err != nil {
		return err
	}
	q, err := query.Parse(r.URL.Query(), projectSchema)
	if err != nil {
		return err
	}
	page, err := s.store.ListProjects(r.Context(), ws, q.Options)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageBody(page, q.Sort, q.Filter))
	return nil
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request) error {
	ws, err := pathValue(r, "workspace", validName)
	if err != nil {
		return err
	}
	var name, description string
	if err := decodeBody(r, field{"name", &name, true}, field{"description", &description, false}); err != nil {
		return err
	}
	if err := firstError(validName(name, "body", "name"), validDescription(description, "body", "description")); err != nil {
		return err
	}
	p, err := s.store.CreateProject(r.Context(), store.NewProject{Workspace: ws, Name: name, Description: description, By: actor(r)})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func (s *Server) getProject(w http.ResponseWriter, r *http.Request) error {
	ws, name, err := s.projectPath(r)
	if err != nil {
		return err
	}
	p, err := s.store.GetProject(r.Context(), ws, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) updateProject(w http.ResponseWriter, r *http.Request) error {
	ws, name, err := s.projectPath(r)
	if err != nil {
		return err
	}
	var description string
	if err := decodeBody(r, field{"description", &description, true}); err != nil {
		return err
	}
	if err := validDescription(description, "body", "description"); err != nil {
		return err
	}
	p, err := s.store.UpdateProject(r.Context(), ws, name, description, actor(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request) error {
	ws, name, err := s.projectPath(r)
	if err != nil {
		return err
	}
	del, err := s.store.DeleteProject(r.Context(), ws, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deleteBody("Project deleted", del))
	return nil
}
