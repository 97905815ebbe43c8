package jwtverify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/nmp-project/nmp/internal/authn"
)

const minRSABits = 2048

// key is one usable public key of a key set.
type key struct {
	kid   string
	alg   string // the JWK's alg, "" if unset
	use   string // the JWK's use, "" if unset
	pub   crypto.PublicKey
	thumb string // RFC 7638 SHA-256 thumbprint: the key's identity
}

// snapshot is an immutable key set as fetched at one time.
type snapshot struct {
	keys      []*key
	byKid     map[string][]*key
	thumbs    map[string]struct{}
	fetchedAt time.Time
	// ttl is how long the set is used: the response's Cache-Control
	// max-age clamped to [min(60 s, jwks_cache_ttl), jwks_cache_ttl],
	// else jwks_cache_ttl. The background refresher fetches it again at
	// half of it.
	ttl time.Duration
}

func (s *snapshot) hasThumb(t string) bool {
	if s == nil {
		return false
	}
	_, ok := s.thumbs[t]
	return ok
}

// keySet is one issuer's JWKS (docs/token-validation.md "Key sets"):
// fetched lazily, used for its TTL, refreshed in the background at half
// the TTL (KeyRefresher), refetched for an unknown kid when the last
// fetch is older than the minimum interval (a request inside the interval
// waits for its end, up to maxKidWait), with concurrent fetches
// coalesced; after a failed fetch the previous keys stay usable up to 24 h
// after their last successful fetch.
type keySet struct {
	v       *Verifier
	issuer  string // discovery base and the discovery document's required issuer
	jwksURI string // fixed JWKS URL (auth.oidc.jwks_uri), else discovered

	snap atomic.Pointer[snapshot]
	sf   singleflight.Group
	// sleep waits before an unknown-kid refetch inside the interval; nil:
	// a timer (tests inject one that advances their clock).
	sleep func(time.Duration)

	mu          sync.Mutex
	lastAttempt time.Time
	lastFailed  bool
}

// fetchMode says why a fetch is asked for.
type fetchMode int

const (
	modeLazy       fetchMode = iota // no keys yet, or past their TTL
	modeUnknownKid                  // a token names a kid the set lacks
	modeBackground                  // the refresher, at half the TTL
)

const (
	// minMaxAge is the lower bound of a JWKS response's max-age.
	minMaxAge = 60 * time.Second
	// maxKidWait: an unknown-kid refetch due within this time is waited
	// for; later ones are refused without a fetch.
	maxKidWait = 2 * time.Second
)

var (
	errRateLimited = errors.New("unknown-kid refetch rate limited")
	errBackoff     = errors.New("previous key-set fetch failed recently")
)

// current returns the key set to verify with: the cached one within the
// TTL, else a fresh fetch, else (fetch failed) the previous keys while
// they are less than 24 h old.
func (ks *keySet) current(ctx context.Context) (*snapshot, error) {
	s := ks.snap.Load()
	if s != nil && ks.v.now().Sub(s.fetchedAt) < s.ttl {
		return s, nil
	}
	s, err := ks.fetch(ctx, modeLazy)
	if err == nil {
		return s, nil
	}
	if s != nil && ks.v.now().Sub(s.fetchedAt) <= maxStaleAge {
		return s, nil
	}
	return nil, err
}

// refetch fetches again for an unknown kid, unless the last fetch is
// more recent than the minimum interval (by more than maxKidWait); it
// returns the (possibly unchanged) set.
func (ks *keySet) refetch(ctx context.Context) *snapshot {
	s, err := ks.fetch(ctx, modeUnknownKid)
	if err != nil && s != nil && ks.v.now().Sub(s.fetchedAt) > maxStaleAge {
		return nil
	}
	return s
}

// fetch runs (or joins) the key set's single in-flight fetch. The leader
// decides under the lock whether a network fetch is due.
func (ks *keySet) fetch(ctx context.Context, mode fetchMode) (*snapshot, error) {
	ch := ks.sf.DoChan("fetch", func() (any, error) {
		return ks.doFetch(context.WithoutCancel(ctx), mode)
	})
	select {
	case r := <-ch:
		s, _ := r.Val.(*snapshot)
		return s, r.Err
	case <-ctx.Done():
		return ks.snap.Load(), ctx.Err()
	}
}

func (ks *keySet) doFetch(ctx context.Context, mode fetchMode) (*snapshot, error) {
	ks.mu.Lock()
	now := ks.v.now()
	cur := ks.snap.Load()
	due := cur == nil || now.Sub(cur.fetchedAt) >= cur.ttl
	if mode == modeBackground && cur != nil && now.Sub(cur.fetchedAt) >= cur.ttl/2 {
		due = true
	}
	switch {
	case !due && mode != modeUnknownKid: // another caller refreshed it meanwhile
		ks.mu.Unlock()
		return cur, nil
	case ks.lastFailed && now.Sub(ks.lastAttempt) < ks.v.minGap:
		// A failing IdP is asked at most once per interval.
		ks.mu.Unlock()
		return cur, errBackoff
	case !due && now.Sub(ks.lastAttempt) < ks.v.minGap:
		// Unknown kid, fetched within the interval: wait for its end if
		// near (a key published just after the last fetch), else refuse.
		// Callers meanwhile join this call, so it stays one fetch per
		// interval.
		wait := ks.v.minGap - now.Sub(ks.lastAttempt)
		if wait > maxKidWait {
			ks.mu.Unlock()
			return cur, errRateLimited
		}
		ks.mu.Unlock()
		ks.wait(ctx, wait)
		ks.mu.Lock()
		now = ks.v.now()
	}
	ks.lastAttempt = now
	ks.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, ks.v.timeout)
	defer cancel()
	s, where, err := ks.download(ctx)

	ks.mu.Lock()
	defer ks.mu.Unlock()
	if err != nil {
		ks.lastFailed = true
		stale := cur != nil && ks.v.now().Sub(cur.fetchedAt) <= maxStaleAge
		attrs := []any{"event", "security", "reason", ReasonJWKSFetchFailed, "url", where,
			"issuer", ks.issuer, "error", err.Error(), "previous_keys_in_use", stale}
		if cur != nil {
			attrs = append(attrs, "previous_keys_age", ks.v.now().Sub(cur.fetchedAt).Round(time.Second).String())
		}
		ks.v.log.Warn("JWKS fetch failed", attrs...)
		return cur, err
	}
	ks.lastFailed = false
	ks.snap.Store(s)
	return s, nil
}

// wait sleeps d (or until ctx ends).
func (ks *keySet) wait(ctx context.Context, d time.Duration) {
	if ks.sleep != nil {
		ks.sleep(d)
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// download discovers the JWKS URL if needed and fetches the key set. It
// returns the URL it failed on for the log line.
func (ks *keySet) download(ctx context.Context) (*snapshot, string, error) {
	jwksURL := ks.jwksURI
	if jwksURL == "" {
		disc := authn.DiscoveryURL(ks.issuer)
		md, err := authn.FetchProviderMetadata(ctx, ks.v.client, ks.issuer)
		if errors.Is(err, authn.ErrIssuerMismatch) {
			ks.v.log.Error("OIDC discovery document names another issuer; its keys are not used",
				"url", disc, "configured_issuer", ks.issuer, "document_issuer", clip(md.Issuer))
		}
		if err != nil {
			return nil, disc, err
		}
		if err := checkURL(md.JWKSURI); err != nil {
			return nil, disc, fmt.Errorf("discovery jwks_uri: %w", err)
		}
		jwksURL = md.JWKSURI
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return nil, jwksURL, err
	}
	body, hdr, err := authn.DoIdP(ks.v.client, req)
	if err != nil {
		return nil, jwksURL, err
	}
	s, err := ks.parseJWKS(body, jwksURL)
	if err != nil {
		return nil, jwksURL, err
	}
	s.ttl = effectiveTTL(hdr.Values("Cache-Control"), ks.v.ttl)
	return s, jwksURL, nil
}

// effectiveTTL is the Cache-Control max-age (no-cache, no-store: 0)
// clamped to [min(60 s, limit), limit]; limit without one.
func effectiveTTL(cacheControl []string, limit time.Duration) time.Duration {
	age := time.Duration(-1)
	for _, h := range cacheControl {
		for _, d := range strings.Split(h, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			if v, ok := strings.CutPrefix(d, "max-age="); ok {
				if n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64); err == nil && n >= 0 {
					age = time.Duration(min(n, 1<<31)) * time.Second
				}
			} else if d == "no-cache" || d == "no-store" {
				age = 0
			}
		}
	}
	if age < 0 {
		return limit
	}
	return min(max(age, min(minMaxAge, limit)), limit)
}

// parseJWKS keeps the usable public keys; keys that do not parse, are
// symmetric, private-only material aside, or too weak are skipped with a
// warning. A document without a "keys" array is a failure; an empty
// array is the IdP's statement that no key is valid.
func (ks *keySet) parseJWKS(body []byte, where string) (*snapshot, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errors.New("JWKS is not valid JSON")
	}
	if doc.Keys == nil {
		return nil, errors.New(`JWKS has no "keys" array`)
	}
	s := &snapshot{byKid: map[string][]*key{}, thumbs: map[string]struct{}{}}
	skip := func(i int, kid, why string) {
		ks.v.log.Warn("JWKS key skipped", "url", where, "issuer", ks.issuer, "index", i, "kid", clip(kid), "why", why)
	}
	for i, raw := range doc.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			skip(i, "", "unparsable: "+err.Error())
			continue
		}
		if !jwk.IsPublic() {
			jwk = jwk.Public()
		}
		if !jwk.Valid() {
			skip(i, jwk.KeyID, "invalid or symmetric key")
			continue
		}
		switch pub := jwk.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < minRSABits {
				skip(i, jwk.KeyID, "RSA key shorter than 2048 bits")
				continue
			}
		case *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			skip(i, jwk.KeyID, "unsupported key type")
			continue
		}
		tp, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			skip(i, jwk.KeyID, "no thumbprint")
			continue
		}
		k := &key{kid: jwk.KeyID, alg: jwk.Algorithm, use: jwk.Use, pub: jwk.Key, thumb: string(tp)}
		s.keys = append(s.keys, k)
		s.byKid[k.kid] = append(s.byKid[k.kid], k)
		s.thumbs[k.thumb] = struct{}{}
	}
	s.fetchedAt = ks.v.now()
	s.ttl = ks.v.ttl
	return s, nil
}

// usable reports whether k may verify a signature made with alg: use, if
// set, is "sig"; alg, if set, equals the header's; kty (and curve) fit.
func (k *key) usable(alg string) bool {
	if k.use != "" && k.use != "sig" {
		return false
	}
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return alg == "ES256" && pub.Curve == elliptic.P256() || alg == "ES384" && pub.Curve == elliptic.P384()
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

type outcome int

const (
	verified outcome = iota
	noKey            // no key with the kid (no kid: no candidate key)
	failed           // candidates, but none verified or none usable
)

// try verifies jws with the snapshot's keys matching the header.
func try(jws *jose.JSONWebSignature, h header, s *snapshot) ([]byte, *key, outcome) {
	if s == nil {
		return nil, nil, noKey
	}
	var cands []*key
	if h.kid != "" {
		cands = s.byKid[h.kid]
		if len(cands) == 0 {
			return nil, nil, noKey
		}
	} else {
		for _, k := range s.keys {
			if k.usable(h.alg) {
				cands = append(cands, k)
			}
		}
		if len(cands) == 0 {
			return nil, nil, noKey
		}
	}
	for _, k := range cands {
		if !k.usable(h.alg) {
			continue
		}
		if payload, err := jws.Verify(k.pub); err == nil {
			return payload, k, verified
		}
	}
	return nil, nil, failed
}

// verifySignature applies step 4 over the issuer's key sets in order.
// For an additional issuer the primary set is tried first and the
// issuer's own set only when the kid is missing there (or, without kid,
// no primary key verifies); the unknown-kid refetch applies to the last
// set tried.
func (v *Verifier) verifySignature(ctx context.Context, jws *jose.JSONWebSignature, h header, iss string, sets []*keySet) ([]byte, *keySet, string, *authn.InvalidToken) {
	for i, ks := range sets {
		last := i == len(sets)-1
		s, err := ks.current(ctx)
		if err != nil {
			continue // unavailable: the next set, else jwks_fetch_failed
		}
		payload, k, out := try(jws, h, s)
		if out == noKey && last {
			if s2 := ks.refetch(ctx); s2 != nil && s2 != s {
				payload, k, out = try(jws, h, s2)
			}
		}
		switch {
		case out == verified:
			return payload, ks, k.thumb, nil
		case out == failed && (h.kid != "" || last):
			return nil, nil, "", reject(ReasonBadSignature, "signature not verified (alg %s, kid %s, iss %s)", clip(h.alg), clip(h.kid), clip(iss))
		case out == noKey && last:
			return nil, nil, "", reject(ReasonUnknownKid, "no key for kid %s (iss %s)", clip(h.kid), clip(iss))
		}
	}
	return nil, nil, "", reject(ReasonJWKSFetchFailed, "key set for iss %s unavailable", clip(iss))
}

// KeyRefresher refreshes the verifier's loaded key sets in the background
// at half their TTL, so that a key removed at the IdP stops verifying
// within half the TTL and new keys are known before tokens need them. It
// is a lifecycle component (Name, Run). Sets never used are not fetched:
// the first token still loads them.
type KeyRefresher struct {
	v     *Verifier
	every time.Duration
}

// KeyRefresher returns the background refresher of v's key sets; nil when
// v verifies no signed tokens (unsigned tokens only).
func (v *Verifier) KeyRefresher() *KeyRefresher {
	if len(v.issuers) == 0 {
		return nil
	}
	return &KeyRefresher{v: v, every: time.Second}
}

// Name implements lifecycle.Component.
func (r *KeyRefresher) Name() string { return "JWKS refresher" }

// Run checks every second (a comparison of timestamps, no network) which
// loaded key sets are past half their TTL and fetches those again, until
// ctx ends. A failed refresh is logged by the fetch and leaves the
// previous keys in place (usable up to 24 h after their last fetch).
func (r *KeyRefresher) Run(ctx context.Context) error {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			r.refreshDue(ctx)
		}
	}
}

// refreshDue refreshes, one after the other, the loaded key sets past
// half their TTL.
func (r *KeyRefresher) refreshDue(ctx context.Context) {
	for _, ks := range r.v.keySets() {
		if ctx.Err() != nil {
			return
		}
		s := ks.snap.Load()
		if s == nil || r.v.now().Sub(s.fetchedAt) < s.ttl/2 {
			continue
		}
		_, _ = ks.fetch(ctx, modeBackground)
	}
}

// keySets lists v's distinct key sets in a stable order.
func (v *Verifier) keySets() []*keySet {
	seen := map[*keySet]bool{}
	var out []*keySet
	for _, iss := range slices.Sorted(maps.Keys(v.issuers)) {
		for _, ks := range v.issuers[iss] {
			if !seen[ks] {
				seen[ks] = true
				out = append(out, ks)
			}
		}
	}
	return out
}
