package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"gopkg.in/yaml.v3"
)

// TestAuditCLI: against a real server, a workspace Admin lists its
// workspace's access changes as a table (before → after) and as JSON and
// YAML; without -w it is refused, a PlatformAdmin is not; --since, --until
// and --principal filter; bad flags are usage errors.
func TestAuditCLI(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) {
		c.Auth.Enabled = true
		c.Auth.AllowUnsignedJWT = true
		admin := "root@example.com"
		c.Auth.AdminEmail = &admin
	})
	srv.WaitReady(t)
	alice := newNMP(t, srv)
	alice.ok("auth", "login", "--unsigned-token", "--email", "alice@example.com")
	alice.ok("workspaces", "create", "ml-team")
	alice.ok("members", "create", "bob@example.com", "--roles", "Viewer", "-w", "ml-team")
	alice.ok("members", "update", "bob@example.com", "--roles", "Editor", "-w", "ml-team")

	table := alice.ok("audit", "list", "-w", "ml-team", "--since", "1h")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "TIME") || !strings.Contains(lines[0], "CHANGE") {
		t.Fatalf("table:\n%s", table)
	}
	// newest first: the update, with its roles before → after
	for _, want := range []string{"member.update", "bob@example.com", "roles=[Viewer] → roles=[Editor]", "alice@example.com"} {
		if !strings.Contains(lines[1], want) {
			t.Fatalf("first row lacks %q:\n%s", want, table)
		}
	}
	if !strings.Contains(lines[4], "workspace.create") || !strings.Contains(lines[4], "+ description= name=ml-team") {
		t.Fatalf("last row:\n%s", table)
	}

	var page struct {
		Data []struct {
			Action, Target string
			Before, After  json.RawMessage
		} `json:"data"`
		HasMore bool `json:"has_more"`
	}
	out := alice.ok("audit", "list", "-w", "ml-team", "--principal", "bob@example.com", "-o", "json")
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Data) != 2 || page.Data[0].Action != "member.update" ||
		string(page.Data[1].Before) != "null" || !strings.Contains(string(page.Data[1].After), "Viewer") {
		t.Fatalf("json: %v\n%s", err, out)
	}
	var doc struct {
		Data []map[string]any `yaml:"data"`
	}
	out = alice.ok("audit", "list", "-w", "ml-team", "--page-size", "1", "-o", "yaml")
	if err := yaml.Unmarshal([]byte(out), &doc); err != nil || len(doc.Data) != 1 {
		t.Fatalf("yaml: %v\n%s", err, out)
	}
	if after, ok := doc.Data[0]["after"].(map[string]any); !ok || after["roles"] == nil {
		t.Fatalf("yaml after is not a mapping:\n%s", out)
	}
	if out := alice.ok("audit", "list", "-w", "ml-team", "--until", "2000-01-01T00:00:00Z", "-o", "json"); !strings.Contains(out, `"data": []`) {
		t.Fatalf("--until in the past:\n%s", out)
	}

	if code, _, errOut := alice.run("audit", "list"); code != 3 || !strings.Contains(errOut, "PlatformAdmin") {
		t.Fatalf("alice without -w: exit %d %s", code, errOut)
	}
	root := newNMP(t, srv)
	root.ok("auth", "login", "--unsigned-token", "--email", "root@example.com")
	if out := root.ok("audit", "list", "--page-size", "100"); !strings.Contains(out, "ml-team") || !strings.Contains(out, "system") {
		t.Fatalf("root:\n%s", out)
	}
	for _, args := range [][]string{{"--since", "soon"}, {"--until", "tomorrow"}} {
		if code, _, errOut := root.run(append([]string{"audit", "list"}, args...)...); code != 2 {
			t.Fatalf("%v: exit %d %s", args, code, errOut)
		}
	}
}
