package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nmp-project/nmp/internal/cli/clientconfig"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// TestDecisionLogEndToEnd: with the decision log on (every allow
// sampled), requests through the API, the gateway callout, self-check
// and Envoy ext_authz each leave one entry per decision with the right
// source, request id, principal, decision and reason; the file is 0600,
// and no line holds the bearer token.
func TestDecisionLogEndToEnd(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "decisions.log")
	gln := servertest.Listen(t)
	srv := servertest.Start(t, func(c *config.Config) {
		c.Auth.Enabled = true
		c.Auth.AllowUnsignedJWT = true
		c.Auth.AuthenticateAuthorize = true
		c.Auth.ExtAuthz.GRPCAddress = gln.Addr().String()
		c.Auth.DecisionLog = config.DecisionLogConfig{Enabled: true, AllowSampleRate: 1, Output: logPath, BufferSize: 100}
	}, server.WithExtAuthzListener(gln))
	srv.WaitReady(t)
	token, err := clientconfig.UnsignedJWT(map[string]any{"sub": "alice", "email": "alice@example.com",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}

	do := func(reqID, method, path string, header map[string]string, body string, wantStatus int) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Request-Id", reqID)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := servertest.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s: status %d, want %d", method, path, resp.StatusCode, wantStatus)
		}
	}
	// "*" is Editor in default: alice may read it, not delete it.
	do("api-allow", "GET", "/v2/workspaces/default?page=1", nil, "", http.StatusOK)
	do("api-deny", "DELETE", "/apis/entities/v2/workspaces/default", nil, "", http.StatusForbidden)
	callout := func(id, method, uri string, want int) {
		do(id, "GET", "/apis/auth/authenticate", map[string]string{"X-Forwarded-Method": method, "X-Forwarded-Uri": uri}, "", want)
	}
	callout("callout-allow", "GET", "/v2/workspaces/default/projects", http.StatusOK)
	callout("callout-deny", "DELETE", "/apis/entities/v2/workspaces/default", http.StatusForbidden)
	do("self-check", "POST", "/apis/auth/v2/self-check", nil, `{"method":"DELETE","path":"/v2/workspaces/default"}`, http.StatusOK)

	conn, err := grpc.NewClient(gln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "203.0.113.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "envoy-deny", Method: "DELETE", Path: "/apis/entities/v2/workspaces/default", Host: "nmp.example.com",
			Headers: map[string]string{"authorization": "Bearer " + token}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetDeniedResponse() == nil {
		t.Fatalf("ext_authz allowed a delete of default: %v", resp)
	}

	srv.Stop(t) // the decision log is flushed at stop
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(token)) || bytes.Contains(data, []byte(strings.Split(token, ".")[1])) {
		t.Fatalf("the bearer token is in the decision log:\n%s", data)
	}
	if fi, err := os.Stat(logPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("decision log file: %v, %v; want mode 600", fi, err)
	}

	type key struct{ requestID, source, method, path string }
	type want struct{ decision, reason, workspace string }
	got := map[key][]map[string]any{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		k := key{str(e["request_id"]), str(e["source"]), str(e["method"]), str(e["path"])}
		got[k] = append(got[k], e)
	}
	expected := map[key]want{
		{"api-allow", "api", "GET", "/apis/entities/v2/workspaces/default"}:                  {"allow", "permission_granted", "default"},
		{"api-deny", "api", "DELETE", "/apis/entities/v2/workspaces/default"}:                {"deny", "permission_missing", "default"},
		{"callout-allow", "callout", "GET", "/apis/entities/v2/workspaces/default/projects"}: {"allow", "permission_granted", "default"},
		{"callout-deny", "callout", "DELETE", "/apis/entities/v2/workspaces/default"}:        {"deny", "permission_missing", "default"},
		{"self-check", "api", "POST", "/apis/auth/v2/self-check"}:                            {"allow", "authenticated", ""},
		{"self-check", "self-check", "DELETE", "/apis/entities/v2/workspaces/default"}:       {"deny", "permission_missing", "default"},
		{"envoy-deny", "ext_authz", "DELETE", "/apis/entities/v2/workspaces/default"}:        {"deny", "permission_missing", "default"},
	}
	for k, w := range expected {
		entries := got[k]
		if len(entries) != 1 {
			t.Errorf("%+v: %d entries, want 1", k, len(entries))
			continue
		}
		e := entries[0]
		p, _ := e["principal"].(map[string]any)
		if str(e["decision"]) != w.decision || str(e["reason"]) != w.reason || str(e["workspace"]) != w.workspace ||
			str(p["id"]) != "alice" || str(p["email"]) != "alice@example.com" || str(e["pdp"]) != "embedded" ||
			str(e["decision_id"]) == "" {
			t.Errorf("%+v: entry %v, want %+v by alice", k, e, w)
		}
	}
	for k := range got {
		if _, ok := expected[k]; !ok {
			t.Errorf("unexpected entry %+v: %v", k, got[k])
		}
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
