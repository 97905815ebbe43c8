package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authn/accesskey"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/signing"
)

// memRegistry is an access-key registry in memory.
type memRegistry struct {
	mu     sync.Mutex
	states map[string]accesskey.KeyState
	err    error
}

func (r *memRegistry) Lookup(_ context.Context, jti string) (accesskey.KeyState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return accesskey.KeyState{}, r.err
	}
	st, ok := r.states[jti]
	if !ok {
		return accesskey.KeyState{}, accesskey.ErrNotFound
	}
	return st, nil
}

func (r *memRegistry) set(jti string, st accesskey.KeyState, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states[jti], r.err = st, err
}

func withAccessKeys(c *config.Config) {
	devMode(c)
	c.Auth.AccessKeys.Enabled = true
}

// mintFor signs an access key for sub with the server's signing key (the
// file it generated in its data directory).
func mintFor(t *testing.T, srv *servertest.Server, sub, jti string, scopes []string) string {
	t.Helper()
	keys, err := signing.Load(srv.Config, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := accesskey.NewMinter(srv.Config, keys).Mint(accesskey.MintRequest{JTI: jti, Subject: sub,
		EntityType: accesskey.EntityUser, Name: "ci", Email: sub + "@example.com", Groups: []string{"eng"}, Scopes: scopes,
		IssuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestAccessKeysEndToEnd: with access keys enabled (and OIDC off) the
// server publishes its signing key, accepts its access keys at the
// callout and on API paths with token_kind access_key, refuses keys the
// registry does not allow on the next request, fails closed when the
// registry is down, and is in production mode.
func TestAccessKeysEndToEnd(t *testing.T) {
	reg := &memRegistry{states: map[string]accesskey.KeyState{}}
	srv := servertest.Start(t, withAccessKeys, server.WithAccessKeyRegistry(reg))
	const jti = "ak_00112233445566778899aabbccddeeff"
	tok := mintFor(t, srv, "alice", jti, []string{"platform:read"})
	reg.set(jti, accesskey.KeyState{Principal: "alice", Usable: true, Status: accesskey.StatusActive}, nil)

	t.Run("jwks", func(t *testing.T) {
		status, h, body := call(t, "GET", srv.URL+"/apis/auth/jwks", "")
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(body, &set); err != nil || status != 200 || h.Get("Cache-Control") != "public, max-age=300" {
			t.Fatalf("%d %v %s", status, h, body)
		}
		if len(set.Keys) != 1 || set.Keys[0]["kid"] != "nemo-platform-signing" || set.Keys[0]["kty"] != "RSA" ||
			set.Keys[0]["alg"] != "RS256" || set.Keys[0]["use"] != "sig" || set.Keys[0]["d"] != nil {
			t.Fatalf("jwks %s", body)
		}
		keys, err := signing.Load(srv.Config, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(keys.JWKS())
		if strings.TrimSpace(string(body)) != string(want) {
			t.Errorf("published %s, want the signing key's %s", body, want)
		}
	})
	t.Run("callout says access_key", func(t *testing.T) {
		status, h, body := call(t, "GET", srv.URL+"/apis/auth/authenticate/x", "", bearer(tok)...)
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		if status != 200 || m["token_kind"] != "access_key" || m["principal"] != "alice" || m["jti"] != jti ||
			m["email"] != "alice@example.com" || h.Get("X-NMP-Scopes") != "platform:read" {
			t.Fatalf("%d %v %s", status, h, body)
		}
	})
	t.Run("api path", func(t *testing.T) {
		if status, _, body := call(t, "GET", srv.URL+"/apis/entities/v2/workspaces", "", bearer(tok)...); status != 200 {
			t.Fatalf("%d %s", status, body)
		}
	})
	t.Run("other JWTs are invalid tokens, not unconfigured", func(t *testing.T) {
		other := "eyJhbGciOiJSUzI1NiJ9." + b64json(t, map[string]any{"iss": "https://idp.example.com/", "sub": "x"}) + ".c2ln"
		status, _, body := call(t, "GET", srv.URL+"/apis/auth/authenticate", "", bearer(other)...)
		if status != 401 || !strings.Contains(string(body), "invalid_token") {
			t.Fatalf("%d %s", status, body)
		}
	})
	t.Run("production mode", func(t *testing.T) {
		status, _, body := call(t, "GET", srv.URL+"/apis/entities/v2/workspaces", "", "X-NMP-Principal-Id", "root")
		if status != 401 || !strings.Contains(string(body), "untrusted_identity_headers") {
			t.Fatalf("%d %s", status, body)
		}
	})
	// The registry's answers are cached once its change feed is
	// connected (keys changed through the store are forgotten at once:
	// internal/server's TestAccessKeysLifecycle); these keys are new to
	// the cache, so the registry is asked.
	t.Run("a revoked key is refused", func(t *testing.T) {
		const revoked = "ak_11112233445566778899aabbccddeeff"
		tok := mintFor(t, srv, "alice", revoked, nil)
		reg.set(revoked, accesskey.KeyState{Principal: "alice", Status: accesskey.StatusRevoked}, nil)
		status, h, body := call(t, "GET", srv.URL+"/apis/auth/authenticate", "", bearer(tok)...)
		if status != 401 || !strings.Contains(string(body), "invalid_token") ||
			!strings.Contains(h.Get("WWW-Authenticate"), "access key is not usable") {
			t.Fatalf("%d %v %s", status, h, body)
		}
		if logs := srv.Logs(); !strings.Contains(logs, "access_key_rejected") || strings.Contains(logs, tok) {
			t.Error("refusal not logged with its reason, or the token was logged")
		}
	})
	t.Run("registry down fails closed", func(t *testing.T) {
		const unseen = "ak_22222233445566778899aabbccddeeff"
		tok := mintFor(t, srv, "alice", unseen, nil)
		reg.set(unseen, accesskey.KeyState{}, errors.New("database unreachable"))
		status, _, body := call(t, "GET", srv.URL+"/apis/auth/authenticate", "", bearer(tok)...)
		if status != 503 || !strings.Contains(string(body), "Access key registry unavailable") {
			t.Fatalf("%d %s", status, body)
		}
	})
}

// TestJWKSEmptyWithoutAccessKeys: no signing key is loaded or generated.
func TestJWKSEmptyWithoutAccessKeys(t *testing.T) {
	srv := servertest.Start(t, devMode)
	status, _, body := call(t, "GET", srv.URL+"/apis/auth/jwks", "")
	if status != 200 || string(body) != "{\"keys\":[]}\n" {
		t.Fatalf("%d %s", status, body)
	}
	if _, err := os.Stat(srv.Config.TokenSigningKeyFile()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("signing key file: %v, want none generated", err)
	}
}

func b64json(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
