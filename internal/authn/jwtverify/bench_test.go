package jwtverify

import (
	"context"
	"crypto/sha256"
	"testing"
)

// BenchmarkValidateRS256 measures a 2048-bit RS256 access token: "miss"
// is the full path (parse, signature, claims, cache insert; the entry is
// dropped before each run), "hit" the cached path (hash, expiry and
// key-presence re-check, principal copy).
func BenchmarkValidateRS256(b *testing.B) {
	i := newIDP(b, keyRSA())
	tok := sign(b, keyRSA(), claims(i.URL()), nil)
	key := sha256.Sum256([]byte(tok))
	ctx := context.Background()
	b.Run("miss", func(b *testing.B) {
		h := newHarness(b, authConfig(i.URL()))
		mustValidate(b, h.v, tok) // load the key set
		b.ReportAllocs()
		for b.Loop() {
			h.v.cache.remove(key)
			if _, err := h.v.Validate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hit", func(b *testing.B) {
		h := newHarness(b, authConfig(i.URL()))
		mustValidate(b, h.v, tok)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.v.Validate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
