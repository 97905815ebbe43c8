package api

import (
	"net/http"

	jose "github.com/go-jose/go-jose/v4"
)

// discovery serves GET /apis/auth/discovery (authn.md "Discovery"): what
// a client needs to log in. Endpoints come from the config overrides, else
// the IdP's discovery document (cached; the last good copy is served when
// the IdP is down; none at all gives null fields). "audience" is the aud
// the server requires (auth.oidc.audience, else client_id), so that the
// CLI can ask the IdP for it. No secrets.
func (s *Server) discovery(w http.ResponseWriter, r *http.Request) error {
	a := s.cfg.Auth
	body := map[string]any{"auth_enabled": a.Enabled, "oidc": nil}
	if a.Enabled && a.OIDC.Enabled && a.OIDC.Issuer != "" {
		o := a.OIDC
		endpoints := map[string]*string{
			"authorization_endpoint":        o.AuthorizationEndpoint,
			"token_endpoint":                o.TokenEndpoint,
			"device_authorization_endpoint": o.DeviceAuthorizationEndpoint,
			"userinfo_endpoint":             nil,
		}
		if s.idp != nil {
			md, err := s.idp.Get(r.Context())
			if err != nil {
				s.log.WarnContext(r.Context(), "IdP discovery document unavailable", "issuer", o.Issuer, "error", err)
			}
			if md != nil {
				fill := func(key, v string) {
					if endpoints[key] == nil && v != "" {
						endpoints[key] = &v
					}
				}
				fill("authorization_endpoint", md.AuthorizationEndpoint)
				fill("token_endpoint", md.TokenEndpoint)
				fill("device_authorization_endpoint", md.DeviceAuthorizationEndpoint)
				fill("userinfo_endpoint", md.UserinfoEndpoint)
			}
		}
		oidc := map[string]any{
			"issuer": o.Issuer, "client_id": o.ClientID, "audience": o.ExpectedAudience(), "default_scopes": o.DefaultScopes, "scope_prefix": o.ScopePrefix,
			"workload_token_exchange_enabled": false, "workload_client_id": nil, "workload_token_endpoint": nil,
			"workload_audience": nil, "workload_scope": nil,
		}
		for k, v := range endpoints {
			oidc[k] = v
		}
		body["oidc"] = oidc
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// jwks serves the platform's own public signing keys (the keys of access
// keys): an empty set when access keys are not enabled.
func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Cache-Control", "public, max-age=300")
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	if s.signingKeys != nil {
		set = s.signingKeys.JWKS()
		if set.Keys == nil {
			set.Keys = []jose.JSONWebKey{}
		}
	}
	writeJSON(w, http.StatusOK, set)
	return nil
}
