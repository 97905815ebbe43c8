// Package accesskey validates and mints the platform's scoped access
// keys: RS256 JWTs signed with the platform's own key (internal/signing)
// and checked against the access-key registry on every request, so that
// a revoked, suspended or expired key stops working on the next request.
//
// Validation (Validator) verifies the signature and the claims, then asks
// the registry through a Cache whose entries are invalidated by the
// registry's change feed and bypassed while that feed is unhealthy.
// Verified tokens are cached by their SHA-256; the registry decision never
// is, beyond the Cache.
package accesskey

import (
	"context"
	"errors"
	"regexp"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// Claim values of an access-key token.
const (
	// TokenType is the nmp_token_type claim of every access key.
	TokenType = "access_key"
	// ClaimVersion is nmp_access_key.version.
	ClaimVersion = 2
	// EntityUser and EntityServiceAccount are nmp_access_key.entity_type.
	EntityUser           = "USER"
	EntityServiceAccount = "SERVICE_ACCOUNT"
)

// Registry statuses of a key (KeyState.Status).
const (
	StatusActive    = "ACTIVE"
	StatusExpired   = "EXPIRED"
	StatusRevoked   = "REVOKED"
	StatusSuspended = "SUSPENDED"
	StatusRotating  = "ROTATING"
)

// Refusal sub-reasons specific to access keys; the others are shared with
// OIDC token validation (expired, bad_signature, unknown_kid, ...).
const (
	// ReasonRejected: the token is genuine but the registry says the key
	// is unknown or not usable (revoked, suspended, expired, past its
	// rotation grace period).
	ReasonRejected = "access_key_rejected"
	// ReasonRegistryUnavailable: the registry could not be asked; the
	// request fails closed with 503.
	ReasonRegistryUnavailable = "access_key_registry_unavailable"
	// ReasonInvalidClaim: a claim has the wrong value or type.
	ReasonInvalidClaim = "invalid_claim"
)

// ErrNotFound is returned by a Registry for an unknown jti.
var ErrNotFound = errors.New("access key not found")

// KeyState is what the registry knows of a key.
type KeyState struct {
	// Principal is the key's principal id (the token's sub).
	Principal string
	// Usable: the key may authenticate a request now.
	Usable bool
	// Status is the registry status (ACTIVE, EXPIRED, REVOKED,
	// SUSPENDED, ROTATING).
	Status string
	// UsableUntil is when a usable key stops being usable (its expiry or
	// the end of its rotation grace period); nil: no such time.
	UsableUntil *time.Time
}

// Registry looks keys up by jti. Lookup returns ErrNotFound (possibly
// wrapped) for an unknown key; any other error means the registry could
// not answer.
type Registry interface {
	Lookup(ctx context.Context, jti string) (KeyState, error)
}

// reJTI is the format of a key id: "ak_" and 32 lowercase hex digits.
var reJTI = regexp.MustCompile(`^ak_[0-9a-f]{32}$`)

// ValidJTI reports whether s has the format of an access key's jti.
func ValidJTI(s string) bool { return reJTI.MatchString(s) }

// keyClaim is the nmp_access_key claim.
type keyClaim struct {
	Version    int    `json:"version"`
	EntityType string `json:"entity_type"`
	Name       string `json:"name"`
}

// tokenClaims is the payload of an access-key token (the registered
// claims plus the platform's own).
type tokenClaims struct {
	jwt.Claims
	TokenType string    `json:"nmp_token_type"`
	AccessKey *keyClaim `json:"nmp_access_key"`
	Email     string    `json:"email,omitempty"`
	Groups    string    `json:"groups,omitempty"`
	Scope     *string   `json:"scope,omitempty"`
}
