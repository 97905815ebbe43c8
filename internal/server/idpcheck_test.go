package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// TestIssuerTrailingSlashNamedAtStart: an auth.oidc.issuer that differs
// from the IdP's own issuer only by a trailing slash is named as such in
// the log when the server starts, before any token arrives.
func TestIssuerTrailingSlashNamedAtStart(t *testing.T) {
	tests := []struct {
		name   string
		issuer func(*oidctest.Issuer) string
		want   string
	}{
		{name: "exact issuer", issuer: func(i *oidctest.Issuer) string { return i.URL }, want: "identity provider answers"},
		{name: "trailing slash", issuer: func(i *oidctest.Issuer) string { return i.URL + "/" }, want: "only by a trailing slash"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss := oidctest.New(t)
			srv := servertest.Start(t, func(c *config.Config) {
				devMode(c)
				c.Auth.OIDC.Enabled = true
				c.Auth.OIDC.Issuer = tc.issuer(iss)
				c.Auth.OIDC.ClientID = "nmp-cli"
			})
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(srv.Logs(), tc.want) {
				if time.Now().After(deadline) {
					t.Fatalf("no %q in the start-up log:\n%s", tc.want, srv.Logs())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
