package devidp

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/nmp-project/nmp/internal/config"
)

// standardScopes are the OpenID Connect scopes every client may request;
// a client's `scopes` list restricts the others (the rule zitadel applies
// at /authorize, applied to every user flow).
var standardScopes = []string{
	oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopePhone, oidc.ScopeAddress, oidc.ScopeOfflineAccess,
}

// user is a configured user. The password is kept only as its SHA-256
// digest, compared in constant time.
type user struct {
	username string
	subject  string
	email    string
	groups   []string
	pwDigest [sha256.Size]byte
}

// client is a configured client; it implements op.Client.
type client struct {
	id           string
	public       bool
	secretDigest [sha256.Size]byte // zero for public clients
	grantTypes   []oidc.GrantType
	redirectURIs []string
	native       bool
	subject      string
	email        string
	groups       []string
	scopes       []string
	loginURL     func(authRequestID string) string
	idTokenTTL   time.Duration
}

var _ op.Client = (*client)(nil)

func newUser(u config.DevIDPUser) (*user, error) {
	if u.Username == "" || u.Password == "" {
		return nil, fmt.Errorf("dev_idp user %q: username and password are required", u.Username)
	}
	return &user{
		username: u.Username,
		subject:  u.EffectiveSubject(),
		email:    u.Email,
		groups:   cloneStrings(u.Groups),
		pwDigest: sha256.Sum256([]byte(u.Password)),
	}, nil
}

// passwordMatches compares in constant time (over fixed-size digests, so
// the length of the password does not show either).
func (u *user) passwordMatches(password string) bool {
	d := sha256.Sum256([]byte(password))
	return subtle.ConstantTimeCompare(d[:], u.pwDigest[:]) == 1
}

func newClient(c config.DevIDPClient, loginURL func(string) string, idTokenTTL time.Duration) (*client, error) {
	if c.ClientID == "" {
		return nil, fmt.Errorf("dev_idp client: client_id is required")
	}
	cl := &client{
		id:           c.ClientID,
		public:       c.Public,
		redirectURIs: cloneStrings(c.RedirectURIs),
		subject:      c.EffectiveSubject(),
		groups:       cloneStrings(c.Groups),
		scopes:       cloneStrings(c.Scopes),
		loginURL:     loginURL,
		idTokenTTL:   idTokenTTL,
	}
	if c.Email != nil {
		cl.email = *c.Email
	}
	if !c.Public {
		if c.ClientSecret == nil || *c.ClientSecret == "" {
			return nil, fmt.Errorf("dev_idp client %q: a confidential client needs a client_secret", c.ClientID)
		}
		cl.secretDigest = sha256.Sum256([]byte(*c.ClientSecret))
	}
	for _, g := range c.GrantTypes {
		switch g {
		case config.GrantTypeDeviceCode, config.GrantTypeAuthorizationCode, config.GrantTypePassword,
			config.GrantTypeRefreshToken, config.GrantTypeClientCredentials:
			cl.grantTypes = append(cl.grantTypes, oidc.GrantType(g))
		default:
			return nil, fmt.Errorf("dev_idp client %q: unknown grant type %q", c.ClientID, g)
		}
	}
	if c.Public && slices.Contains(c.GrantTypes, config.GrantTypeClientCredentials) {
		return nil, fmt.Errorf("dev_idp client %q: a public client cannot use client_credentials", c.ClientID)
	}
	// Public clients are native apps; so is a confidential client listing
	// a loopback redirect. zitadel then matches loopback redirect URIs on
	// path and query with any port (RFC 8252, section 7.3).
	cl.native = c.Public
	for _, u := range c.RedirectURIs {
		if _, err := url.Parse(u); err != nil {
			return nil, fmt.Errorf("dev_idp client %q: invalid redirect URI", c.ClientID)
		}
		if _, loopback := op.HTTPLoopbackOrLocalhost(u); loopback {
			cl.native = true
		}
	}
	return cl, nil
}

// secretMatches compares in constant time; public clients have no secret.
func (c *client) secretMatches(secret string) bool {
	if c.public {
		return false
	}
	d := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(d[:], c.secretDigest[:]) == 1
}

func (c *client) hasGrant(g string) bool { return slices.Contains(c.grantTypes, oidc.GrantType(g)) }

// grantScopes is the user-flow rule: the requested scopes (deduplicated,
// in order), keeping standard OpenID Connect scopes and, when the client
// lists `scopes`, only those of the others.
func (c *client) grantScopes(requested []string) []string {
	out := []string{}
	for _, s := range requested {
		if s == "" || slices.Contains(out, s) {
			continue
		}
		if slices.Contains(standardScopes, s) || c.IsScopeAllowed(s) {
			out = append(out, s)
		}
	}
	return out
}

func (c *client) GetID() string                    { return c.id }
func (c *client) RedirectURIs() []string           { return c.redirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return nil }

func (c *client) ApplicationType() op.ApplicationType {
	if c.native {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.public {
		return oidc.AuthMethodNone
	}
	// Basic also accepts the secret in the form body (client_secret_post):
	// zitadel reads either.
	return oidc.AuthMethodBasic
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	if c.hasGrant(config.GrantTypeAuthorizationCode) {
		return []oidc.ResponseType{oidc.ResponseTypeCode}
	}
	return nil
}

func (c *client) GrantTypes() []oidc.GrantType        { return c.grantTypes }
func (c *client) LoginURL(id string) string           { return c.loginURL(id) }
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration      { return c.idTokenTTL }
func (c *client) DevMode() bool                       { return false }
func (c *client) ClockSkew() time.Duration            { return 0 }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed allows any scope when the client lists none.
func (c *client) IsScopeAllowed(scope string) bool {
	return len(c.scopes) == 0 || slices.Contains(c.scopes, scope)
}

// IDTokenUserinfoClaimsAssertion puts the email and profile claims the
// scopes ask for into the ID token even when an access token is issued.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

func cloneStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
