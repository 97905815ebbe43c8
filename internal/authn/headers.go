package authn

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/nmp-project/nmp/internal/ident"
)

// Identity headers (authn.md "Identity headers").
const (
	HeaderPrincipalID      = "X-NMP-Principal-Id"
	HeaderPrincipalEmail   = "X-NMP-Principal-Email"
	HeaderPrincipalGroups  = "X-NMP-Principal-Groups"
	HeaderOnBehalfOf       = "X-NMP-Principal-On-Behalf-Of"
	HeaderOnBehalfOfEmail  = "X-NMP-Principal-On-Behalf-Of-Email"
	HeaderOnBehalfOfGroups = "X-NMP-Principal-On-Behalf-Of-Groups"
	HeaderScopes           = "X-NMP-Scopes"
	HeaderAuthorized       = "X-NMP-Authorized"
	maxHeaderLen           = 64 << 10
)

// IdentityHeaders lists every identity header, which gateways strip from
// external traffic and the server trusts only from trusted proxies.
var IdentityHeaders = []string{HeaderPrincipalID, HeaderPrincipalEmail, HeaderPrincipalGroups,
	HeaderOnBehalfOf, HeaderOnBehalfOfEmail, HeaderOnBehalfOfGroups, HeaderScopes, HeaderAuthorized}

// canonicalIdentityHeaders are IdentityHeaders as keys of an http.Header.
var canonicalIdentityHeaders = func() []string {
	out := make([]string, len(IdentityHeaders))
	for i, name := range IdentityHeaders {
		out[i] = http.CanonicalHeaderKey(name)
	}
	return out
}()

// headerKeys maps each identity header to its key in an http.Header.
var headerKeys = func() map[string]string {
	m := make(map[string]string, len(IdentityHeaders))
	for i, name := range IdentityHeaders {
		m[name] = canonicalIdentityHeaders[i]
	}
	return m
}()

// HeaderKey is name's key in an http.Header: computed once for the
// identity headers, whose names are not in canonical form (http.Header's
// methods would canonicalize them, and allocate, on every call).
func HeaderKey(name string) string {
	if k, ok := headerKeys[name]; ok {
		return k
	}
	return http.CanonicalHeaderKey(name)
}

// HasIdentityHeaders reports whether any identity header is present.
func HasIdentityHeaders(h http.Header) bool {
	for _, name := range canonicalIdentityHeaders {
		if _, ok := h[name]; ok {
			return true
		}
	}
	return false
}

// invalidHeader is the rejection of a malformed identity header, naming it.
func invalidHeader(name, msg string) *Rejection {
	return &Rejection{Code: CodeInvalidHeader, Message: "Invalid " + name + " header: " + msg, Reason: "invalid_header"}
}

// single returns the header's one value; a repeated header is refused.
func single(h http.Header, name string) (string, bool, error) {
	vs := h[HeaderKey(name)]
	switch {
	case len(vs) == 0:
		return "", false, nil
	case len(vs) > 1:
		return "", true, invalidHeader(name, "given more than once")
	case len(vs[0]) > maxHeaderLen:
		return "", true, invalidHeader(name, "too long")
	}
	return vs[0], true, nil
}

// ParseIdentityHeaders validates the identity headers and returns the
// principal they describe, or nil when X-NMP-Principal-Id is absent
// (identity headers without it are ignored). Errors are *Rejection values
// with code invalid_header naming the header, or invalid_scope for a
// permission-shaped scope (both logged with reason invalid_header).
func ParseIdentityHeaders(h http.Header) (*Principal, error) {
	id, ok, err := single(h, HeaderPrincipalID)
	if err != nil || !ok {
		return nil, err
	}
	if !ident.ValidPrincipalID(id) {
		return nil, invalidHeader(HeaderPrincipalID, "must be at most 256 characters from [A-Za-z0-9@._-:+/|]")
	}
	p := &Principal{ID: id}
	if p.Email, err = emailHeader(h, HeaderPrincipalEmail); err != nil {
		return nil, err
	}
	if p.Groups, err = groupsHeader(h, HeaderPrincipalGroups); err != nil {
		return nil, err
	}
	if p.Scopes, err = scopesHeader(h); err != nil {
		return nil, err
	}
	if p.OnBehalfOf, err = onBehalfOf(h); err != nil {
		return nil, err
	}
	if p.OnBehalfOf != nil && !ident.IsService(p.ID) {
		return nil, invalidHeader(HeaderOnBehalfOf, "requires a service: principal id")
	}
	return p, nil
}

func emailHeader(h http.Header, name string) (string, error) {
	v, ok, err := single(h, name)
	if err != nil || !ok {
		return "", err
	}
	if !ident.ValidEmail(v) {
		return "", invalidHeader(name, "must be an email address of at most 320 characters")
	}
	return v, nil
}

func groupsHeader(h http.Header, name string) ([]string, error) {
	v, ok, err := single(h, name)
	if err != nil || !ok {
		return nil, err
	}
	return splitGroups(strings.Split(v, ","), name)
}

func splitGroups(items []string, name string) ([]string, error) {
	var groups []string
	for _, g := range items {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		if !ident.ValidPrincipalID(g) {
			return nil, invalidHeader(name, "each group must be a valid principal id")
		}
		groups = append(groups, g)
	}
	if len(groups) > ident.MaxListItems {
		return nil, invalidHeader(name, "more than 100 groups")
	}
	return groups, nil
}

func scopesHeader(h http.Header) ([]string, error) {
	v, ok, err := single(h, HeaderScopes)
	if err != nil || !ok {
		return nil, err
	}
	scopes := strings.Fields(v)
	if len(scopes) > ident.MaxListItems {
		return nil, invalidHeader(HeaderScopes, "more than 100 scopes")
	}
	for _, s := range scopes {
		if ident.PermissionShaped(s) {
			return nil, &Rejection{Code: CodeInvalidScope, Message: fmt.Sprintf("Invalid scope %q: permissions are not scopes", clip(s)),
				Reason: "invalid_header"}
		}
	}
	return scopes, nil
}

// onBehalfOf reads the user a service acts for: a principal id, or a
// JSON object {"id", "email", "groups"}; the -Email and -Groups headers
// complete it.
func onBehalfOf(h http.Header) (*Principal, error) {
	v, ok, err := single(h, HeaderOnBehalfOf)
	if err != nil || !ok {
		return nil, err
	}
	u := &Principal{}
	if strings.HasPrefix(v, "{") {
		var obj struct {
			ID     string   `json:"id"`
			Email  string   `json:"email"`
			Groups []string `json:"groups"`
		}
		dec := json.NewDecoder(strings.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&obj); err != nil || dec.More() {
			return nil, invalidHeader(HeaderOnBehalfOf, "malformed JSON object")
		}
		if obj.Email != "" && !ident.ValidEmail(obj.Email) {
			return nil, invalidHeader(HeaderOnBehalfOf, "invalid email")
		}
		if u.Groups, err = splitGroups(obj.Groups, HeaderOnBehalfOf); err != nil {
			return nil, err
		}
		u.ID, u.Email = obj.ID, obj.Email
	} else {
		u.ID = v
	}
	if !ident.ValidPrincipalID(u.ID) || ident.IsService(u.ID) || ident.IsServiceAccount(u.ID) {
		return nil, invalidHeader(HeaderOnBehalfOf, "must name a user principal id")
	}
	if email, err := emailHeader(h, HeaderOnBehalfOfEmail); err != nil {
		return nil, err
	} else if email != "" {
		u.Email = email
	}
	if groups, err := groupsHeader(h, HeaderOnBehalfOfGroups); err != nil {
		return nil, err
	} else if groups != nil {
		u.Groups = groups
	}
	return u, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
