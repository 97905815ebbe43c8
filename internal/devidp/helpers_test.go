package devidp_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/devidp"
	"github.com/nmp-project/nmp/internal/testenv"
)

// Credentials of the test configuration. Every one is registered as a
// secret: no test log may contain it.
const (
	alicePassword = "alice-Pw-7f3a9c0e"
	bobPassword   = "bob-Pw-51d2e8aa"
	ciSecret      = "ci-Secret-0b4f6d13"
	bareSecret    = "bare-Secret-92c7a1e5"
	webSecret     = "web-Secret-3e8d0f27"
)

// libraryLogs captures slog.Default, where zitadel logs.
var libraryLogs testenv.Buffer

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(&libraryLogs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	os.Exit(m.Run())
}

// fakeClock is the injected clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func ptr[T any](v T) *T { return &v }

// testConfig is the default dev_idp section (public nmp-cli) plus users
// and clients covering each case.
func testConfig() config.DevIDPConfig {
	cfg := config.Default().DevIDP
	cfg.Users = []config.DevIDPUser{
		{Username: "alice", Password: alicePassword, Email: "alice@example.com", Groups: []string{"ml-team", "admins"}},
		{Username: "bob", Password: bobPassword, Email: "bob@example.com", Subject: "bob-subject"},
	}
	cfg.Clients = append(cfg.Clients,
		config.DevIDPClient{ // confidential, client credentials, subject and scopes
			ClientID: "ci", ClientSecret: ptr(ciSecret), GrantTypes: []string{config.GrantTypeClientCredentials},
			Subject: ptr("svc-ci"), Email: ptr("ci@example.com"), Groups: []string{"robots"},
			Scopes: []string{"platform:read", "platform:write"},
		},
		config.DevIDPClient{ // confidential, client credentials, nothing optional
			ClientID: "ci-bare", ClientSecret: ptr(bareSecret), GrantTypes: []string{config.GrantTypeClientCredentials},
		},
		config.DevIDPClient{ // public, restricted scopes, localhost callback
			ClientID: "limited", Public: true,
			GrantTypes: []string{
				config.GrantTypePassword, config.GrantTypeRefreshToken, config.GrantTypeDeviceCode, config.GrantTypeAuthorizationCode,
			},
			RedirectURIs: []string{"http://localhost/callback"},
			Scopes:       []string{"platform:read"},
		},
		config.DevIDPClient{ // confidential user-flow client with a loopback callback
			ClientID: "webapp", ClientSecret: ptr(webSecret),
			GrantTypes: []string{
				config.GrantTypeAuthorizationCode, config.GrantTypeRefreshToken, config.GrantTypePassword, config.GrantTypeDeviceCode,
			},
			RedirectURIs: []string{"http://127.0.0.1/callback"},
		},
	)
	return cfg
}

// idp is a provider on a real 127.0.0.1 listener with an injected clock
// and captured logs. At cleanup it fails the test if a registered secret
// shows up in any log.
type idp struct {
	t *testing.T
	*devidp.Provider
	url   string
	clock *fakeClock
	logs  *testenv.Buffer

	mu      sync.Mutex
	secrets []string
}

func newIDP(t *testing.T, mutate ...func(*config.DevIDPConfig)) *idp {
	t.Helper()
	cfg := testConfig()
	for _, m := range mutate {
		m(&cfg)
	}
	clock := &fakeClock{t: time.Now()}
	logs := &testenv.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	p, err := devidp.New(cfg, issuer, testKey(), devidp.WithClock(clock.Now), devidp.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p.Handler()
	srv.Start()
	d := &idp{t: t, Provider: p, url: issuer, clock: clock, logs: logs}
	t.Cleanup(d.checkLogs)
	t.Cleanup(srv.Close)
	for _, u := range cfg.Users {
		d.secret(u.Password)
	}
	for _, c := range cfg.Clients {
		if c.ClientSecret != nil {
			d.secret(*c.ClientSecret)
		}
	}
	return d
}

// secret registers values that must not be logged.
func (d *idp) secret(values ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, v := range values {
		if v != "" {
			d.secrets = append(d.secrets, v)
		}
	}
}

func (d *idp) token(tok *oauth2.Token) *oauth2.Token {
	if tok != nil {
		d.secret(tok.AccessToken, tok.RefreshToken)
		if id, ok := tok.Extra("id_token").(string); ok {
			d.secret(id)
		}
	}
	return tok
}

func (d *idp) checkLogs() {
	logs := d.logs.String() + libraryLogs.String()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.secrets {
		if strings.Contains(logs, s) {
			d.t.Errorf("a password, secret, code or token (%.8s…) appears in the logs", s)
		}
	}
	if d.t.Failed() && testing.Verbose() {
		d.t.Logf("provider logs:\n%s", d.logs.String())
	}
}

// oauth returns an x/oauth2 client configuration; a confidential client
// authenticates with HTTP Basic unless style says otherwise.
func (d *idp) oauth(clientID, secret string, scopes ...string) *oauth2.Config {
	style := oauth2.AuthStyleInParams
	if secret != "" {
		style = oauth2.AuthStyleInHeader
	}
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		Scopes:       scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:       d.url + "/authorize",
			TokenURL:      d.url + "/token",
			DeviceAuthURL: d.url + "/device_authorization",
			AuthStyle:     style,
		},
	}
}

// password runs the password grant for a public client.
func (d *idp) password(clientID, username, password string, scopes ...string) (*oauth2.Token, error) {
	tok, err := d.oauth(clientID, "", scopes...).PasswordCredentialsToken(context.Background(), username, password)
	return d.token(tok), err
}

func (d *idp) mustPassword(clientID, username, password string, scopes ...string) *oauth2.Token {
	d.t.Helper()
	tok, err := d.password(clientID, username, password, scopes...)
	if err != nil {
		d.t.Fatalf("password grant: %v", err)
	}
	return tok
}

// errorCode is the RFC 6749 error code of an x/oauth2 error.
func errorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	if err == nil {
		return ""
	}
	return "not an OAuth error: " + err.Error()
}

// post sends a form to path, with Basic credentials if user is set, and
// decodes a JSON answer.
func (d *idp) post(path string, form url.Values, user, pass string) (int, map[string]any, http.Header) {
	d.t.Helper()
	req, err := http.NewRequest(http.MethodPost, d.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer testenv.Close(d.t, resp.Body)
	body := map[string]any{}
	raw, _ := io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &body); err != nil {
			d.t.Fatalf("decode %s: %v: %s", path, err, raw)
		}
	}
	if s, ok := body["access_token"].(string); ok {
		d.secret(s)
	}
	if s, ok := body["refresh_token"].(string); ok {
		d.secret(s)
	}
	return resp.StatusCode, body, resp.Header
}

// get fetches path and decodes a JSON answer.
func (d *idp) getJSON(path string, into any) int {
	d.t.Helper()
	resp, err := http.Get(d.url + path)
	if err != nil {
		d.t.Fatal(err)
	}
	defer testenv.Close(d.t, resp.Body)
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			d.t.Fatalf("decode %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// claims decodes a JWT's payload without verifying it.
func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// verify checks a JWT's RS256 signature against the provider's JWKS and
// returns its claims.
func (d *idp) verify(jwt string) (map[string]any, error) {
	var set jose.JSONWebKeySet
	if code := d.getJSON("/jwks", &set); code != http.StatusOK {
		return nil, fmt.Errorf("jwks: HTTP %d", code)
	}
	return verifyWith(set, jwt)
}

func verifyWith(set jose.JSONWebKeySet, jwt string) (map[string]any, error) {
	jws, err := jose.ParseSignedCompact(jwt, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, err
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		return nil, fmt.Errorf("kid %q: %d keys", jws.Signatures[0].Header.KeyID, len(keys))
	}
	payload, err := jws.Verify(&keys[0])
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	return m, json.Unmarshal(payload, &m)
}

// browser is an HTTP client with cookies, as a browser would be.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

// callback is a loopback redirect target on a random port; it records the
// query of each request.
type callback struct {
	url string
	got chan url.Values
}

func newCallback(t *testing.T, host string) *callback {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cb := &callback{got: make(chan url.Values, 4)}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" {
			cb.got <- r.URL.Query()
		}
		_, _ = io.WriteString(w, "you can close this window")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	cb.url = fmt.Sprintf("http://%s:%d/callback", host, ln.Addr().(*net.TCPAddr).Port)
	return cb
}

func (cb *callback) wait(t *testing.T) url.Values {
	t.Helper()
	select {
	case q := <-cb.got:
		return q
	case <-time.After(5 * time.Second):
		t.Fatal("no request reached the callback")
		return nil
	}
}

var (
	authReqField = regexp.MustCompile(`name="auth_request_id" value="([^"]*)"`)
	csrfField    = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)
)

// page is a fetched HTML page.
type page struct {
	status int
	body   string
	url    *url.URL // after redirects
}

func fetch(t *testing.T, c *http.Client, req *http.Request) page {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, resp.Body)
	b, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, string(b), resp.Request.URL}
}

func getPage(t *testing.T, c *http.Client, u string) page {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fetch(t, c, req)
}

func postPage(t *testing.T, c *http.Client, u string, form url.Values) page {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return fetch(t, c, req)
}

func field(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in page:\n%s", re, body)
	}
	return m[1]
}

// login drives the sign-in form of an authorization request: GET authURL
// (zitadel validates it and redirects to the form), then POST the
// credentials; the browser follows the redirect to the callback.
func (d *idp) login(b *http.Client, authURL, username, password string) page {
	d.t.Helper()
	form := getPage(d.t, b, authURL)
	if form.status != http.StatusOK {
		d.t.Fatalf("GET authorize: HTTP %d: %s", form.status, form.body)
	}
	return postPage(d.t, b, d.url+"/authorize", url.Values{
		"auth_request_id": {field(d.t, authReqField, form.body)},
		"csrf_token":      {field(d.t, csrfField, form.body)},
		"username":        {username},
		"password":        {password},
	})
}

// codeFlow runs authorization code + PKCE up to the code and returns the
// callback's query and the verifier.
func (d *idp) codeFlow(cfg *oauth2.Config, cb *callback, username, password string) (url.Values, string) {
	d.t.Helper()
	cfg.RedirectURL = cb.url
	verifier := oauth2.GenerateVerifier()
	d.secret(verifier)
	state := "state-" + oauth2.GenerateVerifier()[:16]
	res := d.login(browser(d.t), cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), username, password)
	if res.status != http.StatusOK {
		d.t.Fatalf("sign-in: HTTP %d: %s", res.status, res.body)
	}
	q := cb.wait(d.t)
	if got := q.Get("state"); got != state {
		d.t.Fatalf("state = %q, want %q", got, state)
	}
	d.secret(q.Get("code"))
	return q, verifier
}

var cryptoSHA256 = crypto.SHA256

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// clientCredentials runs the client credentials grant with x/oauth2.
func clientCredentials(cfg *oauth2.Config) (*oauth2.Token, error) {
	cc := clientcredentials.Config{
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, TokenURL: cfg.Endpoint.TokenURL,
		Scopes: cfg.Scopes, AuthStyle: cfg.Endpoint.AuthStyle,
	}
	return cc.Token(context.Background())
}
