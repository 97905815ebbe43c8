package devidp

import (
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequest is a user authorization: a pending or completed /authorize
// request, and the grant a password login or an approved device code
// produces. Storage hands out copies, so the library never shares one with
// a concurrent login.
type authRequest struct {
	id            string
	clientID      string
	redirectURI   string
	state         string
	nonce         string
	scopes        []string
	audience      []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	codeChallenge *oidc.CodeChallenge
	expires       time.Time // end of the pending (not yet signed in) phase

	done     bool
	subject  string
	authTime time.Time
	failures int // failed sign-in attempts
}

var (
	_ op.AuthRequest    = (*authRequest)(nil)
	_ op.IDTokenRequest = (*authRequest)(nil)
)

func (a *authRequest) clone() *authRequest {
	c := *a
	c.scopes = slices.Clone(a.scopes)
	c.audience = slices.Clone(a.audience)
	if a.codeChallenge != nil {
		cc := *a.codeChallenge
		c.codeChallenge = &cc
	}
	return &c
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return a.audience }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.codeChallenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

// refreshRequest is what a refresh token stands for; it implements
// op.RefreshTokenRequest.
type refreshRequest struct {
	family   string
	clientID string
	subject  string
	scopes   []string // granted at sign-in
	current  []string // this refresh (narrowed by a `scope` parameter)
	audience []string
	authTime time.Time
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string                 { return []string{"pwd"} }
func (r *refreshRequest) GetAudience() []string            { return r.audience }
func (r *refreshRequest) GetAuthTime() time.Time           { return r.authTime }
func (r *refreshRequest) GetClientID() string              { return r.clientID }
func (r *refreshRequest) GetScopes() []string              { return r.current }
func (r *refreshRequest) GetSubject() string               { return r.subject }
func (r *refreshRequest) SetCurrentScopes(scopes []string) { r.current = slices.Clone(scopes) }

// clientRequest is a client credentials grant; its principal is the
// client.
type clientRequest struct {
	clientID string
	subject  string
	scopes   []string
	audience []string
}

var _ op.TokenRequest = (*clientRequest)(nil)

func (c *clientRequest) GetSubject() string    { return c.subject }
func (c *clientRequest) GetAudience() []string { return c.audience }
func (c *clientRequest) GetScopes() []string   { return c.scopes }
