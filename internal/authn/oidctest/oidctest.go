// Package oidctest is a minimal token issuer for tests: an RSA key, a
// discovery document and a JWKS served on a loopback httptest server, and
// RS256 access tokens minted on demand. It signs real tokens; the server
// under test verifies them exactly as it would an IdP's.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Issuer is a running test issuer.
type Issuer struct {
	URL    string
	key    *rsa.PrivateKey
	kid    string
	signer jose.Signer
	// JWKSFetches counts JWKS requests.
	JWKSFetches atomic.Int32
	srv         *httptest.Server
}

// Close stops serving (an IdP that went down): connections to URL are
// refused from then on. Minting keeps working.
func (iss *Issuer) Close() { iss.srv.Close() }

// New starts an issuer on 127.0.0.1; it stops at test cleanup.
func New(t testing.TB) *Issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{key: key, kid: "test-key-1"}
	iss.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: iss.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.URL, iss.srv = srv.URL, srv
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		if err := json.NewEncoder(w).Encode(map[string]string{
			"issuer": iss.URL, "jwks_uri": iss.URL + "/jwks", "token_endpoint": iss.URL + "/token",
			"authorization_endpoint": iss.URL + "/authorize", "device_authorization_endpoint": iss.URL + "/device_authorization",
		}); err != nil {
			t.Error(err)
		}
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		iss.JWKSFetches.Add(1)
		if err := json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: iss.kid, Algorithm: "RS256", Use: "sig"}}}); err != nil {
			t.Error(err)
		}
	})
	return iss
}

// Claims of a minted token; zero values are filled in by Mint.
type Claims struct {
	Subject  string
	Email    string
	Groups   []string
	Scope    string
	Audience string
	TTL      time.Duration
	ID       string
	// Extra claims, set last (an ID token's nonce, a nested claim).
	Extra map[string]any
}

// Mint signs an access token for audience c.Audience (default "nmp-cli").
func (iss *Issuer) Mint(t testing.TB, c Claims) string {
	t.Helper()
	if c.Audience == "" {
		c.Audience = "nmp-cli"
	}
	if c.TTL == 0 {
		c.TTL = time.Hour
	}
	now := time.Now()
	claims := map[string]any{
		"iss": iss.URL, "sub": c.Subject, "aud": c.Audience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(c.TTL).Unix(),
	}
	if c.Email != "" {
		claims["email"] = c.Email
	}
	if c.Groups != nil {
		claims["groups"] = c.Groups
	}
	if c.Scope != "" {
		claims["scope"] = c.Scope
	}
	if c.ID != "" {
		claims["jti"] = c.ID
	}
	for k, v := range c.Extra {
		claims[k] = v
	}
	tok, err := jwt.Signed(iss.signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
