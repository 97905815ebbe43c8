package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// Benchmarks of the lean request path (docs/benchmarks.md "Lean request
// path (issue 15)"): the PDP allow entrypoint and the gateway callout
// through the server's whole handler chain (middleware, authentication,
// the endpoint's own authorization, the handler), served in process to a
// recorder so that the network stack is not measured.

func benchServe(b *testing.B, h http.Handler, newReq func() *http.Request, want int) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, newReq())
		if w.Code != want {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

func BenchmarkPDPAllowEntrypoint(b *testing.B) {
	srv := servertest.Start(b, devMode)
	srv.WaitReady(b)
	const body = `{"input": {"principal_id": "alice@example.com", "principal_groups": ["ml-readers"], "method": "GET", "path": "/v2/workspaces/ml-team"}}`
	benchServe(b, srv.Server.Handler(), func() *http.Request {
		r := httptest.NewRequest("POST", pdpPath+"allow", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-NMP-Principal-Id", "service:gateway")
		return r
	}, 200)
}

func BenchmarkGatewayCallout(b *testing.B) {
	iss := oidctest.New(b)
	srv := servertest.Start(b, withOIDC(iss, func(c *config.Config) { c.Auth.AuthenticateAuthorize = true }))
	srv.WaitReady(b)
	tok := iss.Mint(b, oidctest.Claims{Subject: "u-carol", Email: "carol@example.com"})
	benchServe(b, srv.Server.Handler(), func() *http.Request {
		r := httptest.NewRequest("GET", "/apis/auth/authenticate/v2/workspaces", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}, 200)
}
