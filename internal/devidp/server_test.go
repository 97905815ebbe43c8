package devidp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/devidp"
	"github.com/nmp-project/nmp/internal/testenv"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "data")
	path := filepath.Join(dir, "dev-idp-signing-key.pem")
	k1, err := devidp.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if k1.N.BitLen() != 2048 {
		t.Fatalf("%d bits", k1.N.BitLen())
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700, filepath.Dir(dir): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Fatalf("%s mode %o, want %o", p, got, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the key", len(entries))
	}
	k2, err := devidp.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("second load returned another key")
	}

	pkcs1 := filepath.Join(t.TempDir(), "pkcs1.pem")
	writePEM(t, pkcs1, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(testKey()))
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallFile := filepath.Join(t.TempDir(), "small.pem")
	der, _ := x509.MarshalPKCS8PrivateKey(small)
	writePEM(t, smallFile, "PRIVATE KEY", der)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr bool
	}{
		{"PKCS #1 accepted", pkcs1, false},
		{"1024-bit key refused", smallFile, true},
		{"not PEM", garbage, true},
		{"empty name", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := devidp.LoadOrCreateKey(tt.path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "not a key") {
				t.Fatal("error quotes the file content")
			}
		})
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startIDP runs Start on 127.0.0.1:0 with data dir dataDir.
func startIDP(t *testing.T, dataDir string, logs *bytes.Buffer) (*devidp.Running, context.CancelFunc) {
	t.Helper()
	cfg := config.Default()
	cfg.Platform.DataDir = dataDir
	cfg.DevIDP = testConfig()
	ctx, cancel := context.WithCancel(context.Background())
	run, err := devidp.Start(ctx, cfg, "127.0.0.1:0", slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-run.Done() })
	return run, cancel
}

func TestStartServesAndReusesTheKey(t *testing.T) {
	dataDir := t.TempDir()
	var logs bytes.Buffer
	run, cancel := startIDP(t, dataDir, &logs)
	if !strings.HasPrefix(run.Issuer, "http://127.0.0.1:") || strings.HasSuffix(run.Issuer, ":0") {
		t.Fatalf("issuer %q", run.Issuer)
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	getJSON(t, run.Issuer+"/.well-known/openid-configuration", &doc)
	if doc.Issuer != run.Issuer {
		t.Fatalf("discovery issuer %q, want %q", doc.Issuer, run.Issuer)
	}
	keyFile := filepath.Join(dataDir, "dev-idp-signing-key.pem")
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v", err)
	}
	// A token from this run...
	resp, err := http.PostForm(run.Issuer+"/token", url.Values{
		"grant_type": {"password"}, "client_id": {"nmp-cli"}, "username": {"alice"}, "password": {alicePassword},
	})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	testenv.Close(t, resp.Body)
	if tok.AccessToken == "" {
		t.Fatalf("password grant: HTTP %d", resp.StatusCode)
	}
	kid := run.Provider.KeyID()

	cancel()
	select {
	case <-run.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown")
	}
	if err := run.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if _, err := http.Get(run.Issuer + "/jwks"); err == nil {
		t.Fatal("still serving after shutdown")
	}

	// ...verifies after a restart: the key file is reused.
	run2, _ := startIDP(t, dataDir, &bytes.Buffer{})
	if run2.Provider.KeyID() != kid {
		t.Fatalf("kid %q after restart, want %q", run2.Provider.KeyID(), kid)
	}
	var set jose.JSONWebKeySet
	getJSON(t, run2.Issuer+"/jwks", &set)
	if _, err := verifyWith(set, tok.AccessToken); err != nil {
		t.Fatalf("token of the first run: %v", err)
	}

	out := logs.String()
	for _, want := range []string{`level=WARN msg="` + devidp.Banner + `"`, "development identity provider listening", "development identity provider stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{alicePassword, ciSecret, tok.AccessToken} {
		if strings.Contains(out, secret) {
			t.Error("logs hold a secret")
		}
	}
}

func getJSON(t *testing.T, u string, into any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatal(err)
	}
}

// An issuer with a path serves every route under it.
func TestIssuerPathPrefix(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + "/idp"
	p, err := devidp.New(testConfig(), issuer, testKey())
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p.Handler()
	srv.Start()
	defer srv.Close()

	var doc map[string]any
	getJSON(t, issuer+"/.well-known/openid-configuration", &doc)
	if doc["issuer"] != issuer || doc["token_endpoint"] != issuer+"/token" || doc["jwks_uri"] != issuer+"/jwks" {
		t.Fatalf("discovery %v", doc)
	}
	var set jose.JSONWebKeySet
	getJSON(t, issuer+"/jwks", &set)
	resp, err := http.PostForm(issuer+"/device_authorization", url.Values{"client_id": {"nmp-cli"}, "scope": {"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	var da map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&da)
	testenv.Close(t, resp.Body)
	if da["verification_uri"] != issuer+"/device" {
		t.Fatalf("device authorization %v", da)
	}
	if r, err := http.Get(issuer + "/device"); err != nil || r.StatusCode != 200 {
		t.Fatalf("device page: %v", err)
	}
	if r, _ := http.Get(srv.URL + "/jwks"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("route outside the prefix: HTTP %d", r.StatusCode)
	}

	// The sign-in form posts and sets its cookie under the prefix.
	cb := newCallback(t, "127.0.0.1")
	cfg := (&idp{url: issuer}).oauth("nmp-cli", "", "openid")
	cfg.RedirectURL = cb.url
	verifier := oauth2.GenerateVerifier()
	b := browser(t)
	form := getPage(t, b, cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if form.status != 200 || form.url.Path != "/idp/authorize" || !strings.Contains(form.body, `action="/idp/authorize"`) {
		t.Fatalf("form HTTP %d at %s", form.status, form.url)
	}
	res := postPage(t, b, issuer+"/authorize", url.Values{
		"auth_request_id": {field(t, authReqField, form.body)}, "csrf_token": {field(t, csrfField, form.body)},
		"username": {"alice"}, "password": {alicePassword},
	})
	if res.status != 200 {
		t.Fatalf("sign-in: HTTP %d", res.status)
	}
	q := cb.wait(t)
	tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := verifyWith(set, tok.AccessToken); err != nil || c["iss"] != issuer {
		t.Fatalf("token: %v %v", err, c)
	}
}
