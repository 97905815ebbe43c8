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
	"github.com/nmp-project/nmp/internal/config"
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
// a restart and the old kid stops verifying, with one refetch per interval.
func TestKeyRotation(t *testing.T) {
	i := newIDP(t, keyRSA())
	h := newHarness(t, authConfig(i.URL()))
	sleeps := fakeSleep(h)
	old := sign(t, keyRSA(), claims(i.URL()), nil)
	mustValidate(t, h.v, old)

	i.setKeys(keyEd())
	mustValidate(t, h.v, sign(t, keyEd(), claims(i.URL()), nil))
	if n := i.jwksHits.Load(); n != 2 {
		t.Fatalf("JWKS fetches = %d, want 2", n)
	}
	// The cached old token's key is gone from the refreshed set; its kid
	// is unknown and asks for one more fetch, an interval later.
	wantReason(t, h.v, old, ReasonUnknownKid)
	if n, w := i.jwksHits.Load(), sleeps.total(); n != 3 || w != 2*time.Second {
		t.Fatalf("JWKS fetches = %d after waiting %v, want 3 after 2s (one per interval)", n, w)
	}
}

// sleeper records the waits of unknown-kid refetches and advances the
// fake clock instead of sleeping.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeper) total() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d time.Duration
	for _, w := range s.waits {
		d += w
	}
	return d
}

// fakeSleep makes h's key sets wait on the fake clock.
func fakeSleep(h *harness) *sleeper {
	s := &sleeper{}
	for _, ks := range h.v.keySets() {
		ks.sleep = func(d time.Duration) {
			s.mu.Lock()
			s.waits = append(s.waits, d)
			s.mu.Unlock()
			h.clock.Advance(d)
		}
	}
	return s
}

// TestUnknownKidBurst: 1,000 concurrent tokens with unknown kids cause at
// most one JWKS fetch per refetch interval (besides the first load),
// measured on the clock the waits advance; the known key verifies
// throughout.
func TestUnknownKidBurst(t *testing.T) {
	i := newIDP(t, keyEd())
	i.set(func(i *idp) { i.jwksWait = 20 * time.Millisecond })
	h := newHarness(t, authConfig(i.URL()))
	sleeps := fakeSleep(h)
	c := claims(i.URL())
	mustValidate(t, h.v, sign(t, keyEd(), c, nil))
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
	refetches := i.jwksHits.Load() - 1
	if elapsed := h.clock.Now().Sub(t0); refetches > int64(elapsed/time.Second) || refetches < 1 {
		t.Fatalf("%d refetches in %v (%d waits), want 1 ≤ n ≤ one per 1 s interval", refetches, elapsed, len(sleeps.waits))
	}
	mustValidate(t, h.v, sign(t, keyEd(), c, nil))
}

// TestUnknownKidLongInterval: with a refetch interval longer than the
// longest wait, an unknown kid inside the interval is refused without a
// fetch; near its end the request waits for it; after it, one fetch.
func TestUnknownKidLongInterval(t *testing.T) {
	i := newIDP(t, keyEd())
	cfg := authConfig(i.URL())
	cfg.OIDC.JWKSRefetchMinIntervalSeconds = 30
	h := newHarness(t, cfg)
	sleeps := fakeSleep(h)
	c := claims(i.URL())
	mustValidate(t, h.v, sign(t, keyEd(), c, nil))
	unknown := sign(t, keyEd().with("still-unknown", "sig"), c, nil)
	h.clock.Advance(27 * time.Second)
	wantReason(t, h.v, unknown, ReasonUnknownKid)
	if n := i.jwksHits.Load(); n != 1 || sleeps.total() != 0 {
		t.Fatalf("%d fetches, waited %v inside the interval; want 1, 0", n, sleeps.total())
	}
	h.clock.Advance(2 * time.Second) // 1 s before the end: waited for
	wantReason(t, h.v, unknown, ReasonUnknownKid)
	if n := i.jwksHits.Load(); n != 2 || sleeps.total() != time.Second {
		t.Fatalf("%d fetches after waiting %v; want 2 after 1s", n, sleeps.total())
	}
}

// TestTwoRotationsOneSecondApart: the IdP publishes a new key and at once
// issues tokens with it, twice within a second and again a second
// later; every fresh token verifies on first use (an unknown kid inside
// the refetch interval waits for its end instead of failing).
func TestTwoRotationsOneSecondApart(t *testing.T) {
	i := newIDP(t, keyRSA())
	h := newHarness(t, authConfig(i.URL()))
	fakeSleep(h)
	mustValidate(t, h.v, sign(t, keyRSA(), claims(i.URL()), nil))
	steps := []struct {
		after time.Duration
		key   *testKey
	}{
		{0, keyEd()},
		{300 * time.Millisecond, keyEC()},
		{time.Second, keyRSAAlt()},
	}
	var published []*testKey
	for n, st := range steps {
		h.clock.Advance(st.after)
		published = append(published, st.key)
		i.setKeys(published...)
		c := with(claims(i.URL()), "sub", fmt.Sprintf("fresh-%d", n), "iat", h.clock.Now().Unix())
		mustValidate(t, h.v, sign(t, st.key, c, nil))
	}
}

// TestBackgroundRefreshRemovesKey: a key removed at the IdP stops
// verifying once the background refresher runs at half the TTL, even for
// a cached token; before that it is still trusted.
func TestBackgroundRefreshRemovesKey(t *testing.T) {
	i := newIDP(t, keyRSA(), keyEd())
	h := newHarness(t, authConfig(i.URL()))
	r := h.v.KeyRefresher()
	long := with(claims(i.URL()), "exp", t0.Add(20*time.Hour).Unix()) // within the 24 h lifetime limit
	tok := sign(t, keyRSA(), long, nil)
	mustValidate(t, h.v, tok)
	i.setKeys(keyEd()) // the IdP drops rsa-1

	h.clock.Advance(30*time.Minute - time.Second)
	r.refreshDue(context.Background())
	if n := i.jwksHits.Load(); n != 1 {
		t.Fatalf("refreshed before half the TTL: %d fetches", n)
	}
	mustValidate(t, h.v, tok)

	h.clock.Advance(time.Second)
	r.refreshDue(context.Background())
	if n := i.jwksHits.Load(); n != 2 {
		t.Fatalf("%d fetches at half the TTL, want 2", n)
	}
	hits := i.jwksHits.Load()
	wantReason(t, h.v, tok, ReasonUnknownKid)
	mustValidate(t, h.v, sign(t, keyEd(), long, nil))
	if i.jwksHits.Load() > hits+1 {
		t.Fatalf("more than one refetch for the removed kid")
	}
}

// TestBackgroundRefreshFailureKeepsKeys: a failed background refresh
// logs a warning and keeps the keys; a later one succeeds.
func TestBackgroundRefreshFailureKeepsKeys(t *testing.T) {
	i := newIDP(t, keyRSA())
	h := newHarness(t, authConfig(i.URL()))
	r := h.v.KeyRefresher()
	long := with(claims(i.URL()), "exp", t0.Add(20*time.Hour).Unix()) // within the 24 h lifetime limit
	mustValidate(t, h.v, sign(t, keyRSA(), long, nil))
	i.set(func(i *idp) { i.status = 503 })
	h.clock.Advance(30 * time.Minute)
	r.refreshDue(context.Background())
	if !strings.Contains(h.logs.String(), "reason=jwks_fetch_failed") {
		t.Fatalf("no warning:\n%s", h.logs.String())
	}
	mustValidate(t, h.v, sign(t, keyRSA(), with(long, "sub", "bob"), nil))
	i.set(func(i *idp) { i.status = 0 })
	h.clock.Advance(time.Second)
	r.refreshDue(context.Background())
	if n := i.jwksHits.Load(); n != 2 { // the failed attempt ended at discovery
		t.Fatalf("%d key-set downloads, want 2", n)
	}
}

// TestNeverUsedSetNotFetched: the refresher does not load key sets no
// token has needed (the server starts without the IdP).
func TestNeverUsedSetNotFetched(t *testing.T) {
	i := newIDP(t, keyRSA())
	h := newHarness(t, authConfig(i.URL()))
	h.clock.Advance(48 * time.Hour)
	h.v.KeyRefresher().refreshDue(context.Background())
	if i.hits() != 0 {
		t.Fatalf("%d IdP requests", i.hits())
	}
}

// TestCacheControlMaxAge: the JWKS response's max-age, clamped to
// [60 s, jwks_cache_ttl_seconds], sets when the refresher fetches again
// (at half of it) and how long the set is used.
func TestCacheControlMaxAge(t *testing.T) {
	tests := []struct {
		header string
		ttl    time.Duration
	}{
		{"public, max-age=600", 10 * time.Minute},
		{"max-age=5", time.Minute},
		{"no-store", time.Minute},
		{"max-age=999999", time.Hour},
		{"", time.Hour},
		{"max-age=junk", time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.header, func(t *testing.T) {
			i := newIDP(t, keyRSA())
			inner := i.srv.Config.Handler
			i.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/jwks" && tc.header != "" {
					w.Header().Set("Cache-Control", tc.header)
				}
				inner.ServeHTTP(w, r)
			})
			h := newHarness(t, authConfig(i.URL()))
			r := h.v.KeyRefresher()
			long := with(claims(i.URL()), "exp", t0.Add(20*time.Hour).Unix()) // within the 24 h lifetime limit
			mustValidate(t, h.v, sign(t, keyRSA(), long, nil))
			h.clock.Advance(tc.ttl/2 - time.Second)
			r.refreshDue(context.Background())
			if n := i.jwksHits.Load(); n != 1 {
				t.Fatalf("refreshed before %v: %d fetches", tc.ttl/2, n)
			}
			h.clock.Advance(time.Second)
			r.refreshDue(context.Background())
			if n := i.jwksHits.Load(); n != 2 {
				t.Fatalf("not refreshed at %v: %d fetches", tc.ttl/2, n)
			}
		})
	}
}

func TestEffectiveTTL(t *testing.T) {
	tests := []struct {
		cc    []string
		limit time.Duration
		want  time.Duration
	}{
		{nil, time.Hour, time.Hour},
		{[]string{"max-age=120"}, time.Hour, 2 * time.Minute},
		{[]string{"private", "Max-Age=120"}, time.Hour, 2 * time.Minute},
		{[]string{`max-age="300"`}, time.Hour, 5 * time.Minute},
		{[]string{"max-age=0"}, time.Hour, time.Minute},
		{[]string{"no-cache"}, time.Hour, time.Minute},
		{[]string{"max-age=-5"}, time.Hour, time.Hour},
		{[]string{"max-age=99999999999999999999"}, time.Hour, time.Hour},
		{[]string{"max-age=7200"}, time.Hour, time.Hour},
		{[]string{"max-age=5"}, 30 * time.Second, 30 * time.Second},
	}
	for _, tc := range tests {
		if got := effectiveTTL(tc.cc, tc.limit); got != tc.want {
			t.Errorf("effectiveTTL(%q, %v) = %v, want %v", tc.cc, tc.limit, got, tc.want)
		}
	}
}

// TestKeyRefresherRunStops: Run refreshes on its ticker and returns nil
// promptly when stopped.
func TestKeyRefresherRunStops(t *testing.T) {
	i := newIDP(t, keyRSA())
	h := newHarness(t, authConfig(i.URL()))
	r := h.v.KeyRefresher()
	r.every = 5 * time.Millisecond
	mustValidate(t, h.v, sign(t, keyRSA(), claims(i.URL()), nil))
	h.clock.Advance(31 * time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.After(5 * time.Second)
	for i.jwksHits.Load() < 2 {
		select {
		case <-deadline:
			t.Fatal("Run did not refresh")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	if r.Name() == "" {
		t.Fatal("no name")
	}
	if unsignedOnly := newHarness(t, func() config.AuthConfig {
		c := config.Default().Auth
		c.Enabled, c.AllowUnsignedJWT = true, true
		return c
	}()); unsignedOnly.v.KeyRefresher() != nil {
		t.Fatal("refresher without key sets")
	}
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
			if err := authn.NoDowngrade(req(tc.to), via); (err != nil) != tc.wantErr {
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
