package client

import (
	"context"
	"net/http"
)

// Discovery is the answer of GET /apis/auth/discovery: whether the server
// requires authentication and how a client logs in.
type Discovery struct {
	AuthEnabled bool `json:"auth_enabled"`
	// OIDC is nil unless auth and OIDC are enabled with an issuer.
	OIDC *OIDCDiscovery `json:"oidc"`
}

// OIDCDiscovery describes the identity provider the server trusts. Absent
// endpoints are empty strings. Audience is the aud the server requires of
// access tokens (empty from servers that do not announce it).
type OIDCDiscovery struct {
	Issuer                      string  `json:"issuer"`
	AuthorizationEndpoint       string  `json:"authorization_endpoint"`
	TokenEndpoint               string  `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string  `json:"device_authorization_endpoint"`
	UserinfoEndpoint            string  `json:"userinfo_endpoint"`
	ClientID                    string  `json:"client_id"`
	Audience                    string  `json:"audience"`
	DefaultScopes               string  `json:"default_scopes"`
	ScopePrefix                 *string `json:"scope_prefix"`
}

// Discovery fetches GET /apis/auth/discovery. Build the client without a
// token: discovery needs none.
func (c *Client) Discovery(ctx context.Context) (*Discovery, error) {
	var d struct {
		AuthEnabled bool `json:"auth_enabled"`
		OIDC        *struct {
			Issuer                      *string `json:"issuer"`
			AuthorizationEndpoint       *string `json:"authorization_endpoint"`
			TokenEndpoint               *string `json:"token_endpoint"`
			DeviceAuthorizationEndpoint *string `json:"device_authorization_endpoint"`
			UserinfoEndpoint            *string `json:"userinfo_endpoint"`
			ClientID                    *string `json:"client_id"`
			Audience                    *string `json:"audience"`
			DefaultScopes               *string `json:"default_scopes"`
			ScopePrefix                 *string `json:"scope_prefix"`
		} `json:"oidc"`
	}
	if err := c.Do(ctx, http.MethodGet, "/apis/auth/discovery", nil, nil, &d); err != nil {
		return nil, err
	}
	out := &Discovery{AuthEnabled: d.AuthEnabled}
	if o := d.OIDC; o != nil {
		s := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		out.OIDC = &OIDCDiscovery{
			Issuer:                      s(o.Issuer),
			AuthorizationEndpoint:       s(o.AuthorizationEndpoint),
			TokenEndpoint:               s(o.TokenEndpoint),
			DeviceAuthorizationEndpoint: s(o.DeviceAuthorizationEndpoint),
			UserinfoEndpoint:            s(o.UserinfoEndpoint),
			ClientID:                    s(o.ClientID),
			Audience:                    s(o.Audience),
			DefaultScopes:               s(o.DefaultScopes),
			ScopePrefix:                 o.ScopePrefix,
		}
	}
	return out, nil
}
