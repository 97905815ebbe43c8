package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// IdPUnavailable is a token that could not be checked because the
// identity provider did not answer usably (down, timeout, 5xx, an
// unparsable answer, or the server's own limit on calls to it). The
// request is refused (fail closed) with 503 idp_unavailable, not 401:
// the token may well be valid. Its message never holds the token.
type IdPUnavailable struct {
	Reason string // security-log sub-reason, e.g. introspection_failed
	Detail string
	// Message, if set, replaces what the client is told ("Identity
	// provider unavailable; try again later"), for a validation
	// dependency that is not the IdP (the access-key registry).
	Message string
}

func (e *IdPUnavailable) Error() string {
	return "identity provider unavailable: " + e.Reason + ": " + e.Detail
}

// ReasonOpaqueToken is the sub-reason of an opaque (non-JWT) bearer token
// refused because token introspection is not enabled.
const ReasonOpaqueToken = "opaque_token"

// OpaqueTokenHint tells the client why its opaque token was refused and
// how to fix it.
const OpaqueTokenHint = "the token is opaque (not a JWT) and this server does not introspect tokens; " +
	"ask the identity provider for JWT access tokens (for example by requesting this API's audience or resource) " +
	"or have the operator enable auth.oidc.introspection"

// LooksLikeJWT reports whether token has the compact JWS shape: three
// dot-separated parts whose first decodes to a JSON object with a string
// "alg". Anything else (random strings, tokens with other dot counts, JWE)
// is opaque.
func LooksLikeJWT(token string) bool {
	if strings.Count(token, ".") != 2 {
		return false
	}
	h, _, _ := strings.Cut(token, ".")
	if h == "" || len(h) > 4096 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(h, "="))
	if err != nil {
		return false
	}
	var hdr struct {
		Alg *string `json:"alg"`
	}
	return json.Unmarshal(raw, &hdr) == nil && hdr.Alg != nil
}

// UnverifiedIssuer is the string iss of a JWT's payload, decoded without
// any check of the signature; "" when the token is not a JWT, the payload
// does not decode or iss is not a string. It only routes a token to the
// validator that will check it.
func UnverifiedIssuer(token string) string {
	_, rest, ok := strings.Cut(token, ".")
	if !ok {
		return ""
	}
	payload, _, ok := strings.Cut(rest, ".")
	if !ok || len(payload) > 16<<10 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return ""
	}
	var claims struct {
		Iss any `json:"iss"`
	}
	if json.Unmarshal(raw, &claims) != nil {
		return ""
	}
	iss, _ := claims.Iss.(string)
	return iss
}

// TokenRouter sends JWT-shaped tokens to one validator and opaque tokens
// to another (token introspection). Without an opaque-token validator an
// opaque token is refused with ReasonOpaqueToken and a hint saying how to
// fix it; the server logs the same advice at most once a minute.
//
// With AccessKeys set, a JWT whose (unverified) iss equals AccessKeyIssuer
// goes to AccessKeys and never to JWT; every other JWT goes to JWT and
// never to AccessKeys.
type TokenRouter struct {
	JWT    TokenValidator // nil: neither OIDC nor unsigned tokens enabled
	Opaque TokenValidator // nil: introspection not enabled
	// AccessKeys validates the platform's own access-key tokens (nil:
	// access keys not enabled); AccessKeyIssuer is their iss.
	AccessKeys      TokenValidator
	AccessKeyIssuer string
	Log             *slog.Logger
	Now             func() time.Time

	mu         sync.Mutex
	lastAdvice time.Time
}

var _ TokenValidator = (*TokenRouter)(nil)

// CachedValidator is a TokenValidator that keeps the tokens it has
// validated: Cached answers for one of them (its principal, or the
// refusal it has earned since, such as expiry) without parsing it, and
// reports ok false for any other token.
type CachedValidator interface {
	Cached(ctx context.Context, token string) (p *Principal, ok bool, err error)
}

// Validate implements TokenValidator.
func (r *TokenRouter) Validate(ctx context.Context, token string) (*Principal, error) {
	// A token the JWT validator has already validated was routed to it
	// by its content, which has not changed: ask its cache before
	// decoding the token's header and payload to route it again.
	if c, ok := r.JWT.(CachedValidator); ok {
		if p, hit, err := c.Cached(ctx, token); hit {
			return p, err
		}
	}
	if LooksLikeJWT(token) {
		if r.AccessKeys != nil && r.AccessKeyIssuer != "" && UnverifiedIssuer(token) == r.AccessKeyIssuer {
			return r.AccessKeys.Validate(ctx, token)
		}
		if r.JWT == nil {
			return nil, &InvalidToken{Reason: "unknown_issuer", Detail: "not an access-key token and no other token validation is enabled"}
		}
		return r.JWT.Validate(ctx, token)
	}
	if r.Opaque != nil {
		return r.Opaque.Validate(ctx, token)
	}
	r.advise()
	return nil, &InvalidToken{Reason: ReasonOpaqueToken, Detail: "opaque (non-JWT) bearer token and auth.oidc.introspection is not enabled",
		Hint: OpaqueTokenHint}
}

// advise logs, at most once a minute, what an operator can do about
// opaque tokens.
func (r *TokenRouter) advise() {
	if r.Log == nil {
		return
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	r.mu.Lock()
	due := r.lastAdvice.IsZero() || now.Sub(r.lastAdvice) >= time.Minute
	if due {
		r.lastAdvice = now
	}
	r.mu.Unlock()
	if due {
		r.Log.Warn("an opaque (non-JWT) bearer token was refused: configure the IdP to issue JWT access tokens "+
			"(request this API's audience or resource), or enable auth.oidc.introspection",
			"reason", ReasonOpaqueToken)
	}
}
