package jwtverify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/testenv"
)

// t0 is the fake clock's start.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testKey is a signing key with the JWK attributes the IdP publishes.
type testKey struct {
	kid    string
	alg    jose.SignatureAlgorithm
	priv   crypto.Signer
	use    string // published "use"; "" = unset
	jwkAlg string // published "alg"; "" = unset
}

func (k *testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: k.jwkAlg, Use: k.use}
}

// with returns a copy under another kid or use.
func (k *testKey) with(kid, use string) *testKey {
	c := *k
	c.kid, c.use = kid, use
	return &c
}

var (
	rsaPriv = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	rsaAlt  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	// rsaOther is never published.
	rsaOther = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	ecPriv   = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return k
	})
	ec384Priv = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		return k
	})
	edPriv = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		return k
	})
	// edPrivOther is never published.
	edPrivOther = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		return k
	})
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func keyRSA() *testKey {
	return &testKey{kid: "rsa-1", alg: jose.RS256, priv: rsaPriv(), use: "sig", jwkAlg: "RS256"}
}
func keyRSAAlt() *testKey { return &testKey{kid: "rsa-2", alg: jose.RS256, priv: rsaAlt(), use: "sig"} }
func keyPS() *testKey {
	return &testKey{kid: "ps-1", alg: jose.PS256, priv: rsaPriv(), use: "sig", jwkAlg: "PS256"}
}
func keyEC() *testKey { return &testKey{kid: "ec-1", alg: jose.ES256, priv: ecPriv()} }
func keyEC384() *testKey {
	return &testKey{kid: "ec-384", alg: jose.ES384, priv: ec384Priv(), use: "sig"}
}
func keyEd() *testKey { return &testKey{kid: "ed-1", alg: jose.EdDSA, priv: edPriv(), use: "sig"} }

// idp is a discovery + JWKS server on 127.0.0.1 that counts requests.
type idp struct {
	srv *httptest.Server

	mu       sync.Mutex
	keys     []jose.JSONWebKey
	body     []byte // raw JWKS body override
	issuer   string // issuer in the discovery document; "" = own URL
	status   int    // non-zero: answer every request with it
	down     bool   // close connections
	jwksWait time.Duration

	discHits, jwksHits atomic.Int64
}

func newIDP(t testing.TB, keys ...*testKey) *idp {
	t.Helper()
	i := &idp{}
	i.srv = httptest.NewServer(http.HandlerFunc(i.serve))
	t.Cleanup(i.srv.Close)
	i.setKeys(keys...)
	return i
}

func (i *idp) URL() string { return i.srv.URL }

func (i *idp) hits() int64 { return i.discHits.Load() + i.jwksHits.Load() }

func (i *idp) setKeys(keys ...*testKey) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = nil
	for _, k := range keys {
		i.keys = append(i.keys, k.jwk())
	}
}

func (i *idp) set(f func(i *idp)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	f(i)
}

func (i *idp) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		i.discHits.Add(1)
	case "/jwks":
		i.jwksHits.Add(1)
	}
	i.mu.Lock()
	down, status, issuer, body, wait := i.down, i.status, i.issuer, i.body, i.jwksWait
	keys := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), i.keys...)}
	i.mu.Unlock()
	if down {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
	}
	if status != 0 {
		http.Error(w, "unavailable", status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		if issuer == "" {
			issuer = i.srv.URL
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": i.srv.URL + "/jwks"})
	case "/jwks":
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-r.Context().Done():
				return
			}
		}
		if body != nil {
			_, _ = w.Write(body)
			return
		}
		_ = json.NewEncoder(w).Encode(keys)
	default:
		http.NotFound(w, r)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// authConfig is an OIDC configuration for issuer with client id nmp-cli.
func authConfig(issuer string) config.AuthConfig {
	c := config.Default().Auth
	c.Enabled = true
	c.OIDC.Enabled = true
	c.OIDC.Issuer = issuer
	c.OIDC.ClientID = "nmp-cli"
	return c
}

type harness struct {
	v     *Verifier
	clock *fakeClock
	logs  *testenv.Buffer
}

func newHarness(t testing.TB, cfg config.AuthConfig, opts ...Option) *harness {
	t.Helper()
	h := &harness{clock: newClock(), logs: &testenv.Buffer{}}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v, err := New(cfg, append([]Option{WithClock(h.clock.Now), WithLogger(log)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.v = v
	// An unknown-kid refetch inside the minimum interval waits on the
	// fake clock, as everything else here does.
	for _, ks := range v.keySets() {
		ks.sleep = h.clock.Advance
	}
	return h
}

// claims are a valid token's claims for iss at the fake clock's start.
func claims(iss string) map[string]any {
	return map[string]any{
		"iss": iss, "aud": "nmp-cli", "sub": "alice",
		"iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(),
		"email": "alice@example.com", "groups": []string{"eng", "ops"},
		"scope": "openid platform:read",
	}
}

func with(c map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(c))
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// sign makes a compact JWS with k; the kid header is k.kid unless empty.
func sign(t testing.TB, k *testKey, c map[string]any, extra map[jose.HeaderKey]any) string {
	t.Helper()
	return signWith(t, k.alg, k.priv, k.kid, c, extra)
}

// signWith signs with any go-jose key (also HMAC secrets).
func signWith(t testing.TB, alg jose.SignatureAlgorithm, priv any, kid string, c map[string]any, extra map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	for h, v := range extra {
		opts.WithHeader(h, v)
	}
	signingKey := priv
	if kid != "" {
		signingKey = jose.JSONWebKey{Key: priv, KeyID: kid}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: signingKey}, opts)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64raw(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64j(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// unsigned makes an `alg: none` token.
func unsigned(c map[string]any) string {
	return b64j(map[string]any{"alg": "none"}) + "." + b64j(c) + "."
}

// reasonOf returns the InvalidToken reason of err ("" if nil).
func reasonOf(t testing.TB, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var it *authn.InvalidToken
	if !errors.As(err, &it) {
		t.Fatalf("error %T %v is not *authn.InvalidToken", err, err)
	}
	return it.Reason
}

func mustValidate(t testing.TB, v *Verifier, token string) *authn.Principal {
	t.Helper()
	p, err := v.Validate(context.Background(), token)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return p
}

func wantReason(t testing.TB, v *Verifier, token, want string) {
	t.Helper()
	p, err := v.Validate(context.Background(), token)
	if got := reasonOf(t, err); got != want {
		t.Fatalf("reason = %q (err %v, principal %+v), want %q", got, err, p, want)
	}
	if p != nil {
		t.Fatalf("principal %+v returned with an error", p)
	}
}

// segments returns the token's base64 parts that must never be echoed.
func segments(token string) []string {
	var out []string
	for _, s := range strings.Split(token, ".") {
		if len(s) >= 12 {
			out = append(out, s)
		}
	}
	return out
}

// tamperMiddle flips one base64url character in the middle of s (the
// last character may carry padding bits strict decoding rejects).
func tamperMiddle(s string) string {
	i := len(s) / 2
	repl := byte('A')
	if s[i] == 'A' {
		repl = 'B'
	}
	return s[:i] + string(repl) + s[i+1:]
}

// part returns the token's n-th part.
func part(token string, n int) string { return strings.Split(token, ".")[n] }

// replacePart swaps the token's n-th part.
func replacePart(token string, n int, with string) string {
	p := strings.Split(token, ".")
	p[n] = with
	return strings.Join(p, ".")
}

func kids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}
