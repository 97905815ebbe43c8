package api_test

import (
	"testing"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// TestMethodNotAllowed: a method the API does not serve on a path it
// knows is 405 method_not_allowed with Allow for everyone — anonymous or
// signed in, auth on or off — decided before identification, so neither
// 401 nor 403; unknown paths, bypass paths, HEAD on GET routes, the
// aliases and the gateway callout keep their behaviour.
func TestMethodNotAllowed(t *testing.T) {
	iss := oidctest.New(t)
	tok := iss.Mint(t, oidctest.Claims{Subject: "u-alice", Email: "alice@example.com", Scope: "openid platform:read platform:write"})
	servers := []struct {
		name   string
		mutate func(*config.Config)
		authOn bool
	}{
		{"auth off", nil, false},
		{"auth on", withOIDC(iss, func(c *config.Config) { c.Auth.AuthenticateAuthorize = true }), true},
	}
	callers := []struct {
		name   string
		header []string
	}{
		{"anonymous", nil},
		{"signed in", bearer(tok)},
	}
	// The status per server and caller.
	type want struct {
		offAnon, offSignedIn, onAnon, onSignedIn int
		allow                                    string
	}
	tests := []struct {
		name, method, path string
		want               want
	}{
		{"PATCH the workspace collection (alias)", "PATCH", "/v2/workspaces", want{405, 405, 405, 405, "GET, HEAD, POST"}},
		{"PATCH the workspace collection", "PATCH", ws, want{405, 405, 405, 405, "GET, HEAD, POST"}},
		{"DELETE the collection, trailing slash", "DELETE", "/v2/workspaces/", want{405, 405, 405, 405, "GET, HEAD, POST"}},
		{"POST one workspace", "POST", "/v2/workspaces/default", want{405, 405, 405, 405, "DELETE, GET, HEAD, PUT"}},
		{"OPTIONS members", "OPTIONS", ws + "/default/members", want{405, 405, 405, 405, "GET, HEAD, POST"}},
		{"GET the self-check", "GET", "/apis/auth/v2/self-check", want{405, 405, 405, 405, "POST"}},
		{"PATCH role bindings", "PATCH", "/apis/auth/v2/iam/role-bindings", want{405, 405, 405, 405, "GET, HEAD, POST"}},
		{"POST a bypass path", "POST", "/health/live", want{405, 405, 405, 405, "GET, HEAD"}},
		{"PUT discovery", "PUT", "/apis/auth/discovery", want{405, 405, 405, 405, "GET, HEAD"}},
		// Unchanged behaviour.
		{"GET the collection", "GET", "/v2/workspaces", want{200, 200, 401, 200, ""}},
		{"HEAD on a GET route", "HEAD", "/v2/workspaces/default", want{200, 200, 401, 200, ""}},
		{"GET a bypass path", "GET", "/health/live", want{200, 200, 200, 200, ""}},
		{"unknown path", "PATCH", "/apis/nothing/here", want{404, 404, 401, 403, ""}},
		{"unknown path below a known one", "PATCH", ws + "/default/members/bob/extra", want{404, 404, 401, 403, ""}},
		{"callout, any method (not 405)", "PATCH", "/apis/auth/authenticate/v2/workspaces/default", want{401, 500, 401, 403, ""}}, // auth off: no token validator (500 misconfigured), as before
	}
	for _, sv := range servers {
		t.Run(sv.name, func(t *testing.T) {
			srv := servertest.Start(t, sv.mutate)
			for _, tc := range tests {
				for _, c := range callers {
					t.Run(tc.name+"/"+c.name, func(t *testing.T) {
						wantStatus := tc.want.offAnon
						switch {
						case !sv.authOn && c.header != nil:
							wantStatus = tc.want.offSignedIn
						case sv.authOn && c.header == nil:
							wantStatus = tc.want.onAnon
						case sv.authOn:
							wantStatus = tc.want.onSignedIn
						}
						status, h, body := call(t, tc.method, srv.URL+tc.path, "", c.header...)
						if status != wantStatus {
							t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, status, body, wantStatus)
						}
						if status == 405 {
							if h.Get("Allow") != tc.want.allow {
								t.Fatalf("Allow %q, want %q", h.Get("Allow"), tc.want.allow)
							}
							if _, m := callJSON(t, tc.method, srv.URL+tc.path, "", c.header...); m["code"] != "method_not_allowed" || m["detail"] == "" {
								t.Fatalf("body %v", m)
							}
						}
					})
				}
			}
		})
	}
}
