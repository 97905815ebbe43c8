package api

import (
	"net/http"
	"slices"
	"sort"

	"github.com/nmp-project/nmp/internal/apierror"
)

// checkRoles validates a role list for the members API: non-empty, every
// role defined (422 unknown_role) and assignable (422 role_not_assignable).
// It returns the roles sorted without duplicates.
func (s *Server) checkRoles(roles []string) ([]string, error) {
	if len(roles) == 0 {
		return nil, apierror.Validation("must list at least one role", "body", "roles")
	}
	out := slices.Clone(roles)
	sort.Strings(out)
	out = slices.Compact(out)
	for _, role := range out {
		if !s.roles.Defined(role) {
			return nil, &apierror.Error{Status: http.StatusUnprocessableEntity, Code: "unknown_role",
				Detail: "Unknown role '" + clip(role) + "'"}
		}
		if !s.roles.Assignable(role) {
			return nil, &apierror.Error{Status: http.StatusUnprocessableEntity, Code: "role_not_assignable",
				Detail: "Role '" + role + "' cannot be assigned through workspace members"}
		}
	}
	return out, nil
}

// clip bounds untrusted text echoed in messages.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) error {
	ws, err := pathValue(r, "workspace", validName)
	if err != nil {
		return err
	}
	members, err := s.store.ListMembers(r.Context(), ws)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": members})
	return nil
}

func (s *Server) addMember(w http.ResponseWriter, r *http.Request) error {
	wait := waitForPropagation(r)
	ws, err := pathValue(r, "workspace", validName)
	if err != nil {
		return err
	}
	var principal string
	roles := []string{"Editor"}
	if err := decodeBody(r, field{"principal", &principal, true}, field{"roles", &roles, false}); err != nil {
		return err
	}
	if err := validPrincipal(principal, "body", "principal"); err != nil {
		return err
	}
	if roles, err = s.checkRoles(roles); err != nil {
		return err
	}
	ch, err := s.store.AddMember(r.Context(), ws, principal, roles, grantedBy(r))
	if err != nil {
		return err
	}
	s.policyChanged(w, r, ch.Revision, wait, roleChange{held: heldRoles(ws, principal, ch.Member.Roles)})
	writeJSON(w, http.StatusCreated, ch.Member)
	return nil
}

func (s *Server) memberPath(r *http.Request) (ws, principal string, err error) {
	if ws, err = pathValue(r, "workspace", validName); err != nil {
		return
	}
	principal, err = pathValue(r, "principal", validPrincipal)
	return
}

func (s *Server) updateMember(w http.ResponseWriter, r *http.Request) error {
	wait := waitForPropagation(r)
	ws, principal, err := s.memberPath(r)
	if err != nil {
		return err
	}
	var roles []string
	if err := decodeBody(r, field{"roles", &roles, true}); err != nil {
		return err
	}
	if roles, err = s.checkRoles(roles); err != nil {
		return err
	}
	ch, err := s.store.SetMemberRoles(r.Context(), ws, principal, roles, grantedBy(r))
	if err != nil {
		return err
	}
	s.policyChanged(w, r, ch.Revision, wait, roleChange{held: heldRoles(ws, principal, ch.Member.Roles), revoked: true})
	writeJSON(w, http.StatusOK, ch.Member)
	return nil
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) error {
	wait := waitForPropagation(r)
	ws, principal, err := s.memberPath(r)
	if err != nil {
		return err
	}
	del, err := s.store.RemoveMember(r.Context(), ws, principal)
	if err != nil {
		return err
	}
	s.policyChanged(w, r, del.Revision, wait, roleChange{revoked: true})
	writeJSON(w, http.StatusOK, deleteBody("Member removed", del))
	return nil
}
