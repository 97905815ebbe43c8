package server_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// BenchmarkGetWorkspace is the end-to-end cost of GET one workspace
// through the whole handler chain, with auth off and with a valid RS256
// bearer token (OIDC verification + PDP). The difference is what
// authentication and authorization add per request (docs/benchmarks.md).
func BenchmarkGetWorkspace(b *testing.B) {
	iss := oidctest.New(b)
	tok := iss.Mint(b, oidctest.Claims{Subject: "u-alice", Email: "alice@example.com", Scope: "openid platform:read"})
	tests := []struct {
		name   string
		mutate func(*config.Config)
		header string
	}{
		{"auth=off", nil, ""},
		{"auth=oidc-rs256", func(c *config.Config) {
			c.Auth.Enabled = true
			c.Auth.OIDC.Enabled = true
			c.Auth.OIDC.Issuer = iss.URL
			c.Auth.OIDC.ClientID = "nmp-cli"
		}, "Bearer " + tok},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			srv := servertest.Start(b, tc.mutate)
			h := srv.Server.Handler()
			req := httptest.NewRequest(http.MethodGet, "/apis/entities/v2/workspaces/default", nil)
			req.RemoteAddr = "127.0.0.1:40000"
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			serve := func() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			serve() // warm the JWKS and token caches
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				serve()
			}
		})
	}
}
