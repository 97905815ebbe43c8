package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/decisionlog"
	"github.com/nmp-project/nmp/internal/ident"
	"github.com/nmp-project/nmp/internal/pdp"
)

// selfCheckAnswer is the body of a self-check response.
type selfCheckAnswer struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

// reMethod is an HTTP method name as the self-check accepts it (the
// engine upper-cases it and matches it against the endpoint map).
var reMethod = regexp.MustCompile(`^[A-Za-z]{1,16}$`)

// selfCheck answers "can I?" (api.md "Auth service"): the method/path
// form asks the allow decision, the workspace form has_permissions, for
// the caller's own principal and scopes, or, for a PlatformAdmin caller,
// for the principal given in "as".
func (s *Server) selfCheck(w http.ResponseWriter, r *http.Request) error {
	var (
		method, path, workspace *string
		permissions             *[]string
		asRaw                   json.RawMessage
	)
	if err := decodeBody(r, field{"method", &method, false}, field{"path", &path, false},
		field{"workspace", &workspace, false}, field{"permissions", &permissions, false}, field{"as", &asRaw, false}); err != nil {
		return err
	}
	pathForm, wsForm := method != nil || path != nil, workspace != nil || permissions != nil
	switch {
	case pathForm && wsForm:
		return apierror.Validation(`give either "method" and "path" or "workspace" and "permissions", not both`, "body")
	case !pathForm && !wsForm:
		return apierror.Validation(`give either "method" and "path" or "workspace" and "permissions"`, "body")
	case pathForm:
		if err := checkRequestForm(method, path); err != nil {
			return err
		}
	default:
		if err := s.checkPermissionsForm(workspace, permissions); err != nil {
			return err
		}
	}

	caller := authn.FromContext(r.Context())
	subject := caller
	if asRaw != nil {
		if s.cfg.Auth.Enabled {
			admin := false
			if caller != nil {
				var err error
				if admin, err = pdp.IsPlatformAdmin(r.Context(), s.pdp, pdp.Subject(caller)); err != nil {
					return s.pdpFailed(r, caller, err)
				}
			}
			if !admin {
				return apierror.New(http.StatusForbidden, "forbidden", "Only a PlatformAdmin may ask on behalf of another principal")
			}
		}
		var err error
		if subject, err = decodeAs(asRaw); err != nil {
			return err
		}
	}
	if !s.cfg.Auth.Enabled { // everything is allowed, whoever asks
		writeJSON(w, http.StatusOK, selfCheckAnswer{Allowed: true, Reason: "auth_disabled"})
		return nil
	}
	var answer selfCheckAnswer
	var err error
	start := time.Now()
	entry := decisionlog.Entry{RequestID: requestID(r.Context()), Source: decisionlog.SourceSelfCheck}
	if pathForm {
		entry.Method, entry.Path = strings.ToUpper(*method), *path
		answer, err = s.canRequest(r, subject, entry.Method, entry.Path)
	} else {
		entry.Workspace = *workspace
		answer, err = s.canInWorkspace(r, subject, *workspace, *permissions)
	}
	if err != nil {
		return s.pdpFailed(r, caller, err)
	}
	if s.decisions != nil { // about subject, the principal asked about
		entry.Latency = time.Since(start)
		s.logDecision(entry, subject, authz.Decision{Allowed: answer.Allowed, Reason: answer.Reason})
	}
	writeJSON(w, http.StatusOK, answer)
	return nil
}

// canRequest is the request form of self-check: the allow decision for
// subject (nil: anonymous) with its scopes.
func (s *Server) canRequest(r *http.Request, subject *authn.Principal, method, path string) (selfCheckAnswer, error) {
	d, err := s.allow(r.Context(), s.pdp, subject, method, path)
	return selfCheckAnswer{Allowed: d.Allowed, Reason: d.Reason}, err
}

// canInWorkspace is the workspace form: a PlatformAdmin holds every
// permission, anyone else what has_permissions says (scopes ignored).
func (s *Server) canInWorkspace(r *http.Request, subject *authn.Principal, workspace string, permissions []string) (selfCheckAnswer, error) {
	sub := pdp.Subject(subject)
	admin, err := pdp.IsPlatformAdmin(r.Context(), s.pdp, sub)
	switch {
	case err != nil:
		return selfCheckAnswer{}, err
	case admin:
		return selfCheckAnswer{Allowed: true, Reason: "platform_admin"}, nil
	}
	ok, err := s.pdp.HasPermissions(r.Context(), authz.PermissionsInput{PrincipalID: sub.PrincipalID, PrincipalEmail: sub.Email,
		PrincipalGroups: sub.Groups, Workspace: workspace, Permissions: permissions})
	switch {
	case err != nil:
		return selfCheckAnswer{}, err
	case ok:
		return selfCheckAnswer{Allowed: true, Reason: "permission_granted"}, nil
	}
	return selfCheckAnswer{Allowed: false, Reason: "permission_missing"}, nil
}

func checkRequestForm(method, path *string) error {
	switch {
	case method == nil:
		return apierror.Validation("field required with \"path\"", "body", "method")
	case path == nil:
		return apierror.Validation("field required with \"method\"", "body", "path")
	case !reMethod.MatchString(*method):
		return apierror.Validation("must be an HTTP method such as GET or POST", "body", "method")
	case !strings.HasPrefix(*path, "/"):
		return apierror.Validation("must start with /", "body", "path")
	}
	return nil
}

// checkPermissionsForm validates the workspace form: a workspace name and
// a non-empty list of declared permission ids, each optionally prefixed
// with "<workspace>/".
func (s *Server) checkPermissionsForm(workspace *string, permissions *[]string) error {
	if workspace == nil {
		return apierror.Validation("field required with \"permissions\"", "body", "workspace")
	}
	if err := validName(*workspace, "body", "workspace"); err != nil {
		return err
	}
	if permissions == nil || len(*permissions) == 0 {
		return apierror.Validation("must list at least one permission", "body", "permissions")
	}
	for _, p := range *permissions {
		id := p
		if ws, rest, ok := strings.Cut(p, "/"); ok {
			if validName(ws) != nil {
				return apierror.Validation("invalid workspace in '"+clip(p)+"'", "body", "permissions")
			}
			id = rest
		}
		if !s.roles.Declared(id) {
			return apierror.Validation("unknown permission '"+clip(p)+"'", "body", "permissions")
		}
	}
	return nil
}

// decodeAs reads the "as" object strictly (unknown members are 422 like
// everywhere else in a body) and validates it like identity headers.
func decodeAs(raw json.RawMessage) (*authn.Principal, error) {
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		return nil, apierror.Validation("must be an object", "body", "as")
	}
	var p authn.Principal
	err := decodeBody(&http.Request{Body: io.NopCloser(bytes.NewReader(raw))},
		field{"principal_id", &p.ID, true}, field{"email", &p.Email, false},
		field{"groups", &p.Groups, false}, field{"scopes", &p.Scopes, false})
	var ae *apierror.Error
	if errors.As(err, &ae) && len(ae.Errors) > 0 {
		var parts []string
		for i, fe := range ae.Errors {
			ae.Errors[i].Loc = append([]string{"body", "as"}, fe.Loc[1:]...)
			parts = append(parts, "as."+fe.Loc[len(fe.Loc)-1]+": "+fe.Msg)
		}
		ae.Detail = strings.Join(parts, "; ")
		return nil, ae
	}
	if err != nil {
		return nil, err
	}
	switch {
	case !ident.ValidPrincipalID(p.ID):
		return nil, apierror.Validation("must be a principal id of at most 256 characters from [A-Za-z0-9@._-:+/|]", "body", "as", "principal_id")
	case p.Email != "" && !ident.ValidEmail(p.Email):
		return nil, apierror.Validation("must be an email address of at most 320 characters", "body", "as", "email")
	case len(p.Groups) > ident.MaxListItems:
		return nil, apierror.Validation("more than 100 groups", "body", "as", "groups")
	case len(p.Scopes) > ident.MaxListItems:
		return nil, apierror.Validation("more than 100 scopes", "body", "as", "scopes")
	}
	for _, g := range p.Groups {
		if !ident.ValidPrincipalID(g) {
			return nil, apierror.Validation("each group must be a valid principal id", "body", "as", "groups")
		}
	}
	for _, sc := range p.Scopes {
		if ident.PermissionShaped(sc) {
			return nil, apierror.BadRequest("invalid_scope", "Invalid scope %q: permissions are not scopes", clip(sc))
		}
	}
	return &p, nil
}
