package client

import (
	"context"
	"errors"
	"testing"
)

func TestSelfCheck(t *testing.T) {
	tests := []struct {
		name     string
		req      SelfCheckRequest
		wantBody string
	}{
		{"request form", SelfCheckRequest{Method: "GET", Path: "/v2/workspaces"}, `{"method":"GET","path":"/v2/workspaces"}`},
		{"permission form", SelfCheckRequest{Workspace: "ml-team", Permissions: []string{"projects.read"}},
			`{"workspace":"ml-team","permissions":["projects.read"]}`},
		{"as", SelfCheckRequest{Method: "GET", Path: "/", As: &SelfCheckSubject{PrincipalID: "bob", Groups: []string{"g"}}},
			`{"method":"GET","path":"/","as":{"principal_id":"bob","groups":["g"]}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, reqs := fakeServer(t, 200, `{"allowed": false, "reason": "permission_missing"}`)
			res, err := newClient(t, Options{BaseURL: srv.URL}).SelfCheck(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Allowed || res.Reason != "permission_missing" {
				t.Fatalf("result %+v", res)
			}
			r := (*reqs)[0]
			if r.Method != "POST" || r.RequestURI != "/apis/auth/v2/self-check" || r.Body != tc.wantBody {
				t.Fatalf("sent %s %s %s, want body %s", r.Method, r.RequestURI, r.Body, tc.wantBody)
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		srv, _ := fakeServer(t, 403, `{"detail": "Only a PlatformAdmin may ask on behalf of another principal", "code": "forbidden"}`)
		_, err := newClient(t, Options{BaseURL: srv.URL}).SelfCheck(context.Background(), SelfCheckRequest{Method: "GET", Path: "/"})
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 403 || apiErr.Code != "forbidden" {
			t.Fatalf("%v", err)
		}
	})
}
