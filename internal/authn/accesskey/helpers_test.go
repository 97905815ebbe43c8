package accesskey

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/signing"
)

const (
	testIssuer   = "https://nmp.example.com/apis/auth"
	testAudience = "nemo-platform-access-key"
	testKid      = "nemo-platform-signing"
	testJTI      = "ak_0123456789abcdef0123456789abcdef"
)

var (
	keysOnce              sync.Once
	keyCur, keyOld, keyEv *rsa.PrivateKey
)

// rsaKeys are three 2048-bit keys: the current signing key, a previous
// one and an attacker's.
func rsaKeys() (cur, old, evil *rsa.PrivateKey) {
	keysOnce.Do(func() {
		for _, k := range []**rsa.PrivateKey{&keyCur, &keyOld, &keyEv} {
			var err error
			if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		}
	})
	return keyCur, keyOld, keyEv
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock { return &testClock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, _, err := config.Load(config.LoadOptions{Environ: []string{"NMP_DATA_DIR=" + filepath.Join(t.TempDir(), "d")}})
	if err != nil {
		t.Fatal(err)
	}
	iss := testIssuer
	cfg.Auth.TokenSigning.Issuer = &iss
	cfg.Auth.AccessKeys.Enabled = true
	return cfg
}

// fakeRegistry answers from a map; a missing jti is ErrNotFound. It
// counts lookups.
type fakeRegistry struct {
	mu     sync.Mutex
	states map[string]KeyState
	err    error
	calls  int
	// block, if set, is waited on by every lookup (coalescing tests).
	block chan struct{}
}

func newRegistry() *fakeRegistry { return &fakeRegistry{states: map[string]KeyState{}} }

func (r *fakeRegistry) Lookup(_ context.Context, jti string) (KeyState, error) {
	r.mu.Lock()
	r.calls++
	block := r.block
	r.mu.Unlock()
	if block != nil {
		<-block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return KeyState{}, r.err
	}
	st, ok := r.states[jti]
	if !ok {
		return KeyState{}, ErrNotFound
	}
	return st, nil
}

func (r *fakeRegistry) set(jti string, st KeyState) {
	r.mu.Lock()
	r.states[jti] = st
	r.mu.Unlock()
}

func (r *fakeRegistry) setErr(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

func (r *fakeRegistry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func active(sub string) KeyState { return KeyState{Principal: sub, Usable: true, Status: StatusActive} }

// signClaims signs claims (a map, so tests can write anything) with key
// under kid and alg.
func signClaims(t testing.TB, key any, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// baseClaims are a valid USER key's claims at now.
func baseClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": "alice", "jti": testJTI,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"nmp_token_type": "access_key",
		"nmp_access_key": map[string]any{"version": 2, "entity_type": "USER", "name": "ci"},
		"email":          "alice@example.com", "groups": "eng,ops",
	}
}

// harness is a validator over the current and previous keys, a fake
// registry with testJTI active for alice, and a settable clock.
type harness struct {
	v     *Validator
	reg   *fakeRegistry
	clock *testClock
	keys  *signing.Keys
}

func newHarness(t testing.TB, opts ...Option) *harness {
	t.Helper()
	cur, old, _ := rsaKeys()
	keys, err := signing.New(testKid, cur, map[string]*rsa.PublicKey{"old-key": &old.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{reg: newRegistry(), clock: newClock(), keys: keys}
	h.reg.set(testJTI, active("alice"))
	v, err := NewValidator(testConfig(t), keys, h.reg, append([]Option{WithClock(h.clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h.v = v
	return h
}

// reasonOf is the sub-reason of a refusal: InvalidToken's reason,
// "unavailable:"+IdPUnavailable's, "" for success.
func reasonOf(err error) string {
	var it *authn.InvalidToken
	var un *authn.IdPUnavailable
	switch {
	case err == nil:
		return ""
	case errors.As(err, &it):
		return it.Reason
	case errors.As(err, &un):
		return "unavailable:" + un.Reason
	}
	return "other:" + err.Error()
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
