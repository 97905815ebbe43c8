// Package introspect validates opaque (non-JWT) access tokens with the
// identity provider's RFC 7662 token introspection endpoint
// (docs/token-validation.md).
//
// The server authenticates to the endpoint as a confidential client with
// HTTP Basic authentication (RFC 7662 §2.1, RFC 6749 §2.3.1). Answers are
// cached by the SHA-256 of the token until the token's exp, at most
// auth.oidc.introspection.cache_ttl_seconds. Calls to the IdP are bounded:
// one in flight per token (concurrent requests with the same token share
// it), at most max_concurrent_requests in flight overall and at most
// max_requests_per_second started (token bucket), so that a flood of
// random tokens cannot hammer the IdP. Whenever the IdP cannot answer
// usably, or the limits are reached, the token is refused with
// *authn.IdPUnavailable (HTTP 503, fail closed).
//
// Neither the token nor the client secret ever appears in an error or a
// log line.
package introspect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/config"
)

// Reasons of refused tokens (security-log sub-reasons).
const (
	ReasonInactive         = "inactive_token"
	ReasonTooLarge         = "too_large"
	ReasonMalformed        = "malformed"
	ReasonUnknownIssuer    = "unknown_issuer"
	ReasonAudienceMismatch = "audience_mismatch"
	ReasonExpired          = "expired"
	ReasonNotYetValid      = "not_yet_valid"
	ReasonIssuedInFuture   = "issued_in_future"
	ReasonNotAccessToken   = "not_access_token"
)

// Reasons of an unavailable IdP (*authn.IdPUnavailable, HTTP 503).
const (
	ReasonFailed      = "introspection_failed"
	ReasonTimeout     = "introspection_timeout"
	ReasonRateLimited = "introspection_rate_limited"
	ReasonCanceled    = "introspection_canceled"
)

const (
	maxTokenSize     = 16 << 10
	defaultCacheSize = 10_000
	// discoveryBackoff: after a failed discovery of the endpoint, requests
	// are refused without asking the IdP again for this long.
	discoveryBackoff = 5 * time.Second
)

// Mapper maps verified claims to a principal with the JWT claims rules
// (jwtverify.Verifier.MapClaims).
type Mapper interface {
	MapClaims(claims map[string]any, iss string) (*authn.Principal, error)
}

// Option configures an Introspector.
type Option func(*options)

type options struct {
	now       func() time.Time
	client    *http.Client
	log       *slog.Logger
	cacheSize int
}

// WithClock injects the clock for time checks, the cache and the rate
// limit (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithHTTPClient sets the HTTP client; each call is still bounded by
// auth.oidc.http_timeout_seconds.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithCacheSize bounds the answer cache (default 10,000 entries).
func WithCacheSize(n int) Option { return func(o *options) { o.cacheSize = n } }

// Introspector validates opaque tokens; it implements
// authn.TokenValidator and is safe for concurrent use.
type Introspector struct {
	now     func() time.Time
	log     *slog.Logger
	client  *http.Client
	timeout time.Duration
	ttl     time.Duration
	leeway  float64

	issuer   string          // primary issuer: discovery base, default iss
	issuers  map[string]bool // accepted iss values
	audience string
	fixedURL string // auth.oidc.introspection_endpoint, else discovered
	clientID string
	secret   string
	mapper   Mapper

	cache  *cache
	sf     singleflight.Group
	sem    chan struct{}
	bucket *bucket

	mu          sync.Mutex
	endpoint    string    // discovered endpoint
	discFailed  time.Time // last failed discovery
	discFailErr error
}

var _ authn.TokenValidator = (*Introspector)(nil)

// ErrNotEnabled is returned by New when auth.oidc.introspection.enabled
// is false.
var ErrNotEnabled = errors.New("introspect: auth.oidc.introspection.enabled is false")

// New builds an Introspector from the auth configuration and reads the
// client secret. It makes no network call.
func New(cfg config.AuthConfig, mapper Mapper, opts ...Option) (*Introspector, error) {
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
	ic := oc.Introspection
	if !ic.Enabled {
		return nil, ErrNotEnabled
	}
	if mapper == nil {
		return nil, errors.New("introspect: a claims mapper is required")
	}
	if oc.Issuer == "" {
		return nil, errors.New("introspect: auth.oidc.issuer is required")
	}
	if ic.ClientID == "" {
		return nil, errors.New("introspect: auth.oidc.introspection.client_id is required")
	}
	secret, insecure, err := ic.ClientSecret()
	if err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	if insecure {
		o.log.Warn("introspection client secret file is accessible by group or others; chmod 600 it",
			"path", *ic.ClientSecretFile)
	}
	in := &Introspector{
		now:      o.now,
		log:      o.log,
		timeout:  seconds(oc.HTTPTimeoutSeconds, 10),
		ttl:      time.Duration(max(ic.CacheTTLSeconds, 0)) * time.Second,
		leeway:   float64(max(cfg.TokenLeewaySeconds, 0)),
		issuer:   oc.Issuer,
		issuers:  map[string]bool{oc.Issuer: true},
		audience: oc.ExpectedAudience(),
		fixedURL: oc.IntrospectionEndpointOverride(),
		clientID: ic.ClientID,
		secret:   secret,
		mapper:   mapper,
		sem:      make(chan struct{}, max(ic.MaxConcurrentRequests, 1)),
		bucket:   newBucket(max(ic.MaxRequestsPerSecond, 1)),
	}
	for _, iss := range oc.AdditionalIssuers {
		in.issuers[iss] = true
	}
	if in.fixedURL != "" {
		if err := checkURL(in.fixedURL); err != nil {
			return nil, fmt.Errorf("introspect: auth.oidc.introspection_endpoint: %w", err)
		}
	}
	in.client = o.client
	if in.client == nil {
		in.client = &http.Client{Timeout: in.timeout, CheckRedirect: noRedirect}
	}
	if o.cacheSize > 0 && in.ttl > 0 {
		in.cache = newCache(o.cacheSize)
	}
	return in, nil
}

// noRedirect: the credentials and the token are posted to the configured
// or discovered endpoint only; a redirect is a failure.
func noRedirect(*http.Request, []*http.Request) error {
	return errors.New("introspection endpoint redirects; configure its final URL")
}

func seconds(n, def int) time.Duration {
	if n <= 0 {
		n = def
	}
	return time.Duration(n) * time.Second
}

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

func refuse(reason, format string, args ...any) *authn.InvalidToken {
	return &authn.InvalidToken{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

func unavailable(reason, format string, args ...any) *authn.IdPUnavailable {
	return &authn.IdPUnavailable{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// result is one introspection outcome, shared by the requests that
// waited for it and cached: a principal, or a refusal.
type result struct {
	p      *authn.Principal
	refuse *authn.InvalidToken
}

// Validate implements authn.TokenValidator. Refusals are
// *authn.InvalidToken (401); an IdP that cannot answer, or the limits on
// calls to it, give *authn.IdPUnavailable (503).
func (in *Introspector) Validate(ctx context.Context, token string) (*authn.Principal, error) {
	if len(token) > maxTokenSize {
		return nil, refuse(ReasonTooLarge, "token exceeds 16 KiB")
	}
	key := sha256.Sum256([]byte(token))
	if in.cache != nil {
		if r, ok := in.cache.get(key, in.now()); ok {
			return r.answer()
		}
	}
	ch := in.sf.DoChan(hex.EncodeToString(key[:]), func() (any, error) {
		// Re-check: a call that just finished may have filled the cache.
		if in.cache != nil {
			if r, ok := in.cache.get(key, in.now()); ok {
				return r, nil
			}
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.timeout)
		defer cancel()
		r, err := in.introspect(cctx, key, token)
		if err != nil {
			return nil, err
		}
		return r, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*result).answer()
	case <-ctx.Done():
		return nil, unavailable(ReasonCanceled, "request ended while waiting for the introspection endpoint")
	}
}

func (r *result) answer() (*authn.Principal, error) {
	if r.refuse != nil {
		return nil, r.refuse
	}
	return clonePrincipal(r.p), nil
}

// introspect asks the IdP about token within the limits and caches a
// definite answer.
func (in *Introspector) introspect(ctx context.Context, key [32]byte, token string) (*result, error) {
	if !in.bucket.take(in.now()) {
		return nil, unavailable(ReasonRateLimited, "introspection rate limit reached (auth.oidc.introspection.max_requests_per_second)")
	}
	select {
	case in.sem <- struct{}{}:
		defer func() { <-in.sem }()
	case <-ctx.Done():
		return nil, unavailable(ReasonRateLimited, "too many introspection requests in flight (auth.oidc.introspection.max_concurrent_requests)")
	}
	endpoint, err := in.endpointURL(ctx)
	if err != nil {
		return nil, err
	}
	claims, err := in.post(ctx, endpoint, token)
	if err != nil {
		return nil, err
	}
	now := in.now()
	r, until := in.evaluate(claims, now)
	if in.cache != nil {
		if u := now.Add(in.ttl); until.IsZero() || u.Before(until) {
			until = u
		}
		if until.After(now) {
			in.cache.put(key, r, until, now)
		}
	}
	return r, nil
}

// endpointURL is the configured endpoint, else the discovery document's
// introspection_endpoint (kept once found).
func (in *Introspector) endpointURL(ctx context.Context) (string, error) {
	if in.fixedURL != "" {
		return in.fixedURL, nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.endpoint != "" {
		return in.endpoint, nil
	}
	now := in.now()
	if !in.discFailed.IsZero() && now.Sub(in.discFailed) < discoveryBackoff {
		return "", unavailable(ReasonFailed, "introspection endpoint unknown: %v", in.discFailErr)
	}
	md, err := authn.FetchProviderMetadata(ctx, in.client, in.issuer)
	if err == nil {
		switch {
		case md.IntrospectionEndpoint == "":
			err = errors.New("the discovery document has no introspection_endpoint; set auth.oidc.introspection_endpoint")
		case checkURL(md.IntrospectionEndpoint) != nil:
			err = errors.New("the discovery document's introspection_endpoint is not an absolute http(s) URL")
		}
	}
	if err != nil {
		in.discFailed, in.discFailErr = now, err
		in.log.Error("introspection endpoint discovery failed", "event", "security", "reason", ReasonFailed,
			"url", authn.DiscoveryURL(in.issuer), "error", err.Error())
		return "", unavailable(ReasonFailed, "introspection endpoint unknown: %v", err)
	}
	in.endpoint = md.IntrospectionEndpoint
	return in.endpoint, nil
}

// post sends the RFC 7662 request and decodes the JSON object answered.
func (in *Introspector) post(ctx context.Context, endpoint, token string) (map[string]any, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, unavailable(ReasonFailed, "bad introspection endpoint URL")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 §2.3.1: client id and secret are form-encoded, then Basic.
	req.SetBasicAuth(url.QueryEscape(in.clientID), url.QueryEscape(in.secret))
	body, _, err := authn.DoIdP(in.client, req)
	if err != nil {
		reason := ReasonFailed
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			reason = ReasonTimeout
		}
		msg := "token introspection failed"
		if strings.Contains(err.Error(), "HTTP status 401") || strings.Contains(err.Error(), "HTTP status 403") {
			msg = "token introspection failed: the IdP refused the server's client credentials (auth.oidc.introspection.client_id and secret)"
		}
		in.log.Warn(msg, "event", "security", "reason", reason, "url", endpoint, "error", scrub(err.Error(), in.secret))
		return nil, unavailable(reason, "introspection endpoint did not answer usably")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		in.log.Warn("token introspection answer is not a JSON object", "event", "security", "reason", ReasonFailed, "url", endpoint)
		return nil, unavailable(ReasonFailed, "introspection answer is not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		in.log.Warn("token introspection answer has trailing data", "event", "security", "reason", ReasonFailed, "url", endpoint)
		return nil, unavailable(ReasonFailed, "introspection answer is not a JSON object")
	}
	if _, ok := claims["active"].(bool); !ok {
		in.log.Warn("token introspection answer has no boolean active member", "event", "security", "reason", ReasonFailed, "url", endpoint)
		return nil, unavailable(ReasonFailed, "introspection answer has no boolean active")
	}
	return claims, nil
}

type timeouter interface{ Timeout() bool }

func isTimeout(err error) bool {
	var t timeouter
	return errors.As(err, &t) && t.Timeout()
}

// scrub removes the secret from a message, should a transport ever echo
// it (none known does).
func scrub(msg, secret string) string {
	if secret == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "[redacted]")
}

// evaluate turns an introspection answer into a result and the time up to
// which it may be cached (zero: no bound from the token).
func (in *Introspector) evaluate(claims map[string]any, now time.Time) (*result, time.Time) {
	if active, _ := claims["active"].(bool); !active {
		return &result{refuse: refuse(ReasonInactive, "the identity provider reports the token inactive")}, time.Time{}
	}
	fail := func(it *authn.InvalidToken) (*result, time.Time) { return &result{refuse: it}, time.Time{} }
	iss := in.issuer
	if raw, ok := claims["iss"]; ok && raw != nil {
		s, ok := raw.(string)
		if !ok || !in.issuers[s] {
			return fail(refuse(ReasonUnknownIssuer, "introspected token's issuer is not trusted"))
		}
		iss = s
	}
	if raw, ok := claims["aud"]; ok && raw != nil && !hasAudience(raw, in.audience) {
		return fail(refuse(ReasonAudienceMismatch, "introspected token's aud does not contain the expected audience"))
	}
	if tt, _ := claims["token_type"].(string); strings.EqualFold(tt, "refresh_token") {
		return fail(refuse(ReasonNotAccessToken, "introspected token is a refresh token"))
	}
	if typ, _ := claims["typ"].(string); strings.EqualFold(typ, "refresh") {
		return fail(refuse(ReasonNotAccessToken, "introspected token is a refresh token"))
	}
	t := unixSeconds(now)
	exp, hasExp, it := numeric(claims, "exp")
	if it != nil {
		return fail(it)
	}
	nbf, hasNbf, it := numeric(claims, "nbf")
	if it != nil {
		return fail(it)
	}
	iat, hasIat, it := numeric(claims, "iat")
	if it != nil {
		return fail(it)
	}
	L := in.leeway
	switch {
	case hasExp && t > exp+L:
		return fail(refuse(ReasonExpired, "token expired"))
	case hasNbf && t < nbf-L:
		return fail(refuse(ReasonNotYetValid, "token not valid yet (nbf)"))
	case hasIat && iat > t+L:
		return fail(refuse(ReasonIssuedInFuture, "token issued in the future (iat)"))
	}
	p, err := in.mapper.MapClaims(claims, iss)
	if err != nil {
		var it *authn.InvalidToken
		if errors.As(err, &it) {
			return fail(it)
		}
		return fail(refuse(ReasonMalformed, "introspected claims not mappable"))
	}
	var until time.Time
	if hasExp {
		until = time.Unix(0, 0).Add(time.Duration(exp * float64(time.Second)))
	}
	return &result{p: p}, until
}

func hasAudience(raw any, want string) bool {
	switch aud := raw.(type) {
	case string:
		return aud == want
	case []any:
		for _, a := range aud {
			if s, ok := a.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// numeric reads a NumericDate member: absent or null → present false.
func numeric(claims map[string]any, name string) (float64, bool, *authn.InvalidToken) {
	raw, ok := claims[name]
	if !ok || raw == nil {
		return 0, false, nil
	}
	n, ok := raw.(json.Number)
	if !ok {
		return 0, false, refuse(ReasonMalformed, "introspected %s is not numeric", name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, refuse(ReasonMalformed, "introspected %s is not a finite number", name)
	}
	return f, true, nil
}

func unixSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

func clonePrincipal(p *authn.Principal) *authn.Principal {
	c := *p
	c.Groups = append([]string(nil), p.Groups...)
	c.Scopes = append([]string(nil), p.Scopes...)
	return &c
}
