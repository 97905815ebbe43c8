package jwtverify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nmp-project/nmp/internal/authn"
)

// TestSecondTrustedIssuer: an additional issuer's token is verified with
// the primary key set when it holds the kid, else with the issuer's own
// key set, discovered from the issuer.
func TestSecondTrustedIssuer(t *testing.T) {
	primary := newIDP(t, keyRSA())
	second := newIDP(t, keyEd(), keyEC())
	cfg := authConfig(primary.URL())
	cfg.OIDC.AdditionalIssuers = []string{second.URL()}

	t.Run("own key set", func(t *testing.T) {
		h := newHarness(t, cfg)
		p := mustValidate(t, h.v, sign(t, keyEd(), claims(second.URL()), nil))
		if p.ID != "alice" {
			t.Fatalf("principal %+v", p)
		}
		if primary.jwksHits.Load() != 1 || second.discHits.Load() != 1 || second.jwksHits.Load() != 1 {
			t.Fatalf("fetches primary=%d second disc=%d jwks=%d, want 1/1/1",
				primary.jwksHits.Load(), second.discHits.Load(), second.jwksHits.Load())
		}
		mustValidate(t, h.v, sign(t, keyEC(), claims(second.URL()), nil))
		if second.jwksHits.Load() != 1 {
			t.Fatal("cached second key set refetched")
		}
	})
	t.Run("primary key set first", func(t *testing.T) {
		before := second.hits()
		h := newHarness(t, cfg)
		mustValidate(t, h.v, sign(t, keyRSA(), claims(second.URL()), nil))
		if second.hits() != before {
			t.Fatal("second issuer contacted although the primary set holds the kid")
		}
	})
	t.Run("kid in neither", func(t *testing.T) {
		h := newHarness(t, cfg)
		wantReason(t, h.v, sign(t, keyRSA().with("ghost", "sig"), claims(second.URL()), nil), ReasonUnknownKid)
	})
	t.Run("primary kid with a bad signature does not fall through", func(t *testing.T) {
		h := newHarness(t, cfg)
		wantReason(t, h.v, sign(t, &testKey{kid: "rsa-1", alg: jose.RS256, priv: rsaOther()}, claims(second.URL()), nil), ReasonBadSignature)
	})
	t.Run("second issuer's key does not verify primary-issuer tokens", func(t *testing.T) {
		h := newHarness(t, cfg)
		wantReason(t, h.v, sign(t, keyEd(), claims(primary.URL()), nil), ReasonUnknownKid)
	})
	t.Run("audience checked for the second issuer", func(t *testing.T) {
		h := newHarness(t, cfg)
		wantReason(t, h.v, sign(t, keyEd(), with(claims(second.URL()), "aud", "x"), nil), ReasonAudienceMismatch)
	})
	t.Run("second issuer's discovery must name it", func(t *testing.T) {
		second.set(func(i *idp) { i.issuer = "https://impostor.example.com" })
		defer second.set(func(i *idp) { i.issuer = "" })
		h := newHarness(t, cfg)
		wantReason(t, h.v, sign(t, keyEd(), claims(second.URL()), nil), ReasonJWKSFetchFailed)
	})
}

// TestKeyRotation: the IdP rotates its key; the new kid verifies without
// a restart and the old kid stops verifying.
func TestKeyRotation(t *testing.T) {
	i := newIDP(t, keyRSA())
	h := newHarness(t, authConfig(i.URL()))
	old := sign(t, keyRSA(), claims(i.URL()), nil)
	mustValidate(t, h.v, old)

	i.setKeys(keyEd())
	mustValidate(t, h.v, sign(t, keyEd(), claims(i.URL()), nil))
	if n := i.jwksHits.Load(); n != 2 {
		t.Fatalf("JWKS fetches = %d, want 2", n)
	}
	// The cached old token's key is gone from the refreshed set.
	wantReason(t, h.v, old, ReasonUnknownKid)
	if n := i.jwksHits.Load(); n != 2 {
		t.Fatalf("JWKS fetches = %d, want 2 (refetch inside the interval)", n)
	}
}

// TestUnknownKidBurst: 1,000 concurrent tokens with unknown kids cause at
// most 2 JWKS fetches (the lazy load and one coalesced refetch); inside
// the interval no more; after it, exactly one more.
func TestUnknownKidBurst(t *testing.T) {
	i := newIDP(t, keyEd())
	i.set(func(i *idp) { i.jwksWait = 20 * time.Millisecond })
	h := newHarness(t, authConfig(i.URL()))
	c := claims(i.URL())
	tokens := make([]string, 1000)
	for n, kid := range kids("unknown", len(tokens)) {
		tokens[n] = sign(t, keyEd().with(kid, "sig"), c, nil)
	}
	var wg sync.WaitGroup
	errs := make(chan string, len(tokens))
	for _, tok := range tokens {
		wg.Go(func() {
			_, err := h.v.Validate(context.Background(), tok)
			var it *authn.InvalidToken
			if !errors.As(err, &it) || it.Reason != ReasonUnknownKid {
				errs <- fmt.Sprint(err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for r := range errs {
		t.Fatalf("error %s, want unknown_kid", r)
	}
	if n := i.jwksHits.Load(); n > 2 || n < 1 {
		t.Fatalf("JWKS fetches = %d, want 1..2", n)
	}
	before := i.jwksHits.Load()
	h.clock.Advance(29 * time.Second)
	wantReason(t, h.v, sign(t, keyEd().with("still-unknown", "sig"), c, nil), ReasonUnknownKid)
	if n := i.jwksHits.Load(); n != before {
		t.Fatalf("refetch inside the interval: %d fetches, want %d", n, before)
	}
	h.clock.Advance(2 * time.Second)
	var wg2 sync.WaitGroup
	for _, tok := range tokens[:50] {
		wg2.Go(func() { _, _ = h.v.Validate(context.Background(), tok) })
	}
	wg2.Wait()
	if n := i.jwksHits.Load(); n != before+1 {
		t.Fatalf("after the interval: %d fetches, want %d", n, before+1)
	}
	// The known key still verifies throughout.
	mustValidate(t, h.v, sign(t, keyEd(), c, nil))
}

// TestStaleKeys: the IdP is down after the TTL; the old keys verify for
// 24 h after their last successful fetch, with a warning per attempt,
// then tokens fail closed; the IdP coming back restores service.
func TestStaleKeys(t *testing.T) {
	i := newIDP(t, keyRSA())
	cfg := authConfig(i.URL())
	cfg.OIDC.MaxTokenLifetimeSeconds = 0 // the token lives 72 h
	h := newHarness(t, cfg)
	long := with(claims(i.URL()), "exp", t0.Add(72*time.Hour).Unix())
	tok := sign(t, keyRSA(), long, nil)
	fresh := sign(t, keyRSA(), with(long, "sub", "bob"), nil)
	mustValidate(t, h.v, tok)

	i.set(func(i *idp) { i.down = true })
	h.clock.Advance(time.Hour + time.Second) // past the TTL
	mustValidate(t, h.v, tok)                // cached token, stale keys
	mustValidate(t, h.v, fresh)              // uncached token, stale keys
	if got := strings.Count(h.logs.String(), "reason=jwks_fetch_failed"); got != 1 {
		t.Fatalf("%d fetch warnings, want 1 (one attempt)\n%s", got, h.logs.String())
	}
	if !strings.Contains(h.logs.String(), "previous_keys_in_use=true") {
		t.Fatalf("warning does not say old keys are used:\n%s", h.logs.String())
	}
	h.clock.Advance(time.Minute) // a new attempt, still stale-usable
	mustValidate(t, h.v, fresh)
	if got := strings.Count(h.logs.String(), "reason=jwks_fetch_failed"); got != 2 {
		t.Fatalf("%d fetch warnings, want 2 (warning per attempt)", got)
	}

	h.clock.Advance(23*time.Hour - time.Minute) // 24h + 1s after the last fetch
	wantReason(t, h.v, tok, ReasonJWKSFetchFailed)
	wantReason(t, h.v, fresh, ReasonJWKSFetchFailed)
	if !strings.Contains(h.logs.String(), "previous_keys_in_use=false") {
		t.Fatalf("no fail-closed warning:\n%s", h.logs.String())
	}

	i.set(func(i *idp) { i.down = false })
	h.clock.Advance(31 * time.Second) // past the failure back-off
	mustValidate(t, h.v, fresh)
}

// TestIdPDownAtStart: the first fetch fails closed; retries wait for the
// refetch interval; then the keys load.
func TestIdPDownAtStart(t *testing.T) {
	i := newIDP(t, keyRSA())
	i.set(func(i *idp) { i.status = 503 })
	h := newHarness(t, authConfig(i.URL()))
	tok := sign(t, keyRSA(), with(claims(i.URL()), "exp", t0.Add(2*time.Hour).Unix()), nil)
	wantReason(t, h.v, tok, ReasonJWKSFetchFailed)
	hits := i.hits()
	i.set(func(i *idp) { i.status = 0 })
	for range 20 {
		wantReason(t, h.v, tok, ReasonJWKSFetchFailed)
	}
	if i.hits() != hits {
		t.Fatalf("IdP asked again inside the back-off: %d → %d", hits, i.hits())
	}
	h.clock.Advance(30 * time.Second)
	mustValidate(t, h.v, tok)
}

// TestDiscoveryIssuerMismatch: a discovery document naming another issuer
// is not trusted; its JWKS is never fetched; an error is logged.
func TestDiscoveryIssuerMismatch(t *testing.T) {
	i := newIDP(t, keyRSA())
	i.set(func(i *idp) { i.issuer = i.srv.URL + "/" })
	h := newHarness(t, authConfig(i.URL()))
	wantReason(t, h.v, sign(t, keyRSA(), claims(i.URL()), nil), ReasonJWKSFetchFailed)
	if n := i.jwksHits.Load(); n != 0 {
		t.Fatalf("JWKS fetched %d times", n)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "names another issuer") {
		t.Fatalf("no error logged:\n%s", logs)
	}
}

// TestDiscoveryTrailingSlash: the discovery URL drops the issuer's
// trailing slash; the document's issuer must still match exactly.
func TestDiscoveryTrailingSlash(t *testing.T) {
	i := newIDP(t, keyRSA())
	iss := i.URL() + "/"
	i.set(func(i *idp) { i.issuer = iss })
	h := newHarness(t, authConfig(iss))
	mustValidate(t, h.v, sign(t, keyRSA(), claims(iss), nil))
}

// TestJWKSURIOverride: oidc.jwks_uri skips discovery.
func TestJWKSURIOverride(t *testing.T) {
	i := newIDP(t, keyRSA())
	i.set(func(i *idp) { i.issuer = "https://not-this.example.com" }) // would fail if consulted
	cfg := authConfig(i.URL())
	u := i.URL() + "/jwks"
	cfg.OIDC.JWKSURI = &u
	h := newHarness(t, cfg)
	mustValidate(t, h.v, sign(t, keyRSA(), claims(i.URL()), nil))
	if i.discHits.Load() != 0 || i.jwksHits.Load() != 1 {
		t.Fatalf("discovery %d, jwks %d; want 0, 1", i.discHits.Load(), i.jwksHits.Load())
	}
}

func TestFetchFailures(t *testing.T) {
	tests := []struct {
		name string
		set  func(i *idp)
		cfg  func(i *idp, u *string)
	}{
		{name: "non-200", set: func(i *idp) { i.status = 500 }},
		{name: "404 discovery", cfg: func(i *idp, u *string) { *u = i.URL() + "/missing" }},
		{name: "body over 1 MiB", set: func(i *idp) { i.body = []byte(`{"keys":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`) }},
		{name: "not JSON", set: func(i *idp) { i.body = []byte(`<html>`) }},
		{name: "no keys array", set: func(i *idp) { i.body = []byte(`{"kys":[]}`) }},
		{name: "connection closed", set: func(i *idp) { i.down = true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i := newIDP(t, keyRSA())
			if tc.set != nil {
				i.set(tc.set)
			}
			cfg := authConfig(i.URL())
			if tc.cfg != nil {
				u := ""
				tc.cfg(i, &u)
				cfg.OIDC.JWKSURI = &u
			}
			h := newHarness(t, cfg)
			tok := sign(t, keyRSA(), claims(i.URL()), nil)
			wantReason(t, h.v, tok, ReasonJWKSFetchFailed)
			logs := h.logs.String()
			for _, want := range []string{"level=WARN", "event=security", "reason=jwks_fetch_failed", "url=" + i.URL()} {
				if !strings.Contains(logs, want) {
					t.Fatalf("log lacks %q:\n%s", want, logs)
				}
			}
			assertNoLeak(t, tok, logs)
		})
	}
}

// TestHTTPTimeout: a hanging IdP fails after oidc.http_timeout_seconds.
func TestHTTPTimeout(t *testing.T) {
	i := newIDP(t, keyRSA())
	i.set(func(i *idp) { i.jwksWait = 3 * time.Second })
	cfg := authConfig(i.URL())
	cfg.OIDC.HTTPTimeoutSeconds = 1
	h := newHarness(t, cfg)
	start := time.Now()
	wantReason(t, h.v, sign(t, keyRSA(), claims(i.URL()), nil), ReasonJWKSFetchFailed)
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Fatalf("took %v", d)
	}
}

// TestUnusableKeysSkipped: unparsable, symmetric, short RSA and
// unsupported keys are skipped with a warning; good keys still work; an
// explicitly empty set revokes every key.
func TestUnusableKeysSkipped(t *testing.T) {
	i := newIDP(t)
	good, _ := keyRSA().jwk().MarshalJSON()
	body := `{"keys":[
		{"kty":"RSA","kid":"broken","n":"!!","e":"AQAB"},
		{"kty":"oct","kid":"hmac","k":"c2VjcmV0"},
		{"kty":"RSA","kid":"short","n":"` + shortRSAModulus + `","e":"AQAB"},
		{"kty":"XYZ","kid":"odd"},
		"not an object",
		` + string(good) + `]}`
	i.set(func(i *idp) { i.body = []byte(body) })
	h := newHarness(t, authConfig(i.URL()))
	mustValidate(t, h.v, sign(t, keyRSA(), claims(i.URL()), nil))
	if got := strings.Count(h.logs.String(), "JWKS key skipped"); got != 5 {
		t.Fatalf("%d skip warnings, want 5:\n%s", got, h.logs.String())
	}
	wantReason(t, h.v, signWith(t, jose.HS256, []byte(strings.Repeat("s", 32)), "hmac", claims(i.URL()), nil), ReasonAlgNotAllowed)

	i.set(func(i *idp) { i.body = []byte(`{"keys":[]}`) })
	h.clock.Advance(time.Hour)
	wantReason(t, h.v, sign(t, keyRSA(), with(claims(i.URL()), "sub", "bob"), nil), ReasonUnknownKid)
}

// shortRSAModulus is a 1024-bit modulus (base64url), below the 2048 floor.
var shortRSAModulus = func() string {
	b := make([]byte, 128)
	for n := range b {
		b[n] = 0xC5
	}
	return b64raw(b)
}()

// TestNoKidNoCandidate: a token without kid and no key of a fitting type
// is an unknown key.
func TestNoKidNoCandidate(t *testing.T) {
	i := newIDP(t, keyEd())
	h := newHarness(t, authConfig(i.URL()))
	wantReason(t, h.v, sign(t, &testKey{alg: jose.RS256, priv: rsaPriv()}, claims(i.URL()), nil), ReasonUnknownKid)
}

func TestRedirectPolicy(t *testing.T) {
	req := func(u string) *http.Request { r, _ := http.NewRequest(http.MethodGet, u, nil); return r }
	tests := []struct {
		name    string
		from    string
		to      string
		hops    int
		wantErr bool
	}{
		{name: "https to https", from: "https://idp/a", to: "https://idp/b", hops: 1},
		{name: "http to http", from: "http://127.0.0.1/a", to: "http://127.0.0.1/b", hops: 1},
		{name: "https to http refused", from: "https://idp/a", to: "http://idp/b", hops: 1, wantErr: true},
		{name: "too many", from: "https://idp/a", to: "https://idp/b", hops: 5, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			via := make([]*http.Request, tc.hops)
			for n := range via {
				via[n] = req(tc.from)
			}
			if err := noDowngrade(req(tc.to), via); (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}

type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestWithHTTPClient: the injected client carries the IdP calls.
func TestWithHTTPClient(t *testing.T) {
	i := newIDP(t, keyRSA())
	ct := &countingTransport{}
	h := newHarness(t, authConfig(i.URL()), WithHTTPClient(&http.Client{Transport: ct}))
	mustValidate(t, h.v, sign(t, keyRSA(), claims(i.URL()), nil))
	if ct.n.Load() != 2 {
		t.Fatalf("%d requests through the injected client, want 2", ct.n.Load())
	}
}
