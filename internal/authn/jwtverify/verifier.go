// Package jwtverify validates bearer tokens locally, without
// introspection (authn.md "Token validation"): OIDC access tokens signed
// by a configured issuer's keys and, in development, unsigned JWTs.
//
// Parsing and signature checks are done by go-jose; this package decides
// which keys may verify a token and checks the claims itself. Key sets are
// fetched lazily and cached (authn.md "Key sets"), and validated tokens are
// cached by their SHA-256 until they expire, re-checked on every hit
// against the clock and the current key set.
package jwtverify

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/ident"
)

// Reasons of refused tokens (the security-log sub-reason).
const (
	ReasonMalformed          = "malformed"
	ReasonTooLarge           = "too_large"
	ReasonAlgNotAllowed      = "alg_not_allowed"
	ReasonUnsignedNotAllowed = "unsigned_not_allowed"
	ReasonCritHeader         = "crit_header"
	ReasonUnknownIssuer      = "unknown_issuer"
	ReasonBadSignature       = "bad_signature"
	ReasonUnknownKid         = "unknown_kid"
	ReasonExpired            = "expired"
	ReasonNotYetValid        = "not_yet_valid"
	ReasonIssuedInFuture     = "issued_in_future"
	ReasonMissingClaim       = "missing_claim"
	ReasonAudienceMismatch   = "audience_mismatch"
	ReasonInvalidSubject     = "invalid_subject"
	ReasonReservedSubject    = "reserved_subject"
	ReasonTooManyGroups      = "too_many_groups"
	ReasonJWKSFetchFailed    = "jwks_fetch_failed"
	ReasonIDToken            = "id_token_not_accepted"
	ReasonLifetimeExceeded   = "lifetime_exceeded"
)

const (
	maxTokenSize     = 16 << 10
	maxStaleAge      = 24 * time.Hour
	maxGroups        = ident.MaxListItems
	defaultCacheSize = 10_000
	algNone          = "none"
)

// allowedAlgs is the signature allow-list (authn.md step 2).
var allowedAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.PS256, jose.EdDSA,
}

// Option configures a Verifier.
type Option func(*options)

type options struct {
	now       func() time.Time
	client    *http.Client
	log       *slog.Logger
	cacheSize int
}

// WithClock injects the clock used for every time check (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithHTTPClient sets the client for discovery and JWKS requests. Each
// request is still bounded by auth.oidc.http_timeout_seconds.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithCacheSize bounds the validated-token cache (default 10,000 entries;
// 0 disables it).
func WithCacheSize(n int) Option { return func(o *options) { o.cacheSize = n } }

// Verifier validates bearer tokens; it implements authn.TokenValidator
// and is safe for concurrent use.
type Verifier struct {
	now     func() time.Time
	log     *slog.Logger
	client  *http.Client
	timeout time.Duration
	ttl     time.Duration
	minGap  time.Duration
	leeway  float64 // seconds
	// maxLifetime is auth.oidc.max_token_lifetime_seconds; 0 = no limit.
	maxLifetime float64

	unsigned     bool
	audience     string
	subjectClaim string
	emailClaim   string
	groupsClaim  string
	scopePrefix  string

	// issuers maps each trusted `iss` to the key sets tried in order:
	// the primary set, then (additional issuers) the issuer's own.
	issuers map[string][]*keySet
	cache   *tokenCache

	// warned holds the (issuer, claim) pairs whose absence was logged.
	warned      sync.Map
	warnedCount atomic.Int64
}

var _ authn.TokenValidator = (*Verifier)(nil)

// ErrNotConfigured is returned by New when neither OIDC nor unsigned
// tokens are enabled: there is nothing to validate against.
var ErrNotConfigured = errors.New("jwtverify: neither auth.oidc.enabled nor auth.allow_unsigned_jwt is set")

// New builds a Verifier from the auth configuration. It makes no network
// call: key sets are fetched on first use, so the server starts without
// the IdP.
func New(cfg config.AuthConfig, opts ...Option) (*Verifier, error) {
	o := options{now: time.Now, log: slog.Default(), cacheSize: defaultCacheSize}
	for _, opt := range opts {
		opt(&o)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	oc := cfg.OIDC
	if !oc.Enabled && !cfg.AllowUnsignedJWT {
		return nil, ErrNotConfigured
	}
	v := &Verifier{
		now:          o.now,
		log:          o.log,
		timeout:      seconds(oc.HTTPTimeoutSeconds, 10),
		ttl:          seconds(oc.JWKSCacheTTLSeconds, 3600),
		minGap:       seconds(oc.JWKSRefetchMinIntervalSeconds, 1),
		leeway:       float64(max(cfg.TokenLeewaySeconds, 0)),
		maxLifetime:  float64(max(oc.MaxTokenLifetimeSeconds, 0)),
		unsigned:     cfg.AllowUnsignedJWT,
		subjectClaim: orDefault(oc.SubjectClaim, "sub"),
		emailClaim:   orDefault(oc.EmailClaim, "email"),
		groupsClaim:  orDefault(oc.GroupsClaim, "groups"),
		issuers:      map[string][]*keySet{},
	}
	if oc.ScopePrefix != nil {
		v.scopePrefix = *oc.ScopePrefix
	}
	v.client = o.client
	if v.client == nil {
		v.client = authn.NewIdPClient(v.timeout, authn.NoDowngrade)
	}
	if o.cacheSize > 0 {
		v.cache = newTokenCache(o.cacheSize)
	}
	if oc.Enabled {
		if oc.Issuer == "" {
			return nil, errors.New("jwtverify: auth.oidc.issuer is required")
		}
		if v.audience = oc.ExpectedAudience(); v.audience == "" {
			return nil, errors.New("jwtverify: auth.oidc.audience or auth.oidc.client_id is required")
		}
		if oc.Audience == nil || *oc.Audience == "" {
			v.log.Warn("auth.oidc.audience is unset: bearer tokens are checked against auth.oidc.client_id, the audience of the ID tokens "+
				"the IdP issues to the CLI; ID tokens are refused by their markers only. Set auth.oidc.audience to the audience of "+
				"the access tokens issued for this API", "client_id", oc.ClientID)
		}
		primary := &keySet{v: v, issuer: oc.Issuer}
		if oc.JWKSURI != nil && *oc.JWKSURI != "" {
			if err := checkURL(*oc.JWKSURI); err != nil {
				return nil, fmt.Errorf("jwtverify: auth.oidc.jwks_uri: %w", err)
			}
			primary.jwksURI = *oc.JWKSURI
		} else if err := checkURL(oc.Issuer); err != nil {
			return nil, fmt.Errorf("jwtverify: auth.oidc.issuer: %w", err)
		}
		v.issuers[oc.Issuer] = []*keySet{primary}
		for _, iss := range oc.AdditionalIssuers {
			if iss == "" || v.issuers[iss] != nil {
				continue
			}
			if err := checkURL(iss); err != nil {
				return nil, fmt.Errorf("jwtverify: auth.oidc.additional_issuers: %w", err)
			}
			v.issuers[iss] = []*keySet{primary, {v: v, issuer: iss}}
		}
	}
	return v, nil
}

func seconds(n, def int) time.Duration {
	if n <= 0 {
		n = def
	}
	return time.Duration(n) * time.Second
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkURL accepts absolute http(s) URLs.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be an absolute http(s) URL")
	}
	return nil
}

func reject(reason, format string, args ...any) *authn.InvalidToken {
	return &authn.InvalidToken{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// rejectClaim is reject naming the missing or offending claim.
func rejectClaim(reason, claim, format string, args ...any) *authn.InvalidToken {
	it := reject(reason, format, args...)
	it.Claim = claim
	return it
}

// addFacts records the refused token's safe facts (iss and aud as sent,
// kid, typ) for the security log, each bounded.
func addFacts(it *authn.InvalidToken, h header, claims map[string]any) {
	it.KeyID, it.Type = bound(h.kid), bound(h.typ)
	if claims == nil {
		return
	}
	if iss, ok := claims["iss"].(string); ok {
		it.Issuer = bound(iss)
	}
	switch aud := claims["aud"].(type) {
	case string:
		it.Audience = []string{bound(aud)}
	case []any:
		for i, a := range aud {
			if s, ok := a.(string); ok && i < maxLoggedAudiences {
				it.Audience = append(it.Audience, bound(s))
			}
		}
	}
}

const maxLoggedAudiences = 5

// bound shortens an untrusted value for the log (no quoting: slog
// quotes) and drops control characters.
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

// Validate implements authn.TokenValidator. Every refusal is an
// *authn.InvalidToken whose Detail never holds the token or a part of it
// other than iss, kid, alg or sub.
func (v *Verifier) Validate(ctx context.Context, token string) (*authn.Principal, error) {
	p, it := v.validate(ctx, token)
	if it != nil {
		return nil, it
	}
	return p, nil
}

func (v *Verifier) validate(ctx context.Context, token string) (_ *authn.Principal, refused *authn.InvalidToken) {
	var (
		hdr        header
		unverified map[string]any
	)
	defer func() {
		if refused != nil {
			addFacts(refused, hdr, unverified)
		}
	}()
	// Step 1: size and shape.
	if len(token) > maxTokenSize {
		return nil, reject(ReasonTooLarge, "token exceeds 16 KiB")
	}
	var key [32]byte
	if v.cache != nil {
		key = sha256.Sum256([]byte(token))
		if p, it, ok := v.cached(ctx, key); ok {
			return p, it
		}
	}
	parts, it := splitToken(token)
	if it != nil {
		return nil, it
	}
	hdr, it = parseHeader(parts[0])
	if it != nil {
		return nil, it
	}
	// Step 2: algorithm and critical headers.
	if hdr.alg == algNone {
		if !v.unsigned {
			return nil, reject(ReasonUnsignedNotAllowed, "unsigned tokens are not accepted")
		}
		if hdr.crit {
			return nil, reject(ReasonCritHeader, "crit header not supported")
		}
		return v.validateUnsigned(hdr, parts, &unverified)
	}
	if !algAllowed(hdr.alg) {
		return nil, reject(ReasonAlgNotAllowed, "alg %s not allowed", clip(hdr.alg))
	}
	if hdr.crit {
		return nil, reject(ReasonCritHeader, "crit header not supported")
	}
	// Step 3: the unverified issuer picks the key sets; no network
	// call for an unknown one.
	unverified, it = decodeClaims(parts[1])
	if it != nil {
		return nil, it
	}
	iss, it := issuerOf(unverified)
	if it != nil {
		return nil, it
	}
	sets := v.issuers[iss]
	if sets == nil {
		return nil, v.unknownIssuer(iss)
	}
	// Step 4: signature.
	jws, err := jose.ParseSignedCompact(token, allowedAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, reject(ReasonMalformed, "unparsable JWS")
	}
	if sh := jws.Signatures[0].Header; sh.Algorithm != hdr.alg || sh.KeyID != hdr.kid {
		return nil, reject(ReasonMalformed, "ambiguous JOSE header")
	}
	payload, ks, thumb, it := v.verifySignature(ctx, jws, hdr, iss, sets)
	if it != nil {
		return nil, it
	}
	claims, it := decodeClaimBytes(payload)
	if it != nil {
		return nil, it
	}
	if got, _ := claims["iss"].(string); got != iss {
		return nil, reject(ReasonUnknownIssuer, "issuer changed after verification")
	}
	unverified = claims // now verified: the facts come from the signed payload
	// Only access tokens: an ID token, issued to the CLI with the same
	// aud when auth.oidc.audience is unset, must not pass as a bearer
	// token (checked before time and audience, the operator's best hint).
	if sig := idTokenSignal(hdr, claims); sig != "" {
		return nil, reject(ReasonIDToken, "not an access token: %s", sig)
	}
	// Step 5: time claims.
	now := unixSeconds(v.now())
	exp, it := v.checkTimes(claims, now, true)
	if it != nil {
		return nil, it
	}
	// Step 6: audience.
	if it := v.checkAudience(claims); it != nil {
		return nil, it
	}
	// Step 7 and claims mapping.
	p, it := v.principal(claims, iss, false)
	if it != nil {
		return nil, it
	}
	if v.cache != nil {
		v.cache.put(key, &cacheEntry{p: clonePrincipal(p), exp: exp, ks: ks, thumb: thumb}, now-v.leeway)
	}
	return p, nil
}

var _ authn.CachedValidator = (*Verifier)(nil)

// Cached implements authn.CachedValidator: the token cache's answer for a
// token validated before (ok false on a miss, or when it was signed by a
// key no longer in its issuer's key set).
func (v *Verifier) Cached(ctx context.Context, token string) (*authn.Principal, bool, error) {
	if v.cache == nil || len(token) > maxTokenSize {
		return nil, false, nil
	}
	p, it, ok := v.cached(ctx, sha256.Sum256([]byte(token)))
	if it != nil {
		return nil, ok, it
	}
	return p, ok, nil
}

// cached answers from the token cache. ok is false on a miss, or when
// the entry's key is gone from the current key set (the entry is dropped
// and the token fully validated again, giving the precise reason).
func (v *Verifier) cached(ctx context.Context, key [32]byte) (*authn.Principal, *authn.InvalidToken, bool) {
	e := v.cache.get(key)
	if e == nil {
		return nil, nil, false
	}
	if unixSeconds(v.now()) > e.exp+v.leeway {
		v.cache.remove(key)
		return nil, reject(ReasonExpired, "token expired"), true
	}
	snap, err := e.ks.current(ctx)
	if err != nil || !snap.hasThumb(e.thumb) {
		v.cache.remove(key)
		return nil, nil, false
	}
	return clonePrincipal(e.p), nil, true
}

// validateUnsigned checks an `alg: none` token (authn.md "Unsigned
// JWT"): no signature, iss or aud checks; sub and iat required; exp and
// nbf checked when present (exp required with typ at+jwt); ID tokens
// refused as for signed ones. Never cached. The decoded claims are left
// in *decoded for the refusal's facts.
func (v *Verifier) validateUnsigned(hdr header, parts [3]string, decoded *map[string]any) (*authn.Principal, *authn.InvalidToken) {
	if parts[2] != "" {
		return nil, reject(ReasonMalformed, "unsigned token must have an empty signature")
	}
	claims, it := decodeClaims(parts[1])
	if it != nil {
		return nil, it
	}
	*decoded = claims
	if sig := idTokenSignal(hdr, claims); sig != "" {
		return nil, reject(ReasonIDToken, "not an access token: %s", sig)
	}
	if _, it := v.checkTimes(claims, unixSeconds(v.now()), hdr.isAccessTokenJWT()); it != nil {
		return nil, it
	}
	iss, _ := claims["iss"].(string)
	return v.principal(claims, iss, true)
}

// unknownIssuer refuses an untrusted iss, naming the common mistake of
// a trailing-slash difference from a configured issuer.
func (v *Verifier) unknownIssuer(iss string) *authn.InvalidToken {
	for known := range v.issuers {
		if authn.OnlyTrailingSlashDiffers(iss, known) {
			return reject(ReasonUnknownIssuer, "issuer %s not trusted: it differs from the configured issuer %s only by a trailing slash", clip(iss), clip(known))
		}
	}
	return reject(ReasonUnknownIssuer, "issuer %s not trusted", clip(iss))
}

func algAllowed(alg string) bool {
	for _, a := range allowedAlgs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

func unixSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// clip bounds and quotes an attacker-controlled value (iss, alg, kid,
// sub) for messages and logs.
func clip(s string) string {
	if len(s) > 128 {
		s = s[:128] + "…"
	}
	return fmt.Sprintf("%q", s)
}

func clonePrincipal(p *authn.Principal) *authn.Principal {
	c := *p
	c.Groups = append([]string(nil), p.Groups...)
	c.Scopes = append([]string(nil), p.Scopes...)
	return &c
}
