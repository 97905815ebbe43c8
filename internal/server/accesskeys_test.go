package server_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authn/accesskey"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/signing"
)

// keysMode is production mode with access keys: identity headers are
// accepted from the loopback gateway only (the tests' human callers),
// everything else needs a bearer token.
func keysMode(c *config.Config) {
	devMode(c)
	c.Auth.AccessKeys.Enabled = true
	c.Auth.TrustedProxies = []string{"127.0.0.1/32"}
}

// caller is how a test request authenticates: identity headers (a user
// behind the trusted gateway, with optional token scopes) or a bearer
// token.
type caller struct {
	principal, email, scopes, token string
	// requestID, when set, is sent as X-Request-Id.
	requestID string
}

// as is a user whose id is its email.
func as(email string) caller { return caller{principal: email, email: email} }
func asScoped(email, scopes string) caller {
	return caller{principal: email, email: email, scopes: scopes}
}
func withKey(token string) caller { return caller{token: token} }

func (c caller) set(h http.Header) {
	for name, v := range map[string]string{"X-NMP-Principal-Id": c.principal, "X-NMP-Principal-Email": c.email,
		"X-NMP-Scopes": c.scopes} {
		if v != "" {
			h.Set(name, v)
		}
	}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	if c.requestID != "" {
		h.Set("X-Request-Id", c.requestID)
	}
}

// do sends a request as c and decodes the JSON answer.
func do(t testing.TB, base string, c caller, method, path, body string) (int, map[string]any, string) {
	t.Helper()
	r := sendAs(t, method, base+path, c, body)
	var m map[string]any
	_ = json.Unmarshal([]byte(r.body), &m)
	return r.status, m, r.body
}

const keysPath = "/apis/auth/v2/access-keys"

// mint creates a key as c and returns its jti and token.
func mint(t testing.TB, base string, c caller, body string) (jti, token string) {
	t.Helper()
	status, m, raw := do(t, base, c, "POST", keysPath, body)
	if status != 201 {
		t.Fatalf("create key: %d %s", status, raw)
	}
	jti, _ = m["jti"].(string)
	token, _ = m["token"].(string)
	if !accesskey.ValidJTI(jti) || token == "" || m["token_type"] != "Bearer" || m["status"] != "ACTIVE" {
		t.Fatalf("create key answered %s", raw)
	}
	return jti, token
}

// TestAccessKeysLifecycle drives the whole access-key API against a real
// server and store, with an injected clock: what a key may do (its scopes
// bind even a PlatformAdmin), who may mint and manage keys, and that
// suspension, revocation, rotation and expiry are refused on the very
// next request.
func TestAccessKeysLifecycle(t *testing.T) {
	var offset atomic.Int64
	start := time.Now()
	now := func() time.Time { return start.Add(time.Duration(offset.Load())) }
	advance := func(d time.Duration) { offset.Add(int64(d)) }
	srv := servertest.Start(t, keysMode, server.WithClock(now))
	srv.WaitReady(t)
	base := srv.URL
	alice, bob, admin := as("alice@example.com"), as("bob@example.com"), as("root@example.com")
	if st, _, raw := do(t, base, alice, "POST", "/apis/entities/v2/workspaces", `{"name": "ml-team"}`); st != 201 {
		t.Fatalf("create workspace: %d %s", st, raw)
	}
	const ws = "/apis/entities/v2/workspaces/ml-team"

	readJTI, readOnly := mint(t, base, alice, `{"name": "nightly report", "scopes": ["platform:read"]}`)
	fullJTI, full := mint(t, base, alice, `{"name": "deploy"}`)

	t.Run("a platform:read key reads and cannot write", func(t *testing.T) {
		if st, _, raw := do(t, base, withKey(readOnly), "GET", ws+"/projects", ""); st != 200 {
			t.Fatalf("read: %d %s", st, raw)
		}
		st, m, raw := do(t, base, withKey(readOnly), "POST", ws+"/projects", `{"name": "p1"}`)
		if st != 403 || m["reason"] != "scope_missing" {
			t.Fatalf("write with a read-only key: %d %s", st, raw)
		}
		// self-check gives the same answer
		st, m, raw = do(t, base, withKey(readOnly), "POST", "/apis/auth/v2/self-check", `{"method": "POST", "path": "`+ws+`/projects"}`)
		if st != 200 || m["allowed"] != false || m["reason"] != "scope_missing" {
			t.Fatalf("self-check: %d %s", st, raw)
		}
	})
	t.Run("an unscoped key has its principal's rights", func(t *testing.T) {
		if st, _, raw := do(t, base, withKey(full), "POST", ws+"/projects", `{"name": "p2"}`); st != 201 {
			t.Fatalf("write: %d %s", st, raw)
		}
	})
	t.Run("a PlatformAdmin's read-only key cannot write", func(t *testing.T) {
		_, adminRead := mint(t, base, admin, `{"scopes": ["platform:read"]}`)
		if st, _, raw := do(t, base, withKey(adminRead), "GET", ws, ""); st != 200 {
			t.Fatalf("admin key read: %d %s", st, raw)
		}
		st, m, raw := do(t, base, withKey(adminRead), "POST", "/apis/entities/v2/workspaces", `{"name": "by-admin-key"}`)
		if st != 403 || m["reason"] != "scope_missing" {
			t.Fatalf("admin read-only key wrote: %d %s", st, raw)
		}
	})
	t.Run("scopes wider than the creator's are refused", func(t *testing.T) {
		// Creating a key takes auth:write (or platform:write); this
		// creator's token holds auth:write but may only read elsewhere.
		restricted := asScoped("alice@example.com", "platform:read auth:write")
		st, m, raw := do(t, base, restricted, "POST", keysPath, `{"scopes": ["platform:write"]}`)
		if st != 403 || m["code"] != "scope_not_held" || !strings.Contains(raw, "platform:write") {
			t.Fatalf("%d %s", st, raw)
		}
		// A restricted creator's key without scopes inherits the restriction.
		_, inherited := mint(t, base, restricted, `{}`)
		if st, m, raw := do(t, base, withKey(inherited), "POST", ws+"/projects", `{"name": "p3"}`); st != 403 || m["reason"] != "scope_missing" {
			t.Fatalf("inherited key wrote: %d %s", st, raw)
		}
		// An empty list is no escape from the restriction either.
		_, empty := mint(t, base, restricted, `{"scopes": []}`)
		if st, m, raw := do(t, base, withKey(empty), "POST", ws+"/projects", `{"name": "p4"}`); st != 403 || m["reason"] != "scope_missing" {
			t.Fatalf("key minted with [] wrote: %d %s", st, raw)
		}
		// platform:read covers a service's read scope.
		mint(t, base, restricted, `{"scopes": ["entities:read"]}`)
	})
	t.Run("keys cannot mint keys", func(t *testing.T) {
		// A read-only key does not even reach the handler (creating
		// needs a write scope); an unscoped key is refused by it.
		if st, m, raw := do(t, base, withKey(readOnly), "POST", keysPath, `{}`); st != 403 || m["reason"] != "scope_missing" {
			t.Fatalf("read-only key: %d %s", st, raw)
		}
		st, m, raw := do(t, base, withKey(full), "POST", keysPath, `{}`)
		if st != 403 || m["code"] != "access_key_cannot_create" {
			t.Fatalf("%d %s", st, raw)
		}
		if st, m, raw := do(t, base, withKey(full), "POST", keysPath+"/"+fullJTI+"/rotate", `{}`); st != 403 || m["code"] != "access_key_cannot_create" {
			t.Fatalf("rotate with a key: %d %s", st, raw)
		}
		// The endpoint admits principals only: the decision point refuses
		// a service principal before the handler would.
		if st, m, raw := do(t, base, caller{principal: "service:jobs"}, "POST", keysPath, `{}`); st != 403 || m["reason"] != "callers_restricted" {
			t.Fatalf("service caller: %d %s", st, raw)
		}
	})
	t.Run("bad requests change nothing", func(t *testing.T) {
		for _, tc := range []struct{ name, body, code string }{
			{"unknown field", `{"nam": "x"}`, "validation_error"},
			{"long name", `{"name": "` + strings.Repeat("n", 129) + `"}`, "validation_error"},
			{"not a scope", `{"scopes": ["admin"]}`, "validation_error"},
			{"permission-shaped scope", `{"scopes": ["workspaces.read"]}`, "invalid_scope"},
			{"expiry above the maximum", `{"expires_in_seconds": 2592001}`, "invalid_expires_in"},
			{"no expiry while a maximum is set", `{"expires_in_seconds": null}`, "invalid_expires_in"},
			{"expiry not an integer", `{"expires_in_seconds": "soon"}`, "validation_error"},
			{"bad service account id", `{"service_account_id": "-x"}`, "validation_error"},
		} {
			st, m, raw := do(t, base, alice, "POST", keysPath, tc.body)
			if st < 400 || st > 422 || m["code"] != tc.code {
				t.Errorf("%s: %d %s", tc.name, st, raw)
			}
		}
		_, m, _ := do(t, base, alice, "GET", keysPath, "")
		if n := len(m["data"].([]any)); n != 5 {
			t.Errorf("alice has %d keys after refused requests, want 5", n)
		}
	})
	t.Run("list shows metadata, never tokens, and only the caller's keys", func(t *testing.T) {
		st, m, raw := do(t, base, alice, "GET", keysPath+"?page_size=2", "")
		if st != 200 || m["has_more"] != true || len(m["data"].([]any)) != 2 || strings.Contains(raw, `"token"`) ||
			strings.Contains(raw, readOnly) || strings.Contains(raw, full) {
			t.Fatalf("%d %s", st, raw)
		}
		_, m, _ = do(t, base, bob, "GET", keysPath, "")
		if n := len(m["data"].([]any)); n != 0 {
			t.Fatalf("bob sees %d of alice's keys", n)
		}
		if st, _, raw := do(t, base, alice, "GET", keysPath+"?page_size=101", ""); st != 422 {
			t.Fatalf("page_size 101: %d %s", st, raw)
		}
	})
	t.Run("other users' keys do not exist for them", func(t *testing.T) {
		for _, action := range []string{"DELETE " + keysPath + "/" + readJTI, "POST " + keysPath + "/" + readJTI + "/suspend"} {
			method, path, _ := strings.Cut(action, " ")
			if st, _, raw := do(t, base, bob, method, path, ""); st != 404 {
				t.Fatalf("bob %s: %d %s", action, st, raw)
			}
		}
		if st, _, _ := do(t, base, withKey(readOnly), "GET", ws, ""); st != 200 {
			t.Fatal("bob's attempts changed alice's key")
		}
	})
	t.Run("suspend and unsuspend take effect on the next request", func(t *testing.T) {
		st, m, raw := do(t, base, alice, "POST", keysPath+"/"+readJTI+"/suspend", "")
		if st != 200 || m["status"] != "SUSPENDED" || m["changed"] != true {
			t.Fatalf("%d %s", st, raw)
		}
		if st, _, raw := do(t, base, withKey(readOnly), "GET", ws, ""); st != 401 {
			t.Fatalf("suspended key: %d %s", st, raw)
		}
		if _, m, _ := do(t, base, alice, "POST", keysPath+"/"+readJTI+"/suspend", ""); m["changed"] != false {
			t.Fatalf("second suspend changed: %v", m)
		}
		if _, m, _ := do(t, base, alice, "POST", keysPath+"/"+readJTI+"/unsuspend", ""); m["status"] != "ACTIVE" || m["changed"] != true {
			t.Fatalf("unsuspend: %v", m)
		}
		if st, _, raw := do(t, base, withKey(readOnly), "GET", ws, ""); st != 200 {
			t.Fatalf("unsuspended key: %d %s", st, raw)
		}
	})
	t.Run("rotation: old key until the grace ends, then 401", func(t *testing.T) {
		st, m, raw := do(t, base, alice, "POST", keysPath+"/"+fullJTI+"/rotate", `{"grace_period_seconds": 60}`)
		if st != 200 || m["previous_jti"] != fullJTI || m["previous_status"] != "ROTATING" || m["grace_period_seconds"] != float64(60) {
			t.Fatalf("%d %s", st, raw)
		}
		next := m["new_key"].(map[string]any)
		newTok := next["token"].(string)
		if st, m, _ := do(t, base, alice, "POST", keysPath+"/"+fullJTI+"/rotate", `{}`); st != 409 || m["code"] != "invalid_state" {
			t.Fatalf("second rotation of the old key: %d %v", st, m)
		}
		for _, tok := range []string{full, newTok} {
			if st, _, raw := do(t, base, withKey(tok), "GET", ws, ""); st != 200 {
				t.Fatalf("within the grace: %d %s", st, raw)
			}
		}
		advance(61 * time.Second)
		if st, _, raw := do(t, base, withKey(full), "GET", ws, ""); st != 401 {
			t.Fatalf("old key after the grace: %d %s", st, raw)
		}
		if st, _, raw := do(t, base, withKey(newTok), "GET", ws, ""); st != 200 {
			t.Fatalf("new key: %d %s", st, raw)
		}
	})
	t.Run("expired keys are refused", func(t *testing.T) {
		jti, tok := mint(t, base, alice, `{"expires_in_seconds": 120}`)
		if st, _, _ := do(t, base, withKey(tok), "GET", ws, ""); st != 200 {
			t.Fatal("fresh key refused")
		}
		advance(121 * time.Second)
		if st, _, raw := do(t, base, withKey(tok), "GET", ws, ""); st != 401 {
			t.Fatalf("expired key: %d %s", st, raw)
		}
		if _, m, _ := do(t, base, alice, "POST", keysPath+"/"+jti+"/unsuspend", ""); m["status"] != "EXPIRED" || m["changed"] != false {
			t.Fatalf("unsuspend of an expired key: %v", m)
		}
	})
	t.Run("revocation is immediate and final", func(t *testing.T) {
		st, m, raw := do(t, base, alice, "DELETE", keysPath+"/"+readJTI, "")
		if st != 200 || m["revoked"] != true || m["jti"] != readJTI {
			t.Fatalf("%d %s", st, raw)
		}
		st, _, raw = do(t, base, withKey(readOnly), "GET", ws, "")
		if st != 401 || !strings.Contains(raw, "invalid_token") {
			t.Fatalf("revoked key (replayed): %d %s", st, raw)
		}
		if st, m, _ := do(t, base, alice, "POST", keysPath+"/"+readJTI+"/unsuspend", ""); st != 409 || m["code"] != "invalid_state" {
			t.Fatalf("unsuspend revoked: %d %v", st, m)
		}
	})
	t.Run("altered or foreign tokens are refused", func(t *testing.T) {
		_, tok := mint(t, base, alice, `{"scopes": ["platform:read"]}`)
		parts := strings.Split(tok, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		widened := bytes.Replace(payload, []byte(`"platform:read"`), []byte(`"platform:write"`), 1)
		altered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(widened) + "." + parts[2]
		if st, _, raw := do(t, base, withKey(altered), "POST", ws+"/projects", `{"name": "p9"}`); st != 401 {
			t.Fatalf("altered token: %d %s", st, raw)
		}
		// The same claims signed by another key under the platform's kid.
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		forger, err := signing.New(srv.Config.Auth.TokenSigning.KeyID, other, nil)
		if err != nil {
			t.Fatal(err)
		}
		var claims map[string]any
		if err := json.Unmarshal(widened, &claims); err != nil {
			t.Fatal(err)
		}
		forged, err := forger.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		if st, _, raw := do(t, base, withKey(forged), "POST", ws+"/projects", `{"name": "p9"}`); st != 401 {
			t.Fatalf("re-signed token: %d %s", st, raw)
		}
	})
	t.Run("service-account keys", func(t *testing.T) {
		st, _, raw := do(t, base, alice, "POST", keysPath, `{"service_account_id": "deployer"}`)
		if st != 403 || !strings.Contains(raw, "Only PlatformAdmin can create service-bound") {
			t.Fatalf("non-admin: %d %s", st, raw)
		}
		saJTI, sa := mint(t, base, admin, `{"service_account_id": "deployer", "name": "deployer"}`)
		if st, _, _ := do(t, base, withKey(sa), "GET", ws, ""); st != 403 {
			t.Fatalf("unbound service account read ml-team: %d", st)
		}
		if st, _, raw := do(t, base, alice, "POST", ws+"/members", `{"principal": "service-account:deployer", "roles": ["Viewer"]}`); st != 201 {
			t.Fatalf("bind: %d %s", st, raw)
		}
		if st, _, raw := do(t, base, withKey(sa), "GET", ws, ""); st != 200 {
			t.Fatalf("bound service account: %d %s", st, raw)
		}
		if st, m, _ := do(t, base, withKey(sa), "POST", keysPath, `{}`); st != 403 || m["code"] != "access_key_cannot_create" {
			t.Fatalf("service account minted: %d %v", st, m)
		}
		_, m, raw := do(t, base, admin, "GET", keysPath, "")
		if !strings.Contains(raw, saJTI) || strings.Contains(raw, readJTI) {
			t.Fatalf("admin list: %v", m)
		}
		if st, _, _ := do(t, base, alice, "DELETE", keysPath+"/"+saJTI, ""); st != 404 {
			t.Fatal("alice reached the service account's key")
		}
		if st, _, _ := do(t, base, admin, "DELETE", keysPath+"/"+saJTI, ""); st != 200 {
			t.Fatal("admin could not revoke the service account's key")
		}
	})
	t.Run("no token in the logs", func(t *testing.T) {
		logs := srv.Logs()
		for _, tok := range []string{readOnly, full} {
			if strings.Contains(logs, tok) || strings.Contains(logs, strings.Split(tok, ".")[2]) {
				t.Fatal("a token (or its signature) was logged")
			}
		}
		if !strings.Contains(logs, "access_key_rejected") || !strings.Contains(logs, "access key revoked") {
			t.Error("refusals and revocations are not logged")
		}
	})
}

// TestAccessKeysDisabled: every key route is 404 access_keys_disabled.
func TestAccessKeysDisabled(t *testing.T) {
	srv := servertest.Start(t, devMode)
	for _, r := range []struct{ method, path string }{
		{"GET", keysPath}, {"POST", keysPath}, {"DELETE", keysPath + "/ak_00112233445566778899aabbccddeeff"},
		{"POST", keysPath + "/ak_00112233445566778899aabbccddeeff/rotate"},
	} {
		st, m, raw := do(t, srv.URL, as("alice@example.com"), r.method, r.path, "")
		if st != 404 || m["code"] != "access_keys_disabled" {
			t.Errorf("%s %s: %d %s", r.method, r.path, st, raw)
		}
	}
}

// TestAccessKeyLastUsed: a key's use is written off the request path and
// at the latest when the server stops; it survives a restart.
func TestAccessKeyLastUsed(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	mutate := func(c *config.Config) { keysMode(c); c.Platform.DataDir = dataDir }
	srv := servertest.Start(t, mutate)
	jti, tok := mint(t, srv.URL, as("alice@example.com"), `{}`)
	_, m, _ := do(t, srv.URL, as("alice@example.com"), "GET", keysPath, "")
	if k := m["data"].([]any)[0].(map[string]any); k["last_used_at"] != nil {
		t.Fatalf("unused key has last_used_at %v", k["last_used_at"])
	}
	if st, _, _ := do(t, srv.URL, withKey(tok), "GET", "/apis/entities/v2/workspaces", ""); st != 200 {
		t.Fatal("key refused")
	}
	srv.Stop(t)
	again := servertest.Start(t, mutate)
	_, m, raw := do(t, again.URL, as("alice@example.com"), "GET", keysPath, "")
	k := m["data"].([]any)[0].(map[string]any)
	if k["jti"] != jti || k["last_used_at"] == nil {
		t.Fatalf("after restart: %s", raw)
	}
}

// TestAccessKeyRevokedOnOtherReplica: a key used (and cached) on replica
// b is refused there once replica a revokes it, through PostgreSQL's
// notifications, well within the propagation bound; suspension too.
func TestAccessKeyRevokedOnOtherReplica(t *testing.T) {
	a, b := startKeyReplicas(t)
	alice := as("alice@example.com")
	jti, tok := mint(t, a.URL, alice, `{"scopes": ["platform:read"]}`)
	for range 3 { // cached on b
		if st, _, raw := do(t, b.URL, withKey(tok), "GET", "/apis/entities/v2/workspaces", ""); st != 200 {
			t.Fatalf("b: %d %s", st, raw)
		}
	}
	refusedOnB := func(what string) {
		t.Helper()
		began := time.Now()
		for {
			st, _, _ := do(t, b.URL, withKey(tok), "GET", "/apis/entities/v2/workspaces", "")
			if st == 401 {
				t.Logf("%s reached replica b after %v", what, time.Since(began))
				return
			}
			if time.Since(began) > 2*time.Second {
				t.Fatalf("%s: replica b still accepts the key after 2 s", what)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	if st, _, raw := do(t, a.URL, alice, "POST", keysPath+"/"+jti+"/suspend", ""); st != 200 {
		t.Fatalf("suspend: %d %s", st, raw)
	}
	refusedOnB("suspension")
	if st, _, _ := do(t, a.URL, alice, "POST", keysPath+"/"+jti+"/unsuspend", ""); st != 200 {
		t.Fatal("unsuspend")
	}
	waitFor(t, func() bool {
		st, _, _ := do(t, b.URL, withKey(tok), "GET", "/apis/entities/v2/workspaces", "")
		return st == 200
	})
	if st, _, _ := do(t, a.URL, alice, "DELETE", keysPath+"/"+jti, ""); st != 200 {
		t.Fatal("revoke")
	}
	refusedOnB("revocation")
}

func writeRSAKey(t testing.TB, path string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der := x509.MarshalPKCS1PrivateKey(k)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startKeyReplicas starts two servers with access keys on one fresh
// PostgreSQL schema and one signing key, both ready (their change feeds
// connected), or skips without PostgreSQL.
func startKeyReplicas(t testing.TB) (a, b *servertest.Server) {
	t.Helper()
	dsn := servertest.PostgresURL(t)
	keyFile := filepath.Join(t.TempDir(), "signing.pem")
	writeRSAKey(t, keyFile)
	mutate := func(c *config.Config) {
		keysMode(c)
		c.Entities.DatabaseConfig.URL = dsn
		c.Auth.TokenSigning.PrivateKeyFile = &keyFile
	}
	a, b = servertest.Start(t, mutate), servertest.Start(t, mutate)
	a.WaitReady(t)
	b.WaitReady(t)
	return a, b
}
