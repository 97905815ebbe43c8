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
type InvalidToken struct {
	Reason string
	Detail string
	// Hint, if set, is told to the client after "Invalid bearer token: "
	// (how to fix a token of the wrong kind); never token content.
	Hint string
}

func (e *InvalidToken) Error() string { return "invalid token: " + e.Reason + ": " + e.Detail }
