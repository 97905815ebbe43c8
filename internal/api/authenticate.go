package api

import (
	"net/http"
	"strings"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
)

// originalRequest finds the request a gateway asks about: the callout's
// path suffix with its method, else X-Forwarded-Method + X-Forwarded-Uri,
// else X-Original-Method + X-Original-URI.
func originalRequest(r *http.Request) (method, path string, ok bool) {
	const prefix = "/apis/auth/authenticate"
	if rest := strings.TrimPrefix(r.URL.EscapedPath(), prefix); rest != "" {
		return r.Method, rest, true
	}
	for _, h := range [][2]string{{"X-Forwarded-Method", "X-Forwarded-Uri"}, {"X-Original-Method", "X-Original-URI"}} {
		if m, u := r.Header.Get(h[0]), r.Header.Get(h[1]); m != "" && u != "" {
			return m, u, true
		}
	}
	return "", "", false
}

// authenticateCallout serves /apis/auth/authenticate[/<original path>]
// for gateways (nginx auth_request, Caddy forward_auth, Envoy HTTP
// ext_authz), any method (authn.md "Gateway callout"). It identifies with
// the same authn.Identifier as the pipeline (identity headers refused,
// bearer token only) and decides with the same decision point.
func (s *Server) authenticateCallout(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	if err := s.ident.RefuseIdentityHeaders(credentials(r)); err != nil {
		return s.refused(r, err)
	}
	var method, path string
	if s.cfg.Auth.AuthenticateAuthorize {
		var ok bool
		if method, path, ok = originalRequest(r); !ok {
			return apierror.BadRequest("missing_original_path", "The original request's method and path are missing")
		}
		canonical, valid := authz.CanonicalPath(path)
		if valid && bypassed(strings.ToUpper(method), strings.SplitN(canonical, "?", 2)[0]) {
			writeJSON(w, http.StatusOK, map[string]any{"principal": nil, "token_kind": nil, "email": nil,
				"groups": []string{}, "scopes": []string{}, "jti": nil})
			return nil
		}
	}
	header := r.Header.Get("Authorization")
	if header == "" {
		w.Header().Set("WWW-Authenticate", "Bearer")
		return s.refused(r, authn.MissingToken())
	}
	if !s.ident.BearerConfigured() {
		s.log.ErrorContext(r.Context(), "authenticate callout called but no token validator is configured (enable auth.oidc or auth.allow_unsigned_jwt)")
		return apierror.New(http.StatusInternalServerError, "misconfigured", "No bearer token validation is configured")
	}
	p, err := s.ident.Bearer(r.Context(), header)
	if err != nil {
		setBearerChallenge(w.Header(), err) // the same challenge as on API paths
		return s.refused(r, err)
	}
	authorized := false
	if s.cfg.Auth.AuthenticateAuthorize {
		if err := s.decideFor(r, p, strings.ToUpper(method), path); err != nil {
			return err
		}
		authorized = true
	}
	setIdentityHeaders(w.Header(), p, authorized)
	writeJSON(w, http.StatusOK, calloutBody(p))
	return nil
}

// setIdentityHeaders writes the trusted identity headers a gateway
// forwards upstream: each only when it has a value.
func setIdentityHeaders(h http.Header, p *authn.Principal, authorized bool) {
	set := func(name, v string) {
		if v != "" {
			h.Set(name, v)
		}
	}
	set(authn.HeaderPrincipalID, p.ID)
	set(authn.HeaderPrincipalEmail, p.Email)
	set(authn.HeaderPrincipalGroups, strings.Join(p.Groups, ","))
	set(authn.HeaderScopes, strings.Join(p.Scopes, " "))
	if authorized {
		h.Set(authn.HeaderAuthorized, "true")
	}
}

func calloutBody(p *authn.Principal) map[string]any {
	nullable := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	orEmpty := func(xs []string) []string {
		if xs == nil {
			return []string{}
		}
		return xs
	}
	return map[string]any{"principal": p.ID, "token_kind": "oidc_access_token", "email": nullable(p.Email),
		"groups": orEmpty(p.Groups), "scopes": orEmpty(p.Scopes), "jti": nullable(p.TokenID)}
}
