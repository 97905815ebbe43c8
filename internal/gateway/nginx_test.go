package gateway_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/gateway"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/testenv"
	"github.com/nmp-project/nmp/internal/testenv/nginxtest"
)

func freeAddr(t *testing.T) string { return nginxtest.FreeAddr(t) }

// startNginx runs nginx with the documented configuration in front of
// upstream, or skips when nginx is not installed (CI installs it).
func startNginx(t *testing.T, upstream string) string {
	t.Helper()
	return nginxtest.Start(t, func(prefix, listen string) (string, error) {
		return gateway.NginxConfig{Prefix: prefix, Listen: listen, Upstream: strings.TrimPrefix(upstream, "http://")}.Render()
	})
}

func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, resp.Body)
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestNginxAuthRequest puts a real nginx with auth_request in front of
// nmp: the callout authenticates (and authorizes), nginx forwards only the
// callout's identity headers, and client-sent identity headers never
// reach nmp.
func TestNginxAuthRequest(t *testing.T) {
	iss := oidctest.New(t)
	for _, authorize := range []bool{false, true} {
		t.Run("authenticate_authorize="+strconv.FormatBool(authorize), func(t *testing.T) {
			srv := servertest.Start(t, behindGateway(iss.URL, authorize))
			gw := startNginx(t, srv.URL)
			alice := iss.Mint(t, oidctest.Claims{Subject: "u-alice", Email: "alice@example.com"})
			bob := iss.Mint(t, oidctest.Claims{Subject: "u-bob", Email: "bob@example.com"})
			bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

			tests := []struct {
				name   string
				path   string
				header []string
				status int
				body   string
			}{
				{"bypass path", "/health/live", nil, 200, `"live"`},
				{"no token", "/v2/workspaces", nil, 401, ""},
				{"spoofed identity without token", "/v2/workspaces", []string{"X-NMP-Principal-Id", "root@example.com", "X-NMP-Authorized", "true"}, 401, ""},
				{"valid token", "/v2/workspaces/default", bearer(alice), 200, `"default"`},
				{"spoofed admin header with bob's token is stripped", "/v2/workspaces/system/members",
					append(bearer(bob), "X-NMP-Principal-Id", "root@example.com", "X-NMP-Principal-Email", "root@example.com"), 200, `"*"`},
				{"listing through the gateway ignores a client X-NMP-Authorized", "/v2/workspaces", append(bearer(bob), "X-NMP-Authorized", "true"), 200, `"system"`},
				{"invalid token", "/v2/workspaces", bearer("x.y.z"), 401, ""},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					status, body := get(t, gw+tc.path, tc.header...)
					if status != tc.status || !strings.Contains(body, tc.body) {
						t.Fatalf("%d %s", status, body)
					}
				})
			}
			// Writes the token does not allow are refused (403) with and
			// without authorization at the gateway.
			req, _ := http.NewRequest("DELETE", gw+"/v2/workspaces/default", nil)
			req.Header.Set("Authorization", "Bearer "+bob)
			req.Header.Set("X-NMP-Authorized", "true")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			testenv.Close(t, resp.Body)
			if resp.StatusCode != 403 {
				t.Fatalf("bob deleting default through the gateway: %d", resp.StatusCode)
			}
			// The upstream saw only identities the callout produced.
			if strings.Contains(srv.Logs(), "principal=root@example.com") {
				t.Fatal("a client-sent identity reached nmp")
			}
		})
	}
}

// behindGateway configures nmp behind a gateway on loopback: OIDC tokens
// from issuer, root@example.com PlatformAdmin, the gateway's address
// trusted, and the callout mode; extraData are operator policy files.
func behindGateway(issuer string, authorize bool, extraData ...string) func(*config.Config) {
	return func(c *config.Config) {
		c.Auth.Enabled = true
		c.Auth.OIDC.Enabled = true
		c.Auth.OIDC.Issuer = issuer
		c.Auth.OIDC.ClientID = "nmp-cli"
		admin := "root@example.com"
		c.Auth.AdminEmail = &admin
		c.Auth.TrustedProxies = []string{"127.0.0.1/32"}
		c.Auth.AuthenticateAuthorize = authorize
		c.Auth.ExtraAuthzDataFiles = extraData
	}
}
