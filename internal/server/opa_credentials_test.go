package server_test

import (
	"context"
	"encoding/pem"
	"log/slog"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/devidp"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/testenv"
	"github.com/nmp-project/nmp/internal/testenv/opatest"
)

// TestOPAFetchesTheBundleWithClientCredentials is the documented
// alternative to a trusted network path: OPA gets a token from the IdP
// with the OAuth2 client-credentials grant (OPA's own
// credentials.oauth2) and presents it for the bundle. The token's
// principal needs iam.bundle.read in system: refused (and OPA not ready)
// until an operator-defined BundleReader role is bound to it, then OPA
// activates the bundle. No identity header is trusted here.
func TestOPAFetchesTheBundleWithClientCredentials(t *testing.T) {
	opatest.Binary(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	idpCfg := config.Default()
	idpCfg.Platform.DataDir = t.TempDir()
	audience, secret, subject := "nmp", "opa-client-secret-for-tests", "opa-bundle-reader"
	idpCfg.DevIDP.Audience = &audience
	idpCfg.DevIDP.Clients = []config.DevIDPClient{{ClientID: "opa", ClientSecret: &secret, Subject: &subject,
		GrantTypes: []string{config.GrantTypeClientCredentials}, Scopes: []string{"platform:read"}}}
	idpLogs := &testenv.Buffer{}
	idp, err := devidp.Start(ctx, idpCfg, "127.0.0.1:0", slog.New(slog.NewTextHandler(idpLogs, nil)))
	if err != nil {
		t.Fatal(err)
	}

	// OPA sends client credentials only to an https token endpoint: a TLS
	// front for the IdP, its certificate trusted through OPA's service TLS.
	idpURL, err := url.Parse(idp.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(idpURL))
	t.Cleanup(front.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	extra := filepath.Join(t.TempDir(), "bundle-reader.yaml")
	if err := os.WriteFile(extra, []byte("roles: {BundleReader: {description: Reads the OPA bundle, permissions: [iam.bundle.read]}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln := servertest.Listen(t)
	opaCfg := filepath.Join(t.TempDir(), "opa.yaml")
	if err := os.WriteFile(opaCfg, []byte(`services:
  nmp:
    url: `+servertest.URL(ln)+`
    tls: {ca_cert: `+caFile+`}
    credentials:
      oauth2:
        token_url: `+front.URL+`/token
        client_id: opa
        client_secret: `+secret+`
        scopes: [platform:read]
bundles:
  nmp:
    service: nmp
    resource: /apis/auth/v2/iam/opa-bundle.tar.gz
    persist: false
    polling: {min_delay_seconds: 1, max_delay_seconds: 1, long_polling_timeout_seconds: 30}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := servertest.StartOn(t, ln, func(c *config.Config) {
		c.Auth.Enabled = true
		c.Auth.OIDC.Enabled = true
		c.Auth.OIDC.Issuer = idp.Issuer
		c.Auth.OIDC.Audience = &audience
		c.Auth.ExtraAuthzDataFiles = []string{extra}
	})
	o := opatest.Start(t, "--config-file", opaCfg)

	// Refused until the binding exists: the token is valid, the principal
	// lacks the permission.
	defer func() {
		if t.Failed() {
			t.Log(o.Logs())
			t.Log(srv.Logs())
		}
	}()
	eventually(t, "the bundle refused to OPA's principal", func() bool {
		return strings.Contains(srv.Logs(), "bundle_forbidden") && strings.Contains(srv.Logs(), subject)
	})
	if r := send(t, "GET", o.URL+"/health?bundles", "", ""); r.status == 200 {
		t.Fatal("OPA activated a bundle it was refused")
	}
	if _, err := srv.Store().CreateRoleBinding(ctx, store.NewRoleBinding{Principal: subject, Workspace: "system", Role: "BundleReader", By: "test"}); err != nil {
		t.Fatal(err)
	}
	o.WaitHealthy("/health?bundles")
	t.Log(o.Logs())
	t.Log(srv.Logs())
	if strings.Contains(srv.Logs(), secret) || strings.Contains(o.Logs(), "Authorization: Bearer ey") {
		t.Error("a credential reached a log")
	}
}
