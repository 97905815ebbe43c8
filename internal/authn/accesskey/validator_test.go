package accesskey

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/signing"
)

func TestValidate(t *testing.T) {
	cur, old, evil := rsaKeys()
	with := func(mut func(m map[string]any)) func(time.Time) map[string]any {
		return func(now time.Time) map[string]any {
			m := baseClaims(now)
			mut(m)
			return m
		}
	}
	base := with(func(map[string]any) {})
	tests := []struct {
		name       string
		key        any
		alg        jose.SignatureAlgorithm
		kid        string
		claims     func(now time.Time) map[string]any
		registry   func(r *fakeRegistry)
		tamper     func(tok string) string
		wantReason string
		wantDetail string
	}{
		{name: "valid", claims: base},
		{name: "valid service account", claims: with(func(m map[string]any) {
			m["sub"] = "service-account:ci-bot"
			m["nmp_access_key"] = map[string]any{"version": 2, "entity_type": "SERVICE_ACCOUNT", "name": "bot"}
		}), registry: func(r *fakeRegistry) { r.set(testJTI, active("service-account:ci-bot")) }},
		{name: "valid without exp", claims: with(func(m map[string]any) { delete(m, "exp") })},
		{name: "valid within the leeway after exp", claims: with(func(m map[string]any) {
			m["exp"] = m["iat"].(int64) - 20
			m["iat"] = m["iat"].(int64) - 3600
			m["nbf"] = m["iat"]
		})},
		{name: "valid signed by a previous key", key: old, kid: "old-key", claims: base},
		{name: "tampered payload", claims: base, tamper: func(tok string) string {
			parts := strings.Split(tok, ".")
			m := baseClaims(newClock().Now())
			m["sub"] = "mallory"
			parts[1] = mustB64JSON(m)
			return strings.Join(parts, ".")
		}, wantReason: "bad_signature"},
		{name: "re-signed by another key with the same kid", key: evil, claims: base, wantReason: "bad_signature"},
		{name: "unknown kid", key: evil, kid: "attacker", claims: base, wantReason: "unknown_kid"},
		{name: "no kid", kid: "-", claims: base, wantReason: "unknown_kid"},
		{name: "alg none", claims: base, tamper: func(tok string) string {
			parts := strings.Split(tok, ".")
			return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"nemo-platform-signing"}`)) + "." + parts[1] + "."
		}, wantReason: "unsigned_not_allowed"},
		{name: "alg HS256", key: []byte("0123456789abcdef0123456789abcdef"), alg: jose.HS256, claims: base, wantReason: "alg_not_allowed"},
		{name: "alg RS512", alg: jose.RS512, claims: base, wantReason: "alg_not_allowed"},
		{name: "alg PS256", alg: jose.PS256, claims: base, wantReason: "alg_not_allowed"},
		{name: "crit header", claims: base, tamper: func(tok string) string {
			parts := strings.Split(tok, ".")
			parts[0] = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"nemo-platform-signing","crit":["x"],"x":1}`))
			return strings.Join(parts, ".")
		}, wantReason: "crit_header"},
		{name: "wrong issuer", claims: with(func(m map[string]any) { m["iss"] = "https://idp.example.com/" }), wantReason: "unknown_issuer"},
		{name: "wrong audience", claims: with(func(m map[string]any) { m["aud"] = "api://nmp" }), wantReason: "audience_mismatch"},
		{name: "audience list containing ours", claims: with(func(m map[string]any) { m["aud"] = []string{"x", testAudience} })},
		{name: "no audience", claims: with(func(m map[string]any) { delete(m, "aud") }), wantReason: "audience_mismatch"},
		{name: "wrong token type", claims: with(func(m map[string]any) { m["nmp_token_type"] = "refresh" }), wantReason: "invalid_claim"},
		{name: "no token type", claims: with(func(m map[string]any) { delete(m, "nmp_token_type") }), wantReason: "invalid_claim"},
		{name: "bad jti", claims: with(func(m map[string]any) { m["jti"] = "ak_0123456789ABCDEF0123456789ABCDEF" }), wantReason: "invalid_claim"},
		{name: "short jti", claims: with(func(m map[string]any) { m["jti"] = "ak_0123" }), wantReason: "invalid_claim"},
		{name: "no jti", claims: with(func(m map[string]any) { delete(m, "jti") }), wantReason: "missing_claim"},
		{name: "claim version 1", claims: with(func(m map[string]any) {
			m["nmp_access_key"] = map[string]any{"version": 1, "entity_type": "USER"}
		}), wantReason: "invalid_claim"},
		{name: "no nmp_access_key", claims: with(func(m map[string]any) { delete(m, "nmp_access_key") }), wantReason: "missing_claim"},
		{name: "unknown entity type", claims: with(func(m map[string]any) {
			m["nmp_access_key"] = map[string]any{"version": 2, "entity_type": "ROBOT"}
		}), wantReason: "invalid_claim"},
		{name: "service account key with a user subject", claims: with(func(m map[string]any) {
			m["nmp_access_key"] = map[string]any{"version": 2, "entity_type": "SERVICE_ACCOUNT"}
		}), wantReason: "invalid_subject"},
		{name: "user key with a service-account subject", claims: with(func(m map[string]any) { m["sub"] = "service-account:bot" }),
			wantReason: "reserved_subject"},
		{name: "user key with a service subject", claims: with(func(m map[string]any) { m["sub"] = "SERVICE:jobs" }),
			wantReason: "reserved_subject"},
		{name: "no subject", claims: with(func(m map[string]any) { delete(m, "sub") }), wantReason: "missing_claim"},
		{name: "invalid subject", claims: with(func(m map[string]any) { m["sub"] = "alice smith" }), wantReason: "invalid_subject"},
		{name: "no iat", claims: with(func(m map[string]any) { delete(m, "iat") }), wantReason: "missing_claim"},
		{name: "expired", claims: with(func(m map[string]any) {
			m["exp"] = m["iat"].(int64) - 31
			m["iat"] = m["iat"].(int64) - 3600
			m["nbf"] = m["iat"]
		}), wantReason: "expired"},
		{name: "nbf in the future", claims: with(func(m map[string]any) { m["nbf"] = m["iat"].(int64) + 60 }), wantReason: "not_yet_valid"},
		{name: "iat in the future", claims: with(func(m map[string]any) {
			m["iat"] = m["iat"].(int64) + 60
			delete(m, "nbf")
		}), wantReason: "issued_in_future"},
		{name: "iat within the leeway", claims: with(func(m map[string]any) { m["iat"] = m["iat"].(int64) + 20; m["nbf"] = m["iat"] })},
		{name: "claims of the wrong type", claims: with(func(m map[string]any) { m["groups"] = []string{"eng"} }), wantReason: "malformed"},
		{name: "registry says revoked", claims: base,
			registry:   func(r *fakeRegistry) { r.set(testJTI, KeyState{Principal: "alice", Status: StatusRevoked}) },
			wantReason: "access_key_rejected", wantDetail: "access key revoked"},
		{name: "registry says suspended", claims: base,
			registry:   func(r *fakeRegistry) { r.set(testJTI, KeyState{Principal: "alice", Status: StatusSuspended}) },
			wantReason: "access_key_rejected", wantDetail: "access key suspended"},
		{name: "registry says expired", claims: base,
			registry:   func(r *fakeRegistry) { r.set(testJTI, KeyState{Principal: "alice", Status: StatusExpired}) },
			wantReason: "access_key_rejected", wantDetail: "access key expired"},
		{name: "registry says rotated past grace", claims: base,
			registry:   func(r *fakeRegistry) { r.set(testJTI, KeyState{Principal: "alice", Status: StatusRotating}) },
			wantReason: "access_key_rejected", wantDetail: "access key rotated and its grace period has ended"},
		{name: "registry usable until now", claims: base,
			registry: func(r *fakeRegistry) {
				until := newClock().Now()
				r.set(testJTI, KeyState{Principal: "alice", Usable: true, Status: StatusRotating, UsableUntil: &until})
			},
			wantReason: "access_key_rejected", wantDetail: "access key expired"},
		{name: "registry does not know the key", claims: base,
			registry:   func(r *fakeRegistry) { delete(r.states, testJTI) },
			wantReason: "access_key_rejected", wantDetail: "access key unknown"},
		{name: "registry names another principal", claims: base,
			registry:   func(r *fakeRegistry) { r.set(testJTI, active("bob")) },
			wantReason: "access_key_rejected", wantDetail: "access key belongs to another principal"},
		{name: "registry fails", claims: base,
			registry:   func(r *fakeRegistry) { r.setErr(errors.New("connection refused")) },
			wantReason: "unavailable:access_key_registry_unavailable"},
		{name: "registry fails with a wrapped not found", claims: base,
			registry:   func(r *fakeRegistry) { r.setErr(errors.Join(errors.New("no rows"), ErrNotFound)) },
			wantReason: "access_key_rejected", wantDetail: "access key unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.registry != nil {
				tt.registry(h.reg)
			}
			key, alg, kid := any(cur), tt.alg, tt.kid
			if tt.key != nil {
				key = tt.key
			}
			if alg == "" {
				alg = jose.RS256
			}
			switch kid {
			case "":
				kid = testKid
			case "-":
				kid = ""
			}
			tok := signClaims(t, key, alg, kid, tt.claims(h.clock.Now()))
			if tt.tamper != nil {
				tok = tt.tamper(tok)
			}
			p, err := h.v.Validate(context.Background(), tok)
			if got := reasonOf(err); got != tt.wantReason {
				t.Fatalf("reason %q (%v), want %q", got, err, tt.wantReason)
			}
			if err != nil {
				if tt.wantDetail != "" && !strings.Contains(err.Error(), tt.wantDetail) {
					t.Errorf("error %q lacks %q", err, tt.wantDetail)
				}
				if sig := tok[strings.LastIndex(tok, ".")+1:]; (sig != "" && strings.Contains(err.Error(), sig)) || strings.Contains(err.Error(), tok) {
					t.Error("the error holds token material")
				}
				if p != nil {
					t.Error("principal returned with an error")
				}
				return
			}
			if p == nil || !p.AccessKey || p.TokenID != testJTI {
				t.Fatalf("principal %+v", p)
			}
		})
	}
}

// TestValidatePrincipal: the principal's fields come from the claims;
// no scope claim means no scope limit (nil).
func TestValidatePrincipal(t *testing.T) {
	h := newHarness(t)
	cur, _, _ := rsaKeys()
	tests := []struct {
		name       string
		mutate     func(m map[string]any)
		wantGroups []string
		wantScopes []string
		wantEmail  string
	}{
		{"full rights", func(map[string]any) {}, []string{"eng", "ops"}, nil, "alice@example.com"},
		{"scoped", func(m map[string]any) { m["scope"] = "entities:read  platform:read" }, []string{"eng", "ops"},
			[]string{"entities:read", "platform:read"}, "alice@example.com"},
		{"reserved and invalid groups dropped", func(m map[string]any) { m["groups"] = " eng , service:x,,bad group" },
			[]string{"eng"}, nil, "alice@example.com"},
		{"no email or groups", func(m map[string]any) { delete(m, "email"); delete(m, "groups") }, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := baseClaims(h.clock.Now())
			tt.mutate(m)
			p, err := h.v.Validate(context.Background(), signClaims(t, cur, jose.RS256, testKid, m))
			if err != nil {
				t.Fatal(err)
			}
			if p.ID != "alice" || p.Email != tt.wantEmail || !slices.Equal(p.Groups, tt.wantGroups) ||
				!slices.Equal(p.Scopes, tt.wantScopes) || (tt.wantScopes == nil) != (p.Scopes == nil) || !p.AccessKey || p.TokenID != testJTI {
				t.Errorf("principal %+v", p)
			}
		})
	}
}

// TestPreviousKeyRotation: a token signed by a retired key is accepted
// while the key is in previous_keys and refused once it is removed.
func TestPreviousKeyRotation(t *testing.T) {
	cur, old, _ := rsaKeys()
	clock := newClock()
	tok := signClaims(t, old, jose.RS256, "old-key", baseClaims(clock.Now()))
	reg := newRegistry()
	reg.set(testJTI, active("alice"))
	tests := []struct {
		name     string
		previous map[string]*rsa.PublicKey
		want     string
	}{
		{"while in previous_keys", map[string]*rsa.PublicKey{"old-key": &old.PublicKey}, ""},
		{"after removal", nil, "unknown_kid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := signing.New(testKid, cur, tt.previous)
			if err != nil {
				t.Fatal(err)
			}
			v, err := NewValidator(testConfig(t), keys, reg, WithClock(clock.Now))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Validate(context.Background(), tok); reasonOf(err) != tt.want {
				t.Fatalf("reason %q, want %q", reasonOf(err), tt.want)
			}
		})
	}
}

// TestTokenCacheKeepsCheckingRegistry: a repeated token skips the
// signature check but never the registry, and the cached entry does not
// outlive exp.
func TestTokenCacheKeepsCheckingRegistry(t *testing.T) {
	h := newHarness(t)
	cur, _, _ := rsaKeys()
	m := baseClaims(h.clock.Now())
	m["exp"] = h.clock.Now().Add(2 * time.Minute).Unix()
	tok := signClaims(t, cur, jose.RS256, testKid, m)
	ctx := context.Background()
	if _, err := h.v.Validate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if h.v.tokens.len() != 1 {
		t.Fatalf("token cache holds %d entries, want 1", h.v.tokens.len())
	}
	h.reg.set(testJTI, KeyState{Principal: "alice", Status: StatusRevoked})
	if _, err := h.v.Validate(ctx, tok); reasonOf(err) != ReasonRejected {
		t.Fatalf("revoked key accepted from the token cache: %v", err)
	}
	if h.reg.count() != 2 {
		t.Errorf("registry asked %d times, want 2", h.reg.count())
	}
	h.reg.set(testJTI, active("alice"))
	h.clock.Advance(2*time.Minute + 31*time.Second) // past exp + leeway
	if _, err := h.v.Validate(ctx, tok); reasonOf(err) != "expired" {
		t.Fatalf("expired token: %v", err)
	}
}

func TestTokenCacheBounded(t *testing.T) {
	h := newHarness(t, WithTokenCacheSize(20))
	cur, _, _ := rsaKeys()
	for i := range 50 {
		m := baseClaims(h.clock.Now())
		m["name"] = i // distinct tokens
		if _, err := h.v.Validate(context.Background(), signClaims(t, cur, jose.RS256, testKid, m)); err != nil {
			t.Fatal(err)
		}
		if n := h.v.tokens.len(); n > 20 {
			t.Fatalf("token cache grew to %d entries, bound 20", n)
		}
	}
}

func TestMintRoundTrip(t *testing.T) {
	h := newHarness(t)
	minter := NewMinter(testConfig(t), h.keys)
	now := h.clock.Now()
	exp := now.Add(time.Hour)
	tests := []struct {
		name string
		req  MintRequest
		want func(p *authn.Principal) bool
	}{
		{"user with scopes and expiry", MintRequest{JTI: testJTI, Subject: "alice", EntityType: EntityUser, Name: "ci",
			Email: "alice@example.com", Groups: []string{"eng", "ops"}, Scopes: []string{"entities:read"}, IssuedAt: now, ExpiresAt: &exp},
			func(p *authn.Principal) bool {
				return p.ID == "alice" && p.Email == "alice@example.com" && slices.Equal(p.Groups, []string{"eng", "ops"}) &&
					slices.Equal(p.Scopes, []string{"entities:read"})
			}},
		{"service account without expiry or scopes", MintRequest{JTI: testJTI, Subject: "service-account:bot",
			EntityType: EntityServiceAccount, Name: "bot", IssuedAt: now},
			func(p *authn.Principal) bool {
				return p.ID == "service-account:bot" && p.Scopes == nil && p.Groups == nil
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.reg.set(testJTI, active(tt.req.Subject))
			tok, err := minter.Mint(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
			if err != nil {
				t.Fatal(err)
			}
			if hd := jws.Signatures[0].Header; hd.KeyID != testKid || hd.ExtraHeaders["typ"] != "JWT" {
				t.Errorf("header %+v", hd)
			}
			p, err := h.v.Validate(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(p) || !p.AccessKey || p.TokenID != testJTI {
				t.Errorf("principal %+v", p)
			}
		})
	}
}

func TestMintClaims(t *testing.T) {
	h := newHarness(t)
	now := h.clock.Now()
	exp := now.Add(time.Hour)
	tok, err := NewMinter(testConfig(t), h.keys).Mint(MintRequest{JTI: testJTI, Subject: "alice", EntityType: EntityUser, Name: "ci",
		Email: "alice@example.com", Groups: []string{"eng", "ops"}, Scopes: []string{"a:read", "b:write"}, IssuedAt: now, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"iss":"https://nmp.example.com/apis/auth","sub":"alice","aud":"nemo-platform-access-key",` +
		`"exp":1780318800,"nbf":1780315200,"iat":1780315200,"jti":"ak_0123456789abcdef0123456789abcdef",` +
		`"nmp_token_type":"access_key","nmp_access_key":{"version":2,"entity_type":"USER","name":"ci"},` +
		`"email":"alice@example.com","groups":"eng,ops","scope":"a:read b:write"}`
	if string(payload) != want {
		t.Errorf("claims\n got %s\nwant %s", payload, want)
	}
}

func TestMintRefuses(t *testing.T) {
	h := newHarness(t)
	minter := NewMinter(testConfig(t), h.keys)
	now := h.clock.Now()
	before := now.Add(-time.Second)
	ok := MintRequest{JTI: testJTI, Subject: "alice", EntityType: EntityUser, IssuedAt: now}
	tests := []struct {
		name   string
		mutate func(r *MintRequest)
	}{
		{"bad jti", func(r *MintRequest) { r.JTI = "ak_x" }},
		{"empty subject", func(r *MintRequest) { r.Subject = "" }},
		{"user with reserved subject", func(r *MintRequest) { r.Subject = "service:x" }},
		{"service account without prefix", func(r *MintRequest) { r.EntityType = EntityServiceAccount }},
		{"unknown entity type", func(r *MintRequest) { r.EntityType = "GROUP" }},
		{"no issue time", func(r *MintRequest) { r.IssuedAt = time.Time{} }},
		{"expiry before issue", func(r *MintRequest) { r.ExpiresAt = &before }},
		{"group with a comma", func(r *MintRequest) { r.Groups = []string{"a,b"} }},
		{"scope with a space", func(r *MintRequest) { r.Scopes = []string{"a:read b:read"} }},
	}
	if _, err := minter.Mint(ok); err != nil {
		t.Fatalf("the base request is refused: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.mutate(&r)
			if _, err := minter.Mint(r); err == nil {
				t.Fatal("minted")
			}
		})
	}
}

func TestNewJTI(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		j, err := NewJTI()
		if err != nil {
			t.Fatal(err)
		}
		if !ValidJTI(j) || seen[j] {
			t.Fatalf("jti %q invalid or repeated", j)
		}
		seen[j] = true
	}
}

func TestNewValidatorRefusesWithoutJWTFormat(t *testing.T) {
	cur, _, _ := rsaKeys()
	keys, err := signing.New(testKid, cur, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Auth.AccessKeys.AcceptedFormats = []string{}
	if _, err := NewValidator(cfg, keys, newRegistry()); err == nil || !strings.Contains(err.Error(), "accepted_formats") {
		t.Fatalf("err %v", err)
	}
}

func mustB64JSON(m map[string]any) string {
	b, err := jsonMarshal(m)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
