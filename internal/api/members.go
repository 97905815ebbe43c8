package api

import (
	"context"
	"net/http"
	"slices"
	"sort"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/ident"
	"github.com/nmp-project/nmp/internal/store"
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
	views, err := s.memberViews(r.Context(), members...)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": views})
	return nil
}

// memberView is a member as the API shows it: the store's member and
// when the principal last made an authenticated request.
type memberView struct {
	store.Member
	// LastSeenAt is null when never seen, and always for "*" and groups
	// (which are never recorded).
	LastSeenAt *store.Timestamp `json:"last_seen_at"`
}

// memberViews adds the last-seen times to members, read in one query.
func (s *Server) memberViews(ctx context.Context, members ...store.Member) ([]memberView, error) {
	seen, err := s.lastSeenOf(ctx, len(members), func(i int) string { return members[i].Principal })
	if err != nil {
		return nil, err
	}
	out := make([]memberView, len(members))
	for i, m := range members {
		out[i] = memberView{Member: m, LastSeenAt: seen(m.Principal)}
	}
	return out, nil
}

// lastSeenOf reads the last-seen times of n principals (principal(i)) in
// one query and returns a lookup that is nil for "*" and for principals
// never seen.
func (s *Server) lastSeenOf(ctx context.Context, n int, principal func(i int) string) (func(string) *store.Timestamp, error) {
	principals := make([]string, 0, n)
	for i := range n {
		if p := principal(i); p != ident.Wildcard {
			principals = append(principals, p)
		}
	}
	slices.Sort(principals)
	times, err := s.store.LastSeen(ctx, slices.Compact(principals))
	if err != nil {
		return nil, err
	}
	return func(p string) *store.Timestamp {
		if t, ok := times[p]; ok && p != ident.Wildcard {
			return &t
		}
		return nil
	}, nil
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
	return s.writeMember(w, r, http.StatusCreated, ch.Member)
}

// writeMember answers a committed member write with the member and its
// last-seen time. The write stands whatever happens here, so a failed
// read of the time is logged and answered as null rather than as an
// error the client would retry.
func (s *Server) writeMember(w http.ResponseWriter, r *http.Request, status int, m store.Member) error {
	views, err := s.memberViews(r.Context(), m)
	if err != nil {
		s.log.WarnContext(r.Context(), "reading the last-seen time failed; answered as null", "request_id", requestID(r.Context()), "error", err)
		views = []memberView{{Member: m}}
	}
	writeJSON(w, status, views[0])
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
	return s.writeMember(w, r, http.StatusOK, ch.Member)
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
