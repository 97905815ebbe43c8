package accesskey

import (
	"context"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nmp-project/nmp/internal/authn"
)

// FuzzValidate: arbitrary token strings never panic, every refusal is an
// *authn.InvalidToken without the token in it, and nothing validates
// unless it is one of the tokens signed with the platform's key (the
// corpus seeds); the registry accepts every key, so only the signature
// and claims stand in the way.
func FuzzValidate(f *testing.F) {
	h := newHarness(f)
	cur, _, evil := rsaKeys()
	now := h.clock.Now()
	valid := signClaims(f, cur, jose.RS256, testKid, baseClaims(now))
	signed := map[string]bool{valid: true}
	f.Add(valid)
	f.Add(signClaims(f, evil, jose.RS256, testKid, baseClaims(now)))
	f.Add(signClaims(f, []byte("0123456789abcdef0123456789abcdef"), jose.HS256, testKid, baseClaims(now)))
	parts := strings.Split(valid, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add("eyJhbGciOiJub25lIn0." + parts[1] + ".")
	f.Add(parts[0] + ".e30." + parts[2])
	f.Add("")
	f.Add("...")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := h.v.Validate(context.Background(), tok)
		if err == nil {
			if !signed[tok] {
				t.Fatalf("an unsigned or foreign token validated: %q", tok)
			}
			if p == nil || p.ID != "alice" {
				t.Fatalf("principal %+v", p)
			}
			return
		}
		var it *authn.InvalidToken
		if !errors.As(err, &it) {
			t.Fatalf("error %T %v", err, err)
		}
		if len(tok) > 20 && strings.Contains(err.Error(), tok) {
			t.Fatal("the error holds the token")
		}
	})
}
