package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
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
	propagationComplete = "complete" // the decision point holds the change
	propagationSkipped  = "skipped"  // wait_role_propagation=false
	propagationTimeout  = "timeout"  // not applied within the bound
	propagationFailed   = "failed"   // applying it failed (retried in the background)
)

// roleChange is what a committed binding write expects the decision point
// to answer once it holds the change (has_role, exact).
type roleChange struct {
	// held are the answers the write knows from its result.
	held []pdp.RoleExpectation
	// revoked adds, for each binding the write's revision revoked, the
	// expectation that its role is no longer held (read from the store).
	revoked bool
}

// policyChanged waits, before the response is written, until this
// process's policy holds a committed binding change, so that the next
// request here sees it, and reports the outcome. With provider opa and
// wait_role_propagation, it then polls OPA's has_role every
// auth.propagation_poll_interval_seconds until every expectation of
// change holds; the whole wait is bounded by propagationTimeout. The
// write is committed whatever happens here; only a confirmed application
// says "complete".
func (s *Server) policyChanged(w http.ResponseWriter, r *http.Request, revision int64, wait bool, change roleChange) {
	state := propagationComplete
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.propagationTimeout)
	defer cancel()
	if revision > 0 && s.propagation != nil {
		err := s.propagation.Await(ctx, revision)
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
	if revision > 0 && wait && state == propagationComplete && s.cfg.Auth.PolicyDecisionPointProvider == "opa" {
		state = s.awaitOPA(ctx, r, revision, change)
	}
	if !wait && state == propagationComplete {
		state = propagationSkipped
	}
	w.Header().Set("X-NMP-Role-Propagation", state)
}

// awaitOPA polls the external OPA until it answers has_role as change
// expects: complete, or timeout (logged) when ctx ends first.
func (s *Server) awaitOPA(ctx context.Context, r *http.Request, revision int64, change roleChange) string {
	exps, err := s.expectations(ctx, revision, change)
	if err != nil {
		s.log.WarnContext(r.Context(), "committed role change: cannot tell what OPA should answer",
			"request_id", requestID(r.Context()), "revision", revision, "propagation", propagationFailed, "error", err)
		return propagationFailed
	}
	if len(exps) == 0 {
		return propagationComplete
	}
	interval := time.Duration(s.cfg.Auth.PropagationPollIntervalSeconds * float64(time.Second))
	if err := pdp.AwaitRoles(ctx, s.pdp, interval, exps); err != nil {
		s.log.WarnContext(r.Context(), "committed role change not yet visible in the external OPA",
			"request_id", requestID(r.Context()), "revision", revision, "propagation", propagationTimeout, "error", err)
		return propagationTimeout
	}
	return propagationComplete
}

// expectations resolves change: its held answers, plus (revoked) a
// "not held" for each binding the revision revoked whose role the write
// does not expect to be held.
func (s *Server) expectations(ctx context.Context, revision int64, change roleChange) ([]pdp.RoleExpectation, error) {
	exps := slices.Clone(change.held)
	if !change.revoked {
		return exps, nil
	}
	pb, err := s.store.BindingChanges(ctx, revision-1)
	if err != nil {
		return nil, err
	}
	for _, b := range pb.Bindings {
		if b.Revision != revision || b.RevokedAt == nil {
			continue
		}
		gone := pdp.RoleExpectation{Principal: b.Principal, Workspace: b.Workspace, Role: b.Role}
		if slices.ContainsFunc(exps, func(e pdp.RoleExpectation) bool {
			return e.Principal == gone.Principal && e.Workspace == gone.Workspace && e.Role == gone.Role
		}) {
			continue
		}
		exps = append(exps, gone)
	}
	return exps, nil
}

// heldRoles expects principal to hold each of roles in workspace.
func heldRoles(workspace, principal string, roles []string) []pdp.RoleExpectation {
	out := make([]pdp.RoleExpectation, len(roles))
	for i, role := range roles {
		out[i] = pdp.RoleExpectation{Principal: principal, Workspace: workspace, Role: role, Held: true}
	}
	return out
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
	var change roleChange
	if admin := authn.FromContext(r.Context()).OwnerKey(); admin != "" {
		change.held = heldRoles(ws.Name, admin, []string{authz.RoleAdmin})
	}
	s.policyChanged(w, r, rev, wait, change)
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
	s.policyChanged(w, r, del.Revision, false, roleChange{}) // workspace deletion never waits
	writeJSON(w, http.StatusOK, deleteBody("Workspace deleted", del))
	return nil
}

func deleteBody(message string, d store.Deleted) map[string]any {
	return map[string]any{"message": message, "id": d.ID, "deleted_at": d.DeletedAt}
}
