package jwtverify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/version"
)

// TestHeaderTyp: a missing typ, JWT and at+jwt (any case, with or
// without application/) are access tokens; any other typ is refused as
// not an access token; a non-string typ is malformed.
func TestHeaderTyp(t *testing.T) {
	i := newIDP(t, keyRSA())
	h := newHarness(t, authConfig(i.URL()))
	c := claims(i.URL())
	for _, typ := range []any{nil, "JWT", "jwt", "application/jwt", "at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"} {
		hdr := map[string]any{}
		if typ != nil {
			hdr["typ"] = typ
		}
		tok := signShape(t, keyRSA(), "rsa-1", hdr, with(c, "jti", typ))
		if _, err := h.v.Validate(context.Background(), tok); err != nil {
			t.Errorf("typ %v refused: %v", typ, err)
		}
	}
	for _, typ := range []string{"id+jwt", "ID", "JOSE", "logout+jwt", "dpop+jwt", "secevent+jwt", "application/id_token+jwt"} {
		tok := signShape(t, keyRSA(), "rsa-1", map[string]any{"typ": typ}, c)
		t.Run(typ, func(t *testing.T) { wantReason(t, h.v, tok, ReasonIDToken) })
	}
	wantReason(t, h.v, signShape(t, keyRSA(), "rsa-1", map[string]any{"typ": 1}, c), ReasonMalformed)
}

// TestIDTokenMarkers: each ID-token-only claim and a typ claim "ID"
// refuse the token; typ "Bearer" and auth_time alone do not. The
// unsigned path refuses ID tokens too.
func TestIDTokenMarkers(t *testing.T) {
	i := newIDP(t, keyRSA())
	cfg := authConfig(i.URL())
	cfg.AllowUnsignedJWT = true
	h := newHarness(t, cfg)
	c := claims(i.URL())
	for _, kv := range [][2]any{{"nonce", "abc"}, {"at_hash", "x6pXTlR3DGvTh2p0X9zM4w"}, {"c_hash", "LDktKdoQak3Pk0cnXxCltA"},
		{"s_hash", "1Ew5R3Lk"}, {"typ", "ID"}, {"typ", "id"}} {
		t.Run(kv[0].(string), func(t *testing.T) {
			wantReason(t, h.v, sign(t, keyRSA(), with(c, kv[0], kv[1]), nil), ReasonIDToken)
			wantReason(t, h.v, unsigned(with(c, kv[0], kv[1])), ReasonIDToken)
		})
	}
	mustValidate(t, h.v, sign(t, keyRSA(), with(c, "typ", "Bearer"), nil))
	mustValidate(t, h.v, sign(t, keyRSA(), with(c, "auth_time", t0.Add(-time.Minute).Unix()), nil))
	// The ID-token refusal names the marker and is given before the
	// audience check, the operator's better hint.
	_, err := h.v.Validate(context.Background(), sign(t, keyRSA(), with(c, "nonce", "n", "aud", "other"), nil))
	var it *authn.InvalidToken
	if !errors.As(err, &it) || it.Reason != ReasonIDToken || !strings.Contains(it.Detail, "nonce") {
		t.Fatalf("err %v", err)
	}
}

// TestAtJWT: RFC 9068 access tokens: client_id, scope string, sub the
// client, aud an array; exp and iat required (also unsigned).
func TestAtJWT(t *testing.T) {
	i := newIDP(t, keyRSA())
	cfg := authConfig(i.URL())
	cfg.AllowUnsignedJWT = true
	h := newHarness(t, cfg)
	at := map[string]any{"typ": "at+jwt"}
	c := with(claims(i.URL()), "client_id", "ci-bot", "sub", "ci-bot", "aud", []string{"x", "nmp-cli"},
		"scope", "platform:read platform:write", "email", nil, "groups", nil, "jti", "a1")
	p := mustValidate(t, h.v, signShape(t, keyRSA(), "rsa-1", at, c))
	if p.ID != "ci-bot" || !slices.Equal(p.Scopes, []string{"platform:read", "platform:write"}) {
		t.Fatalf("%+v", p)
	}
	wantReason(t, h.v, signShape(t, keyRSA(), "rsa-1", at, with(c, "exp", nil)), ReasonMissingClaim)
	wantReason(t, h.v, signShape(t, keyRSA(), "rsa-1", at, with(c, "iat", nil)), ReasonMissingClaim)
	unsignedAt := func(c map[string]any) string {
		return b64j(map[string]any{"alg": "none", "typ": "at+jwt"}) + "." + b64j(c) + "."
	}
	wantReason(t, h.v, unsignedAt(with(c, "exp", nil)), ReasonMissingClaim)
	mustValidate(t, h.v, unsigned(with(c, "exp", nil))) // plain unsigned tokens may omit exp
}

// TestLifetimeLimit: exp − iat above auth.oidc.max_token_lifetime_seconds
// is refused, without leeway; 0 turns the limit off.
func TestLifetimeLimit(t *testing.T) {
	i := newIDP(t, keyRSA())
	c := claims(i.URL())
	life := func(d time.Duration) map[string]any { return with(c, "exp", t0.Add(d).Unix(), "jti", d.String()) }

	h := newHarness(t, authConfig(i.URL())) // default 86400, leeway 30
	mustValidate(t, h.v, sign(t, keyRSA(), life(24*time.Hour), nil))
	wantReason(t, h.v, sign(t, keyRSA(), life(24*time.Hour+time.Second), nil), ReasonLifetimeExceeded)
	wantReason(t, h.v, sign(t, keyRSA(), life(365*24*time.Hour), nil), ReasonLifetimeExceeded)

	cfg := authConfig(i.URL())
	cfg.OIDC.MaxTokenLifetimeSeconds = 600
	h = newHarness(t, cfg)
	mustValidate(t, h.v, sign(t, keyRSA(), life(10*time.Minute), nil))
	wantReason(t, h.v, sign(t, keyRSA(), life(10*time.Minute+time.Second), nil), ReasonLifetimeExceeded)

	cfg.OIDC.MaxTokenLifetimeSeconds = 0
	h = newHarness(t, cfg)
	mustValidate(t, h.v, sign(t, keyRSA(), life(10*365*24*time.Hour), nil))

	// Unsigned tokens without exp have no lifetime; with one, it counts.
	cfg = authConfig(i.URL())
	cfg.AllowUnsignedJWT = true
	h = newHarness(t, cfg)
	mustValidate(t, h.v, unsigned(with(c, "exp", nil)))
	wantReason(t, h.v, unsigned(life(48*time.Hour)), ReasonLifetimeExceeded)
}

// TestCheckLifetimeWithoutIat: without iat (not reachable through
// Validate, where iat is required) the remaining lifetime counts, with
// the leeway since now is this server's clock.
func TestCheckLifetimeWithoutIat(t *testing.T) {
	v := &Verifier{maxLifetime: 100, leeway: 30}
	if it := v.checkLifetime(1130, 0, false, 1000); it != nil {
		t.Fatalf("within max + leeway: %v", it)
	}
	if it := v.checkLifetime(1131, 0, false, 1000); it == nil || it.Reason != ReasonLifetimeExceeded {
		t.Fatalf("beyond max + leeway: %v", it)
	}
}

// TestNumericDateBounds: NumericDates must be finite, not negative and
// not beyond 9999-12-31T23:59:59Z.
func TestNumericDateBounds(t *testing.T) {
	i := newIDP(t, keyRSA())
	cfg := authConfig(i.URL())
	cfg.OIDC.MaxTokenLifetimeSeconds = 0
	h := newHarness(t, cfg)
	c := claims(i.URL())
	mustValidate(t, h.v, sign(t, keyRSA(), with(c, "exp", int64(maxNumericDate)), nil))
	for _, tc := range []struct {
		name string
		kv   []any
	}{
		{"exp beyond 9999", []any{"exp", int64(maxNumericDate + 1)}},
		{"exp huge", []any{"exp", 1e300}},
		{"iat negative", []any{"iat", -1}},
		{"nbf negative", []any{"nbf", -5}},
		{"iat beyond 9999", []any{"iat", float64(maxNumericDate) + 0.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.v.Validate(context.Background(), sign(t, keyRSA(), with(c, tc.kv...), nil))
			var it *authn.InvalidToken
			if !errors.As(err, &it) || it.Reason != ReasonMalformed || it.Claim != tc.kv[0] {
				t.Fatalf("err %v (%+v), want malformed naming %s", err, it, tc.kv[0])
			}
		})
	}
	if _, _, it := numeric(map[string]any{"exp": jsonNumber("1e400")}, "exp"); it == nil {
		t.Fatal("non-finite exp accepted")
	}
}

// TestNestedClaims: mapped claims by dotted path; a top-level key with
// dots wins over the path.
func TestNestedClaims(t *testing.T) {
	i := newIDP(t, keyRSA())
	cfg := authConfig(i.URL())
	cfg.OIDC.SubjectClaim = "ext.user.id"
	cfg.OIDC.EmailClaim = "ext.email"
	cfg.OIDC.GroupsClaim = "realm_access.roles"
	h := newHarness(t, cfg)
	c := with(claims(i.URL()), "email", nil, "groups", nil,
		"ext", map[string]any{"email": "bob@example.com", "user": map[string]any{"id": "u-bob"}},
		"realm_access", map[string]any{"roles": []string{"eng", "ops"}})
	p := mustValidate(t, h.v, sign(t, keyRSA(), c, nil))
	if p.ID != "u-bob" || p.Email != "bob@example.com" || !slices.Equal(p.Groups, []string{"eng", "ops"}) {
		t.Fatalf("%+v", p)
	}

	cfg = authConfig(i.URL())
	cfg.OIDC.GroupsClaim = "https://example.com/groups"
	cfg.OIDC.EmailClaim = "a.b"
	h = newHarness(t, cfg)
	c = with(claims(i.URL()), "groups", nil, "https://example.com/groups", []string{"ns"},
		"a.b", "top@example.com", "a", map[string]any{"b": "nested@example.com"})
	p = mustValidate(t, h.v, sign(t, keyRSA(), c, nil))
	if p.Email != "top@example.com" || !slices.Equal(p.Groups, []string{"ns"}) {
		t.Fatalf("%+v", p)
	}
	// A path through a non-object or to null is missing.
	for _, raw := range []map[string]any{{"a": "x"}, {"a": map[string]any{"b": nil}}, {"a": []any{"b"}}} {
		if v, ok := lookupClaim(raw, "a.b"); ok {
			t.Fatalf("lookup in %v = %v", raw, v)
		}
	}
	if _, ok := lookupClaim(map[string]any{"a": map[string]any{"": "x"}}, "a."); ok {
		t.Fatal("empty path segment matched")
	}
}

// TestGroupsString: a string is one group or a comma-separated list;
// spaces never split (a display name is dropped, not split).
func TestGroupsString(t *testing.T) {
	i := newIDP(t, keyRSA())
	h := newHarness(t, authConfig(i.URL()))
	c := claims(i.URL())
	for _, tc := range []struct {
		groups string
		want   []string
	}{
		{"eng", []string{"eng"}},
		{"eng, ops ,,qa", []string{"eng", "ops", "qa"}},
		{"Data Science", nil},
		{"eng,Data Science", []string{"eng"}},
	} {
		p := mustValidate(t, h.v, sign(t, keyRSA(), with(c, "groups", tc.groups, "jti", tc.groups), nil))
		if !slices.Equal(p.Groups, tc.want) {
			t.Errorf("groups %q → %q, want %q", tc.groups, p.Groups, tc.want)
		}
	}
}

// TestMissingClaimWarnedOnce: a configured claim absent from valid
// tokens is logged once per issuer and claim.
func TestMissingClaimWarnedOnce(t *testing.T) {
	i := newIDP(t, keyRSA())
	other := "https://other.example.com/"
	cfg := authConfig(i.URL())
	cfg.OIDC.AdditionalIssuers = []string{other}
	cfg.OIDC.SubjectClaim = "oid"
	cfg.OIDC.EmailClaim = "ext.email"
	h := newHarness(t, cfg)
	for n := range 3 {
		for _, iss := range []string{i.URL(), other} {
			c := with(claims(iss), "jti", iss+string(rune('a'+n)), "groups", nil)
			p := mustValidate(t, h.v, sign(t, keyRSA(), c, nil))
			if p.ID != "alice" || p.Email != "" {
				t.Fatalf("%+v", p)
			}
		}
	}
	logs := h.logs.String()
	for _, claim := range []string{"oid", "ext.email", "groups"} {
		if got := strings.Count(logs, "claim="+claim+" "); got != 2 {
			t.Errorf("claim %s: %d warnings, want one per issuer (2):\n%s", claim, got, logs)
		}
	}
	if !strings.Contains(logs, "setting=auth.oidc.email_claim") {
		t.Error("the warning does not name the setting")
	}
}

// TestRefusalFacts: refusals carry iss, aud, kid and typ as sent and the
// missing claim, and never the token.
func TestRefusalFacts(t *testing.T) {
	i := newIDP(t, keyRSA())
	h := newHarness(t, authConfig(i.URL()))
	c := with(claims(i.URL()), "aud", []string{"api-a", "api-b"})
	tok := signShape(t, keyRSA(), "rsa-1", map[string]any{"typ": "JWT"}, c)
	_, err := h.v.Validate(context.Background(), tok)
	var it *authn.InvalidToken
	if !errors.As(err, &it) || it.Reason != ReasonAudienceMismatch {
		t.Fatal(err)
	}
	if it.Issuer != i.URL() || !slices.Equal(it.Audience, []string{"api-a", "api-b"}) || it.KeyID != "rsa-1" || it.Type != "JWT" {
		t.Fatalf("facts %+v", it)
	}
	_, err = h.v.Validate(context.Background(), sign(t, keyRSA(), with(claims(i.URL()), "exp", nil), nil))
	if !errors.As(err, &it) || it.Claim != "exp" {
		t.Fatalf("missing claim not named: %+v", it)
	}
	attrs := it.LogAttrs()
	for _, s := range segments(tok) {
		for _, a := range attrs {
			if str, ok := a.(string); ok && strings.Contains(str, s) {
				t.Fatal("token content in the facts")
			}
		}
	}
}

// TestTrailingSlashIssuer: an iss differing from a configured issuer only
// by a trailing slash is named so.
func TestTrailingSlashIssuer(t *testing.T) {
	i := newIDP(t, keyRSA())
	for _, tc := range []struct{ configured, sent string }{
		{"https://idp.example.com", "https://idp.example.com/"},
		{"https://idp.example.com/", "https://idp.example.com"},
	} {
		cfg := authConfig(tc.configured)
		cfg.OIDC.JWKSURI = ptr(i.URL() + "/jwks")
		h := newHarness(t, cfg)
		_, err := h.v.Validate(context.Background(), sign(t, keyRSA(), claims(tc.sent), nil))
		var it *authn.InvalidToken
		if !errors.As(err, &it) || it.Reason != ReasonUnknownIssuer || !strings.Contains(it.Detail, "only by a trailing slash") {
			t.Fatalf("%s vs %s: %v", tc.configured, tc.sent, err)
		}
		_, err = h.v.Validate(context.Background(), sign(t, keyRSA(), claims("https://elsewhere.example.com"), nil))
		if !errors.As(err, &it) || strings.Contains(it.Detail, "trailing slash") {
			t.Fatalf("unrelated issuer: %v", err)
		}
	}
}

// TestUserAgent: discovery and JWKS requests carry User-Agent nmp/<version>.
func TestUserAgent(t *testing.T) {
	var (
		mu  sync.Mutex
		uas = map[string]string{}
	)
	k := keyRSA()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		uas[r.URL.Path] = r.Header.Get("User-Agent")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/jwks" {
			_ = jsonEncode(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.jwk()}})
			return
		}
		_ = jsonEncode(w, map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks"})
	}))
	defer srv.Close()
	h := newHarness(t, authConfig(srv.URL))
	mustValidate(t, h.v, sign(t, k, claims(srv.URL), nil))
	want := "nmp/" + version.Version
	mu.Lock()
	defer mu.Unlock()
	for _, p := range []string{"/.well-known/openid-configuration", "/jwks"} {
		if uas[p] != want {
			t.Errorf("%s: User-Agent %q, want %q", p, uas[p], want)
		}
	}
}

// TestAudienceUnsetWarns: one warning at start when auth.oidc.audience is
// unset, none when it is set.
func TestAudienceUnsetWarns(t *testing.T) {
	h := newHarness(t, authConfig("https://idp.example.com"))
	if got := strings.Count(h.logs.String(), "auth.oidc.audience is unset"); got != 1 {
		t.Fatalf("%d warnings:\n%s", got, h.logs)
	}
	cfg := authConfig("https://idp.example.com")
	cfg.OIDC.Audience = ptr("nmp-api")
	h = newHarness(t, cfg)
	if strings.Contains(h.logs.String(), "audience") {
		t.Fatalf("warning with an audience:\n%s", h.logs)
	}
}

func jsonNumber(s string) json.Number { return json.Number(s) }

func jsonEncode(w http.ResponseWriter, v any) error { return json.NewEncoder(w).Encode(v) }
