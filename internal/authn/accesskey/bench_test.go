package accesskey

import (
	"context"
	"crypto/sha256"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// BenchmarkValidate measures an access key signed with a 2048-bit RS256
// key, the registry answering from a healthy Cache: "first_sight" is the
// full path (parse, signature, claims, token-cache insert; the entry is
// dropped before each run), "repeat" the token-cache path (hash, time
// re-check, registry cache, principal copy).
func BenchmarkValidate(b *testing.B) {
	h := newHarness(b)
	cache := NewCache(h.reg, CacheClock(h.clock.Now))
	cache.SetFeedHealthy(true)
	h.v.registry = cache
	cur, _, _ := rsaKeys()
	tok := signClaims(b, cur, jose.RS256, testKid, baseClaims(h.clock.Now()))
	key := sha256.Sum256([]byte(tok))
	ctx := context.Background()
	if _, err := h.v.Validate(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.Run("first_sight", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.v.tokens.mu.Lock()
			delete(h.v.tokens.m, key)
			h.v.tokens.mu.Unlock()
			if _, err := h.v.Validate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("repeat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.v.Validate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
