package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/client"
)

func TestReport(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		started    bool
		wantCode   int
		wantStderr string
	}{
		{"cobra error before the command ran", errors.New(`unknown flag: --x`), false, ExitUsage, "Error: unknown flag: --x\n"},
		{"untyped error from a command", errors.New("disk full"), true, ExitLocal, "Error: disk full\n"},
		{"usage error", UsageErrorf("bad %s", "combo"), true, ExitUsage, "Error: bad combo\n"},
		{"local error", LocalError(errors.New("no file")), true, ExitLocal, "Error: no file\n"},
		{"remote error (IdP)", RemoteError(errors.New("invalid_grant")), true, ExitRemote, "Error: invalid_grant\n"},
		{"LocalError keeps an existing code", LocalError(UsageErrorf("u")), true, ExitUsage, "Error: u\n"},
		{"wrapped API error", fmt.Errorf("ctx: %w", &client.APIError{Status: 404, Detail: "gone"}), true, ExitRemote, "Error: gone (HTTP 404)\n"},
		{"API error 401", &client.APIError{Status: 401, Detail: "Unauthorized"}, true, ExitRemote, "Error: Unauthorized (HTTP 401)\nHint: run \"nmp auth login\"\n"},
		{"403 with permissions", &client.DeniedError{APIError: &client.APIError{Status: 403, Detail: "Forbidden: requires …", Code: "forbidden"},
			Method: "POST", Path: "/apis/entities/v2/workspaces/default/members", Reason: "permission_missing", Principal: "u-bob", Email: "bob@example.com",
			RequiredPermissions: []string{"workspaces.members.create"}, Workspace: "default"}, true, ExitRemote,
			"Error: forbidden: bob@example.com may not POST /apis/entities/v2/workspaces/default/members: permission workspaces.members.create missing in workspace \"default\" (HTTP 403)\n"},
		{"403 with permissions in two workspaces", &client.DeniedError{APIError: &client.APIError{Status: 403, Detail: "Forbidden"},
			Method: "POST", Path: "/apis/jobs/v1/a/run", Reason: "permission_missing", Principal: "svc",
			RequiredPermissions: []string{"jobs.run", "jobs.log", "system/workspaces.read"}, Workspace: "a"}, true, ExitRemote,
			"Error: forbidden: svc may not POST /apis/jobs/v1/a/run: permissions jobs.run, jobs.log missing in workspace \"a\" and permission workspaces.read missing in workspace \"system\" (HTTP 403)\n"},
		{"403 for scopes", &client.DeniedError{APIError: &client.APIError{Status: 403, Detail: "Forbidden: …"},
			Method: "PUT", Path: "/apis/entities/v2/workspaces/w", Reason: "scope_missing", Principal: "u-1",
			RequiredScopes: []string{"entities:write", "platform:write"}}, true, ExitRemote,
			"Error: forbidden: u-1 may not PUT /apis/entities/v2/workspaces/w: the token has none of the scopes entities:write, platform:write (HTTP 403)\n"},
		{"403 for another reason keeps the server's words", &client.DeniedError{APIError: &client.APIError{Status: 403,
			Detail: "Forbidden: only service principals may call this endpoint"}, Method: "POST", Path: "/apis/auth/v2/authz/allow",
			Reason: "callers_restricted", Principal: "u-1"}, true, ExitRemote,
			"Error: forbidden: u-1 may not POST /apis/auth/v2/authz/allow: only service principals may call this endpoint (callers_restricted) (HTTP 403)\n"},
		{"403 names are sanitized", &client.DeniedError{APIError: &client.APIError{Status: 403, Detail: "Forbidden"},
			Method: "GET", Path: "/x", Reason: "permission_missing", Principal: "a\x1b[31mb",
			RequiredPermissions: []string{"p"}, Workspace: "w\nx"}, true, ExitRemote,
			"Error: forbidden: a [31mb may not GET /x: permission p missing in workspace \"w\\nx\" (HTTP 403)\n"},
		{"network error", &client.NetworkError{URL: "http://h:1/x", Err: errors.New("refused")}, true, ExitRemote, "Error: cannot reach http://h:1: refused\n"},
		{"cancelled", &client.NetworkError{URL: "http://h:1/x", Err: context.Canceled}, true, ExitLocal, "Error: cancelled\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w strings.Builder
			if code := report(&w, nil, tt.err, tt.started); code != tt.wantCode || w.String() != tt.wantStderr {
				t.Errorf("report() = %d %q, want %d %q", code, w.String(), tt.wantCode, tt.wantStderr)
			}
		})
	}
	if LocalError(nil) != nil || RemoteError(nil) != nil {
		t.Error("nil must stay nil")
	}
}

func TestParseFilter(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    client.Filter
		wantErr bool
	}{
		{"equals", "name=x", client.Filter{Field: "name", Value: "x"}, false},
		{"operator", "name[$like]=team", client.Filter{Field: "name", Operator: "$like", Value: "team"}, false},
		{"value with = and ,", "role[$in]=Admin,Editor=x", client.Filter{Field: "role", Operator: "$in", Value: "Admin,Editor=x"}, false},
		{"data path", "data.target=x", client.Filter{Field: "data.target", Value: "x"}, false},
		{"empty value", "name=", client.Filter{Field: "name"}, false},
		{"no =", "name", client.Filter{}, true},
		{"no field", "=x", client.Filter{}, true},
		{"operator without $", "name[like]=x", client.Filter{}, true},
		{"empty operator", "name[$]=x", client.Filter{}, true},
		{"unclosed bracket", "name[$like=x", client.Filter{}, true},
		{"nested brackets", "name[$a][$b]=x", client.Filter{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFilter(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseFilter(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestAllPagesStopsWhenServerIgnoresPage(t *testing.T) {
	api := newFakeAPI(t)
	api.set("GET "+wsPath, 200, pageJSON(1, 3, 3, workspaceJSON)) // always "page 1 of 3"
	res := runCLI(t, map[string]string{"NMP_BASE_URL": api.URL}, "", "workspaces", "list", "--all-pages", "-o", "json")
	if res.code != 0 || len(api.requests()) != 3 {
		t.Errorf("exit %d after %d requests, want 0 after 3", res.code, len(api.requests()))
	}
}
