package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/ident"
)

// The embedded PDP entrypoints (authz.md "PDP entrypoints"):
// POST /apis/auth/v2/authz/{entrypoint} with {"input": {...}} answers
// {"result": {...}} like OPA's data API, from the decision point. The
// endpoint map restricts it to service principals and PlatformAdmin; the
// middleware enforces that.

// pdpEntrypoints lists the valid entrypoints, sorted.
var pdpEntrypoints = []string{"allow", "has_permissions", "has_role"}

func (s *Server) pdpQuery(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Auth.PolicyDecisionPointProvider != "embedded" {
		return apierror.New(http.StatusNotFound, "pdp_not_embedded", "The policy decision point is not embedded in this server")
	}
	entrypoint := r.PathValue("entrypoint")
	valid := false
	for _, e := range pdpEntrypoints {
		valid = valid || e == entrypoint
	}
	if !valid {
		e := apierror.BadRequest("invalid_entrypoint", "Invalid entrypoint: %s", clip(entrypoint))
		e.Extra = map[string]any{"valid_entrypoints": pdpEntrypoints}
		return e
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	defer putBuf(body)
	q, ok := fastPDPInput(entrypoint, body.Bytes())
	if !ok {
		if q, err = validatedPDPInput(entrypoint, body.Bytes()); err != nil {
			return err
		}
	}
	return s.pdpAnswer(w, r, entrypoint, q)
}

// validatedPDPInput reads and validates the input of an entrypoint,
// reporting the first problem.
func validatedPDPInput(entrypoint string, body []byte) (q pdpRequest, err error) {
	in, err := readPDPInput(body)
	if err != nil {
		return q, err
	}
	switch entrypoint {
	case "allow":
		q.allow, err = allowInput(in)
	case "has_permissions":
		q.perms, err = permissionsInput(in)
	default: // has_role
		q.role, err = roleInput(in)
	}
	return q, err
}

// pdpAnswer asks the decision point and writes the answer; a decision
// that cannot be made is 503/504/502 (before the first policy load: 503
// pdp_unavailable).
func (s *Server) pdpAnswer(w http.ResponseWriter, r *http.Request, entrypoint string, q pdpRequest) error {
	ctx := r.Context()
	out := getBuf()
	defer putBuf(out)
	var b []byte
	switch entrypoint {
	case "allow":
		d, err := s.pdp.Allow(ctx, q.allow)
		if err != nil {
			return s.pdpFailed(r, authn.FromContext(ctx), err)
		}
		b = appendAllowResult(out.AvailableBuffer(), d)
	case "has_permissions":
		ok, err := s.pdp.HasPermissions(ctx, q.perms)
		if err != nil {
			return s.pdpFailed(r, authn.FromContext(ctx), err)
		}
		b = appendBoolResult(out.AvailableBuffer(), "allowed", ok)
	default: // has_role
		ok, err := s.pdp.HasRole(ctx, q.role)
		if err != nil {
			return s.pdpFailed(r, authn.FromContext(ctx), err)
		}
		b = appendBoolResult(out.AvailableBuffer(), "has_role", ok)
	}
	writePooled(w, out, b)
	return nil
}

// appendAllowResult appends the allow answer as encoding/json encodes
// {"result": {"allowed", "reason", "headers": {X-NMP-Authorized}}}.
func appendAllowResult(b []byte, d authz.Decision) []byte {
	b = appendJSONBool(append(b, `{"result":{"allowed":`...), d.Allowed)
	b = appendJSONString(append(b, `,"headers":{`...), authn.HeaderAuthorized)
	b = appendJSONString(append(b, ':'), boolLabel(d.Allowed))
	b = appendJSONString(append(b, `},"reason":`...), d.Reason)
	return append(b, "}}\n"...)
}

// appendBoolResult appends {"result": {name: v}}.
func appendBoolResult(b []byte, name string, v bool) []byte {
	b = appendJSONString(append(b, `{"result":{`...), name)
	b = appendJSONBool(append(b, ':'), v)
	return append(b, "}}\n"...)
}

func invalidInput(format string, args ...any) error {
	return apierror.BadRequest("invalid_input", "Invalid input: "+format, args...)
}

// readPDPInput reads {"input": {...}}: anything beside "input" is refused,
// members inside input are checked by the entrypoint (unknown ones are
// ignored, as OPA does).
func readPDPInput(body []byte) (jsonObject, error) {
	members, err := parseObject(body)
	switch {
	case errors.Is(err, errEmptyBody), errors.Is(err, errNotObject):
		return nil, invalidInput(`the body must be {"input": {...}}`)
	case err != nil:
		return nil, err
	}
	top := jsonObject(members)
	var extra []string
	for name := range top {
		if name != "input" {
			extra = append(extra, clip(name))
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, invalidInput("unknown top-level field(s) %s; only \"input\" is accepted", strings.Join(extra, ", "))
	}
	in, ok, err := top.object("input", "input")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, invalidInput("input is required")
	}
	return in, nil
}

// jsonObject is a JSON object whose members are decoded on demand, so a
// wrong type is reported with the member's path.
type jsonObject map[string]json.RawMessage

// present reports whether the member exists and is not null (a null member
// counts as absent).
func (o jsonObject) present(name string) (json.RawMessage, bool) {
	raw, ok := o[name]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return nil, false
	}
	return raw, true
}

// str reads a string member; required members must be non-empty.
func (o jsonObject) str(name, loc string, required bool) (string, error) {
	raw, ok := o.present(name)
	var v string
	if ok && json.Unmarshal(raw, &v) != nil {
		return "", invalidInput("%s must be a string", loc)
	}
	if required && v == "" {
		return "", invalidInput("%s is required (a non-empty string)", loc)
	}
	return v, nil
}

// list reads a list of strings; required lists must be non-empty.
func (o jsonObject) list(name, loc string, required bool) ([]string, error) {
	raw, ok := o.present(name)
	var v []string
	if ok && json.Unmarshal(raw, &v) != nil {
		return nil, invalidInput("%s must be a list of strings", loc)
	}
	if required && len(v) == 0 {
		return nil, invalidInput("%s is required (a non-empty list of strings)", loc)
	}
	return v, nil
}

// object reads an object member.
func (o jsonObject) object(name, loc string) (jsonObject, bool, error) {
	raw, ok := o.present(name)
	if !ok {
		return nil, false, nil
	}
	var v jsonObject
	if json.Unmarshal(raw, &v) != nil || v == nil {
		return nil, false, invalidInput("%s must be an object", loc)
	}
	return v, true, nil
}

// allowInput converts either form of the allow input to authz.Input: the
// direct form, or the Envoy ext_authz form attributes.request.http.{method,
// path,headers} whenever "attributes" is present.
func allowInput(in jsonObject) (authz.Input, error) {
	var q authz.Input
	attrs, envoy, err := in.object("attributes", "attributes")
	if err != nil {
		return q, err
	}
	if envoy {
		return envoyInput(attrs)
	}
	if q.PrincipalID, q.PrincipalEmail, q.PrincipalGroups, err = identityInput(in, false); err != nil {
		return q, err
	}
	if q.OnBehalfOf, err = in.str("on_behalf_of_principal_id", "on_behalf_of_principal_id", false); err != nil {
		return q, err
	}
	if q.Method, err = in.str("method", "method", true); err != nil {
		return q, err
	}
	if q.Path, err = in.str("path", "path", true); err != nil {
		return q, err
	}
	if q.Scopes, err = in.list("scopes", "scopes", false); err != nil {
		return q, err
	}
	for _, sc := range q.Scopes {
		if ident.PermissionShaped(sc) {
			return q, apierror.BadRequest("invalid_scope", "Invalid scope %q: permissions are not scopes", clip(sc))
		}
	}
	return q, nil
}

// envoyHeaders are the lower-case identity headers read from the Envoy
// form; the server's identity-header rules (authn.ParseIdentityHeaders)
// parse them: groups comma-separated, trimmed, empties dropped; scopes
// space-separated; permission-shaped scopes refused; without
// x-nmp-principal-id the others are ignored.
var envoyHeaders = []string{authn.HeaderPrincipalID, authn.HeaderPrincipalEmail, authn.HeaderPrincipalGroups, authn.HeaderScopes}

func envoyInput(attrs jsonObject) (authz.Input, error) {
	var q authz.Input
	const loc = "attributes.request.http"
	req, ok, err := attrs.object("request", "attributes.request")
	if err == nil && ok {
		req, ok, err = req.object("http", loc)
	}
	if err != nil {
		return q, err
	}
	if !ok {
		return q, invalidInput("%s is required in the Envoy form", loc)
	}
	if q.Method, err = req.str("method", loc+".method", true); err != nil {
		return q, err
	}
	if q.Path, err = req.str("path", loc+".path", true); err != nil {
		return q, err
	}
	headers, _, err := req.object("headers", loc+".headers")
	if err != nil {
		return q, err
	}
	h := http.Header{}
	for _, name := range envoyHeaders {
		lower := strings.ToLower(name)
		if _, ok := headers.present(lower); !ok {
			continue
		}
		v, err := headers.str(lower, loc+".headers."+lower, false)
		if err != nil {
			return q, err
		}
		h.Set(name, v)
	}
	p, err := authn.ParseIdentityHeaders(h)
	var rej *authn.Rejection
	switch {
	case errors.As(err, &rej) && rej.Code == authn.CodeInvalidHeader:
		return q, invalidInput("%s.headers: %s", loc, rej.Message)
	case rej != nil:
		return q, rejectionError(rej) // invalid_scope
	case err != nil:
		return q, err
	}
	if p != nil {
		q.PrincipalID, q.PrincipalEmail, q.PrincipalGroups, q.Scopes = p.ID, p.Email, p.Groups, p.Scopes
	}
	return q, nil
}

// identityInput reads principal_id, principal_email and principal_groups.
func identityInput(in jsonObject, idRequired bool) (id, email string, groups []string, err error) {
	if id, err = in.str("principal_id", "principal_id", idRequired); err != nil {
		return
	}
	if email, err = in.str("principal_email", "principal_email", false); err != nil {
		return
	}
	groups, err = in.list("principal_groups", "principal_groups", false)
	return
}

func permissionsInput(in jsonObject) (authz.PermissionsInput, error) {
	var q authz.PermissionsInput
	var err error
	if q.PrincipalID, q.PrincipalEmail, q.PrincipalGroups, err = identityInput(in, true); err != nil {
		return q, err
	}
	if q.OnBehalfOf, err = in.str("on_behalf_of_principal_id", "on_behalf_of_principal_id", false); err != nil {
		return q, err
	}
	if q.Workspace, err = in.str("workspace", "workspace", true); err != nil {
		return q, err
	}
	q.Permissions, err = in.list("permissions", "permissions", true)
	return q, err
}

func roleInput(in jsonObject) (authz.RoleInput, error) {
	var q authz.RoleInput
	var err error
	if q.PrincipalID, q.PrincipalEmail, q.PrincipalGroups, err = identityInput(in, true); err != nil {
		return q, err
	}
	if q.Workspace, err = in.str("workspace", "workspace", true); err != nil {
		return q, err
	}
	q.Role, err = in.str("role", "role", true)
	return q, err
}
