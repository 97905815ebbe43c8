package devidp_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/devidp"
	"github.com/nmp-project/nmp/internal/testenv"
)

func TestDiscovery(t *testing.T) {
	d := newIDP(t)
	var doc map[string]any
	if code := d.getJSON("/.well-known/openid-configuration", &doc); code != http.StatusOK {
		t.Fatalf("HTTP %d", code)
	}
	tests := []struct {
		name  string
		field string
		want  any
	}{
		{"issuer", "issuer", d.url},
		{"authorization endpoint", "authorization_endpoint", d.url + "/authorize"},
		{"token endpoint", "token_endpoint", d.url + "/token"},
		{"device endpoint", "device_authorization_endpoint", d.url + "/device_authorization"},
		{"userinfo endpoint", "userinfo_endpoint", d.url + "/userinfo"},
		{"jwks", "jwks_uri", d.url + "/jwks"},
		{"PKCE", "code_challenge_methods_supported", []any{"S256"}},
		{"response types", "response_types_supported", []any{"code"}},
		{"signing", "id_token_signing_alg_values_supported", []any{"RS256"}},
		{"grants", "grant_types_supported", []any{
			"authorization_code", "refresh_token", "client_credentials",
			"urn:ietf:params:oauth:grant-type:device_code", "password",
		}},
		{"client auth", "token_endpoint_auth_methods_supported", []any{"none", "client_secret_basic", "client_secret_post"}},
		{"no introspection", "introspection_endpoint", nil},
		{"no revocation", "revocation_endpoint", nil},
		{"no end session", "end_session_endpoint", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := doc[tt.field]
			if tt.want == nil {
				if ok {
					t.Fatalf("%s = %v, want absent", tt.field, got)
				}
				return
			}
			if !equalJSON(got, tt.want) {
				t.Fatalf("%s = %v, want %v", tt.field, got, tt.want)
			}
		})
	}
	scopes, _ := doc["scopes_supported"].([]any)
	for _, s := range []string{"openid", "offline_access", "platform:read", "platform:write"} {
		if !slices.Contains(scopes, any(s)) {
			t.Errorf("scopes_supported %v lacks %s", scopes, s)
		}
	}
}

func equalJSON(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok {
		return slices.Equal(as, bs)
	}
	return a == b
}

func TestRoutes(t *testing.T) {
	d := newIDP(t)
	tests := []struct {
		name   string
		method string
		path   string
		want   int
		host   string // Host header, if not the issuer's
	}{
		{"discovery", "GET", "/.well-known/openid-configuration", 200, ""},
		{"jwks", "GET", "/jwks", 200, ""},
		{"token needs POST", "GET", "/token", 405, ""},
		{"device page", "GET", "/device", 200, ""},
		{"zitadel keys path unrouted", "GET", "/keys", 404, ""},
		{"zitadel token path unrouted", "POST", "/oauth/token", 404, ""},
		{"introspection unrouted", "POST", "/oauth/introspect", 404, ""},
		{"revocation unrouted", "POST", "/revoke", 404, ""},
		{"end session unrouted", "GET", "/end_session", 404, ""},
		{"callback unrouted", "GET", "/authorize/callback?id=x", 404, ""},
		{"health unrouted", "GET", "/healthz", 404, ""},
		{"unknown sign-in request", "GET", "/authorize?auth_request_id=nope", 400, ""},
		{"localhost name", "GET", "/jwks", 200, "localhost:1"},
		{"DNS rebinding", "GET", "/jwks", 421, "attacker.example:80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, d.url+tt.path, nil)
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			testenv.Close(t, resp.Body)
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s: HTTP %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatal("CORS header set")
			}
		})
	}
}

func TestJWKSVerifiesTokens(t *testing.T) {
	d := newIDP(t)
	var set jose.JSONWebKeySet
	d.getJSON("/jwks", &set)
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys", len(set.Keys))
	}
	k := set.Keys[0]
	if k.KeyID != d.KeyID() || k.Algorithm != "RS256" || k.Use != "sig" || !k.IsPublic() {
		t.Fatalf("key kid=%q alg=%q use=%q public=%v", k.KeyID, k.Algorithm, k.Use, k.IsPublic())
	}
	tp, _ := (&jose.JSONWebKey{Key: &testKey().PublicKey}).Thumbprint(cryptoSHA256)
	if k.KeyID != b64(tp) {
		t.Fatalf("kid %q is not the RFC 7638 thumbprint", k.KeyID)
	}
	tok := d.mustPassword("nmp-cli", "alice", alicePassword, "openid", "email")
	for name, jwt := range map[string]string{"access token": tok.AccessToken, "ID token": tok.Extra("id_token").(string)} {
		c, err := verifyWith(set, jwt)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c["iss"] != d.url {
			t.Fatalf("%s iss = %v", name, c["iss"])
		}
	}
	// A token signed with another key does not verify.
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: other, KeyID: d.KeyID()}}, nil)
	forged, _ := signer.Sign([]byte(`{"sub":"alice"}`))
	compact, _ := forged.CompactSerialize()
	if _, err := verifyWith(set, compact); err == nil {
		t.Fatal("forged token verified")
	}
}

func TestPasswordGrant(t *testing.T) {
	d := newIDP(t)
	tests := []struct {
		name      string
		client    string
		secret    string
		username  string
		password  string
		scopes    []string
		wantErr   string
		wantID    bool
		wantRT    bool
		wantScope string
	}{
		{name: "good password", client: "nmp-cli", username: "alice", password: alicePassword,
			scopes: []string{"openid", "email", "offline_access", "platform:read"}, wantID: true, wantRT: true,
			wantScope: "openid email offline_access platform:read"},
		{name: "no offline_access: no refresh token", client: "nmp-cli", username: "alice", password: alicePassword,
			scopes: []string{"openid"}, wantID: true, wantScope: "openid"},
		{name: "no openid: no ID token", client: "nmp-cli", username: "bob", password: bobPassword,
			scopes: []string{"platform:read"}, wantScope: "platform:read"},
		{name: "confidential client with secret", client: "webapp", secret: webSecret, username: "alice", password: alicePassword,
			scopes: []string{"openid", "offline_access"}, wantID: true, wantRT: true, wantScope: "openid offline_access"},
		{name: "bad password", client: "nmp-cli", username: "alice", password: "wrong", wantErr: "invalid_grant"},
		{name: "other user's password", client: "nmp-cli", username: "alice", password: bobPassword, wantErr: "invalid_grant"},
		{name: "unknown user", client: "nmp-cli", username: "mallory", password: alicePassword, wantErr: "invalid_grant"},
		{name: "unknown client", client: "nope", username: "alice", password: alicePassword, wantErr: "invalid_client"},
		{name: "client without the grant", client: "ci", secret: ciSecret, username: "alice", password: alicePassword, wantErr: "unauthorized_client"},
		{name: "confidential client with wrong secret", client: "webapp", secret: "wrong", username: "alice", password: alicePassword, wantErr: "invalid_client"},
		{name: "confidential client without secret", client: "webapp", username: "alice", password: alicePassword, wantErr: "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := d.oauth(tt.client, tt.secret, tt.scopes...).PasswordCredentialsToken(context.Background(), tt.username, tt.password)
			d.token(tok)
			if tt.wantErr != "" {
				if got := errorCode(err); got != tt.wantErr {
					t.Fatalf("error %q (%v), want %s", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.TokenType != "Bearer" || tok.Expiry.IsZero() {
				t.Fatalf("token_type %q expiry %v", tok.TokenType, tok.Expiry)
			}
			_, hasID := tok.Extra("id_token").(string)
			if hasID != tt.wantID || (tok.RefreshToken != "") != tt.wantRT {
				t.Fatalf("id_token %v refresh_token %v, want %v %v", hasID, tok.RefreshToken != "", tt.wantID, tt.wantRT)
			}
			if got := tok.Extra("scope"); got != tt.wantScope {
				t.Fatalf("response scope %q, want %q", got, tt.wantScope)
			}
			c, err := d.verify(tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if c["scope"] != tt.wantScope || c["client_id"] != tt.client {
				t.Fatalf("claims scope %q client_id %q", c["scope"], c["client_id"])
			}
		})
	}
	// Missing client_id and malformed requests, without x/oauth2.
	raw := []struct {
		name string
		form url.Values
		want string
	}{
		{"no client_id", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}}, "invalid_client"},
		{"no password", url.Values{"grant_type": {"password"}, "client_id": {"nmp-cli"}, "username": {"alice"}}, "invalid_request"},
		{"no grant_type", url.Values{"client_id": {"nmp-cli"}}, "invalid_request"},
		{"unsupported grant", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "client_id": {"nmp-cli"}}, "unsupported_grant_type"},
		{"implicit is no grant", url.Values{"grant_type": {"implicit"}, "client_id": {"nmp-cli"}}, "unsupported_grant_type"},
	}
	for _, tt := range raw {
		t.Run(tt.name, func(t *testing.T) {
			status, body, hdr := d.post("/token", tt.form, "", "")
			if body["error"] != tt.want {
				t.Fatalf("HTTP %d %v, want %s", status, body, tt.want)
			}
			if want := map[bool]int{true: 401, false: 400}[tt.want == "invalid_client"]; status != want {
				t.Fatalf("HTTP %d, want %d", status, want)
			}
			if hdr.Get("Cache-Control") != "no-store" {
				t.Fatalf("Cache-Control %q", hdr.Get("Cache-Control"))
			}
		})
	}
	// Basic authentication failures carry a challenge (RFC 6749, 5.2).
	status, body, hdr := d.post("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}}, "webapp", "wrong")
	if status != 401 || body["error"] != "invalid_client" || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("HTTP %d %v WWW-Authenticate %q", status, body, hdr.Get("WWW-Authenticate"))
	}
}

var userCodeFormat = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// startDevice starts a device flow with x/oauth2 and checks the response.
func (d *idp) startDevice(cfg *oauth2.Config) *oauth2.DeviceAuthResponse {
	d.t.Helper()
	da, err := cfg.DeviceAuth(context.Background())
	if err != nil {
		d.t.Fatalf("device authorization: %v", err)
	}
	d.secret(da.DeviceCode, da.UserCode)
	if !userCodeFormat.MatchString(da.UserCode) {
		d.t.Fatalf("user_code %q is not XXXX-XXXX", da.UserCode)
	}
	if da.Interval != 5 {
		d.t.Fatalf("interval %d, want 5", da.Interval)
	}
	if left := time.Until(da.Expiry); left < 590*time.Second || left > 600*time.Second {
		d.t.Fatalf("expires in %v, want 600 s", left)
	}
	if da.VerificationURI != d.url+"/device" || da.VerificationURIComplete != d.url+"/device?user_code="+da.UserCode {
		d.t.Fatalf("verification URIs %q %q", da.VerificationURI, da.VerificationURIComplete)
	}
	return da
}

func (d *idp) poll(clientID, deviceCode string) (int, map[string]any) {
	d.t.Helper()
	status, body, _ := d.post("/token", url.Values{
		"grant_type": {config.GrantTypeDeviceCode}, "client_id": {clientID}, "device_code": {deviceCode},
	}, "", "")
	return status, body
}

// approve completes the /device form as a user would.
func (d *idp) approve(b *http.Client, userCode, username, password string) page {
	d.t.Helper()
	form := getPage(d.t, b, d.url+"/device?user_code="+url.QueryEscape(userCode))
	if form.status != http.StatusOK {
		d.t.Fatalf("GET /device: HTTP %d", form.status)
	}
	return postPage(d.t, b, d.url+"/device", url.Values{
		"user_code": {userCode}, "username": {username}, "password": {password},
		"csrf_token": {field(d.t, csrfField, form.body)},
	})
}

func TestDeviceFlow(t *testing.T) {
	d := newIDP(t)
	cfg := d.oauth("nmp-cli", "", "openid", "email", "offline_access", "platform:read")
	da := d.startDevice(cfg)

	status, body := d.poll("nmp-cli", da.DeviceCode)
	if status != 400 || body["error"] != "authorization_pending" {
		t.Fatalf("first poll: HTTP %d %v", status, body)
	}
	if _, body := d.poll("nmp-cli", da.DeviceCode); body["error"] != "slow_down" {
		t.Fatalf("immediate second poll: %v, want slow_down", body)
	}
	d.clock.Advance(5 * time.Second) // the interval is now 10 s
	if _, body := d.poll("nmp-cli", da.DeviceCode); body["error"] != "slow_down" {
		t.Fatalf("poll after 5 s following slow_down: %v, want slow_down", body)
	}
	d.clock.Advance(15 * time.Second)
	if _, body := d.poll("nmp-cli", da.DeviceCode); body["error"] != "authorization_pending" {
		t.Fatalf("poll after 15 s: %v, want authorization_pending", body)
	}
	if _, body := d.poll("limited", da.DeviceCode); body["error"] != "invalid_grant" {
		t.Fatalf("poll by another client: %v, want invalid_grant", body)
	}

	b := browser(t)
	// The form shows who asks for what, escaped.
	form := getPage(t, b, da.VerificationURIComplete)
	if !strings.Contains(form.body, "<code>nmp-cli</code>") || !strings.Contains(form.body, "<code>platform:read</code>") ||
		!strings.Contains(form.body, devidp.Banner) {
		t.Fatalf("device page:\n%s", form.body)
	}
	if res := d.approve(b, da.UserCode, "alice", "wrong"); res.status != http.StatusUnauthorized ||
		!strings.Contains(res.body, "Invalid username or password") {
		t.Fatalf("wrong password: HTTP %d", res.status)
	}
	if res := d.approve(b, "BCDF-BCDF", "alice", alicePassword); res.status != http.StatusBadRequest {
		t.Fatalf("unknown code: HTTP %d", res.status)
	}
	d.clock.Advance(15 * time.Second) // two slow_downs: the interval is 15 s
	if _, body := d.poll("nmp-cli", da.DeviceCode); body["error"] != "authorization_pending" {
		t.Fatalf("after a failed sign-in: %v", body)
	}
	// Lower case and without the dash is accepted.
	code := strings.ToLower(strings.ReplaceAll(da.UserCode, "-", ""))
	if res := d.approve(b, code, "alice", alicePassword); res.status != http.StatusOK || !strings.Contains(res.body, "Device authorized") {
		t.Fatalf("approve: HTTP %d:\n%s", res.status, res.body)
	}

	d.clock.Advance(10 * time.Second)
	da.Interval = 1 // keep the test fast; the provider's clock decides
	tok, err := cfg.DeviceAccessToken(context.Background(), da)
	d.token(tok)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c["sub"] != "alice" || c["scope"] != "openid email offline_access platform:read" {
		t.Fatalf("claims %v", c)
	}
	if tok.RefreshToken == "" || tok.Extra("id_token") == nil {
		t.Fatal("refresh token or ID token missing")
	}
	// The device code works once.
	d.clock.Advance(10 * time.Second)
	if _, body := d.poll("nmp-cli", da.DeviceCode); body["error"] != "invalid_grant" {
		t.Fatalf("poll after success: %v, want invalid_grant", body)
	}
}

func TestDeviceFlowEnds(t *testing.T) {
	tests := []struct {
		name   string
		act    func(d *idp, da *oauth2.DeviceAuthResponse)
		want   string
		status int
	}{
		{
			name: "expired after 600 s",
			act:  func(d *idp, _ *oauth2.DeviceAuthResponse) { d.clock.Advance(601 * time.Second) },
			want: "expired_token",
		},
		{
			name: "denied after five failed sign-ins",
			act: func(d *idp, da *oauth2.DeviceAuthResponse) {
				b := browser(d.t)
				for i := range 5 {
					res := d.approve(b, da.UserCode, "alice", "wrong")
					if want := map[bool]int{true: 403, false: 401}[i == 4]; res.status != want {
						d.t.Fatalf("attempt %d: HTTP %d, want %d", i+1, res.status, want)
					}
				}
			},
			want: "access_denied",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newIDP(t)
			da := d.startDevice(d.oauth("nmp-cli", "", "openid"))
			tt.act(d, da)
			if res := d.approve(browser(t), da.UserCode, "alice", alicePassword); res.status != http.StatusBadRequest {
				t.Fatalf("approving afterwards: HTTP %d, want 400", res.status)
			}
			if _, body := d.poll("nmp-cli", da.DeviceCode); body["error"] != tt.want {
				t.Fatalf("poll: %v, want %s", body, tt.want)
			}
		})
	}
}

func TestAuthorizationCodePKCE(t *testing.T) {
	tests := []struct {
		name   string
		client string
		secret string
		host   string // of the loopback redirect URI; the port is random
	}{
		{"127.0.0.1 on any port", "nmp-cli", "", "127.0.0.1"},
		{"localhost on any port", "nmp-cli", "", "localhost"},
		{"localhost-registered client on 127.0.0.1", "limited", "", "127.0.0.1"},
		{"confidential client", "webapp", webSecret, "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newIDP(t)
			cfg := d.oauth(tt.client, tt.secret, "openid", "email", "offline_access")
			q, verifier := d.codeFlow(cfg, newCallback(t, tt.host), "alice", alicePassword)
			tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
			d.token(tok)
			if err != nil {
				t.Fatal(err)
			}
			c, err := d.verify(tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if c["sub"] != "alice" || c["client_id"] != tt.client || c["scope"] != "openid email offline_access" {
				t.Fatalf("claims %v", c)
			}
			idt, err := d.verify(tok.Extra("id_token").(string))
			if err != nil {
				t.Fatal(err)
			}
			if idt["sub"] != "alice" || idt["email"] != "alice@example.com" {
				t.Fatalf("ID token %v", idt)
			}
			if tok.RefreshToken == "" {
				t.Fatal("no refresh token")
			}
			// The code works once.
			_, err = cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
			if got := errorCode(err); got != "invalid_grant" {
				t.Fatalf("second exchange: %q, want invalid_grant", got)
			}
			// The replay revoked the refresh token issued for the code.
			tok.Expiry = time.Now().Add(-time.Minute)
			_, err = cfg.TokenSource(context.Background(), tok).Token()
			if got := errorCode(err); got != "invalid_grant" {
				t.Fatalf("refresh after code replay: %q, want invalid_grant", got)
			}
		})
	}
}

func TestAuthorizationCodeRejections(t *testing.T) {
	tests := []struct {
		name     string
		exchange func(d *idp, cfg *oauth2.Config, code, verifier string) error
		want     string
	}{
		{
			name: "wrong verifier",
			exchange: func(_ *idp, cfg *oauth2.Config, code, _ string) error {
				_, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
				return err
			},
			want: "invalid_grant",
		},
		{
			name: "no verifier",
			exchange: func(_ *idp, cfg *oauth2.Config, code, _ string) error {
				_, err := cfg.Exchange(context.Background(), code)
				return err
			},
			want: "invalid_request",
		},
		{
			name: "after 60 s",
			exchange: func(d *idp, cfg *oauth2.Config, code, verifier string) error {
				d.clock.Advance(61 * time.Second)
				_, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
				return err
			},
			want: "invalid_grant",
		},
		{
			name: "by another client",
			exchange: func(d *idp, _ *oauth2.Config, code, verifier string) error {
				other := d.oauth("limited", "")
				other.RedirectURL = "http://127.0.0.1:1/callback"
				_, err := other.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
				return err
			},
			want: "invalid_grant",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newIDP(t)
			cfg := d.oauth("nmp-cli", "", "openid")
			q, verifier := d.codeFlow(cfg, newCallback(t, "127.0.0.1"), "alice", alicePassword)
			if got := errorCode(tt.exchange(d, cfg, q.Get("code"), verifier)); got != tt.want {
				t.Fatalf("error %q, want %s", got, tt.want)
			}
			// A failed exchange used the code up.
			_, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
			if got := errorCode(err); got != "invalid_grant" {
				t.Fatalf("exchange afterwards: %q, want invalid_grant", got)
			}
		})
	}
}

func TestAuthorizeRequestValidation(t *testing.T) {
	d := newIDP(t)
	cb := newCallback(t, "127.0.0.1")
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	base := func() url.Values {
		return url.Values{
			"client_id": {"nmp-cli"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"st"},
			"redirect_uri": {cb.url}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
		}
	}
	tests := []struct {
		name      string
		change    func(url.Values)
		wantError string // error redirected to the callback
		wantPage  int    // else the status of an error page (no redirect)
	}{
		{name: "no PKCE", change: func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }, wantError: "invalid_request"},
		{name: "plain PKCE", change: func(v url.Values) { v.Set("code_challenge_method", "plain") }, wantError: "invalid_request"},
		{name: "prompt=none", change: func(v url.Values) { v.Set("prompt", "none") }, wantError: "login_required"},
		{name: "token response type", change: func(v url.Values) { v.Set("response_type", "token") }, wantError: "unauthorized_client"},
		{name: "unregistered host", change: func(v url.Values) { v.Set("redirect_uri", "http://evil.example:8080/callback") }, wantPage: 400},
		{name: "userinfo trick", change: func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:80@evil.example/callback") }, wantPage: 400},
		{name: "other path", change: func(v url.Values) { v.Set("redirect_uri", strings.Replace(cb.url, "/callback", "/other", 1)) }, wantPage: 400},
		{name: "confidential client, other loopback path", change: func(v url.Values) {
			v.Set("client_id", "webapp")
			v.Set("redirect_uri", "http://127.0.0.2:5/elsewhere")
		}, wantPage: 400},
		{name: "unknown client", change: func(v url.Values) { v.Set("client_id", "nope") }, wantPage: 400},
		{name: "client without the code grant", change: func(v url.Values) { v.Set("client_id", "ci") }, wantPage: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := base()
			tt.change(v)
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := noFollow.Get(d.url + "/authorize?" + v.Encode())
			if err != nil {
				t.Fatal(err)
			}
			testenv.Close(t, resp.Body)
			if tt.wantPage != 0 {
				if resp.StatusCode != tt.wantPage {
					t.Fatalf("HTTP %d (Location %q), want %d", resp.StatusCode, resp.Header.Get("Location"), tt.wantPage)
				}
				return
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), cb.url) {
				t.Fatalf("HTTP %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if loc.Query().Get("error") != tt.wantError || loc.Query().Get("state") != "st" {
				t.Fatalf("redirect %s, want error=%s with state", loc.RawQuery, tt.wantError)
			}
		})
	}
}

func TestSignInForm(t *testing.T) {
	d := newIDP(t)
	cb := newCallback(t, "127.0.0.1")
	cfg := d.oauth("nmp-cli", "", "openid", `<script>alert("x")</script>`)
	cfg.RedirectURL = cb.url
	verifier := oauth2.GenerateVerifier()
	d.secret(verifier)
	authURL := cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))

	b := browser(t)
	form := getPage(t, b, authURL)
	if form.status != 200 || form.url.Path != "/authorize" || form.url.Query().Get("auth_request_id") == "" {
		t.Fatalf("HTTP %d at %s", form.status, form.url)
	}
	if strings.Contains(form.body, "<script>") || !strings.Contains(form.body, "&lt;script&gt;") {
		t.Fatalf("scope not escaped:\n%s", form.body)
	}
	id, csrf := field(t, authReqField, form.body), field(t, csrfField, form.body)
	creds := func(extra url.Values) url.Values {
		v := url.Values{"auth_request_id": {id}, "csrf_token": {csrf}, "username": {"alice"}, "password": {alicePassword}}
		maps.Copy(v, extra)
		return v
	}

	// A token for another request, a missing token, a missing cookie.
	other := getPage(t, b, cfg.AuthCodeURL("st2", oauth2.S256ChallengeOption(verifier)))
	otherCSRF := field(t, csrfField, other.body)
	checks := []struct {
		name   string
		client *http.Client
		form   url.Values
		want   int
	}{
		{"CSRF token of another request", b, creds(url.Values{"csrf_token": {otherCSRF}}), 403},
		{"no CSRF token", b, creds(url.Values{"csrf_token": {""}}), 403},
		{"no CSRF cookie", browser(t), creds(nil), 403},
		{"wrong password", b, creds(url.Values{"password": {"wrong"}, "username": {`"><b>alice`}}), 401},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			res := postPage(t, c.client, d.url+"/authorize", c.form)
			if res.status != c.want {
				t.Fatalf("HTTP %d, want %d", res.status, c.want)
			}
			if strings.Contains(res.body, `"><b>`) {
				t.Fatal("username not escaped")
			}
			select {
			case q := <-cb.got:
				t.Fatalf("redirected to the client: %v", q)
			default:
			}
		})
	}
	res := postPage(t, b, d.url+"/authorize", creds(nil))
	if res.status != 200 {
		t.Fatalf("sign-in: HTTP %d", res.status)
	}
	q := cb.wait(t)
	d.secret(q.Get("code"))
	if q.Get("code") == "" || q.Get("state") != "st" {
		t.Fatalf("callback %v", q)
	}
	// The form cannot be submitted again.
	if res := postPage(t, b, d.url+"/authorize", creds(nil)); res.status != 400 {
		t.Fatalf("second sign-in: HTTP %d, want 400", res.status)
	}

	t.Run("five failures deny the request", func(t *testing.T) {
		b := browser(t)
		form := getPage(t, b, cfg.AuthCodeURL("st3", oauth2.S256ChallengeOption(verifier)))
		v := url.Values{
			"auth_request_id": {field(t, authReqField, form.body)}, "csrf_token": {field(t, csrfField, form.body)},
			"username": {"alice"}, "password": {"wrong"},
		}
		for range 4 {
			if res := postPage(t, b, d.url+"/authorize", v); res.status != 401 {
				t.Fatalf("HTTP %d", res.status)
			}
		}
		postPage(t, b, d.url+"/authorize", v)
		if q := cb.wait(t); q.Get("error") != "access_denied" || q.Get("state") != "st3" {
			t.Fatalf("callback %v, want access_denied", q)
		}
	})
}

func TestRefreshRotation(t *testing.T) {
	d := newIDP(t)
	cfg := d.oauth("nmp-cli", "", "openid", "offline_access", "platform:read", "platform:write")
	first := d.mustPassword("nmp-cli", "alice", alicePassword, cfg.Scopes...)

	refresh := func(rt string, scope ...string) (int, map[string]any) {
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"nmp-cli"}, "refresh_token": {rt}}
		if len(scope) > 0 {
			form.Set("scope", strings.Join(scope, " "))
		}
		status, body, _ := d.post("/token", form, "", "")
		return status, body
	}

	status, second := refresh(first.RefreshToken)
	if status != 200 {
		t.Fatalf("refresh: HTTP %d %v", status, second)
	}
	rt2, _ := second["refresh_token"].(string)
	if rt2 == "" || rt2 == first.RefreshToken || second["access_token"] == first.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	if c := claims(t, second["access_token"].(string)); c["sub"] != "alice" || c["scope"] != "openid offline_access platform:read platform:write" {
		t.Fatalf("claims %v", c)
	}

	tests := []struct {
		name  string
		rt    string
		scope []string
		want  string // error, or "" for success
	}{
		{"narrower scope", rt2, []string{"openid", "offline_access", "platform:read"}, ""},
		{"wider scope", "", []string{"platform:admin"}, "invalid_scope"},
		{"unknown token", "not-a-token", nil, "invalid_grant"},
		{"other client", "", nil, "invalid_grant"},
	}
	current := rt2
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := tt.rt
			if rt == "" {
				rt = current
			}
			var status int
			var body map[string]any
			if tt.name == "other client" {
				status, body, _ = d.post("/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"limited"}, "refresh_token": {rt}}, "", "")
			} else {
				status, body = refresh(rt, tt.scope...)
			}
			if tt.want != "" {
				if body["error"] != tt.want {
					t.Fatalf("HTTP %d %v, want %s", status, body, tt.want)
				}
				return
			}
			if status != 200 || body["scope"] != strings.Join(tt.scope, " ") {
				t.Fatalf("HTTP %d %v", status, body)
			}
			if c := claims(t, body["access_token"].(string)); c["scope"] != strings.Join(tt.scope, " ") {
				t.Fatalf("scope claim %v", c["scope"])
			}
			current = body["refresh_token"].(string)
		})
	}

	// The original token was rotated out: rejected, and presenting it
	// revokes the family (the current token too).
	if _, body := refresh(first.RefreshToken); body["error"] != "invalid_grant" {
		t.Fatalf("old refresh token: %v, want invalid_grant", body)
	}
	if _, body := refresh(current); body["error"] != "invalid_grant" {
		t.Fatalf("current token after reuse: %v, want invalid_grant (family revoked)", body)
	}

	t.Run("expiry", func(t *testing.T) {
		tok := d.mustPassword("nmp-cli", "bob", bobPassword, "offline_access")
		d.clock.Advance(86401 * time.Second)
		if _, body := refresh(tok.RefreshToken); body["error"] != "invalid_grant" {
			t.Fatalf("expired refresh token: %v", body)
		}
	})
	t.Run("x/oauth2 token source refreshes", func(t *testing.T) {
		tok := d.mustPassword("nmp-cli", "bob", bobPassword, "offline_access")
		tok.Expiry = time.Now().Add(-time.Minute)
		next, err := d.oauth("nmp-cli", "").TokenSource(context.Background(), tok).Token()
		d.token(next)
		if err != nil || next.RefreshToken == tok.RefreshToken {
			t.Fatalf("refresh: %v", err)
		}
	})
}

func TestClientCredentials(t *testing.T) {
	tests := []struct {
		name      string
		client    string
		secret    string
		style     oauth2.AuthStyle
		scopes    []string
		wantErr   string
		wantSub   string
		wantScope string
	}{
		{name: "basic", client: "ci", secret: ciSecret, style: oauth2.AuthStyleInHeader, wantSub: "svc-ci", wantScope: "platform:read platform:write"},
		{name: "post", client: "ci", secret: ciSecret, style: oauth2.AuthStyleInParams, wantSub: "svc-ci", wantScope: "platform:read platform:write"},
		{name: "requested scopes do not matter", client: "ci", secret: ciSecret, style: oauth2.AuthStyleInHeader,
			scopes: []string{"platform:admin"}, wantSub: "svc-ci", wantScope: "platform:read platform:write"},
		{name: "sub defaults to the client id", client: "ci-bare", secret: bareSecret, style: oauth2.AuthStyleInHeader, wantSub: "ci-bare", wantScope: ""},
		{name: "wrong secret", client: "ci", secret: "wrong", style: oauth2.AuthStyleInHeader, wantErr: "invalid_client"},
		{name: "public client", client: "nmp-cli", style: oauth2.AuthStyleInParams, wantErr: "invalid_client"},
		{name: "client without the grant", client: "webapp", secret: webSecret, style: oauth2.AuthStyleInHeader, wantErr: "unauthorized_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newIDP(t)
			cfg := d.oauth(tt.client, tt.secret, tt.scopes...)
			cfg.Endpoint.AuthStyle = tt.style
			tok, err := clientCredentials(cfg)
			d.token(tok)
			if tt.wantErr != "" {
				if got := errorCode(err); got != tt.wantErr {
					t.Fatalf("error %q (%v), want %s", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c, err := d.verify(tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if c["sub"] != tt.wantSub || c["scope"] != tt.wantScope || c["client_id"] != tt.client {
				t.Fatalf("claims %v", c)
			}
			if tok.RefreshToken != "" || tok.Extra("id_token") != nil {
				t.Fatal("client credentials returned a refresh or ID token")
			}
		})
	}
}

func TestAccessTokenClaims(t *testing.T) {
	d := newIDP(t)
	userTok := d.mustPassword("nmp-cli", "alice", alicePassword, "openid", "platform:read")
	ciTok, err := clientCredentials(d.oauth("ci", ciSecret))
	d.token(ciTok)
	if err != nil {
		t.Fatal(err)
	}
	bareTok, err := clientCredentials(d.oauth("ci-bare", bareSecret))
	d.token(bareTok)
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "email", "groups", "scope", "client_id"}
	tests := []struct {
		name   string
		token  string
		keys   []string
		sub    string
		email  any
		groups []any
	}{
		{"user", userTok.AccessToken, all, "alice", "alice@example.com", []any{"ml-team", "admins"}},
		{"client with email", ciTok.AccessToken, all, "svc-ci", "ci@example.com", []any{"robots"}},
		{"client without email", bareTok.AccessToken, slices.DeleteFunc(slices.Clone(all), func(k string) bool { return k == "email" }), "ci-bare", nil, []any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := d.verify(tt.token)
			if err != nil {
				t.Fatal(err)
			}
			keys := slices.Sorted(maps.Keys(c))
			if want := slices.Sorted(slices.Values(tt.keys)); !slices.Equal(keys, want) {
				t.Fatalf("claims %v, want exactly %v", keys, want)
			}
			groups, ok := c["groups"].([]any)
			if !ok || !slices.Equal(groups, tt.groups) {
				t.Fatalf("groups %#v, want JSON array %v", c["groups"], tt.groups)
			}
			if c["sub"] != tt.sub || c["email"] != tt.email || c["iss"] != d.url {
				t.Fatalf("claims %v", c)
			}
			exp, iat, nbf := c["exp"].(float64), c["iat"].(float64), c["nbf"].(float64)
			if life := exp - iat; life < 3598 || life > 3602 || nbf > iat {
				t.Fatalf("exp-iat %v nbf %v iat %v", life, nbf, iat)
			}
			if jti, _ := c["jti"].(string); len(jti) < 32 {
				t.Fatalf("jti %q", jti)
			}
		})
	}
	jws, err := jose.ParseSignedCompact(userTok.AccessToken, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if h := jws.Signatures[0].Header; h.Algorithm != "RS256" || h.KeyID != d.KeyID() {
		t.Fatalf("header alg %q kid %q", h.Algorithm, h.KeyID)
	}
}

// tokenVia obtains an access token for alice (or the client) through one
// flow.
type flow struct {
	name   string
	client string
	get    func(d *idp, client string, scopes []string) string
}

var flows = []flow{
	{"password", "nmp-cli", func(d *idp, client string, scopes []string) string {
		return d.mustPassword(client, "alice", alicePassword, scopes...).AccessToken
	}},
	{"device code", "nmp-cli", func(d *idp, client string, scopes []string) string {
		cfg := d.oauth(client, "", scopes...)
		da := d.startDevice(cfg)
		d.approve(browser(d.t), da.UserCode, "alice", alicePassword)
		_, body := d.poll(client, da.DeviceCode)
		at, _ := body["access_token"].(string)
		if at == "" {
			d.t.Fatalf("device poll: %v", body)
		}
		return at
	}},
	{"authorization code", "nmp-cli", func(d *idp, client string, scopes []string) string {
		cfg := d.oauth(client, "", scopes...)
		q, verifier := d.codeFlow(cfg, newCallback(d.t, "127.0.0.1"), "alice", alicePassword)
		tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			d.t.Fatal(err)
		}
		return d.token(tok).AccessToken
	}},
	{"refresh", "nmp-cli", func(d *idp, client string, scopes []string) string {
		tok := d.mustPassword(client, "alice", alicePassword, append([]string{"offline_access"}, scopes...)...)
		tok.Expiry = time.Now().Add(-time.Minute)
		next, err := d.oauth(client, "").TokenSource(context.Background(), tok).Token()
		if err != nil {
			d.t.Fatal(err)
		}
		return d.token(next).AccessToken
	}},
	{"client credentials", "ci", func(d *idp, client string, _ []string) string {
		tok, err := clientCredentials(d.oauth(client, ciSecret))
		if err != nil {
			d.t.Fatal(err)
		}
		return d.token(tok).AccessToken
	}},
}

func TestAudienceRule(t *testing.T) {
	for _, aud := range []*string{nil, ptr("nmp-api")} {
		for _, f := range flows {
			name := f.name + "/client_id"
			if aud != nil {
				name = f.name + "/dev_idp.audience"
			}
			t.Run(name, func(t *testing.T) {
				d := newIDP(t, func(c *config.DevIDPConfig) { c.Audience = aud })
				c := claims(t, f.get(d, f.client, []string{"openid"}))
				want := []any{f.client}
				if aud != nil {
					want = []any{*aud}
				}
				if got, _ := c["aud"].([]any); !slices.Equal(got, want) {
					t.Fatalf("aud %v, want %v", c["aud"], want)
				}
			})
		}
	}
}

func TestScopeRule(t *testing.T) {
	tests := []struct {
		name   string
		flow   flow
		client string
		scopes []string
		want   string
	}{
		{"password grants what is asked", flows[0], "nmp-cli", []string{"openid", "platform:read", "platform:admin"}, "openid platform:read platform:admin"},
		{"password within the client's scopes", flows[0], "limited", []string{"openid", "email", "platform:read", "platform:write"}, "openid email platform:read"},
		{"device within the client's scopes", flows[1], "limited", []string{"openid", "platform:read", "platform:write"}, "openid platform:read"},
		{"code within the client's scopes", flows[2], "limited", []string{"openid", "platform:write", "platform:read"}, "openid platform:read"},
		{"client credentials: the client's scopes", flows[4], "ci", []string{"platform:admin"}, "platform:read platform:write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newIDP(t)
			if c := claims(t, tt.flow.get(d, tt.client, tt.scopes)); c["scope"] != tt.want {
				t.Fatalf("scope %q, want %q", c["scope"], tt.want)
			}
		})
	}
}

func TestUserinfo(t *testing.T) {
	d := newIDP(t)
	tok := d.mustPassword("nmp-cli", "alice", alicePassword, "openid", "email", "profile")
	bare := d.mustPassword("nmp-cli", "bob", bobPassword, "openid")
	tests := []struct {
		name   string
		token  string
		status int
		want   map[string]any
	}{
		{"email and profile", tok.AccessToken, 200, map[string]any{
			"sub": "alice", "email": "alice@example.com", "preferred_username": "alice", "groups": []any{"ml-team", "admins"},
		}},
		{"openid only", bare.AccessToken, 200, map[string]any{"sub": "bob-subject", "groups": []any{}}},
		{"garbage", "not-a-token", 401, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, d.url+"/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+tt.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer testenv.Close(t, resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.want == nil {
				return
			}
			var got map[string]any
			if err := jsonDecode(resp.Body, &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				same := equalJSON(got[k], v) || k == "groups" && slices.Equal(asSlice(got[k]), asSlice(v))
				if !same {
					t.Fatalf("%s = %#v, want %#v (all: %v)", k, got[k], v, got)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("userinfo %v, want %v", got, tt.want)
			}
		})
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func TestNewRejectsBadInput(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	dup := testConfig()
	dup.Users = append(dup.Users, dup.Users[0])
	secretless := testConfig()
	secretless.Clients = append(secretless.Clients, config.DevIDPClient{ClientID: "x", GrantTypes: []string{config.GrantTypeClientCredentials}})
	tests := []struct {
		name   string
		cfg    config.DevIDPConfig
		issuer string
		key    *rsa.PrivateKey
	}{
		{"short key", testConfig(), "http://127.0.0.1:1", small},
		{"no key", testConfig(), "http://127.0.0.1:1", nil},
		{"relative issuer", testConfig(), "/idp", testKey()},
		{"issuer with query", testConfig(), "http://127.0.0.1:1/?a=b", testKey()},
		{"duplicate user", dup, "http://127.0.0.1:1", testKey()},
		{"confidential client without secret", secretless, "http://127.0.0.1:1", testKey()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := devidp.New(tt.cfg, tt.issuer, tt.key); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// Every test checks at cleanup that no registered password, secret, code
// or token reached the provider's or zitadel's logs; this one also runs
// the failure paths and checks that the logs say what happened.
func TestLogsHoldNoSecrets(t *testing.T) {
	d := newIDP(t)
	typo := "alice-Pw-typed-into-the-username-field"
	d.secret(typo)
	for _, f := range flows {
		f.get(d, f.client, []string{"openid", "offline_access"})
	}
	if _, err := d.password("nmp-cli", "alice", "wrong-"+alicePassword); err == nil {
		t.Fatal("wrong password accepted")
	}
	if _, err := d.password("nmp-cli", typo, alicePassword); err == nil {
		t.Fatal("unknown username accepted")
	}
	_, err := clientCredentials(d.oauth("ci", "wrong-"+ciSecret))
	if err == nil {
		t.Fatal("wrong secret accepted")
	}
	d.secret("wrong-"+alicePassword, "wrong-"+ciSecret)
	cfg := d.oauth("nmp-cli", "", "openid")
	q, verifier := d.codeFlow(cfg, newCallback(t, "127.0.0.1"), "alice", alicePassword)
	for range 2 {
		tok, _ := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
		d.token(tok)
	}
	logs := d.logs.String()
	for _, want := range []string{
		"tokens issued", `msg="sign-in failed" flow=password client_id=nmp-cli username=alice`,
		`username="(unknown user)"`, `msg="client authentication failed" client_id=ci`, "authorization code replayed",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q", want)
		}
	}
}
