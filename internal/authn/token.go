package authn

import "context"

// TokenValidator validates bearer tokens (OIDC access tokens, unsigned
// development tokens). It returns the token's principal, or an error
// whose Reason (see InvalidToken) says why the token was refused.
type TokenValidator interface {
	Validate(ctx context.Context, token string) (*Principal, error)
}

// InvalidToken is a refused token with the security-log sub-reason
// (expired, bad_signature, unknown_issuer, ...). Its message never holds
// the token.
//
// The other fields are the safe facts an operator needs to act on the
// refusal (authn.md "Logging rules"): values read from the token's
// header and (unverified) payload that identify where it came from,
// never the token, a signature or personal claims. Each is bounded and
// empty when unknown.
type InvalidToken struct {
	Reason string
	Detail string

	Issuer   string   // iss as sent (unverified)
	Audience []string // aud as sent (unverified)
	KeyID    string   // header kid
	Type     string   // header typ
	Claim    string   // the missing or offending claim
	// Hint, if set, is told to the client after "Invalid bearer token: "
	// (how to fix a token of the wrong kind); never token content.
	Hint string
}

func (e *InvalidToken) Error() string { return "invalid token: " + e.Reason + ": " + e.Detail }

// LogAttrs returns the refusal's safe facts as slog key-value pairs:
// token_detail, token_iss, token_aud, token_kid, token_typ and
// token_claim, each only when known.
func (e *InvalidToken) LogAttrs() []any {
	var attrs []any
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, k, v)
		}
	}
	add("token_detail", e.Detail)
	add("token_iss", e.Issuer)
	if len(e.Audience) > 0 {
		attrs = append(attrs, "token_aud", e.Audience)
	}
	add("token_kid", e.KeyID)
	add("token_typ", e.Type)
	add("token_claim", e.Claim)
	return attrs
}

// tokenDescriptions are the RFC 6750 error_description phrases per
// refusal reason: short, fixed, and never token content.
var tokenDescriptions = map[string]string{
	"malformed":                      "token is malformed",
	"malformed_authorization_header": "Authorization header must be: Bearer <token>",
	"too_large":                      "token is too large",
	"alg_not_allowed":                "token signing algorithm not allowed",
	"unsigned_not_allowed":           "unsigned tokens are not accepted",
	"crit_header":                    "token has an unsupported crit header",
	"unknown_issuer":                 "token issuer is not trusted",
	"bad_signature":                  "token signature is invalid",
	"unknown_kid":                    "token signing key is unknown",
	"expired":                        "token expired",
	"not_yet_valid":                  "token is not valid yet",
	"issued_in_future":               "token is issued in the future",
	"missing_claim":                  "token lacks a required claim",
	"audience_mismatch":              "token audience does not match",
	"invalid_subject":                "token subject is not a valid principal id",
	"reserved_subject":               "token subject uses a reserved prefix",
	"too_many_groups":                "token has too many groups",
	"jwks_fetch_failed":              "signing keys of the issuer are unavailable",
	"id_token_not_accepted":          "ID tokens are not accepted; send an access token",
	"lifetime_exceeded":              "token lifetime exceeds the allowed maximum",
	"missing_token":                  "missing bearer token",
	"opaque_token":                   "token is opaque (not a JWT); send a JWT access token or enable introspection",
	"inactive_token":                 "token is not active",
	"not_access_token":               "token is not an access token",
	"invalid_claim":                  "token has an invalid claim",
	"access_key_rejected":            "access key is not usable",
}

// TokenErrorDescription is the error_description of a WWW-Authenticate
// challenge for a refusal reason; unknown reasons get "invalid token".
func TokenErrorDescription(reason string) string {
	if d, ok := tokenDescriptions[reason]; ok {
		return d
	}
	return "invalid token"
}
