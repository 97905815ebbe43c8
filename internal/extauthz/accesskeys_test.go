package extauthz_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// TestAccessKeysThroughExtAuthz: an access key presented to Envoy is
// validated by the Check like at the API: its principal is the identity
// sent upstream, its scopes bind it (a read-only key cannot write), and a
// revocation is refused on the next Check.
func TestAccessKeysThroughExtAuthz(t *testing.T) {
	gln := servertest.Listen(t)
	srv := servertest.Start(t, func(c *config.Config) {
		c.Auth.Enabled = true
		c.Auth.AllowUnsignedJWT = true
		c.Auth.AccessKeys.Enabled = true
		c.Auth.ExtAuthz.GRPCAddress = gln.Addr().String()
	}, server.WithExtAuthzListener(gln))
	srv.WaitReady(t)
	user := "Bearer " + unsignedToken(t, "carol", "carol@example.com", nil, nil)
	api := func(method, path, body string) map[string]any {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		raw, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	key := api("POST", "/apis/auth/v2/access-keys", `{"scopes": ["platform:read"]}`)

	conn, err := grpc.NewClient(gln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	check := func(method, path string) answer {
		t.Helper()
		resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(),
			checkRequest(method, path, map[string]string{"authorization": "Bearer " + key["token"].(string)}))
		if err != nil {
			t.Fatal(err)
		}
		return grpcAnswer(t, resp)
	}
	if got := check("GET", "/apis/entities/v2/workspaces/default/projects"); got.status != 200 ||
		got.identity["x-nmp-principal-id"] != "carol" || got.identity["x-nmp-scopes"] != "platform:read" {
		t.Fatalf("read: %+v", got)
	}
	if got := check("POST", "/apis/entities/v2/workspaces/default/projects"); got.status != 403 {
		t.Fatalf("write with a read-only key: %+v", got)
	}
	api("DELETE", "/apis/auth/v2/access-keys/"+key["jti"].(string), "")
	if got := check("GET", "/apis/entities/v2/workspaces/default/projects"); got.status != 401 {
		t.Fatalf("revoked key: %+v", got)
	}
}
