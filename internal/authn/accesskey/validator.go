package accesskey

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/ident"
)

// Refusal sub-reasons shared with OIDC token validation (the same strings
// as internal/authn/jwtverify).
const (
	reasonMalformed          = "malformed"
	reasonTooLarge           = "too_large"
	reasonAlgNotAllowed      = "alg_not_allowed"
	reasonUnsignedNotAllowed = "unsigned_not_allowed"
	reasonCritHeader         = "crit_header"
	reasonUnknownIssuer      = "unknown_issuer"
	reasonBadSignature       = "bad_signature"
	reasonUnknownKid         = "unknown_kid"
	reasonExpired            = "expired"
	reasonNotYetValid        = "not_yet_valid"
	reasonIssuedInFuture     = "issued_in_future"
	reasonMissingClaim       = "missing_claim"
	reasonAudienceMismatch   = "audience_mismatch"
	reasonInvalidSubject     = "invalid_subject"
	reasonReservedSubject    = "reserved_subject"
	reasonTooManyGroups      = "too_many_groups"
)

const (
	maxTokenSize = 16 << 10
	// DefaultTokenCacheSize bounds the verified-token cache.
	DefaultTokenCacheSize = 10_000
	// TokenCacheTTL bounds how long a verified token is reused without a
	// new signature check (never past its exp).
	TokenCacheTTL = 5 * time.Minute
)

var b64 = base64.RawURLEncoding.Strict()

// KeySource finds the public key of a kid: the current signing key or a
// previous one (signing.Keys).
type KeySource interface {
	PublicKey(kid string) (*rsa.PublicKey, bool)
}

// Option configures a Validator.
type Option func(*options)

type options struct {
	now       func() time.Time
	cacheSize int
}

// WithClock injects the clock of every time check.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithTokenCacheSize bounds the verified-token cache (default
// DefaultTokenCacheSize; 0 disables it).
func WithTokenCacheSize(n int) Option { return func(o *options) { o.cacheSize = n } }

// Validator validates access-key bearer tokens; it implements
// authn.TokenValidator and is safe for concurrent use.
type Validator struct {
	issuer   string
	audience string
	leeway   time.Duration
	keys     KeySource
	registry Registry
	now      func() time.Time
	tokens   *tokenCache // nil: disabled
}

var _ authn.TokenValidator = (*Validator)(nil)

// NewValidator builds a Validator for the configured issuer
// (auth.token_signing.issuer), audience (auth.access_keys.audience) and
// leeway (auth.token_leeway_seconds). reg is asked about every token that
// passes the cryptographic and claim checks; pass a *Cache.
func NewValidator(cfg *config.Config, keys KeySource, reg Registry, opts ...Option) (*Validator, error) {
	o := options{now: time.Now, cacheSize: DefaultTokenCacheSize}
	for _, opt := range opts {
		opt(&o)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if keys == nil || reg == nil {
		return nil, errors.New("accesskey: signing keys and a registry are required")
	}
	if !slices.Contains(cfg.Auth.AccessKeys.AcceptedFormats, "jwt") {
		return nil, errors.New("auth.access_keys.accepted_formats does not include jwt: no access key could be accepted")
	}
	v := &Validator{issuer: cfg.TokenSigningIssuer(), audience: cfg.Auth.AccessKeys.Audience,
		leeway: time.Duration(max(cfg.Auth.TokenLeewaySeconds, 0)) * time.Second, keys: keys, registry: reg, now: o.now}
	if v.issuer == "" || v.audience == "" {
		return nil, errors.New("accesskey: issuer and audience are required")
	}
	if o.cacheSize > 0 {
		v.tokens = newTokenCache(o.cacheSize)
	}
	return v, nil
}

func reject(reason, format string, args ...any) *authn.InvalidToken {
	return &authn.InvalidToken{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

func rejectClaim(reason, claim, format string, args ...any) *authn.InvalidToken {
	it := reject(reason, format, args...)
	it.Claim = claim
	return it
}

// Validate implements authn.TokenValidator. A refusal is an
// *authn.InvalidToken (401); a registry failure an *authn.IdPUnavailable
// (503, fail closed). Neither holds token material.
func (v *Validator) Validate(ctx context.Context, token string) (*authn.Principal, error) {
	if len(token) > maxTokenSize {
		return nil, reject(reasonTooLarge, "token exceeds 16 KiB")
	}
	now := v.now()
	var (
		key [32]byte
		c   *verified
	)
	if v.tokens != nil {
		key = sha256.Sum256([]byte(token))
		c = v.tokens.get(key, now)
	}
	if c == nil {
		var it *authn.InvalidToken
		if c, it = v.verify(token, now); it != nil {
			return nil, it
		}
		if v.tokens != nil {
			v.tokens.put(key, c, now)
		}
	} else if it := v.checkTimes(c, now); it != nil {
		return nil, it // the entry never outlives exp; the leeway check is kept all the same
	}
	if err := v.checkRegistry(ctx, c); err != nil {
		return nil, err
	}
	return c.principal(), nil
}

// verified is a token whose signature and claims passed: what the
// principal is built from, and the times re-checked on cache hits.
type verified struct {
	jti, sub, email string
	groups, scopes  []string
	exp, nbf, iat   *time.Time
	kid, issuer     string
	audience        []string
}

func (c *verified) principal() *authn.Principal {
	return &authn.Principal{ID: c.sub, Email: c.email, Groups: slices.Clone(c.groups), Scopes: slices.Clone(c.scopes),
		TokenID: c.jti, AccessKey: true}
}

// header is the part of the JOSE header checked before go-jose parses the
// token, so that refusals say why.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
}

func (v *Validator) verify(token string, now time.Time) (_ *verified, refused *authn.InvalidToken) {
	var h header
	defer func() {
		if refused != nil {
			refused.KeyID, refused.Type = bound(h.Kid), bound(h.Typ)
			if refused.Issuer == "" {
				refused.Issuer = bound(v.issuer) // routed here by its iss
			}
		}
	}()
	if strings.Count(token, ".") != 2 {
		return nil, reject(reasonMalformed, "token must have three parts")
	}
	// Strict unpadded base64url: one string per token (go-jose would also
	// accept non-canonical trailing bits).
	for part := range strings.SplitSeq(token, ".") {
		if _, err := b64.DecodeString(part); err != nil {
			return nil, reject(reasonMalformed, "parts must be unpadded base64url")
		}
	}
	rawHeader, _, _ := strings.Cut(token, ".")
	hb, _ := b64.DecodeString(rawHeader)
	if json.Unmarshal(hb, &h) != nil {
		return nil, reject(reasonMalformed, "header is not a JSON object")
	}
	switch {
	case strings.EqualFold(h.Alg, "none"):
		return nil, reject(reasonUnsignedNotAllowed, "unsigned tokens are not accepted")
	case h.Alg != string(jose.RS256):
		return nil, reject(reasonAlgNotAllowed, "alg %q not allowed; access keys are RS256", bound(h.Alg))
	case h.Crit != nil:
		return nil, reject(reasonCritHeader, "crit header not supported")
	case strings.HasSuffix(token, "."):
		return nil, reject(reasonMalformed, "empty signature")
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, reject(reasonMalformed, "unparsable JWS")
	}
	if sh := jws.Signatures[0].Header; sh.Algorithm != h.Alg || sh.KeyID != h.Kid {
		return nil, reject(reasonMalformed, "ambiguous JOSE header")
	}
	pub, ok := v.keys.PublicKey(h.Kid)
	if !ok {
		return nil, reject(reasonUnknownKid, "signing key %q is not the platform's current or a previous signing key", bound(h.Kid))
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return nil, reject(reasonBadSignature, "signature does not verify with key %q", bound(h.Kid))
	}
	var cl tokenClaims
	if err := json.Unmarshal(payload, &cl); err != nil {
		return nil, reject(reasonMalformed, "claims do not decode")
	}
	c, it := v.checkClaims(&cl)
	if it != nil {
		it.Issuer, it.Audience = bound(cl.Issuer), boundList(cl.Audience)
		return nil, it
	}
	c.kid = h.Kid
	if it := v.checkTimes(c, now); it != nil {
		return nil, it
	}
	return c, nil
}

// checkClaims checks everything but time: issuer, audience, token type,
// jti, the nmp_access_key claim and the subject; and maps the principal's
// email, groups and scopes.
func (v *Validator) checkClaims(cl *tokenClaims) (*verified, *authn.InvalidToken) {
	switch {
	case cl.Issuer != v.issuer:
		return nil, rejectClaim(reasonUnknownIssuer, "iss", "issuer is not the platform's signing issuer")
	case !slices.Contains([]string(cl.Audience), v.audience):
		return nil, rejectClaim(reasonAudienceMismatch, "aud", "audience does not contain %q", v.audience)
	case cl.TokenType != TokenType:
		return nil, rejectClaim(ReasonInvalidClaim, "nmp_token_type", "nmp_token_type is not %q", TokenType)
	case cl.ID == "":
		return nil, rejectClaim(reasonMissingClaim, "jti", "jti missing")
	case !ValidJTI(cl.ID):
		return nil, rejectClaim(ReasonInvalidClaim, "jti", "jti is not ak_ and 32 hex digits")
	case cl.AccessKey == nil:
		return nil, rejectClaim(reasonMissingClaim, "nmp_access_key", "nmp_access_key missing")
	case cl.AccessKey.Version != ClaimVersion:
		return nil, rejectClaim(ReasonInvalidClaim, "nmp_access_key", "nmp_access_key.version is %d, want %d", cl.AccessKey.Version, ClaimVersion)
	case cl.Subject == "":
		return nil, rejectClaim(reasonMissingClaim, "sub", "sub missing")
	case !ident.ValidPrincipalID(cl.Subject):
		return nil, rejectClaim(reasonInvalidSubject, "sub", "sub is not a valid principal id")
	case cl.IssuedAt == nil:
		return nil, rejectClaim(reasonMissingClaim, "iat", "iat missing")
	}
	switch cl.AccessKey.EntityType {
	case EntityServiceAccount:
		if !ident.IsServiceAccount(cl.Subject) || len(cl.Subject) == len(ident.ServiceAccountPrefix) {
			return nil, rejectClaim(reasonInvalidSubject, "sub", "a SERVICE_ACCOUNT key's sub must be service-account:<id>")
		}
	case EntityUser:
		if ident.Reserved(cl.Subject) {
			return nil, rejectClaim(reasonReservedSubject, "sub", "a USER key's sub must not use a reserved prefix")
		}
	default:
		return nil, rejectClaim(ReasonInvalidClaim, "nmp_access_key", "nmp_access_key.entity_type %q is not USER or SERVICE_ACCOUNT", bound(cl.AccessKey.EntityType))
	}
	c := &verified{jti: cl.ID, sub: cl.Subject, issuer: cl.Issuer, audience: cl.Audience}
	c.exp, c.nbf, c.iat = timeOf(cl.Expiry), timeOf(cl.NotBefore), timeOf(cl.IssuedAt)
	if cl.Email != "" && ident.ValidEmail(cl.Email) {
		c.email = cl.Email
	}
	for g := range strings.SplitSeq(cl.Groups, ",") {
		if g = strings.TrimSpace(g); g != "" && ident.ValidPrincipalID(g) && !ident.Reserved(g) {
			c.groups = append(c.groups, g)
		}
	}
	if len(c.groups) > ident.MaxListItems {
		return nil, rejectClaim(reasonTooManyGroups, "groups", "more than %d groups", ident.MaxListItems)
	}
	if cl.Scope != nil {
		c.scopes = strings.Fields(*cl.Scope)
		if len(c.scopes) > ident.MaxListItems {
			return nil, rejectClaim(ReasonInvalidClaim, "scope", "more than %d scopes", ident.MaxListItems)
		}
	}
	return c, nil
}

func timeOf(d *jwt.NumericDate) *time.Time {
	if d == nil {
		return nil
	}
	t := d.Time()
	return &t
}

// checkTimes applies the leeway L (auth.token_leeway_seconds) as OIDC
// validation does: refused if now > exp + L, now < nbf - L or
// iat > now + L.
func (v *Validator) checkTimes(c *verified, now time.Time) *authn.InvalidToken {
	switch {
	case c.exp != nil && now.After(c.exp.Add(v.leeway)):
		return rejectClaim(reasonExpired, "exp", "token expired")
	case c.nbf != nil && now.Before(c.nbf.Add(-v.leeway)):
		return rejectClaim(reasonNotYetValid, "nbf", "token not valid yet")
	case c.iat != nil && c.iat.After(now.Add(v.leeway)):
		return rejectClaim(reasonIssuedInFuture, "iat", "token issued in the future")
	}
	return nil
}

// registryUnavailableMessage is what the client is told when the registry
// cannot be asked.
const registryUnavailableMessage = "Access key registry unavailable; try again later"

// checkRegistry asks the registry (through its cache) whether the key may
// be used now. A registry failure fails closed.
func (v *Validator) checkRegistry(ctx context.Context, c *verified) error {
	st, err := v.registry.Lookup(ctx, c.jti)
	switch {
	case errors.Is(err, ErrNotFound):
		return v.rejected(c, "access key unknown")
	case err != nil:
		return &authn.IdPUnavailable{Reason: ReasonRegistryUnavailable, Message: registryUnavailableMessage,
			Detail: "access key registry lookup failed: " + bound(err.Error())}
	case st.Principal != "" && st.Principal != c.sub:
		return v.rejected(c, "access key belongs to another principal")
	case !st.Usable:
		return v.rejected(c, describeStatus(st.Status))
	case st.UsableUntil != nil && !v.now().Before(*st.UsableUntil):
		return v.rejected(c, "access key expired")
	}
	return nil
}

func (v *Validator) rejected(c *verified, detail string) *authn.InvalidToken {
	return &authn.InvalidToken{Reason: ReasonRejected, Detail: detail, Issuer: bound(c.issuer), Audience: boundList(c.audience),
		KeyID: bound(c.kid), Type: "JWT"}
}

// describeStatus is the refusal detail of a key the registry says is not
// usable.
func describeStatus(status string) string {
	switch status {
	case StatusRevoked:
		return "access key revoked"
	case StatusSuspended:
		return "access key suspended"
	case StatusExpired:
		return "access key expired"
	case StatusRotating:
		return "access key rotated and its grace period has ended"
	}
	return "access key not usable (status " + bound(status) + ")"
}

// bound shortens an untrusted value for messages and logs and drops
// control characters.
func bound(s string) string {
	if len(s) > 128 {
		s = s[:128] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func boundList(xs []string) []string {
	var out []string
	for i, x := range xs {
		if i == 5 {
			break
		}
		out = append(out, bound(x))
	}
	return out
}
