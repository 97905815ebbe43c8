package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/query"
)

var workspaceSchema = query.Schema{
	Sort: []string{"name", "created_at", "updated_at"},
	Filters: map[string]query.Kind{"name": query.String, "description": query.String, "created_by": query.String,
		"created_at": query.Timestamp, "updated_at": query.Timestamp},
}

// actor is the principal recorded in audit columns (nil if anonymous).
func actor(r *http.Request) store.Actor { return authn.FromContext(r.Context()).Actor() }

// grantedBy is the granted_by of bindings a request creates.
func grantedBy(r *http.Request) string {
	if a := actor(r); a != nil {
		return *a
	}
	return "anonymous"
}

// waitForPropagation is the wait_role_propagation query parameter
// (default true), already validated by checkWaitParam.
func waitForPropagation(r *http.Request) bool {
	b, err := strconv.ParseBool(r.URL.Query().Get("wait_role_propagation"))
	return err != nil || b
}

// checkWaitParam validates wait_role_propagation, which every write of the
// entity store and the role-binding API accepts: a boolean, given once.
func checkWaitParam(r *http.Request) error {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodDelete:
	default:
		return nil
	}
	if !strings.HasPrefix(r.URL.Path, EntitiesPrefix+"/") && !strings.HasPrefix(r.URL.Path, "/apis/auth/v2/iam/role-bindings") {
		return nil
	}
	v, ok := r.URL.Query()["wait_role_propagation"]
	if !ok {
		return nil
	}
	if _, err := strconv.ParseBool(v[0]); len(v) != 1 || err != nil {
		return apierror.Validation("must be a boolean", "query", "wait_role_propagation")
	}
	return nil
}

// Values of the X-NMP-Role-Propagation response header.
const (
	propagationComplete = "complete" // this process's PDP holds the change
	propagationSkipped  = "skipped"  // wait_role_propagation=false
	propagationTimeout  = "timeout"  // not applied within the bound
	propagationFailed   = "failed"   // applying it failed (retried in the background)
)

// policyChanged waits, before the response is written, until this
// process's policy holds a committed binding change, so that the next
// request here sees it, and reports the outcome. The write is committed
// whatever happens here; only a confirmed application says "complete".
func (s *Server) policyChanged(w http.ResponseWriter, r *http.Request, revision int64, wait bool) {
	state := propagationComplete
	if revision > 0 && s.propagation != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.propagationTimeout)
		err := s.propagation.Await(ctx, revision)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, context.DeadlineExceeded):
			state = propagationTimeout
		default:
			state = propagationFailed
		}
		if err != nil {
			s.log.WarnContext(r.Context(), "committed role change not yet applied to this process's policy",
				"request_id", requestID(r.Context()), "revision", revision, "propagation", state, "error", err)
		}
	}
	if !wait && state == propagationComplete {
		state = propagationSkipped
	}
	w.Header().Set("X-NMP-Role-Propagation", state)
}

// pathWorkspace validates the workspace path value.
func pathValue(r *http.Request, key string, valid func(string, ...string) error) (string, error) {
	v := r.PathValue(key)
	return v, valid(v, "path", key)
}

// visibility restricts lists to the workspaces the decision point says
// the caller may see (its id, email, a group or "*" holds an active
// binding there; all for a PlatformAdmin or a service principal). With
// auth disabled everything is visible and nothing is asked.
func (s *Server) visibility(r *http.Request) (*store.Visibility, error) {
	if !s.cfg.Auth.Enabled {
		return nil, nil
	}
	p := authn.FromContext(r.Context())
	v, err := s.pdp.VisibleWorkspaces(r.Context(), pdp.Subject(p))
	switch {
	case err != nil:
		return nil, s.pdpFailed(r, p, err)
	case v.All:
		return nil, nil
	}
	return &store.Visibility{Workspaces: v.Workspaces}, nil
}

func (s *Server) listWorkspaces(w http.ResponseWriter, r *http.Request) error {
	q, err := query.Parse(r.URL.Query(), workspaceSchema)
	if err != nil {
		return err
	}
	vis, err := s.visibility(r)
	if err != nil {
		return err
	}
	page, err := s.store.ListWorkspaces(r.Context(), q.Options, vis)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageBody(page, q.Sort, q.Filter))
	return nil
}

func (s *Server) createWorkspace(w http.ResponseWriter, r *http.Request) error {
	wait := waitForPropagation(r)
	var name, description string
	if err := decodeBody(r, field{"name", &name, true}, field{"description", &description, false}); err != nil {
		return err
	}
	if err := firstError(validName(name, "body", "name"), validDescription(description, "body", "description")); err != nil {
		return err
	}
	ws, rev, err := s.store.CreateWorkspace(r.Context(), store.NewWorkspace{
		Name: name, Description: description, By: actor(r),
		Admin: authn.FromContext(r.Context()).OwnerKey(),
	})
	if err != nil {
		return err
	}
	s.policyChanged(w, r, rev, wait)
	writeJSON(w, http.StatusCreated, ws)
	return nil
}

func (s *Server) getWorkspace(w http.ResponseWriter, r *http.Request) error {
	name, err := pathValue(r, "name", validName)
	if err != nil {
		return err
	}
	ws, err := s.store.GetWorkspace(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ws)
	return nil
}

func (s *Server) updateWorkspace(w http.ResponseWriter, r *http.Request) error {
	name, err := pathValue(r, "name", validName)
	if err != nil {
		return err
	}
	var bodyName, description string
	if err := decodeBody(r, field{"description", &description, true}, field{"name", &bodyName, false}); err != nil {
		return err
	}
	if bodyName != "" && bodyName != name {
		return apierror.Validation("a workspace cannot be renamed", "body", "name")
	}
	if err := validDescription(description, "body", "description"); err != nil {
		return err
	}
	ws, err := s.store.UpdateWorkspace(r.Context(), name, description, actor(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ws)
	return nil
}

func (s *Server) deleteWorkspace(w http.ResponseWriter, r *http.Request) error {
	name, err := pathValue(r, "name", validName)
	if err != nil {
		return err
	}
	del, err := s.store.DeleteWorkspace(r.Context(), name, actor(r))
	if err != nil {
		return err
	}
	s.policyChanged(w, r, del.Revision, false) // workspace deletion never waits
	writeJSON(w, http.StatusOK, deleteBody("Workspace deleted", del))
	return nil
}

func deleteBody(message string, d store.Deleted) map[string]any {
	return map[string]any{"message": message, "id": d.ID, "deleted_at": d.DeletedAt}
}
