package cli_test

import (
	"testing"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// TestForbiddenNamesWhatIsMissing: against a real server with auth on,
// a refused command says who may not do what, and which permission is
// missing in which workspace (or which scopes), instead of "Forbidden".
func TestForbiddenNamesWhatIsMissing(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) {
		c.Auth.Enabled = true
		c.Auth.AllowUnsignedJWT = true
	})
	srv.WaitReady(t)
	tests := []struct {
		name   string
		login  []string
		args   []string
		stderr string
	}{
		{"permission missing in the workspace", []string{"--email", "bob@example.com"},
			[]string{"members", "create", "--workspace", "default", "--principal", "carol@example.com", "--roles", "Viewer"},
			"Error: forbidden: bob@example.com may not POST /apis/entities/v2/workspaces/default/members: " +
				"permission workspaces.members.create missing in workspace \"default\" (HTTP 403)\n"},
		{"a workspace the caller cannot see", []string{"--email", "bob@example.com"},
			[]string{"workspaces", "get", "secret"},
			"Error: forbidden: bob@example.com may not GET /apis/entities/v2/workspaces/secret: " +
				"permission workspaces.read missing in workspace \"secret\" (HTTP 403)\n"},
		{"a read-only token", []string{"--email", "bob@example.com", "--scope", "platform:read"},
			[]string{"workspaces", "update", "default", "--description", "x"},
			"Error: forbidden: bob@example.com may not PUT /apis/entities/v2/workspaces/default: " +
				"the token has none of the scopes entities:write, platform:write (HTTP 403)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newNMP(t, srv)
			n.ok(append([]string{"auth", "login", "--unsigned-token"}, tc.login...)...)
			code, out, errOut := n.run(tc.args...)
			if code != 3 || errOut != tc.stderr || out != "" {
				t.Fatalf("exit %d, stdout %q\nstderr %q\nwant   %q", code, out, errOut, tc.stderr)
			}
		})
	}
}
