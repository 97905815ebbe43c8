package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/testenv"
)

func TestLooksLikeJWT(t *testing.T) {
	tests := []struct {
		token string
		want  bool
	}{
		{"eyJhbGciOiJSUzI1NiJ9.e30.c2ln", true},
		{"eyJhbGciOiJub25lIn0.e30.", true},          // unsigned: the JWT path refuses or accepts it
		{"eyJhbGciOiJSUzI1NiJ9.!!.x", true},         // malformed JWT: the JWT path says why
		{"eyJ0eXAiOiJKV1QifQ.e30.c2ln", false},      // header without alg
		{"not-a-jwt", false},                        // random opaque token
		{"ya29.a0AfH6SMBx", false},                  // one dot (Google style)
		{"a.b.c", false},                            // three parts, header not JSON
		{"2YotnFZFEjr1zCsicMWpAA", false},           // RFC 6749 example
		{"eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", false}, // JWE: five parts
		{"eyJhbGciOiJSUzI1NiJ9..", true},            // empty payload: still JWT-shaped
		{"W10.e30.c2ln", false},                     // header is a JSON array
		{"eyJhbGciOjF9.e30.c2ln", false},            // alg not a string
		{"", false},
	}
	for _, tc := range tests {
		if got := LooksLikeJWT(tc.token); got != tc.want {
			t.Errorf("LooksLikeJWT(%q) = %v, want %v", tc.token, got, tc.want)
		}
	}
}

type recordTokens struct{ got []string }

func (r *recordTokens) Validate(_ context.Context, tok string) (*Principal, error) {
	r.got = append(r.got, tok)
	return &Principal{ID: "u"}, nil
}

// TestTokenRouter: JWT-shaped tokens go to the JWT validator, opaque ones
// to the opaque validator.
func TestTokenRouter(t *testing.T) {
	jwt, opaque := &recordTokens{}, &recordTokens{}
	r := &TokenRouter{JWT: jwt, Opaque: opaque}
	for _, tok := range []string{"eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "opaque-1", "a.b.c"} {
		if _, err := r.Validate(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if len(jwt.got) != 1 || len(opaque.got) != 2 {
		t.Fatalf("jwt %v, opaque %v", jwt.got, opaque.got)
	}
}

// TestOpaqueWithoutIntrospection: an opaque token is refused with
// opaque_token; the client is told what is wrong and how to fix it; the
// operator is advised in the log at most once a minute.
func TestOpaqueWithoutIntrospection(t *testing.T) {
	logs := &testenv.Buffer{}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &TokenRouter{JWT: &recordTokens{}, Log: slog.New(slog.NewTextHandler(logs, nil)), Now: func() time.Time { return now }}
	id := NewIdentifier(IdentifierConfig{Enabled: true, Production: true, Tokens: r})
	const tok = "opaque-secret-token-value"
	_, err := id.Bearer(context.Background(), "Bearer "+tok)
	var rej *Rejection
	if !errors.As(err, &rej) {
		t.Fatalf("err %v", err)
	}
	if rej.Code != CodeInvalidToken || rej.Detail != ReasonOpaqueToken || rej.Unavailable() {
		t.Fatalf("rejection %+v", rej)
	}
	for _, want := range []string{"Invalid bearer token", "opaque (not a JWT)", "JWT access tokens", "auth.oidc.introspection"} {
		if !strings.Contains(rej.Message, want) {
			t.Fatalf("message %q lacks %q", rej.Message, want)
		}
	}
	_, _ = id.Bearer(context.Background(), "Bearer "+tok)
	if n := strings.Count(logs.String(), "reason=opaque_token"); n != 1 {
		t.Fatalf("%d advice lines, want 1:\n%s", n, logs.String())
	}
	now = now.Add(time.Minute)
	_, _ = id.Bearer(context.Background(), "Bearer "+tok)
	if n := strings.Count(logs.String(), "reason=opaque_token"); n != 2 {
		t.Fatalf("%d advice lines a minute later, want 2", n)
	}
	if strings.Contains(logs.String(), tok) || strings.Contains(rej.Error(), tok) {
		t.Fatal("token leaked")
	}
}

type unavailableTokens struct{}

func (unavailableTokens) Validate(context.Context, string) (*Principal, error) {
	return nil, &IdPUnavailable{Reason: "introspection_timeout", Detail: "slow"}
}

// TestIdPUnavailableRejection: a validator that cannot reach the IdP
// gives an idp_unavailable rejection (the edge's 503), not invalid_token.
func TestIdPUnavailableRejection(t *testing.T) {
	id := NewIdentifier(IdentifierConfig{Enabled: true, Production: true, Tokens: unavailableTokens{}})
	_, err := id.Bearer(context.Background(), "Bearer x")
	var rej *Rejection
	if !errors.As(err, &rej) || !rej.Unavailable() || rej.Code != CodeIdPUnavailable || rej.Detail != "introspection_timeout" || rej.BadInput() {
		t.Fatalf("err %#v", err)
	}
}

// jwtWithIssuer is an (unsigned-looking) JWT-shaped token whose payload
// holds iss; the router never checks signatures.
func jwtWithIssuer(iss any) string {
	payload, _ := json.Marshal(map[string]any{"iss": iss, "sub": "x"})
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(payload) + ".c2ln"
}

// TestTokenRouterAccessKeys: a JWT whose iss is the access-key issuer goes
// to the access-key validator only; every other token goes where it went
// before, never to the access-key validator.
func TestTokenRouterAccessKeys(t *testing.T) {
	const akIss = "https://nmp.example.com/apis/auth"
	tests := []struct {
		name                     string
		token                    string
		wantJWT, wantAK, wantOpq int
	}{
		{"access-key issuer", jwtWithIssuer(akIss), 0, 1, 0},
		{"oidc issuer", jwtWithIssuer("https://idp.example.com/"), 1, 0, 0},
		{"issuer with trailing slash", jwtWithIssuer(akIss + "/"), 1, 0, 0},
		{"issuer differing in case", jwtWithIssuer(strings.ToUpper(akIss)), 1, 0, 0},
		{"issuer not a string", jwtWithIssuer([]string{akIss}), 1, 0, 0},
		{"no issuer", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", 1, 0, 0},
		{"opaque token containing the issuer", akIss, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jwt, ak, opaque := &recordTokens{}, &recordTokens{}, &recordTokens{}
			r := &TokenRouter{JWT: jwt, Opaque: opaque, AccessKeys: ak, AccessKeyIssuer: akIss}
			if _, err := r.Validate(context.Background(), tt.token); err != nil {
				t.Fatal(err)
			}
			if len(jwt.got) != tt.wantJWT || len(ak.got) != tt.wantAK || len(opaque.got) != tt.wantOpq {
				t.Fatalf("jwt %d, access keys %d, opaque %d; want %d, %d, %d",
					len(jwt.got), len(ak.got), len(opaque.got), tt.wantJWT, tt.wantAK, tt.wantOpq)
			}
		})
	}
	t.Run("without access keys the issuer goes to the JWT validator", func(t *testing.T) {
		jwt := &recordTokens{}
		r := &TokenRouter{JWT: jwt, AccessKeyIssuer: akIss}
		if _, err := r.Validate(context.Background(), jwtWithIssuer(akIss)); err != nil || len(jwt.got) != 1 {
			t.Fatalf("err %v, jwt %v", err, jwt.got)
		}
	})
	t.Run("access keys only: other JWTs refused as unknown issuer", func(t *testing.T) {
		ak := &recordTokens{}
		r := &TokenRouter{AccessKeys: ak, AccessKeyIssuer: akIss}
		_, err := r.Validate(context.Background(), jwtWithIssuer("https://idp.example.com/"))
		var it *InvalidToken
		if !errors.As(err, &it) || it.Reason != "unknown_issuer" || len(ak.got) != 0 {
			t.Fatalf("err %v, access keys %v", err, ak.got)
		}
		if _, err := r.Validate(context.Background(), jwtWithIssuer(akIss)); err != nil || len(ak.got) != 1 {
			t.Fatalf("err %v, access keys %v", err, ak.got)
		}
	})
}

func TestUnverifiedIssuer(t *testing.T) {
	tests := []struct {
		name, token, want string
	}{
		{"string", jwtWithIssuer("https://a"), "https://a"},
		{"number", jwtWithIssuer(5), ""},
		{"two parts", "eyJhbGciOiJSUzI1NiJ9.e30", ""},
		{"payload not base64", "eyJhbGciOiJSUzI1NiJ9.!!.x", ""},
		{"payload not JSON", "eyJhbGciOiJSUzI1NiJ9.bm90.x", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UnverifiedIssuer(tt.token); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// cachingTokens is a JWT validator with a cache of the tokens it has
// validated, as jwtverify.Verifier has.
type cachingTokens struct {
	recordTokens
	seen map[string]bool
	hits int
}

func (c *cachingTokens) Validate(ctx context.Context, tok string) (*Principal, error) {
	c.seen[tok] = true
	return c.recordTokens.Validate(ctx, tok)
}

func (c *cachingTokens) Cached(_ context.Context, tok string) (*Principal, bool, error) {
	if !c.seen[tok] {
		return nil, false, nil
	}
	c.hits++
	return &Principal{ID: "cached"}, true, nil
}

// TestTokenRouterAsksTheCacheFirst: a token the JWT validator has
// validated is answered from its cache without being routed again; every
// other token is routed as before, so an access-key token never reaches
// the JWT validator and an opaque one goes to introspection.
func TestTokenRouterAsksTheCacheFirst(t *testing.T) {
	const akIss = "https://nmp.example.com/apis/auth"
	jwt, ak, opaque := &cachingTokens{seen: map[string]bool{}}, &recordTokens{}, &recordTokens{}
	r := &TokenRouter{JWT: jwt, Opaque: opaque, AccessKeys: ak, AccessKeyIssuer: akIss}
	oidc := jwtWithIssuer("https://idp.example.com/")
	for range 3 {
		for _, tok := range []string{oidc, jwtWithIssuer(akIss), "opaque-1"} {
			if _, err := r.Validate(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(jwt.got) != 1 || jwt.hits != 2 || len(ak.got) != 3 || len(opaque.got) != 3 {
		t.Fatalf("jwt validated %d, answered from its cache %d; access keys %d; opaque %d; want 1, 2, 3, 3",
			len(jwt.got), jwt.hits, len(ak.got), len(opaque.got))
	}
	if p, _ := r.Validate(context.Background(), oidc); p == nil || p.ID != "cached" {
		t.Fatalf("principal %+v, want the cache's", p)
	}
}
