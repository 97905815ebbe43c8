package jwtverify

import (
	"fmt"
	"strings"
)

// Token types (authn.md "Token validation"; RFC 7519 §5.1, RFC 9068
// §2.1). The JOSE header typ is a media type compared case-insensitively,
// with or without its "application/" prefix: "JWT" (or none) is a plain
// JWT, "at+jwt" an RFC 9068 access token. Any other typ (id+jwt,
// logout+jwt, dpop+jwt, ...) is not an access token.
const (
	typJWT   = "jwt"
	typAtJWT = "at+jwt"
)

// normTyp lower-cases typ and drops an "application/" prefix.
func normTyp(typ string) string {
	t := strings.ToLower(strings.TrimSpace(typ))
	return strings.TrimPrefix(t, "application/")
}

// isAccessTokenJWT reports an RFC 9068 header (typ at+jwt).
func (h header) isAccessTokenJWT() bool { return h.hasTyp && normTyp(h.typ) == typAtJWT }

// idTokenOnlyClaims appear in OpenID Connect ID tokens (OIDC Core §2,
// §3.3.2.11; FAPI s_hash) and never in access tokens.
var idTokenOnlyClaims = []string{"nonce", "at_hash", "c_hash", "s_hash"}

// idTokenSignal says why a token looks like an ID token or another
// non-access token, "" if it does not: a header typ other than JWT or
// at+jwt (a missing typ is legal), a payload typ claim of "ID"
// (Keycloak marks its ID tokens so, its access tokens "Bearer"), or an
// ID-token-only claim. auth_time alone is no signal: Keycloak and Okta
// put it in access tokens too. An ID token carrying none of these (Entra
// ID and Auth0 issue such ones from the token endpoint when no nonce was
// sent) is told apart only by its audience: hence auth.oidc.audience.
func idTokenSignal(h header, claims map[string]any) string {
	if h.hasTyp {
		if t := normTyp(h.typ); t != typJWT && t != typAtJWT {
			return fmt.Sprintf("header typ %s is not an access-token type", clip(h.typ))
		}
	}
	if t, ok := claims["typ"].(string); ok && strings.EqualFold(t, "ID") {
		return `typ claim "ID"`
	}
	for _, c := range idTokenOnlyClaims {
		if claims[c] != nil {
			return "ID-token claim " + c
		}
	}
	return ""
}
