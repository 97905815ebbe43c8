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
}

func (s *snapshot) hasThumb(t string) bool {
	if s == nil {
		return false
	}
	_, ok := s.thumbs[t]
	return ok
}

// keySet is one issuer's JWKS (authn.md "Key sets"): fetched lazily,
// cached for the TTL, refetched for an unknown kid at most once per
// minimum interval, with concurrent fetches coalesced; after a failed
// fetch the previous keys stay usable up to 24 h after their last
// successful fetch.
type keySet struct {
	v       *Verifier
	issuer  string // discovery base and the discovery document's required issuer
	jwksURI string // fixed JWKS URL (auth.oidc.jwks_uri), else discovered

	snap atomic.Pointer[snapshot]
	sf   singleflight.Group

	mu          sync.Mutex
	lastAttempt time.Time
	lastFailed  bool
	lastRefetch time.Time
}

var (
	errRateLimited = errors.New("unknown-kid refetch rate limited")
	errBackoff     = errors.New("previous key-set fetch failed recently")
)

// current returns the key set to verify with: the cached one within the
// TTL, else a fresh fetch, else (fetch failed) the previous keys while
// they are less than 24 h old.
func (ks *keySet) current(ctx context.Context) (*snapshot, error) {
	s := ks.snap.Load()
	if s != nil && ks.v.now().Sub(s.fetchedAt) < ks.v.ttl {
		return s, nil
	}
	s, err := ks.fetch(ctx, false)
	if err == nil {
		return s, nil
	}
	if s != nil && ks.v.now().Sub(s.fetchedAt) <= maxStaleAge {
		return s, nil
	}
	return nil, err
}

// refetch fetches again for an unknown kid, unless a refetch happened
// within the minimum interval; it returns the (possibly unchanged) set.
func (ks *keySet) refetch(ctx context.Context) *snapshot {
	s, err := ks.fetch(ctx, true)
	if err != nil && s != nil && ks.v.now().Sub(s.fetchedAt) > maxStaleAge {
		return nil
	}
	return s
}

// fetch runs (or joins) the key set's single in-flight fetch. The leader
// decides under the lock whether a network fetch is due.
func (ks *keySet) fetch(ctx context.Context, unknownKid bool) (*snapshot, error) {
	ch := ks.sf.DoChan("fetch", func() (any, error) {
		return ks.doFetch(context.WithoutCancel(ctx), unknownKid)
	})
	select {
	case r := <-ch:
		s, _ := r.Val.(*snapshot)
		return s, r.Err
	case <-ctx.Done():
		return ks.snap.Load(), ctx.Err()
	}
}

func (ks *keySet) doFetch(ctx context.Context, unknownKid bool) (*snapshot, error) {
	ks.mu.Lock()
	now := ks.v.now()
	cur := ks.snap.Load()
	due := cur == nil || now.Sub(cur.fetchedAt) >= ks.v.ttl
	switch {
	case !due && !unknownKid: // another caller refreshed it meanwhile
		ks.mu.Unlock()
		return cur, nil
	case ks.lastFailed && now.Sub(ks.lastAttempt) < ks.v.minGap:
		// A failing IdP is asked at most once per interval.
		ks.mu.Unlock()
		return cur, errBackoff
	case !due && !ks.lastRefetch.IsZero() && now.Sub(ks.lastRefetch) < ks.v.minGap:
		ks.mu.Unlock()
		return cur, errRateLimited
	case !due:
		ks.lastRefetch = now
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
	body, err := ks.v.get(ctx, jwksURL)
	if err != nil {
		return nil, jwksURL, err
	}
	s, err := ks.parseJWKS(body, jwksURL)
	if err != nil {
		return nil, jwksURL, err
	}
	return s, jwksURL, nil
}

// get fetches url: 200 only, body at most 1 MiB.
func (v *Verifier) get(ctx context.Context, url string) ([]byte, error) {
	return authn.FetchIdP(ctx, v.client, url)
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
