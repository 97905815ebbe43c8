package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// TestAccessKeysCLI: against a real server, a user mints a read-only key
// for a pipeline, which works as NMP_ACCESS_TOKEN for reads and is refused
// writes; the token is printed once (stdout only, the warning on stderr)
// and never by list; suspend, unsuspend, rotate and revoke work and take
// effect on the pipeline's next command.
func TestAccessKeysCLI(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) {
		c.Auth.Enabled = true
		c.Auth.AllowUnsignedJWT = true
		c.Auth.AccessKeys.Enabled = true
	})
	srv.WaitReady(t)
	user := newNMP(t, srv)
	user.ok("auth", "login", "--unsigned-token", "--email", "alice@example.com")
	user.ok("workspaces", "create", "ml-team")

	code, token, errOut := user.run("auth", "access-keys", "create", "--name", "nightly", "--scopes", "platform:read", "--expires-in", "30d")
	token = strings.TrimSuffix(token, "\n")
	if code != 0 || strings.Count(token, ".") != 2 || strings.Contains(token, "\n") ||
		!strings.Contains(errOut, "shown only once") || strings.Contains(errOut, token) {
		t.Fatalf("create: exit %d\nstdout %q\nstderr %q", code, token, errOut)
	}
	pipeline := newNMP(t, srv)
	pipeline.env = append(pipeline.env, "NMP_ACCESS_TOKEN="+token)
	if out := pipeline.ok("workspaces", "get", "ml-team"); !strings.Contains(out, "ml-team") {
		t.Fatalf("pipeline read: %s", out)
	}
	if code, _, errOut := pipeline.run("workspaces", "update", "ml-team", "--description", "x"); code != 3 ||
		!strings.Contains(errOut, "none of the scopes entities:write, platform:write") {
		t.Fatalf("pipeline write: exit %d %s", code, errOut)
	}

	var keys []map[string]any
	list := user.ok("auth", "access-keys", "list", "-o", "json")
	var page struct {
		Data    []map[string]any `json:"data"`
		HasMore bool             `json:"has_more"`
	}
	if err := json.Unmarshal([]byte(list), &page); err != nil || len(page.Data) != 1 || strings.Contains(list, token) ||
		strings.Contains(list, `"token"`) {
		t.Fatalf("list -o json: %v\n%s", err, list)
	}
	keys = page.Data
	jti := keys[0]["jti"].(string)
	if table := user.ok("auth", "access-keys", "list"); !strings.Contains(table, jti) || !strings.Contains(table, "platform:read") ||
		!strings.Contains(table, "never") || strings.Contains(table, token) {
		t.Fatalf("list table:\n%s", table)
	}

	if out := user.ok("auth", "access-keys", "suspend", jti); !strings.Contains(out, "SUSPENDED") {
		t.Fatalf("suspend: %s", out)
	}
	if code, _, _ := pipeline.run("workspaces", "get", "ml-team"); code == 0 {
		t.Fatal("suspended key still works")
	}
	user.ok("auth", "access-keys", "unsuspend", jti)
	pipeline.ok("workspaces", "get", "ml-team")

	code, rotated, errOut := user.run("auth", "access-keys", "rotate", jti, "--grace-period", "0", "-o", "json")
	var r struct {
		NewKey struct {
			JTI   string `json:"jti"`
			Token string `json:"token"`
		} `json:"new_key"`
		PreviousJTI string `json:"previous_jti"`
	}
	if err := json.Unmarshal([]byte(rotated), &r); code != 0 || err != nil || r.PreviousJTI != jti || r.NewKey.Token == "" ||
		!strings.Contains(errOut, "shown only once") {
		t.Fatalf("rotate: exit %d %v\n%s\n%s", code, err, rotated, errOut)
	}
	if code, _, _ := pipeline.run("workspaces", "get", "ml-team"); code == 0 {
		t.Fatal("the old key works after a rotation without grace")
	}
	next := newNMP(t, srv)
	next.env = append(next.env, "NMP_ACCESS_TOKEN="+r.NewKey.Token)
	next.ok("workspaces", "get", "ml-team")
	if out := user.ok("auth", "access-keys", "revoke", r.NewKey.JTI); !strings.Contains(out, r.NewKey.JTI) {
		t.Fatalf("revoke: %s", out)
	}
	if code, _, errOut := next.run("workspaces", "get", "ml-team"); code == 0 || strings.Contains(errOut, r.NewKey.Token) {
		t.Fatalf("revoked key: exit %d %s", code, errOut)
	}
	if code, _, errOut := user.run("auth", "access-keys", "revoke", "ak_00000000000000000000000000000000"); code != 3 ||
		!strings.Contains(errOut, "not found") {
		t.Fatalf("revoke unknown: exit %d %s", code, errOut)
	}
	if logs := srv.Logs(); strings.Contains(logs, token) || strings.Contains(logs, r.NewKey.Token) {
		t.Fatal("a token reached the server's log")
	}
}
