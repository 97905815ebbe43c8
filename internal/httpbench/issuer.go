package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// benchAudience is the aud of the issuer's tokens, which the auth-on
// server requires.
const benchAudience = "nmp-bench"

// issuer is a minimal OpenID provider on loopback: its discovery document
// and JWKS (one RS256 key), enough for the auth-on server to validate the
// tokens it mints as it validates a production IdP's.
type issuer struct {
	url    string
	signer jose.Signer
	srv    *http.Server
}

func startIssuer() (*issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	const kid = "bench-1"
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	iss := &issuer{url: "http://" + ln.Addr().String(), signer: signer}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]string{"issuer": iss.url, "jwks_uri": iss.url + "/jwks",
			"authorization_endpoint": iss.url + "/authorize", "token_endpoint": iss.url + "/token"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"}}})
	})
	iss.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = iss.srv.Serve(ln) }()
	return iss, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// authConfig is the auth-on server's auth section for these tokens.
func (i *issuer) authConfig() string {
	return fmt.Sprintf("{enabled: true, authenticate_authorize: true, oidc: {enabled: true, issuer: %q, client_id: nmp-cli, audience: %s}}",
		i.url, benchAudience)
}

// token is an access token for sub, valid for the next two hours.
func (i *issuer) token(sub string) string {
	now := time.Now()
	claims, err := json.Marshal(map[string]any{"iss": i.url, "sub": sub, "aud": benchAudience,
		"iat": now.Unix(), "exp": now.Add(2 * time.Hour).Unix()})
	if err != nil {
		panic(err) // a map of strings and numbers always marshals
	}
	jws, err := i.signer.Sign(claims)
	if err != nil {
		panic(fmt.Sprintf("sign a benchmark token: %v", err))
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		panic(fmt.Sprintf("serialize a benchmark token: %v", err))
	}
	return tok
}

func (i *issuer) close() { _ = i.srv.Close() }
