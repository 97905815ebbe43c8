package api

import (
	"context"
	"net/http"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/ident"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/query"
)

// The role-binding API (api.md "Role bindings"): every binding, in any
// workspace, including PlatformAdmin grants. Besides the PDP check (iam.*
// in system) the handlers admit only PlatformAdmin and service callers.

var roleBindingSchema = query.Schema{
	Sort: []string{"created_at", "principal", "workspace", "role"},
	Filters: map[string]query.Kind{"principal": query.String, "workspace": query.String, "role": query.String,
		"granted_by": query.String, "is_active": query.Bool, "granted_at": query.Timestamp, "revoked_at": query.Timestamp},
}

// maxBindingName bounds the name looked up in the store.
const maxBindingName = 512

// requireBindingAdmin is 403 role_binding_admin_only unless the caller is
// a service principal (an identity class, no decision) or, as the
// decision point says, a PlatformAdmin; auth disabled admits everyone.
func (s *Server) requireBindingAdmin(r *http.Request) error {
	if !s.cfg.Auth.Enabled {
		return nil
	}
	p := authn.FromContext(r.Context())
	if p != nil && ident.IsService(p.ID) {
		return nil
	}
	if p != nil {
		admin, err := pdp.IsPlatformAdmin(r.Context(), s.pdp, pdp.Subject(p))
		if err != nil {
			return s.pdpFailed(r, p, err)
		}
		if admin {
			return nil
		}
	}
	return apierror.New(http.StatusForbidden, "role_binding_admin_only",
		"Only a PlatformAdmin or a service principal may manage role bindings")
}

func (s *Server) listRoleBindings(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireBindingAdmin(r); err != nil {
		return err
	}
	q, err := query.Parse(r.URL.Query(), roleBindingSchema)
	if err != nil {
		return err
	}
	page, err := s.store.ListRoleBindings(r.Context(), q.Options)
	if err != nil {
		return err
	}
	views, err := s.bindingViews(r.Context(), page.Items...)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageBody(store.Page[bindingView]{Items: views, Page: page.Page, PageSize: page.PageSize,
		TotalResults: page.TotalResults}, q.Sort, q.Filter))
	return nil
}

// checkBindingRole: any defined role except ServiceSystem. PlatformAdmin
// is assignable here, but only to a principal (not "*") in system, the
// one place where it has its meaning.
func (s *Server) checkBindingRole(principal, workspace, role string) error {
	notAssignable := func(why string) error {
		return &apierror.Error{Status: http.StatusUnprocessableEntity, Code: "role_not_assignable",
			Detail: "Role '" + role + "' " + why}
	}
	switch {
	case !s.roles.Defined(role):
		return &apierror.Error{Status: http.StatusUnprocessableEntity, Code: "unknown_role", Detail: "Unknown role '" + clip(role) + "'"}
	case role == authz.RoleServiceSystem:
		return notAssignable("is never assignable")
	case role == authz.RolePlatformAdmin && workspace != store.SystemWorkspace:
		return notAssignable("can only be bound in workspace 'system'")
	case role == authz.RolePlatformAdmin && principal == ident.Wildcard:
		return notAssignable("cannot be bound to '*'")
	}
	return nil
}

func (s *Server) createRoleBinding(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireBindingAdmin(r); err != nil {
		return err
	}
	wait := waitForPropagation(r)
	var principal, role string
	var workspace *string
	if err := decodeBody(r, field{"principal", &principal, true}, field{"workspace", &workspace, false},
		field{"role", &role, true}); err != nil {
		return err
	}
	ws := store.SystemWorkspace // null or absent
	if workspace != nil {
		ws = *workspace
		if err := validName(ws, "body", "workspace"); err != nil {
			return err
		}
	}
	if err := validPrincipal(principal, "body", "principal"); err != nil {
		return err
	}
	if err := s.checkBindingRole(principal, ws, role); err != nil {
		return err
	}
	b, err := s.store.CreateRoleBinding(r.Context(), store.NewRoleBinding{Principal: principal, Workspace: ws, Role: role, By: grantedBy(r)})
	if err != nil {
		return err
	}
	s.policyChanged(w, r, b.Revision, wait, roleChange{held: heldRoles(b.Workspace, b.Principal, []string{b.Role})})
	return s.writeBinding(w, r, http.StatusCreated, b)
}

// bindingView is a role binding as the API shows it: the stored binding
// and when its principal last made an authenticated request (null when
// never seen, and always for "*" and groups).
type bindingView struct {
	store.RoleBinding
	LastSeenAt *store.Timestamp `json:"last_seen_at"`
}

// bindingViews adds the last-seen times to bindings, read in one query.
func (s *Server) bindingViews(ctx context.Context, bindings ...store.RoleBinding) ([]bindingView, error) {
	seen, err := s.lastSeenOf(ctx, len(bindings), func(i int) string { return bindings[i].Principal })
	if err != nil {
		return nil, err
	}
	out := make([]bindingView, len(bindings))
	for i, b := range bindings {
		out[i] = bindingView{RoleBinding: b, LastSeenAt: seen(b.Principal)}
	}
	return out, nil
}

// writeBinding answers with one binding and its last-seen time. After a
// committed create, a failed read of the time is logged and answered as
// null (the write stands); a plain read fails with it.
func (s *Server) writeBinding(w http.ResponseWriter, r *http.Request, status int, b store.RoleBinding) error {
	views, err := s.bindingViews(r.Context(), b)
	if err != nil && status != http.StatusCreated {
		return err
	}
	if err != nil {
		s.log.WarnContext(r.Context(), "reading the last-seen time failed; answered as null", "request_id", requestID(r.Context()), "error", err)
		views = []bindingView{{RoleBinding: b}}
	}
	writeJSON(w, status, views[0])
	return nil
}

func bindingName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if name == "" || len(name) > maxBindingName {
		return "", store.NotFound("not_found", "Role binding '%s' not found", clip(name))
	}
	return name, nil
}

func (s *Server) getRoleBinding(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireBindingAdmin(r); err != nil {
		return err
	}
	name, err := bindingName(r)
	if err != nil {
		return err
	}
	b, err := s.store.GetRoleBinding(r.Context(), name)
	if err != nil {
		return err
	}
	return s.writeBinding(w, r, http.StatusOK, b)
}

func (s *Server) deleteRoleBinding(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireBindingAdmin(r); err != nil {
		return err
	}
	wait := waitForPropagation(r)
	name, err := bindingName(r)
	if err != nil {
		return err
	}
	del, err := s.store.RevokeRoleBinding(r.Context(), name)
	if err != nil {
		return err
	}
	s.policyChanged(w, r, del.Revision, wait, roleChange{revoked: true})
	writeJSON(w, http.StatusOK, map[string]any{"id": del.ID, "deleted_at": del.DeletedAt})
	return nil
}
