// Package authn establishes who is calling: the principal model and its
// place in the request context, identity-header parsing, and the
// Identifier, which turns a request's Credentials (headers and TCP peer,
// whatever the transport) into a principal or a Rejection. Whether the
// caller may do what it asks is decided afterwards by the policy decision
// point (internal/pdp); error shapes (status codes, JSON bodies,
// WWW-Authenticate) belong to the edge that maps a Rejection.
package authn

import (
	"context"

	"github.com/nmp-project/nmp/internal/ident"
)

// Principal is an authenticated caller.
type Principal struct {
	ID     string
	Email  string
	Groups []string
	Scopes []string
	// OnBehalfOf is the user a service principal acts for, if any.
	OnBehalfOf *Principal
	// TokenID is the jti of the bearer token that authenticated the
	// principal, if it had one.
	TokenID string
	// AccessKey: the principal was authenticated by one of the
	// platform's scoped access keys (TokenID is then the key's jti), not
	// by an IdP's token or identity headers.
	AccessKey bool
}

// Actor is the id recorded in audit columns: the on-behalf-of user if
// present, else the principal. Nil for an anonymous caller.
func (p *Principal) Actor() *string {
	switch {
	case p == nil:
		return nil
	case p.OnBehalfOf != nil && p.OnBehalfOf.ID != "":
		return &p.OnBehalfOf.ID
	case p.ID != "":
		return &p.ID
	}
	return nil
}

// OwnerKey is the principal a creator's Admin binding is keyed by: the
// (on-behalf-of) user's email if present, else its id. Empty for
// anonymous callers and pure service principals.
func (p *Principal) OwnerKey() string {
	if p == nil {
		return ""
	}
	u := p
	if p.OnBehalfOf != nil {
		u = p.OnBehalfOf
	} else if ident.IsService(p.ID) {
		return ""
	}
	if u.Email != "" {
		return u.Email
	}
	return u.ID
}

// PrincipalKey is the key of the principal in a context: WithPrincipal
// uses it, and a context that carries a request's state itself (the
// API's request context) answers it with a *Principal.
type PrincipalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, PrincipalKey{}, p)
}

// FromContext returns the request's principal, or nil when anonymous.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(PrincipalKey{}).(*Principal)
	return p
}
