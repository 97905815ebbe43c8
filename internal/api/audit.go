package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/ident"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/store"
)

// The audit trail (/apis/auth/v2/audit-events): the access changes the
// store recorded. The endpoint table admits any authenticated caller; the
// handler decides what it may read: a PlatformAdmin (or a service
// principal) every event, anyone else only the events of a workspace it
// names with workspace= and in which it holds workspaces.audit.read
// (Admin).

// AuditEventsPath is the collection's path.
const AuditEventsPath = "/apis/auth/v2/audit-events"

// PermissionAuditRead is the permission to read a workspace's audit
// events.
const PermissionAuditRead = "workspaces.audit.read"

const maxAuditPage = 100

// auditActor is the actor of the audit events of the caller p's store
// writes (nil: anonymous) in the request with id requestID.
func auditActor(p *authn.Principal, requestID string) store.AuditActor {
	a := store.AuditActor{Principal: "anonymous", RequestID: requestID}
	if p != nil && p.ID != "" {
		a.Principal = p.ID
		if p.OnBehalfOf != nil {
			a.OnBehalfOf = p.OnBehalfOf.ID
		}
	}
	return a
}

func (s *Server) listAuditEvents(w http.ResponseWriter, r *http.Request) error {
	f, err := auditFilter(r)
	if err != nil {
		return err
	}
	if err := s.mayReadAudit(r, f.Workspace); err != nil {
		return err
	}
	events, more, err := s.store.ListAuditEvents(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": events, "has_more": more})
	return nil
}

// mayReadAudit admits everyone with auth disabled, a service principal or
// PlatformAdmin for any filter, and anyone else for the events of a named
// workspace in which it holds workspaces.audit.read.
func (s *Server) mayReadAudit(r *http.Request, workspace *string) error {
	if !s.cfg.Auth.Enabled {
		return nil
	}
	p := authn.FromContext(r.Context())
	if p == nil || p.ID == "" {
		return apierror.New(http.StatusUnauthorized, "unauthorized", "The audit trail is read by an authenticated caller")
	}
	if ident.IsService(p.ID) && p.OnBehalfOf == nil {
		return nil
	}
	admin, err := pdp.IsPlatformAdmin(r.Context(), s.pdp, pdp.Subject(p))
	if err != nil {
		return s.pdpFailed(r, p, err)
	}
	if admin {
		return nil
	}
	if workspace == nil {
		return apierror.New(http.StatusForbidden, "forbidden",
			"Forbidden: only PlatformAdmin reads the whole audit trail; name a workspace with workspace= in which you are Admin")
	}
	in := authz.PermissionsInput{PrincipalID: p.ID, PrincipalEmail: p.Email, PrincipalGroups: p.Groups,
		Workspace: *workspace, Permissions: []string{PermissionAuditRead}}
	if p.OnBehalfOf != nil {
		in.OnBehalfOf = p.OnBehalfOf.ID
	}
	ok, err := s.pdp.HasPermissions(r.Context(), in)
	if err != nil {
		return s.pdpFailed(r, p, err)
	}
	if !ok {
		return &apierror.Error{Status: http.StatusForbidden, Code: "forbidden",
			Detail: "Forbidden: reading the audit trail of workspace '" + clip(*workspace) + "' requires permission " +
				PermissionAuditRead + " in it (role Admin)",
			Extra: map[string]any{"reason": "permission_missing", "principal": p.ID,
				"required_permissions": []string{PermissionAuditRead}, "workspace": *workspace}}
	}
	return nil
}

// auditFilter reads workspace, principal, since and until (RFC 3339),
// page (≥ 1, default 1) and page_size (1-100, default 100).
func auditFilter(r *http.Request) (store.AuditFilter, error) {
	q := r.URL.Query()
	f := store.AuditFilter{Page: 1, PageSize: maxAuditPage}
	for name, vs := range q {
		if len(vs) != 1 {
			return f, apierror.Validation("must be given once", "query", name)
		}
		v := vs[0]
		switch name {
		case "workspace":
			if v == "" {
				return f, apierror.Validation("must not be empty", "query", name)
			}
			f.Workspace = &v
		case "principal":
			f.Principal = v
		case "since", "until":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, apierror.Validation("must be an RFC 3339 time such as 2026-01-02T15:04:05Z", "query", name)
			}
			if name == "since" {
				f.Since = &t
			} else {
				f.Until = &t
			}
		case "page", "page_size":
			max := 1 << 20
			if name == "page_size" {
				max = maxAuditPage
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > max {
				return f, apierror.Validation("must be an integer from 1 to "+strconv.Itoa(max), "query", name)
			}
			if name == "page" {
				f.Page = n
			} else {
				f.PageSize = n
			}
		default:
			return f, apierror.Validation("unknown query parameter", "query", name)
		}
	}
	return f, nil
}
