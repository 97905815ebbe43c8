package devidp

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/nmp-project/nmp/internal/config"
)

// token dispatches /token on grant_type: the password and device_code
// grants are handled here, authorization_code, refresh_token and
// client_credentials by zitadel; any other grant (zitadel would also take
// the JWT bearer grant) is unsupported_grant_type.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Pragma", "no-cache")
	if err := r.ParseForm(); err != nil {
		p.tokenError(w, r, oidc.ErrInvalidRequest().WithDescription("cannot parse the form body"))
		return
	}
	switch r.PostForm.Get("grant_type") {
	case config.GrantTypePassword:
		p.passwordGrant(w, r)
	case config.GrantTypeDeviceCode:
		p.deviceCodeGrant(w, r)
	case config.GrantTypeAuthorizationCode, config.GrantTypeRefreshToken, config.GrantTypeClientCredentials:
		p.op.ServeHTTP(w, r)
	case "":
		p.tokenError(w, r, oidc.ErrInvalidRequest().WithDescription("grant_type missing"))
	default:
		p.tokenError(w, r, oidc.ErrUnsupportedGrantType().WithDescription("grant_type not supported"))
	}
}

// passwordGrant is RFC 6749 section 4.3: client_id (and the secret of a
// confidential client), username, password, scope.
func (p *Provider) passwordGrant(w http.ResponseWriter, r *http.Request) {
	c, oerr := p.authenticateClient(r)
	if oerr != nil {
		p.tokenError(w, r, oerr)
		return
	}
	if !c.hasGrant(config.GrantTypePassword) {
		p.tokenError(w, r, oidc.ErrUnauthorizedClient().WithDescription("the client may not use the password grant"))
		return
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	if username == "" || password == "" {
		p.tokenError(w, r, oidc.ErrInvalidRequest().WithDescription("username and password are required"))
		return
	}
	u := p.store.authenticateUser(username, password)
	if u == nil {
		p.log.Warn("sign-in failed", "flow", "password", "client_id", c.id, p.usernameAttr(username))
		p.tokenError(w, r, oidc.ErrInvalidGrant().WithDescription("invalid username or password"))
		return
	}
	p.log.Info("user signed in", "flow", "password", "client_id", c.id, "sub", u.subject)
	grant := &authRequest{
		id:           newID(),
		clientID:     c.id,
		scopes:       c.grantScopes(strings.Fields(r.PostForm.Get("scope"))),
		audience:     p.store.audienceFor(c.id),
		responseType: oidc.ResponseTypeCode, // so that offline_access yields a refresh token
		done:         true,
		subject:      u.subject,
		authTime:     p.now(),
	}
	p.issue(w, r, grant, c)
}

// deviceCodeGrant is RFC 8628 section 3.4.
func (p *Provider) deviceCodeGrant(w http.ResponseWriter, r *http.Request) {
	c, oerr := p.authenticateClient(r)
	if oerr != nil {
		p.tokenError(w, r, oerr)
		return
	}
	if !c.hasGrant(config.GrantTypeDeviceCode) {
		p.tokenError(w, r, oidc.ErrUnauthorizedClient().WithDescription("the client may not use the device_code grant"))
		return
	}
	code := r.PostForm.Get("device_code")
	if code == "" {
		p.tokenError(w, r, oidc.ErrInvalidRequest().WithDescription("device_code missing"))
		return
	}
	grant, oerr := p.store.pollDevice(c.id, code)
	if oerr != nil {
		p.tokenError(w, r, oerr)
		return
	}
	p.issue(w, r, grant, c)
}

// issue answers a user grant with zitadel's token response: a JWT access
// token, a refresh token if offline_access was granted and the client has
// the refresh grant, an ID token if openid was granted.
func (p *Provider) issue(w http.ResponseWriter, r *http.Request, grant *authRequest, c *client) {
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	// Despite its name, CreateDeviceTokenResponse is zitadel's generic
	// response for a completed grant (ID token only for openid).
	resp, err := op.CreateDeviceTokenResponse(ctx, grant, p.op, c)
	if err != nil {
		p.log.Error("token creation failed", "client_id", c.id, "error", err)
		p.tokenError(w, r, asOAuthError(err))
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// authenticateClient identifies the client of a token request: HTTP Basic
// (client_secret_basic) or client_id and client_secret in the body
// (client_secret_post), not both. Confidential clients must present their
// secret; public clients only their client_id.
func (p *Provider) authenticateClient(r *http.Request) (*client, *oidc.Error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, oidc.ErrInvalidClient().WithDescription("malformed Basic credentials")
		}
		if r.PostForm.Has("client_secret") {
			return nil, oidc.ErrInvalidRequest().WithDescription("use one client authentication method")
		}
		if fid := r.PostForm.Get("client_id"); fid != "" && fid != id {
			return nil, oidc.ErrInvalidRequest().WithDescription("client_id does not match the Basic credentials")
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id == "" {
		return nil, oidc.ErrInvalidClient().WithDescription("client_id missing")
	}
	c := p.store.clients[id]
	ok := c != nil && c.public
	if !ok { // unknown names cost a comparison too
		ok = p.store.authenticateClient(id, secret) != nil
	}
	if !ok {
		p.store.logClientFailure(id)
		return nil, oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	return c, nil
}

// tokenError writes an RFC 6749 section 5.2 error response.
func (p *Provider) tokenError(w http.ResponseWriter, r *http.Request, e *oidc.Error) {
	status := errorStatus(e)
	if status == http.StatusUnauthorized && r.Header.Get("Authorization") != "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="nmp-dev-idp"`)
	}
	writeJSON(w, status, e)
}

// usernameAttr logs a failed sign-in's username only if it is a known
// user: an unknown one may be a password typed into the wrong field.
func (p *Provider) usernameAttr(username string) slog.Attr {
	if _, ok := p.store.users[username]; ok {
		return slog.String("username", username)
	}
	return slog.String("username", "(unknown user)")
}
