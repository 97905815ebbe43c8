package accesskey

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/ident"
)

// Signer signs claims with the platform's current key (signing.Keys).
type Signer interface {
	KeyID() string
	Sign(claims any) (string, error)
}

// Minter mints access-key tokens.
type Minter struct {
	issuer   string
	audience string
	signer   Signer
}

// NewMinter mints with the configured issuer (auth.token_signing.issuer)
// and audience (auth.access_keys.audience).
func NewMinter(cfg *config.Config, signer Signer) *Minter {
	return &Minter{issuer: cfg.TokenSigningIssuer(), audience: cfg.Auth.AccessKeys.Audience, signer: signer}
}

// MintRequest is what a token says about its key.
type MintRequest struct {
	JTI        string // NewJTI
	Subject    string // the key's principal: the user, or service-account:<id>
	EntityType string // EntityUser or EntityServiceAccount
	Name       string
	// Email and Groups are the creator's at creation.
	Email  string
	Groups []string
	// Scopes limit the key; nil omits the scope claim (the principal's
	// full rights).
	Scopes    []string
	IssuedAt  time.Time
	ExpiresAt *time.Time // nil: no exp
}

// Mint signs the token of k: header {"alg":"RS256","kid","typ":"JWT"};
// claims iss, aud, sub, iat, nbf (= iat), exp when k has an expiry, jti,
// nmp_token_type "access_key", nmp_access_key {version 2, entity_type,
// name}, email and groups (comma-joined) when set, and scope
// (space-separated) when k.Scopes is not nil.
func (m *Minter) Mint(k MintRequest) (string, error) {
	if err := checkMint(k); err != nil {
		return "", fmt.Errorf("accesskey: mint: %w", err)
	}
	iat := jwt.NewNumericDate(k.IssuedAt)
	cl := tokenClaims{
		Claims: jwt.Claims{Issuer: m.issuer, Subject: k.Subject, Audience: jwt.Audience{m.audience},
			IssuedAt: iat, NotBefore: iat, ID: k.JTI},
		TokenType: TokenType,
		AccessKey: &keyClaim{Version: ClaimVersion, EntityType: k.EntityType, Name: k.Name},
		Email:     k.Email,
		Groups:    strings.Join(k.Groups, ","),
	}
	if k.ExpiresAt != nil {
		cl.Expiry = jwt.NewNumericDate(*k.ExpiresAt)
	}
	if k.Scopes != nil {
		scope := strings.Join(k.Scopes, " ")
		cl.Scope = &scope
	}
	return m.signer.Sign(cl)
}

func checkMint(k MintRequest) error {
	switch {
	case !ValidJTI(k.JTI):
		return errors.New("jti is not ak_ and 32 hex digits")
	case !ident.ValidPrincipalID(k.Subject):
		return errors.New("subject is not a valid principal id")
	case k.EntityType == EntityServiceAccount && !ident.IsServiceAccount(k.Subject):
		return errors.New("a SERVICE_ACCOUNT key's subject must be service-account:<id>")
	case k.EntityType == EntityUser && ident.Reserved(k.Subject):
		return errors.New("a USER key's subject must not use a reserved prefix")
	case k.EntityType != EntityUser && k.EntityType != EntityServiceAccount:
		return fmt.Errorf("entity type %q is not USER or SERVICE_ACCOUNT", k.EntityType)
	case k.IssuedAt.IsZero():
		return errors.New("issued-at time missing")
	case k.ExpiresAt != nil && !k.ExpiresAt.After(k.IssuedAt):
		return errors.New("expiry is not after the issued-at time")
	}
	for _, g := range k.Groups {
		if strings.Contains(g, ",") {
			return errors.New("a group contains a comma")
		}
	}
	for _, s := range k.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\n") {
			return errors.New("a scope is empty or contains white space")
		}
	}
	return nil
}

// NewJTI returns a new key id: "ak_" and 32 random hex digits.
func NewJTI() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("accesskey: random jti: %w", err)
	}
	return "ak_" + hex.EncodeToString(b[:]), nil
}

// Policy holds the configured lifetime rules of keys.
type Policy struct {
	// IssueFormat is auth.access_keys.issue_format (jwt).
	IssueFormat string
	// DefaultExpiresIn and MaxExpiresIn are the default and maximum
	// lifetimes; nil: none (MaxExpiresIn nil: unlimited).
	DefaultExpiresIn, MaxExpiresIn *time.Duration
	// DefaultGracePeriod and MaxGracePeriod are a rotation's default and
	// maximum grace periods.
	DefaultGracePeriod, MaxGracePeriod time.Duration
}

// PolicyError is a request the policy refuses (HTTP 400).
type PolicyError struct{ Detail string }

func (e *PolicyError) Error() string { return e.Detail }

// NewPolicy reads the auth.access_keys lifetime keys.
func NewPolicy(cfg *config.Config) Policy {
	ak := cfg.Auth.AccessKeys
	secs := func(n *int) *time.Duration {
		if n == nil {
			return nil
		}
		d := time.Duration(*n) * time.Second
		return &d
	}
	return Policy{IssueFormat: ak.IssueFormat, DefaultExpiresIn: secs(ak.DefaultExpiresInSeconds), MaxExpiresIn: secs(ak.MaxExpiresInSeconds),
		DefaultGracePeriod: time.Duration(ak.RotationGracePeriodSeconds) * time.Second,
		MaxGracePeriod:     time.Duration(ak.MaxRotationGracePeriodSeconds) * time.Second}
}

// ExpiresIn is the lifetime of a new key. requested is expires_in_seconds
// when given as a number; requestedNull says it was given as null.
// Omitted: the default (nil when there is none). Null: no expiry, allowed
// only when there is no maximum. A number must be ≥ 1 and ≤ the maximum.
// Refusals are *PolicyError.
func (p Policy) ExpiresIn(requested *int, requestedNull bool) (*time.Duration, error) {
	switch {
	case requestedNull:
		if p.MaxExpiresIn != nil {
			return nil, &PolicyError{fmt.Sprintf("expires_in_seconds may not be null: keys expire after at most %d seconds",
				int64(p.MaxExpiresIn.Seconds()))}
		}
		return nil, nil
	case requested == nil:
		if p.DefaultExpiresIn == nil {
			return nil, nil
		}
		d := *p.DefaultExpiresIn
		return &d, nil
	case *requested < 1:
		return nil, &PolicyError{fmt.Sprintf("expires_in_seconds must be at least 1, got %d", *requested)}
	case p.MaxExpiresIn != nil && int64(*requested) > int64(*p.MaxExpiresIn/time.Second):
		return nil, &PolicyError{fmt.Sprintf("expires_in_seconds must be at most %d, got %d", int64(*p.MaxExpiresIn/time.Second), *requested)}
	case int64(*requested) > maxSeconds:
		return nil, &PolicyError{fmt.Sprintf("expires_in_seconds must be at most %d, got %d", maxSeconds, *requested)}
	}
	d := time.Duration(*requested) * time.Second
	return &d, nil
}

// maxSeconds is the longest lifetime a time.Duration holds (about 292
// years), the limit of an unlimited maximum.
const maxSeconds = int64(1<<63-1) / int64(time.Second)

// GracePeriod is a rotation's grace period: requested
// (grace_period_seconds) when given, 0 to the maximum; else the default.
// Refusals are *PolicyError.
func (p Policy) GracePeriod(requested *int) (time.Duration, error) {
	if requested == nil {
		return p.DefaultGracePeriod, nil
	}
	if *requested < 0 || int64(*requested) > int64(p.MaxGracePeriod/time.Second) {
		return 0, &PolicyError{fmt.Sprintf("grace_period_seconds must be between 0 and %d, got %d", int64(p.MaxGracePeriod/time.Second), *requested)}
	}
	return time.Duration(*requested) * time.Second, nil
}
