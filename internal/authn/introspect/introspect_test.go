package introspect

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authn"
)

// TestActiveToken: an active answer becomes the principal with the JWT
// claims rules (subject, email, groups, scopes); the endpoint comes from
// discovery and the IdP checked the Basic credentials.
func TestActiveToken(t *testing.T) {
	i := newIDP(t)
	i.issue("opaque-alice", answer(i.URL()))
	h := newHarness(t, authConfig(i))
	p := h.want(t, "opaque-alice", "ok")
	if p.ID != "alice" || p.Email != "alice@example.com" || !slices.Equal(p.Groups, []string{"eng", "ops"}) ||
		!slices.Equal(p.Scopes, []string{"openid", "platform:read"}) {
		t.Fatalf("principal %+v", p)
	}
	if i.hits.Load() != 1 || i.discHits.Load() != 1 || i.badAuth.Load() != 0 {
		t.Fatalf("introspections %d, discoveries %d, refused auth %d; want 1, 1, 0", i.hits.Load(), i.discHits.Load(), i.badAuth.Load())
	}
}

// TestAnswers: refusals derived from the answer (401), with leeway on the
// time members; iss and aud only checked when present.
func TestAnswers(t *testing.T) {
	i := newIDP(t)
	base := answer(i.URL())
	tests := []struct {
		name   string
		answer map[string]any // nil: the IdP does not know the token
		want   string
	}{
		{"inactive", nil, ReasonInactive},
		{"expired", with(base, "exp", t0.Add(-31*time.Second).Unix()), ReasonExpired},
		{"expired within leeway", with(base, "exp", t0.Add(-29*time.Second).Unix()), "ok"},
		{"not yet valid", with(base, "nbf", t0.Add(31*time.Second).Unix()), ReasonNotYetValid},
		{"issued in the future", with(base, "iat", t0.Add(31*time.Second).Unix()), ReasonIssuedInFuture},
		{"exp not numeric", with(base, "exp", "soon"), ReasonMalformed},
		{"wrong issuer", with(base, "iss", "https://evil.example.com"), ReasonUnknownIssuer},
		{"issuer not a string", with(base, "iss", 7), ReasonUnknownIssuer},
		{"no issuer", with(base, "iss", nil), "ok"},
		{"wrong audience", with(base, "aud", "other-api"), ReasonAudienceMismatch},
		{"audience in a list", with(base, "aud", []string{"x", "nmp-cli"}), "ok"},
		{"audience list without it", with(base, "aud", []string{"x", "y"}), ReasonAudienceMismatch},
		{"no audience", with(base, "aud", nil), "ok"},
		{"no exp", with(base, "exp", nil), "ok"},
		{"refresh token", with(base, "token_type", "refresh_token"), ReasonNotAccessToken},
		{"no subject", with(base, "sub", nil), "missing_claim"},
		{"reserved subject", with(base, "sub", "service:ci"), "reserved_subject"},
	}
	for n, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := fmt.Sprintf("opaque-%d", n)
			if tc.answer != nil {
				i.issue(tok, tc.answer)
			}
			h := newHarness(t, authConfig(i))
			h.want(t, tok, tc.want)
		})
	}
}

// TestAdditionalIssuer: an additional issuer is accepted as iss.
func TestAdditionalIssuer(t *testing.T) {
	i := newIDP(t)
	cfg := authConfig(i)
	cfg.OIDC.AdditionalIssuers = []string{"https://sts.example.com/tenant/"}
	i.issue("tok", with(answer(i.URL()), "iss", "https://sts.example.com/tenant/"))
	newHarness(t, cfg).want(t, "tok", "ok")
}

// TestIdPUnavailable: down, 5xx, unparsable or incomplete answers, a
// refused client and a missing endpoint fail closed with IdPUnavailable
// (503), never with a principal.
func TestIdPUnavailable(t *testing.T) {
	tests := []struct {
		name string
		set  func(i *idp)
		cfg  func(c *configT)
		want string
	}{
		{name: "connection closed", set: func(i *idp) { i.down = true }, want: "503:" + ReasonFailed},
		{name: "500", set: func(i *idp) { i.status = 500 }, want: "503:" + ReasonFailed},
		{name: "503", set: func(i *idp) { i.status = 503 }, want: "503:" + ReasonFailed},
		{name: "not JSON", set: func(i *idp) { i.body = "<html>" }, want: "503:" + ReasonFailed},
		{name: "JSON array", set: func(i *idp) { i.body = `[{"active":true}]` }, want: "503:" + ReasonFailed},
		{name: "active not boolean", set: func(i *idp) { i.body = `{"active":"true","sub":"alice"}` }, want: "503:" + ReasonFailed},
		{name: "trailing data", set: func(i *idp) { i.body = `{"active":true,"sub":"alice"} x` }, want: "503:" + ReasonFailed},
		{name: "no endpoint in discovery", set: func(i *idp) { i.noEP = true }, want: "503:" + ReasonFailed},
		{name: "wrong client secret", cfg: func(c *configT) { s := "wrong"; c.OIDC.Introspection.ClientSecretValue = &s }, want: "503:" + ReasonFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i := newIDP(t)
			i.issue("tok", answer(i.URL()))
			if tc.set != nil {
				i.set(tc.set)
			}
			cfg := authConfig(i)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			h := newHarness(t, cfg)
			h.want(t, "tok", tc.want)
			logs := h.logs.String()
			if !strings.Contains(logs, "reason="+ReasonFailed) {
				t.Fatalf("no log line with the reason:\n%s", logs)
			}
			if strings.Contains(logs, "tok") && strings.Contains(logs, `"tok"`) {
				t.Fatalf("token in logs:\n%s", logs)
			}
		})
	}
}

// TestIdPUnavailableNotCached: a failure is not remembered; the IdP
// coming back restores service at once.
func TestIdPUnavailableNotCached(t *testing.T) {
	i := newIDP(t)
	i.issue("tok", answer(i.URL()))
	i.set(func(i *idp) { i.status = 502 })
	h := newHarness(t, authConfig(i))
	h.want(t, "tok", "503:"+ReasonFailed)
	i.set(func(i *idp) { i.status = 0 })
	h.want(t, "tok", "ok")
}

// TestSlowIdP: an IdP slower than auth.oidc.http_timeout_seconds gives
// 503 introspection_timeout after the timeout.
func TestSlowIdP(t *testing.T) {
	i := newIDP(t)
	i.issue("tok", answer(i.URL()))
	i.set(func(i *idp) { i.block = make(chan struct{}) }) // never released
	cfg := authConfig(i)
	cfg.OIDC.HTTPTimeoutSeconds = 1
	h := newHarness(t, cfg)
	start := time.Now()
	h.want(t, "tok", "503:"+ReasonTimeout)
	if d := time.Since(start); d < time.Second || d > 3*time.Second {
		t.Fatalf("took %v, want about the 1 s timeout", d)
	}
}

// TestCallerGivesUp: a caller whose context ends while waiting gets 503
// at once; the shared call goes on for the others.
func TestCallerGivesUp(t *testing.T) {
	i := newIDP(t)
	i.issue("tok", answer(i.URL()))
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	i.set(func(i *idp) { i.block, i.entered = release, entered })
	h := newHarness(t, authConfig(i))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := h.in.Validate(ctx, "tok"); done <- err }()
	<-entered
	cancel()
	if got := outcome(t, <-done); got != "503:"+ReasonCanceled {
		t.Fatalf("outcome %q", got)
	}
	close(release)
	h.want(t, "tok", "ok")
}

// TestCacheHit: N requests (concurrent and sequential) with one token
// cause a single introspection.
func TestCacheHit(t *testing.T) {
	i := newIDP(t)
	i.issue("tok", answer(i.URL()))
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	i.set(func(i *idp) { i.block, i.entered = release, entered })
	h := newHarness(t, authConfig(i))
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 50 {
		wg.Go(func() {
			if _, err := h.validate("tok"); err != nil {
				errs <- err
			}
		})
	}
	<-entered // the one call is in flight; the others join it or wait
	close(release)
	wg.Wait()
	for range 50 {
		if _, err := h.validate("tok"); err != nil {
			t.Fatal(err)
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := i.hits.Load(); n != 1 {
		t.Fatalf("%d introspections for 100 requests, want 1", n)
	}
}

// TestCacheBoundedByTTL: an answer is reused up to cache_ttl_seconds, so
// a revocation at the IdP takes effect after at most the TTL.
func TestCacheBoundedByTTL(t *testing.T) {
	i := newIDP(t)
	i.issue("tok", answer(i.URL()))
	cfg := authConfig(i)
	cfg.OIDC.Introspection.CacheTTLSeconds = 60
	h := newHarness(t, cfg)
	h.want(t, "tok", "ok")
	i.revoke("tok")
	h.clock.Advance(59 * time.Second)
	h.want(t, "tok", "ok") // cached
	if i.hits.Load() != 1 {
		t.Fatalf("%d introspections inside the TTL", i.hits.Load())
	}
	h.clock.Advance(time.Second)
	h.want(t, "tok", ReasonInactive)
	if i.hits.Load() != 2 {
		t.Fatalf("%d introspections, want 2", i.hits.Load())
	}
}

// TestCacheBoundedByExp: an answer is not reused past the token's exp,
// even inside the TTL.
func TestCacheBoundedByExp(t *testing.T) {
	i := newIDP(t)
	i.issue("tok", with(answer(i.URL()), "exp", t0.Add(10*time.Second).Unix()))
	h := newHarness(t, authConfig(i))
	h.want(t, "tok", "ok")
	i.revoke("tok") // as the IdP would after exp
	h.clock.Advance(9 * time.Second)
	h.want(t, "tok", "ok")
	h.clock.Advance(time.Second)
	h.want(t, "tok", ReasonInactive)
	if i.hits.Load() != 2 {
		t.Fatalf("%d introspections, want 2", i.hits.Load())
	}
}

// TestCacheDisabled: cache_ttl_seconds 0 introspects every time.
func TestCacheDisabled(t *testing.T) {
	i := newIDP(t)
	i.issue("tok", answer(i.URL()))
	cfg := authConfig(i)
	cfg.OIDC.Introspection.CacheTTLSeconds = 0
	h := newHarness(t, cfg)
	for range 3 {
		h.want(t, "tok", "ok")
	}
	if i.hits.Load() != 3 {
		t.Fatalf("%d introspections, want 3", i.hits.Load())
	}
}

// TestCachedPrincipalIsACopy: callers cannot alter the cached principal.
func TestCachedPrincipalIsACopy(t *testing.T) {
	i := newIDP(t)
	i.issue("tok", answer(i.URL()))
	h := newHarness(t, authConfig(i))
	p := h.want(t, "tok", "ok")
	p.Groups[0] = "admins"
	if p2 := h.want(t, "tok", "ok"); p2.Groups[0] != "eng" {
		t.Fatalf("cached principal altered: %+v", p2)
	}
}

// TestFloodOfRandomTokens: 1,000 distinct unknown tokens at once start at
// most max_requests_per_second introspections; the rest get 503
// introspection_rate_limited without reaching the IdP. A second later
// the budget is back; a cached token keeps working during the flood.
func TestFloodOfRandomTokens(t *testing.T) {
	i := newIDP(t)
	i.issue("good", answer(i.URL()))
	cfg := authConfig(i)
	cfg.OIDC.Introspection.MaxRequestsPerSecond = 5
	h := newHarness(t, cfg)
	h.want(t, "good", "ok")
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	for n := range 1000 {
		wg.Go(func() {
			_, err := h.validate(fmt.Sprintf("random-%d", n))
			mu.Lock()
			counts[outcome(t, err)]++
			mu.Unlock()
		})
	}
	h.want(t, "good", "ok")
	wg.Wait()
	if n := i.hits.Load(); n > 5 {
		t.Fatalf("%d introspections during the flood, want ≤ 5 (1 + 4 left in the bucket)", n)
	}
	if counts["503:"+ReasonRateLimited] < 995 || counts[ReasonInactive]+counts["503:"+ReasonRateLimited] != 1000 {
		t.Fatalf("outcomes %v", counts)
	}
	h.clock.Advance(time.Second)
	before := i.hits.Load()
	for n := range 10 {
		_, _ = h.validate(fmt.Sprintf("later-%d", n))
	}
	if got := i.hits.Load() - before; got != 5 {
		t.Fatalf("%d introspections a second later, want 5", got)
	}
}

// TestConcurrencyBounded: at most max_concurrent_requests introspections
// are in flight; the others wait for a slot.
func TestConcurrencyBounded(t *testing.T) {
	i := newIDP(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	i.set(func(i *idp) { i.block, i.entered = release, entered })
	cfg := authConfig(i)
	cfg.OIDC.Introspection.MaxConcurrentRequests = 2
	h := newHarness(t, cfg)
	var wg sync.WaitGroup
	for n := range 6 {
		wg.Go(func() { h.want(t, fmt.Sprintf("t-%d", n), ReasonInactive) })
	}
	<-entered
	<-entered
	select {
	case <-entered:
		t.Fatal("a third introspection started while two were in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	wg.Wait()
	if m := i.maxInflight(); m != 2 {
		t.Fatalf("max in flight %d, want 2", m)
	}
	if n := i.hits.Load(); n != 6 {
		t.Fatalf("%d introspections, want 6", n)
	}
}

// TestConfiguredEndpoint: auth.oidc.introspection_endpoint skips
// discovery.
func TestConfiguredEndpoint(t *testing.T) {
	i := newIDP(t)
	i.issue("tok", answer(i.URL()))
	cfg := authConfig(i)
	ep := i.URL() + "/introspect"
	cfg.OIDC.IntrospectionEndpoint = &ep
	h := newHarness(t, cfg)
	h.want(t, "tok", "ok")
	if i.discHits.Load() != 0 {
		t.Fatal("discovery consulted although the endpoint is configured")
	}
}

// TestDiscoveryBackoff: a failed discovery is not retried for a few
// seconds.
func TestDiscoveryBackoff(t *testing.T) {
	i := newIDP(t)
	i.issue("tok", answer(i.URL()))
	i.set(func(i *idp) { i.noEP = true })
	h := newHarness(t, authConfig(i))
	h.want(t, "tok", "503:"+ReasonFailed)
	i.set(func(i *idp) { i.noEP = false })
	h.want(t, "tok", "503:"+ReasonFailed)
	if i.discHits.Load() != 1 {
		t.Fatalf("%d discoveries inside the back-off", i.discHits.Load())
	}
	if !strings.Contains(h.logs.String(), "set auth.oidc.introspection_endpoint") {
		t.Fatalf("log does not say how to fix it:\n%s", h.logs.String())
	}
	h.clock.Advance(discoveryBackoff)
	h.want(t, "tok", "ok")
}

// TestSecretFile: the secret is read from a file; a file readable by
// others is used with a warning.
func TestSecretFile(t *testing.T) {
	i := newIDP(t)
	i.issue("tok", answer(i.URL()))
	for _, mode := range []int{0o600, 0o644} {
		t.Run(fmt.Sprintf("%o", mode), func(t *testing.T) {
			cfg := authConfig(i)
			path := writeSecretFile(t, secret+"\n", fsMode(mode))
			cfg.OIDC.Introspection.ClientSecretValue = nil
			cfg.OIDC.Introspection.ClientSecretFile = &path
			h := newHarness(t, cfg)
			h.want(t, "tok", "ok")
			warned := strings.Contains(h.logs.String(), "accessible by group or others")
			if warned != (mode == 0o644) {
				t.Fatalf("mode %o: warned %v\n%s", mode, warned, h.logs.String())
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		cfg := authConfig(i)
		path := "/nonexistent/secret"
		cfg.OIDC.Introspection.ClientSecretValue = nil
		cfg.OIDC.Introspection.ClientSecretFile = &path
		if _, err := New(cfg, nil); err == nil {
			t.Fatal("New accepted a missing secret file")
		}
	})
}

// TestSecretAndTokensNeverLogged: across successes, refusals and every
// failure the secret, its encodings and the tokens stay out of logs and
// errors.
func TestSecretAndTokensNeverLogged(t *testing.T) {
	i := newIDP(t)
	const tok = "opaque-token-ABCDEFGHIJKLMNOP"
	i.issue(tok, answer(i.URL()))
	cfg := authConfig(i)
	cfg.OIDC.HTTPTimeoutSeconds = 1
	h := newHarness(t, cfg)
	var errs []string
	run := func(token string) {
		if _, err := h.validate(token); err != nil {
			errs = append(errs, err.Error())
		}
	}
	run(tok)
	run("unknown-token-QRSTUVWXYZ")
	for _, f := range []func(i *idp){
		func(i *idp) { i.status = 500 },
		func(i *idp) { i.status = 0; i.body = "garbage" },
		func(i *idp) { i.body = ""; i.down = true },
		func(i *idp) { i.down = false; i.block = make(chan struct{}) },
	} {
		i.set(f)
		h.clock.Advance(time.Hour)
		run(tok)
	}
	wrong := secret + "-wrong"
	cfg.OIDC.Introspection.ClientSecretValue = &wrong
	i.set(func(i *idp) { i.block = nil })
	h2 := newHarness(t, cfg)
	if _, err := h2.validate(tok); err != nil {
		errs = append(errs, err.Error())
	}
	all := h.logs.String() + h2.logs.String() + strings.Join(errs, "\n")
	if !strings.Contains(all, "refused the server's client credentials") {
		t.Fatalf("wrong credentials not reported:\n%s", all)
	}
	for _, leak := range []string{secret, "s3cr", wrong, tok, "unknown-token-QRSTUVWXYZ", basic(secret), basic(wrong)} {
		if strings.Contains(all, leak) {
			t.Fatalf("%q leaked:\n%s", leak, all)
		}
	}
}

// TestTooLarge: tokens over 16 KiB are refused without a call.
func TestTooLarge(t *testing.T) {
	i := newIDP(t)
	h := newHarness(t, authConfig(i))
	h.want(t, strings.Repeat("x", 16<<10+1), ReasonTooLarge)
	if i.hits.Load() != 0 {
		t.Fatal("IdP called")
	}
}

func TestNewRequiresEnabled(t *testing.T) {
	i := newIDP(t)
	cfg := authConfig(i)
	cfg.OIDC.Introspection.Enabled = false
	if _, err := New(cfg, nopMapper{}); err != ErrNotEnabled {
		t.Fatalf("err = %v", err)
	}
}

type nopMapper struct{}

func (nopMapper) MapClaims(map[string]any, string) (*authn.Principal, error) {
	return &authn.Principal{ID: "x"}, nil
}
