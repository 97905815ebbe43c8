package authn

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
)

// Rejection codes: what a client is told when its credentials are
// refused. The edge (HTTP, gRPC) maps them to its own error shapes.
const (
	CodeUntrustedIdentityHeaders = "untrusted_identity_headers"
	CodeInvalidHeader            = "invalid_header"
	CodeInvalidScope             = "invalid_scope"
	CodeInvalidToken             = "invalid_token"
	CodeBearerNotConfigured      = "bearer_not_configured"
	CodeMissingToken             = "missing_token"
	CodeIdPUnavailable           = "idp_unavailable"
)

// Rejection is refused credentials: what the caller is told (Code,
// Message) and what the security log records (Reason and, optionally,
// Detail; authn.md "Logging rules"). It never holds a credential.
type Rejection struct {
	Code    string
	Message string
	Reason  string
	Detail  string
	// Err is the token validator's error when a bearer token was
	// validated and refused (Detail is then its sub-reason); nil otherwise.
	Err error
}

func (r *Rejection) Error() string { return r.Code + ": " + r.Message }

func (r *Rejection) Unwrap() error { return r.Err }

// BadInput reports whether the rejection is about malformed input (an
// HTTP 400) rather than missing or unacceptable credentials (401).
func (r *Rejection) BadInput() bool {
	return r.Code == CodeInvalidHeader || r.Code == CodeInvalidScope
}

// Unavailable reports whether the credentials could not be checked
// because the identity provider is unavailable (an HTTP 503: fail closed,
// but not the client's fault).
func (r *Rejection) Unavailable() bool { return r.Code == CodeIdPUnavailable }

func untrustedHeaders(detail string) *Rejection {
	return &Rejection{Code: CodeUntrustedIdentityHeaders, Message: "Identity headers are not accepted from this source",
		Reason: "untrusted_identity_headers", Detail: detail}
}

func invalidToken(detail string, err error) *Rejection {
	return &Rejection{Code: CodeInvalidToken, Message: "Invalid bearer token", Reason: "invalid_token", Detail: detail, Err: err}
}

// MissingToken is the rejection of a gateway check without a bearer token.
func MissingToken() *Rejection {
	return &Rejection{Code: CodeMissingToken, Message: "Missing bearer token", Reason: "invalid_token", Detail: "missing_token"}
}

// Credentials are what a caller presents, whatever the transport: the
// HTTP middleware, the gateway callout and an Envoy ext_authz server build
// them from their request.
type Credentials struct {
	// Header holds the request headers (canonical names, as in
	// http.Header): identity headers and Authorization.
	Header http.Header
	// Peer is the TCP peer's address, never X-Forwarded-For. An invalid
	// Addr (unknown peer) is never trusted.
	Peer netip.Addr
}

// Identity is the outcome of identification.
type Identity struct {
	// Principal is the caller; nil when anonymous.
	Principal *Principal
	// Authorized: a trusted proxy asserted X-NMP-Authorized: true, so the
	// request needs no decision (authn.md "Request pipeline", step 5).
	Authorized bool
}

// IdentifierConfig is the part of the configuration identification uses.
type IdentifierConfig struct {
	// Enabled is auth.enabled.
	Enabled bool
	// Production: auth enabled with OIDC or access keys (identity headers
	// only from trusted proxies).
	Production bool
	// TrustedProxies is auth.trusted_proxies, parsed.
	TrustedProxies []netip.Prefix
	// Tokens validates bearer tokens; nil when no validator is enabled.
	Tokens TokenValidator
}

// Identifier establishes who is calling (authn.md "Request pipeline",
// steps 2 and 4-7); deciding whether the caller may is the policy
// decision point's job. It is configured once and safe for concurrent use.
type Identifier struct {
	cfg IdentifierConfig
}

// NewIdentifier returns an Identifier for the configuration.
func NewIdentifier(cfg IdentifierConfig) *Identifier {
	cfg.TrustedProxies = append([]netip.Prefix(nil), cfg.TrustedProxies...)
	return &Identifier{cfg: cfg}
}

// TrustedPeer reports whether peer is in auth.trusted_proxies.
func (i *Identifier) TrustedPeer(peer netip.Addr) bool {
	if !peer.IsValid() {
		return false
	}
	peer = peer.Unmap()
	for _, p := range i.cfg.TrustedProxies {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// CheckSource is the identity-header trust check (step 2), which runs
// for every request, bypass paths included: in production mode identity
// headers from a peer outside auth.trusted_proxies are refused.
func (i *Identifier) CheckSource(c Credentials) error {
	if i.cfg.Production && HasIdentityHeaders(c.Header) && !i.TrustedPeer(c.Peer) {
		return untrustedHeaders("")
	}
	return nil
}

// Identify establishes the principal of a request that is not on a bypass
// path: the trust check (step 2); with auth disabled the identity headers'
// principal or anonymous (step 4); the identity headers' principal, marked
// Authorized when a trusted proxy says so (step 5); a bearer token (step
// 6); else anonymous (step 7). Errors are *Rejection values.
func (i *Identifier) Identify(ctx context.Context, c Credentials) (Identity, error) {
	if err := i.CheckSource(c); err != nil {
		return Identity{}, err
	}
	p, err := ParseIdentityHeaders(c.Header)
	if err != nil {
		return Identity{}, err
	}
	if !i.cfg.Enabled || p != nil {
		authorized := i.cfg.Enabled && p != nil && strings.EqualFold(c.Header.Get(HeaderKey(HeaderAuthorized)), "true") &&
			i.TrustedPeer(c.Peer)
		return Identity{Principal: p, Authorized: authorized}, nil
	}
	if h := c.Header.Get("Authorization"); h != "" {
		p, err := i.Bearer(ctx, h)
		if err != nil {
			return Identity{}, err
		}
		return Identity{Principal: p}, nil
	}
	return Identity{}, nil
}

// RefuseIdentityHeaders is the gateway checks' rule (the callout and
// Envoy ext_authz): identity headers are never identity there, and in
// production mode any of them, from any source, is refused, since the
// gateway must strip them first.
func (i *Identifier) RefuseIdentityHeaders(c Credentials) error {
	if i.cfg.Production && HasIdentityHeaders(c.Header) {
		return untrustedHeaders("identity headers sent to the callout")
	}
	return nil
}

// BearerConfigured reports whether a bearer token validator is enabled.
func (i *Identifier) BearerConfigured() bool { return i.cfg.Tokens != nil }

// Bearer validates an Authorization header value: "Bearer <token>" with a
// token the validator accepts. Errors are *Rejection values (invalid_token,
// or bearer_not_configured without a validator).
func (i *Identifier) Bearer(ctx context.Context, authorization string) (*Principal, error) {
	scheme, token, ok := strings.Cut(authorization, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, invalidToken("malformed_authorization_header", nil)
	}
	if i.cfg.Tokens == nil {
		return nil, &Rejection{Code: CodeBearerNotConfigured, Message: "Bearer token authentication not configured",
			Reason: "invalid_token", Detail: "bearer_not_configured"}
	}
	p, err := i.cfg.Tokens.Validate(ctx, token)
	if err != nil {
		var un *IdPUnavailable
		if errors.As(err, &un) {
			msg := "Identity provider unavailable; try again later"
			if un.Message != "" {
				msg = un.Message
			}
			return nil, &Rejection{Code: CodeIdPUnavailable, Message: msg,
				Reason: CodeIdPUnavailable, Detail: un.Reason, Err: err}
		}
		sub := "invalid"
		var it *InvalidToken
		rej := invalidToken(sub, err)
		if errors.As(err, &it) {
			rej.Detail = it.Reason
			if it.Hint != "" {
				rej.Message += ": " + it.Hint
			}
		}
		return nil, rej
	}
	return p, nil
}
