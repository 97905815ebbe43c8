package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// What these tests cover, honestly: the CLI never sends identity headers
// and this server has no bearer-token validator yet, so against a real
// server the CLI can only be anonymous. With auth disabled every answer
// is "yes (auth_disabled)"; with auth enabled the anonymous call is 401.
// The yes/no answers per principal are tested at the API level
// (internal/api/selfcheck_test.go); the "no" → exit 1 path and the request
// the CLI sends are tested against a stub server below.

// TestCanIAuthDisabled runs nmp auth can-i against a real server with auth
// disabled.
func TestCanIAuthDisabled(t *testing.T) {
	srv := servertest.Start(t, nil)
	n := newNMP(t, srv)
	tests := []struct {
		name   string
		args   []string
		env    []string
		code   int
		stdout string
		stderr string
	}{
		{"request form", []string{"auth", "can-i", "GET", "/v2/workspaces"}, nil, 0, "yes (auth_disabled)\n", ""},
		{"lower-case method", []string{"auth", "can-i", "delete", "/v2/workspaces/system"}, nil, 0, "yes (auth_disabled)\n", ""},
		{"permission form", []string{"auth", "can-i", "workspaces.update", "projects.create", "-w", "default"}, nil, 0, "yes (auth_disabled)\n", ""},
		{"workspace from env", []string{"auth", "can-i", "projects.read"}, []string{"NMP_WORKSPACE=default"}, 0, "yes (auth_disabled)\n", ""},
		{"as", []string{"auth", "can-i", "GET", "/", "--as", "bob", "--as-group", "a,b", "--as-email", "bob@example.com"}, nil, 0, "yes (auth_disabled)\n", ""},
		{"json", []string{"auth", "can-i", "GET", "/", "-o", "json"}, nil, 0, "{\n  \"allowed\": true,\n  \"reason\": \"auth_disabled\"\n}\n", ""},
		// Usage errors, before any request.
		{"no arguments", []string{"auth", "can-i"}, nil, 2, "", "Error: "},
		{"no workspace", []string{"auth", "can-i", "projects.read"}, nil, 2, "", "no workspace"},
		{"method without path", []string{"auth", "can-i", "GET"}, nil, 2, "", "exactly one PATH"},
		{"relative path", []string{"auth", "can-i", "POST", "v2/workspaces"}, nil, 2, "", "exactly one PATH"},
		{"two paths", []string{"auth", "can-i", "GET", "/a", "/b"}, nil, 2, "", "exactly one PATH"},
		{"workspace with request form", []string{"auth", "can-i", "GET", "/", "-w", "default"}, nil, 2, "", "PERMISSION form only"},
		{"as-email without as", []string{"auth", "can-i", "GET", "/", "--as-email", "a@b.c"}, nil, 2, "", "need --as"},
		// The server validates what the CLI cannot know.
		{"unknown permission", []string{"auth", "can-i", "projects.reed", "-w", "default"}, nil, 3, "", "unknown permission 'projects.reed' (HTTP 422)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &nmp{t: t, env: append(append([]string{}, n.env...), tc.env...)}
			code, out, errOut := m.run(tc.args...)
			if code != tc.code || out != tc.stdout || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", code, tc.code, out, tc.stdout, errOut, tc.stderr)
			}
		})
	}
}

// TestCanIAuthEnabled: with auth enabled the CLI (no identity headers, no
// token) is refused by the server: a remote error with the login hint.
func TestCanIAuthEnabled(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) { c.Auth.Enabled = true })
	n := newNMP(t, srv)
	code, out, errOut := n.run("auth", "can-i", "GET", "/v2/workspaces")
	if code != 3 || out != "" || !strings.Contains(errOut, "(HTTP 401)") || !strings.Contains(errOut, "nmp auth login") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestCanIAnswers runs the CLI against a stub self-check endpoint to pin
// the request it sends and the exit code of each answer.
func TestCanIAnswers(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies []map[string]any
		answer string
	)
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/apis/auth/v2/self-check" {
			http.Error(w, `{"detail": "unexpected"}`, 404)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		bodies = append(bodies, m)
		a := answer
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, a)
	}))
	defer stub.Close()
	env := []string{"HOME=" + t.TempDir(), "NMP_BASE_URL=" + stub.URL}

	tests := []struct {
		name   string
		answer string
		args   []string
		code   int
		stdout string
		sent   string // JSON of the request body
	}{
		{"yes", `{"allowed": true, "reason": "permission_granted"}`, []string{"auth", "can-i", "post", "/v2/workspaces/ml-team/projects"},
			0, "yes (permission_granted)\n", `{"method":"POST","path":"/v2/workspaces/ml-team/projects"}`},
		{"no", `{"allowed": false, "reason": "permission_missing"}`, []string{"auth", "can-i", "workspaces.update", "ml-team/projects.read", "-w", "ml-team"},
			1, "no (permission_missing)\n", `{"permissions":["workspaces.update","ml-team/projects.read"],"workspace":"ml-team"}`},
		{"no as json", `{"allowed": false, "reason": "scope_missing"}`, []string{"auth", "can-i", "GET", "/x", "--as", "bob", "--as-group", "g1,g2", "--as-group", "g3", "-o", "json"},
			1, "{\n  \"allowed\": false,\n  \"reason\": \"scope_missing\"\n}\n", `{"as":{"groups":["g1","g2","g3"],"principal_id":"bob"},"method":"GET","path":"/x"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			answer, bodies = tc.answer, nil
			mu.Unlock()
			n := &nmp{t: t, env: env}
			code, out, errOut := n.run(tc.args...)
			if code != tc.code || out != tc.stdout || errOut != "" {
				t.Fatalf("exit %d (want %d), stdout %q (want %q), stderr %q", code, tc.code, out, tc.stdout, errOut)
			}
			mu.Lock()
			defer mu.Unlock()
			sent, _ := json.Marshal(bodies)
			if string(sent) != "["+tc.sent+"]" {
				t.Fatalf("sent %s, want [%s]", sent, tc.sent)
			}
		})
	}
}
