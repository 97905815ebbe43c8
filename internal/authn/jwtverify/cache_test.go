package jwtverify

import (
	"fmt"
	"testing"
	"time"
)

// TestTokenCacheExpiry: a cached token is refused once the injected clock
// passes exp + leeway, and dropped from the cache.
func TestTokenCacheExpiry(t *testing.T) {
	i := newIDP(t, keyRSA())
	h := newHarness(t, authConfig(i.URL()))
	tok := sign(t, keyRSA(), with(claims(i.URL()), "exp", t0.Add(time.Minute).Unix()), nil)
	mustValidate(t, h.v, tok)
	if h.v.cache.len() != 1 {
		t.Fatal("token not cached")
	}
	h.clock.Advance(time.Minute + 30*time.Second) // exactly exp + L: still valid
	mustValidate(t, h.v, tok)
	h.clock.Advance(time.Second)
	wantReason(t, h.v, tok, ReasonExpired)
	if h.v.cache.len() != 0 {
		t.Fatal("expired token still cached")
	}
	wantReason(t, h.v, tok, ReasonExpired) // and the full path agrees
}

// TestTokenCacheKeyRemoved: once the signing key leaves the JWKS and the
// set is refreshed (TTL), the cached token is refused.
func TestTokenCacheKeyRemoved(t *testing.T) {
	i := newIDP(t, keyRSA(), keyEd())
	h := newHarness(t, authConfig(i.URL()))
	long := with(claims(i.URL()), "exp", t0.Add(10*time.Hour).Unix())
	tok := sign(t, keyRSA(), long, nil)
	mustValidate(t, h.v, tok)

	i.setKeys(keyEd())
	h.clock.Advance(30 * time.Minute)
	mustValidate(t, h.v, tok) // key set not refreshed yet: still valid
	h.clock.Advance(31 * time.Minute)
	wantReason(t, h.v, tok, ReasonUnknownKid)
	if h.v.cache.len() != 0 {
		t.Fatal("token still cached")
	}
}

// TestTokenCacheKeyReplacedUnderSameKid: the IdP publishes different key
// material under the same kid; the cached token no longer validates.
func TestTokenCacheKeyReplacedUnderSameKid(t *testing.T) {
	i := newIDP(t, keyRSA())
	h := newHarness(t, authConfig(i.URL()))
	long := with(claims(i.URL()), "exp", t0.Add(10*time.Hour).Unix())
	tok := sign(t, keyRSA(), long, nil)
	mustValidate(t, h.v, tok)
	i.setKeys(&testKey{kid: "rsa-1", alg: "RS256", priv: rsaOther(), use: "sig"})
	h.clock.Advance(time.Hour)
	wantReason(t, h.v, tok, ReasonBadSignature)
}

// TestTokenCacheReturnsCopies: callers cannot alter cached principals.
func TestTokenCacheReturnsCopies(t *testing.T) {
	i := newIDP(t, keyRSA())
	h := newHarness(t, authConfig(i.URL()))
	tok := sign(t, keyRSA(), claims(i.URL()), nil)
	p := mustValidate(t, h.v, tok)
	p.ID, p.Groups[0] = "mallory", "admins"
	p2 := mustValidate(t, h.v, tok)
	if p2.ID != "alice" || p2.Groups[0] != "eng" {
		t.Fatalf("cache altered through a returned principal: %+v", p2)
	}
}

// TestTokenCacheBounded: the cache never exceeds its size.
func TestTokenCacheBounded(t *testing.T) {
	i := newIDP(t, keyEd())
	h := newHarness(t, authConfig(i.URL()), WithCacheSize(10))
	for n := range 35 {
		mustValidate(t, h.v, sign(t, keyEd(), with(claims(i.URL()), "jti", fmt.Sprint(n)), nil))
		if l := h.v.cache.len(); l > 10 {
			t.Fatalf("cache holds %d entries, max 10", l)
		}
	}
}

// TestTokenCacheDisabled: WithCacheSize(0) validates fully every time.
func TestTokenCacheDisabled(t *testing.T) {
	i := newIDP(t, keyEd())
	h := newHarness(t, authConfig(i.URL()), WithCacheSize(0))
	tok := sign(t, keyEd(), claims(i.URL()), nil)
	mustValidate(t, h.v, tok)
	mustValidate(t, h.v, tok)
	if h.v.cache != nil {
		t.Fatal("cache present")
	}
}

// TestCachedAnswersOnlyValidatedTokens: Cached (what the token router asks
// before it decodes a token) misses for a token never validated and for an
// unsigned one, answers the principal once the token has been validated,
// and the expiry refusal once the clock passes exp + leeway.
func TestCachedAnswersOnlyValidatedTokens(t *testing.T) {
	i := newIDP(t, keyRSA())
	cfg := authConfig(i.URL())
	cfg.AllowUnsignedJWT = true
	h := newHarness(t, cfg)
	tok := sign(t, keyRSA(), with(claims(i.URL()), "exp", t0.Add(time.Minute).Unix()), nil)
	if _, hit, _ := h.v.Cached(t.Context(), tok); hit {
		t.Fatal("a token never validated is answered from the cache")
	}
	want := mustValidate(t, h.v, tok)
	p, hit, err := h.v.Cached(t.Context(), tok)
	if !hit || err != nil || p == nil || p.ID != want.ID {
		t.Fatalf("validated token: %+v hit=%v err=%v, want %+v", p, hit, err, want)
	}
	dev := unsigned(with(claims(i.URL()), "sub", "dev-user"))
	mustValidate(t, h.v, dev)
	if _, hit, _ := h.v.Cached(t.Context(), dev); hit {
		t.Fatal("an unsigned token is answered from the cache")
	}
	h.clock.Advance(time.Minute + 31*time.Second)
	if _, hit, err := h.v.Cached(t.Context(), tok); !hit || reasonOf(t, err) != ReasonExpired {
		t.Fatalf("expired token: hit=%v err=%v, want the expiry refusal", hit, err)
	}
}
