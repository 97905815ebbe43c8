package jwtverify

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/config"
)

// fixtureKeys are published by the default test IdP.
func fixtureKeys() []*testKey {
	return []*testKey{keyRSA(), keyRSAAlt(), keyPS(), keyEC(), keyEC384(), keyEd(), keyRSAAlt().with("enc-1", "enc")}
}

func rsaPublicPEM(t testing.TB) []byte {
	der, err := x509.MarshalPKIXPublicKey(&rsaPriv().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestValidateRejectsHostileTokens feeds every hostile token to a fresh
// verifier and checks the reason; noNetwork cases also assert that the
// IdPs saw no request at all.
func TestValidateRejectsHostileTokens(t *testing.T) {
	primary := newIDP(t, fixtureKeys()...)
	other := newIDP(t, keyRSA()) // a real IdP this verifier does not trust
	iss := primary.URL()
	base := claims(iss)
	manyGroups := make([]string, 101)
	for i := range manyGroups {
		manyGroups[i] = "g" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + strings.Repeat("1", i/26)
	}
	valid := func(t *testing.T) string { return sign(t, keyRSA(), base, nil) }

	tests := []struct {
		name      string
		cfg       func(*config.AuthConfig)
		token     func(t *testing.T) string
		want      string
		noNetwork bool
	}{
		{name: "alg none with unsigned mode off", want: ReasonUnsignedNotAllowed, noNetwork: true,
			token: func(*testing.T) string { return unsigned(base) }},
		{name: "alg none with a signature and mode off", want: ReasonUnsignedNotAllowed, noNetwork: true,
			token: func(t *testing.T) string {
				return replacePart(valid(t), 0, b64j(map[string]any{"alg": "none", "kid": "rsa-1"}))
			}},
		{name: "alg NONE upper case", want: ReasonAlgNotAllowed, noNetwork: true,
			token: func(*testing.T) string { return b64j(map[string]any{"alg": "NONE"}) + "." + b64j(base) + "." }},
		{name: "HS256 signed with the RSA public key as HMAC secret", want: ReasonAlgNotAllowed, noNetwork: true,
			token: func(t *testing.T) string { return signWith(t, jose.HS256, rsaPublicPEM(t), "rsa-1", base, nil) }},
		{name: "HS256 without kid", want: ReasonAlgNotAllowed, noNetwork: true,
			token: func(t *testing.T) string { return signWith(t, jose.HS256, rsaPublicPEM(t), "", base, nil) }},
		{name: "RS256-signed but header claims PS384", want: ReasonAlgNotAllowed, noNetwork: true,
			token: func(t *testing.T) string {
				return replacePart(valid(t), 0, b64j(map[string]any{"alg": "PS384", "kid": "rsa-1"}))
			}},
		{name: "ES512 not on the allow-list", want: ReasonAlgNotAllowed, noNetwork: true,
			token: func(t *testing.T) string {
				return replacePart(valid(t), 0, b64j(map[string]any{"alg": "ES512", "kid": "ec-1"}))
			}},
		{name: "crit header", want: ReasonCritHeader, noNetwork: true,
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), base, map[jose.HeaderKey]any{"crit": []string{"nmp"}, "nmp": true})
			}},
		{name: "empty crit header", want: ReasonCritHeader, noNetwork: true,
			token: func(t *testing.T) string { return sign(t, keyRSA(), base, map[jose.HeaderKey]any{"crit": []string{}}) }},
		{name: "b64 header without crit", want: ReasonCritHeader, noNetwork: true,
			token: func(t *testing.T) string { return sign(t, keyRSA(), base, map[jose.HeaderKey]any{"b64": false}) }},
		{name: "wrong iss", want: ReasonUnknownIssuer, noNetwork: true,
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "iss", "https://evil.example.com"), nil)
			}},
		{name: "iss differs by a trailing slash", want: ReasonUnknownIssuer, noNetwork: true,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "iss", iss+"/"), nil) }},
		{name: "issuer not configured (a real IdP)", want: ReasonUnknownIssuer, noNetwork: true,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "iss", other.URL()), nil) }},
		{name: "iss missing", want: ReasonMissingClaim, noNetwork: true,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "iss", nil), nil) }},
		{name: "iss not a string", want: ReasonMalformed, noNetwork: true,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "iss", 42), nil) }},
		{name: "expired", want: ReasonExpired,
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "iat", t0.Add(-2*time.Hour).Unix(), "exp", t0.Add(-31*time.Second).Unix()), nil)
			}},
		{name: "nbf in the future", want: ReasonNotYetValid,
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "nbf", t0.Add(time.Minute).Unix()), nil)
			}},
		{name: "iat in the future", want: ReasonIssuedInFuture,
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "iat", t0.Add(31*time.Second).Unix()), nil)
			}},
		{name: "exp missing", want: ReasonMissingClaim,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "exp", nil), nil) }},
		{name: "iat missing", want: ReasonMissingClaim,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "iat", nil), nil) }},
		{name: "exp as a string", want: ReasonMalformed,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "exp", "2040-01-01"), nil) }},
		{name: "nbf as a bool", want: ReasonMalformed,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "nbf", true), nil) }},
		{name: "exp overflowing float", want: ReasonMalformed,
			token: func(t *testing.T) string {
				return signRawPayload(t, keyRSA(), `{"iss":"`+iss+`","aud":"nmp-cli","sub":"alice","iat":1,"exp":1e999}`)
			}},
		{name: "wrong aud", want: ReasonAudienceMismatch,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "aud", "other-client"), nil) }},
		{name: "aud array without ours", want: ReasonAudienceMismatch,
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "aud", []string{"a", "b", "nmp-cli "}), nil)
			}},
		{name: "aud missing", want: ReasonAudienceMismatch,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "aud", nil), nil) }},
		{name: "aud is client id but audience is configured", want: ReasonAudienceMismatch,
			cfg:   func(c *config.AuthConfig) { a := "api://nmp"; c.OIDC.Audience = &a },
			token: func(t *testing.T) string { return sign(t, keyRSA(), base, nil) }},
		{name: "aud array with a number", want: ReasonMalformed,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "aud", []any{"nmp-cli", 7}), nil) }},
		{name: "unknown kid", want: ReasonUnknownKid,
			token: func(t *testing.T) string { return sign(t, keyRSA().with("nobody", "sig"), base, nil) }},
		{name: "signed by another key under a known kid", want: ReasonBadSignature,
			token: func(t *testing.T) string {
				return sign(t, &testKey{kid: "rsa-1", alg: jose.RS256, priv: rsaOther()}, base, nil)
			}},
		{name: "signed by another key without kid", want: ReasonBadSignature,
			token: func(t *testing.T) string { return sign(t, &testKey{alg: jose.RS256, priv: rsaOther()}, base, nil) }},
		{name: "tampered payload", want: ReasonBadSignature,
			token: func(t *testing.T) string { return replacePart(valid(t), 1, b64j(with(base, "sub", "admin"))) }},
		{name: "tampered signature", want: ReasonBadSignature,
			token: func(t *testing.T) string { tok := valid(t); return replacePart(tok, 2, tamperMiddle(part(tok, 2))) }},
		{name: "empty signature on a signed alg", want: ReasonBadSignature,
			token: func(t *testing.T) string { return replacePart(valid(t), 2, "") }},
		{name: "signature of another token", want: ReasonBadSignature,
			token: func(t *testing.T) string {
				return replacePart(valid(t), 2, part(sign(t, keyRSA(), with(base, "sub", "bob"), nil), 2))
			}},
		{name: "key with use=enc", want: ReasonBadSignature,
			token: func(t *testing.T) string { return sign(t, keyRSAAlt().with("enc-1", ""), base, nil) }},
		{name: "key alg PS256 but token RS256", want: ReasonBadSignature,
			token: func(t *testing.T) string {
				return sign(t, &testKey{kid: "ps-1", alg: jose.RS256, priv: rsaPriv()}, base, nil)
			}},
		{name: "ES256 header with an RSA key's kid", want: ReasonBadSignature,
			token: func(t *testing.T) string {
				return sign(t, &testKey{kid: "rsa-1", alg: jose.ES256, priv: ecPriv()}, base, nil)
			}},
		{name: "ES384 header with a P-256 key's kid", want: ReasonBadSignature,
			token: func(t *testing.T) string {
				return sign(t, &testKey{kid: "ec-1", alg: jose.ES384, priv: ec384Priv()}, base, nil)
			}},
		{name: "EdDSA header with an EC key's kid", want: ReasonBadSignature,
			token: func(t *testing.T) string {
				return sign(t, &testKey{kid: "ec-1", alg: jose.EdDSA, priv: edPriv()}, base, nil)
			}},
		{name: "empty string", want: ReasonMalformed, noNetwork: true,
			token: func(*testing.T) string { return "" }},
		{name: "two segments", want: ReasonMalformed, noNetwork: true,
			token: func(t *testing.T) string { tok := valid(t); return tok[:strings.LastIndex(tok, ".")] }},
		{name: "four segments", want: ReasonMalformed, noNetwork: true,
			token: func(t *testing.T) string { return valid(t) + ".AAAA" }},
		{name: "truncated in the payload", want: ReasonMalformed, noNetwork: true,
			token: func(t *testing.T) string { tok := valid(t); return tok[:len(part(tok, 0))+10] }},
		{name: "garbage segments", want: ReasonMalformed, noNetwork: true,
			token: func(*testing.T) string { return "!!!.###.$$$" }},
		{name: "padded base64", want: ReasonMalformed, noNetwork: true,
			token: func(t *testing.T) string { tok := valid(t); return replacePart(tok, 1, part(tok, 1)+"==") }},
		{name: "standard base64 alphabet", want: ReasonMalformed, noNetwork: true,
			token: func(t *testing.T) string { tok := valid(t); return replacePart(tok, 2, "ab+/"+part(tok, 2)[4:]) }},
		{name: "whitespace inside", want: ReasonMalformed, noNetwork: true,
			token: func(t *testing.T) string { tok := valid(t); return strings.Replace(tok, ".", ". ", 1) }},
		{name: "header not JSON", want: ReasonMalformed, noNetwork: true,
			token: func(t *testing.T) string { return replacePart(valid(t), 0, "bm90LWpzb24") }},
		{name: "header JSON array", want: ReasonMalformed, noNetwork: true,
			token: func(t *testing.T) string { return replacePart(valid(t), 0, b64j([]string{"RS256"})) }},
		{name: "header without alg", want: ReasonMalformed, noNetwork: true,
			token: func(t *testing.T) string { return replacePart(valid(t), 0, b64j(map[string]any{"kid": "rsa-1"})) }},
		{name: "header alg differs only by case of member name", want: ReasonMalformed, noNetwork: true,
			token: func(t *testing.T) string { return replacePart(valid(t), 0, b64j(map[string]any{"ALG": "RS256"})) }},
		{name: "kid not a string", want: ReasonMalformed, noNetwork: true,
			token: func(t *testing.T) string {
				return replacePart(valid(t), 0, b64j(map[string]any{"alg": "RS256", "kid": 1}))
			}},
		{name: "payload not JSON", want: ReasonMalformed, noNetwork: true,
			token: func(t *testing.T) string { return replacePart(valid(t), 1, "bm90LWpzb24") }},
		{name: "payload with trailing data", want: ReasonMalformed, noNetwork: true,
			token: func(t *testing.T) string {
				b, _ := json.Marshal(base)
				return replacePart(valid(t), 1, base64.RawURLEncoding.EncodeToString(append(b, "{}"...)))
			}},
		{name: "64 KiB token", want: ReasonTooLarge, noNetwork: true,
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "pad", strings.Repeat("x", 64<<10)), nil)
			}},
		{name: "just over 16 KiB", want: ReasonTooLarge, noNetwork: true,
			token: func(*testing.T) string { return strings.Repeat("a", 16<<10+1) }},
		{name: "reserved subject service:", want: ReasonReservedSubject,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "sub", "service:billing"), nil) }},
		{name: "reserved subject service-account:", want: ReasonReservedSubject,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "sub", "service-account:bot"), nil) }},
		{name: "reserved subject in other case", want: ReasonReservedSubject,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "sub", "Service:billing"), nil) }},
		{name: "reserved subject through subject_claim", want: ReasonReservedSubject,
			cfg:   func(c *config.AuthConfig) { c.OIDC.SubjectClaim = "oid" },
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "oid", "service:x"), nil) }},
		{name: "invalid subject", want: ReasonInvalidSubject,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "sub", "alice smith"), nil) }},
		{name: "subject too long", want: ReasonInvalidSubject,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "sub", strings.Repeat("a", 257)), nil) }},
		{name: "subject not a string", want: ReasonInvalidSubject,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "sub", 12), nil) }},
		{name: "subject missing", want: ReasonMissingClaim,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "sub", nil), nil) }},
		{name: "more than 100 groups", want: ReasonTooManyGroups,
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "groups", manyGroups), nil) }},
		{name: "more than 100 comma-separated groups", want: ReasonTooManyGroups,
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "groups", strings.Join(manyGroups, ",")), nil)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := authConfig(iss)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			h := newHarness(t, cfg)
			token := tc.token(t)
			before := primary.hits() + other.hits()
			p, err := h.v.Validate(context.Background(), token)
			if got := reasonOf(t, err); got != tc.want {
				t.Fatalf("reason = %q (%v), want %q", got, err, tc.want)
			}
			if p != nil {
				t.Fatalf("principal %+v with error", p)
			}
			if tc.noNetwork {
				if n := primary.hits() + other.hits() - before; n != 0 {
					t.Fatalf("%d IdP requests, want none", n)
				}
			}
			assertNoLeak(t, token, err.Error(), h.logs.String())
			if h.v.cache.len() != 0 {
				t.Fatal("refused token cached")
			}
		})
	}
}

// signRawPayload signs an exact JSON payload.
func signRawPayload(t testing.TB, k *testKey, payload string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// assertNoLeak checks that no part of the token (beyond iss, kid, alg,
// sub) is echoed in messages or logs.
func assertNoLeak(t testing.TB, token string, texts ...string) {
	t.Helper()
	for _, text := range texts {
		for _, seg := range segments(token) {
			if strings.Contains(text, seg) {
				t.Fatalf("token segment leaked into %q", text)
			}
		}
	}
}

func TestValidateAccepts(t *testing.T) {
	primary := newIDP(t, fixtureKeys()...)
	iss := primary.URL()
	base := claims(iss)
	prefix := "api://nmp/"
	tests := []struct {
		name  string
		cfg   func(*config.AuthConfig)
		token func(t *testing.T) string
		want  authn.Principal
	}{
		{name: "RS256",
			token: func(t *testing.T) string { return sign(t, keyRSA(), base, nil) },
			want:  authn.Principal{ID: "alice", Email: "alice@example.com", Groups: []string{"eng", "ops"}, Scopes: []string{"openid", "platform:read"}}},
		{name: "RS512 with the same RSA key (key alg unset)",
			token: func(t *testing.T) string {
				return sign(t, &testKey{kid: "rsa-2", alg: jose.RS512, priv: rsaAlt()}, base, nil)
			},
			cfg:  nil,
			want: authn.Principal{ID: "alice", Email: "alice@example.com", Groups: []string{"eng", "ops"}, Scopes: []string{"openid", "platform:read"}}},
		{name: "PS256",
			token: func(t *testing.T) string { return sign(t, keyPS(), with(base, "groups", nil, "scope", nil), nil) },
			want:  authn.Principal{ID: "alice", Email: "alice@example.com"}},
		{name: "ES256",
			token: func(t *testing.T) string { return sign(t, keyEC(), with(base, "groups", nil), nil) },
			want:  authn.Principal{ID: "alice", Email: "alice@example.com", Scopes: []string{"openid", "platform:read"}}},
		{name: "ES384",
			token: func(t *testing.T) string { return sign(t, keyEC384(), with(base, "scope", nil), nil) },
			want:  authn.Principal{ID: "alice", Email: "alice@example.com", Groups: []string{"eng", "ops"}}},
		{name: "EdDSA",
			token: func(t *testing.T) string { return sign(t, keyEd(), with(base, "email", nil), nil) },
			want:  authn.Principal{ID: "alice", Groups: []string{"eng", "ops"}, Scopes: []string{"openid", "platform:read"}}},
		{name: "no kid: key chosen by kty and alg",
			token: func(t *testing.T) string {
				return sign(t, &testKey{alg: jose.EdDSA, priv: edPriv()}, with(base, "scope", nil, "groups", nil), nil)
			},
			want: authn.Principal{ID: "alice", Email: "alice@example.com"}},
		{name: "aud as array",
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "aud", []string{"other", "nmp-cli"}, "scope", nil), nil)
			},
			want: authn.Principal{ID: "alice", Email: "alice@example.com", Groups: []string{"eng", "ops"}}},
		{name: "configured audience",
			cfg:   func(c *config.AuthConfig) { a := "api://nmp"; c.OIDC.Audience = &a },
			token: func(t *testing.T) string { return sign(t, keyRSA(), with(base, "aud", "api://nmp", "scope", nil), nil) },
			want:  authn.Principal{ID: "alice", Email: "alice@example.com", Groups: []string{"eng", "ops"}}},
		{name: "expired within leeway, nbf and iat within leeway",
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "exp", t0.Add(-29*time.Second).Unix(), "nbf", t0.Add(29*time.Second).Unix(),
					"iat", t0.Add(29*time.Second).Unix(), "scope", nil), nil)
			},
			want: authn.Principal{ID: "alice", Email: "alice@example.com", Groups: []string{"eng", "ops"}}},
		{name: "fractional NumericDate",
			token: func(t *testing.T) string {
				return signRawPayload(t, keyRSA(), `{"iss":"`+iss+`","aud":"nmp-cli","sub":"alice","iat":1893553445.5,"exp":1893557045.25}`)
			},
			want: authn.Principal{ID: "alice"}},
		{name: "scope_prefix stripped, permission-shaped scopes ignored",
			cfg: func(c *config.AuthConfig) { c.OIDC.ScopePrefix = &prefix },
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "groups", nil, "scope", "openid api://nmp/platform:read api://nmp/platform:write api://nmp/entities.read other://x"), nil)
			},
			want: authn.Principal{ID: "alice", Email: "alice@example.com", Scopes: []string{"openid", "platform:read", "platform:write", "other://x"}}},
		{name: "scp list used when scope absent",
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "groups", nil, "scope", nil, "scp", []any{"platform:read", "a.b", "", "two words", 7, "x\u0000y"}), nil)
			},
			want: authn.Principal{ID: "alice", Email: "alice@example.com", Scopes: []string{"platform:read"}}},
		{name: "scp string",
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "groups", nil, "scope", nil, "scp", " a  b\tc "), nil)
			},
			want: authn.Principal{ID: "alice", Email: "alice@example.com", Scopes: []string{"a", "b", "c"}}},
		{name: "cognito:groups when groups absent",
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "groups", nil, "scope", nil, "cognito:groups", []string{"admins", "devs"}), nil)
			},
			want: authn.Principal{ID: "alice", Email: "alice@example.com", Groups: []string{"admins", "devs"}}},
		{name: "groups string split on commas and trimmed",
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "scope", nil, "groups", " a, b ,,c,"), nil)
			},
			want: authn.Principal{ID: "alice", Email: "alice@example.com", Groups: []string{"a", "b", "c"}}},
		{name: "invalid and reserved groups dropped",
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "scope", nil, "groups", []any{"ok", "service:x", "service-account:y", "has space", 3, "", "ok2"}), nil)
			},
			want: authn.Principal{ID: "alice", Email: "alice@example.com", Groups: []string{"ok", "ok2"}}},
		{name: "exactly 100 groups after dropping",
			token: func(t *testing.T) string {
				g := append(kids("g", 100), "service:a", "bad group")
				return sign(t, keyRSA(), with(base, "scope", nil, "email", nil, "groups", g), nil)
			},
			want: authn.Principal{ID: "alice", Groups: kids("g", 100)}},
		{name: "invalid email dropped",
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "scope", nil, "groups", nil, "email", "not an email"), nil)
			},
			want: authn.Principal{ID: "alice"}},
		{name: "custom subject and email claims (Entra ID)",
			cfg: func(c *config.AuthConfig) { c.OIDC.SubjectClaim, c.OIDC.EmailClaim = "oid", "upn" },
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "scope", nil, "groups", nil, "oid", "0000-1111", "upn", "jane@contoso.com"), nil)
			},
			want: authn.Principal{ID: "0000-1111", Email: "jane@contoso.com"}},
		{name: "subject claim absent falls back to sub",
			cfg: func(c *config.AuthConfig) { c.OIDC.SubjectClaim = "oid" },
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "scope", nil, "groups", nil, "email", nil), nil)
			},
			want: authn.Principal{ID: "alice"}},
		{name: "custom groups claim",
			cfg: func(c *config.AuthConfig) { c.OIDC.GroupsClaim = "roles" },
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "scope", nil, "email", nil, "roles", []string{"r1"}), nil)
			},
			want: authn.Principal{ID: "alice", Groups: []string{"r1"}}},
		{name: "jku and jwk headers are ignored",
			token: func(t *testing.T) string {
				return sign(t, keyRSA(), with(base, "scope", nil, "groups", nil, "email", nil),
					map[jose.HeaderKey]any{"jku": "https://evil.example.com/jwks", "x5u": "https://evil.example.com/cert"})
			},
			want: authn.Principal{ID: "alice"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := authConfig(iss)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			h := newHarness(t, cfg)
			token := tc.token(t)
			p := mustValidate(t, h.v, token)
			if !reflect.DeepEqual(*p, tc.want) {
				t.Fatalf("principal = %+v, want %+v", *p, tc.want)
			}
			// The cache answers the same.
			if p2 := mustValidate(t, h.v, token); !reflect.DeepEqual(p2, p) {
				t.Fatalf("cached principal = %+v, want %+v", p2, p)
			}
			assertNoLeak(t, token, h.logs.String())
		})
	}
}

// TestDroppedClaimsWarn checks the warnings for dropped values name the
// claim but never the value.
func TestDroppedClaimsWarn(t *testing.T) {
	i := newIDP(t, keyRSA())
	h := newHarness(t, authConfig(i.URL()))
	mustValidate(t, h.v, sign(t, keyRSA(), with(claims(i.URL()), "email", "bad-email-value", "groups", []any{"service:secretgroup", "fine"}), nil))
	logs := h.logs.String()
	for _, want := range []string{"claim=email", "claim=groups", "dropped=1", "level=WARN"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	for _, leak := range []string{"bad-email-value", "secretgroup"} {
		if strings.Contains(logs, leak) {
			t.Errorf("logs hold the dropped value %q", leak)
		}
	}
}

func TestUnsigned(t *testing.T) {
	now := t0.Unix()
	base := map[string]any{"sub": "dev", "iat": now, "email": "dev@example.com", "groups": "a,b", "scope": "platform:read"}
	tests := []struct {
		name  string
		oidc  bool
		token string
		want  string // reason; "" = accepted
		id    string
	}{
		{name: "with exp", token: unsigned(with(base, "exp", now+60)), id: "dev"},
		{name: "without exp (--no-exp)", token: unsigned(base), id: "dev"},
		{name: "no iss or aud checks", token: unsigned(with(base, "iss", "anything", "aud", "whatever")), id: "dev"},
		{name: "with OIDC also enabled", oidc: true, token: unsigned(with(base, "iss", "https://idp.example.com")), id: "dev"},
		{name: "header with typ", token: b64j(map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64j(base) + ".", id: "dev"},
		{name: "expired exp", token: unsigned(with(base, "exp", now-31)), want: ReasonExpired},
		{name: "nbf in the future", token: unsigned(with(base, "nbf", now+31)), want: ReasonNotYetValid},
		{name: "iat in the future", token: unsigned(with(base, "iat", now+31)), want: ReasonIssuedInFuture},
		{name: "sub missing", token: unsigned(with(base, "sub", nil)), want: ReasonMissingClaim},
		{name: "iat missing", token: unsigned(with(base, "iat", nil)), want: ReasonMissingClaim},
		{name: "reserved subject", token: unsigned(with(base, "sub", "service:ingest")), want: ReasonReservedSubject},
		{name: "reserved service-account", token: unsigned(with(base, "sub", "service-account:x")), want: ReasonReservedSubject},
		{name: "invalid subject", token: unsigned(with(base, "sub", "a b")), want: ReasonInvalidSubject},
		{name: "too many groups", token: unsigned(with(base, "groups", strings.Join(kids("g", 101), ","))), want: ReasonTooManyGroups},
		{name: "non-empty signature", token: unsigned(base) + "c2ln", want: ReasonMalformed},
		{name: "crit header", token: b64j(map[string]any{"alg": "none", "crit": []string{"x"}}) + "." + b64j(base) + ".", want: ReasonCritHeader},
		{name: "payload not an object", token: b64j(map[string]any{"alg": "none"}) + "." + b64j([]int{1}) + ".", want: ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default().Auth
			cfg.Enabled, cfg.AllowUnsignedJWT = true, true
			if tc.oidc {
				cfg.OIDC.Enabled, cfg.OIDC.Issuer, cfg.OIDC.ClientID = true, "https://idp.example.com", "nmp-cli"
			}
			h := newHarness(t, cfg)
			p, err := h.v.Validate(context.Background(), tc.token)
			if got := reasonOf(t, err); got != tc.want {
				t.Fatalf("reason = %q (%v), want %q", got, err, tc.want)
			}
			if tc.want == "" {
				want := authn.Principal{ID: tc.id, Email: "dev@example.com", Groups: []string{"a", "b"}, Scopes: []string{"platform:read"}}
				if !reflect.DeepEqual(*p, want) {
					t.Fatalf("principal = %+v, want %+v", *p, want)
				}
			}
			if h.v.cache.len() != 0 {
				t.Fatal("unsigned token cached")
			}
		})
	}
}

// TestUnsignedOnlyRejectsSignedTokens: with only unsigned tokens enabled
// no issuer is trusted.
func TestUnsignedOnlyRejectsSignedTokens(t *testing.T) {
	cfg := config.Default().Auth
	cfg.AllowUnsignedJWT = true
	h := newHarness(t, cfg)
	wantReason(t, h.v, sign(t, keyRSA(), claims("https://idp.example.com"), nil), ReasonUnknownIssuer)
}

func TestNew(t *testing.T) {
	bad := "ftp://x/jwks"
	good := "https://idp.example.com/keys"
	tests := []struct {
		name    string
		cfg     func(*config.AuthConfig)
		wantErr string
	}{
		{name: "nothing enabled", cfg: func(c *config.AuthConfig) { c.OIDC.Enabled = false }, wantErr: "neither"},
		{name: "no issuer", cfg: func(c *config.AuthConfig) { c.OIDC.Issuer = "" }, wantErr: "issuer is required"},
		{name: "no audience", cfg: func(c *config.AuthConfig) { c.OIDC.ClientID = "" }, wantErr: "audience"},
		{name: "issuer not a URL", cfg: func(c *config.AuthConfig) { c.OIDC.Issuer = "idp.example.com" }, wantErr: "issuer"},
		{name: "jwks_uri not http", cfg: func(c *config.AuthConfig) { c.OIDC.JWKSURI = &bad }, wantErr: "jwks_uri"},
		{name: "bad additional issuer", cfg: func(c *config.AuthConfig) { c.OIDC.AdditionalIssuers = []string{"::"} }, wantErr: "additional_issuers"},
		{name: "valid", cfg: func(*config.AuthConfig) {}},
		{name: "valid with jwks_uri and additional issuers", cfg: func(c *config.AuthConfig) {
			c.OIDC.JWKSURI = &good
			c.OIDC.AdditionalIssuers = []string{"https://sts.example.com/t/", "", "https://idp.example.com"}
		}},
		{name: "unsigned only", cfg: func(c *config.AuthConfig) { c.OIDC.Enabled, c.AllowUnsignedJWT = false, true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := authConfig("https://idp.example.com")
			tc.cfg(&cfg)
			v, err := New(cfg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("New error = %v, want one containing %q", err, tc.wantErr)
			case tc.wantErr == "" && v == nil:
				t.Fatal("nil verifier")
			}
		})
	}
	if _, err := New(config.Default().Auth); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("default config: %v, want ErrNotConfigured", err)
	}
}

// TestNewMakesNoNetworkCall: the server starts without the IdP.
func TestNewMakesNoNetworkCall(t *testing.T) {
	i := newIDP(t, keyRSA())
	cfg := authConfig(i.URL())
	cfg.OIDC.AdditionalIssuers = []string{i.URL() + "/other"}
	newHarness(t, cfg)
	if n := i.hits(); n != 0 {
		t.Fatalf("%d requests at New", n)
	}
}

// TestContextCanceled: a canceled request does not wait for the fetch.
func TestContextCanceled(t *testing.T) {
	i := newIDP(t, keyRSA())
	i.set(func(i *idp) { i.jwksWait = time.Second })
	h := newHarness(t, authConfig(i.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.v.Validate(ctx, sign(t, keyRSA(), claims(i.URL()), nil))
	if got := reasonOf(t, err); got != ReasonJWKSFetchFailed {
		t.Fatalf("reason %q, want %q", got, ReasonJWKSFetchFailed)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("Validate waited for the fetch despite the canceled context")
	}
}
