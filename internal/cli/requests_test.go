package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

const (
	wsPath      = "/apis/entities/v2/workspaces"
	membersPath = wsPath + "/ml-team/members"
)

func TestRequests(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantReq  string // "METHOD requestURI"
		wantBody string
	}{
		{name: "workspaces list", args: []string{"workspaces", "list"}, wantReq: "GET " + wsPath},
		{
			name:    "workspaces list with paging, sorting and filters",
			args:    []string{"workspaces", "list", "--filter", "name=ml", "--filter", "description[$like]=a=b,c", "--sort", "-name", "--page", "2", "--page-size", "5"},
			wantReq: "GET " + wsPath + "?filter%5Bdescription%5D%5B%24like%5D=a%3Db%2Cc&filter%5Bname%5D=ml&page=2&page_size=5&sort=-name",
		},
		{name: "workspaces create", args: []string{"workspaces", "create", "ml-team"}, wantReq: "POST " + wsPath, wantBody: `{"name":"ml-team"}`},
		{
			name:    "workspaces create with --name, description and --no-wait",
			args:    []string{"workspaces", "create", "--name", "ml-team", "--description", "ML team", "--no-wait"},
			wantReq: "POST " + wsPath + "?wait_role_propagation=false", wantBody: `{"name":"ml-team","description":"ML team"}`,
		},
		{name: "workspaces get", args: []string{"workspaces", "get", "ml-team"}, wantReq: "GET " + wsPath + "/ml-team"},
		{
			name:    "workspaces update",
			args:    []string{"workspaces", "update", "ml-team", "--description", "new"},
			wantReq: "PUT " + wsPath + "/ml-team", wantBody: `{"description":"new"}`,
		},
		{name: "workspaces delete", args: []string{"workspaces", "delete", "ml-team"}, wantReq: "DELETE " + wsPath + "/ml-team"},
		{name: "members list with -w", args: []string{"members", "list", "-w", "ml-team"}, wantReq: "GET " + membersPath},
		{name: "workspaces members list with --workspace", args: []string{"workspaces", "members", "list", "--workspace", "ml-team"}, wantReq: "GET " + membersPath},
		{name: "group-level -w", args: []string{"members", "-w", "ml-team", "list"}, wantReq: "GET " + membersPath},
		{name: "workspace from NMP_WORKSPACE", args: []string{"members", "list"}, env: map[string]string{"NMP_WORKSPACE": "ml-team"}, wantReq: "GET " + membersPath},
		{
			name: "flag beats NMP_WORKSPACE", args: []string{"members", "list", "-w", "ml-team"},
			env: map[string]string{"NMP_WORKSPACE": "other"}, wantReq: "GET " + membersPath,
		},
		{
			name:    "members create wildcard with comma roles",
			args:    []string{"members", "create", "-w", "ml-team", "--principal", "*", "--roles", "Viewer,Editor"},
			wantReq: "POST " + membersPath, wantBody: `{"principal":"*","roles":["Viewer","Editor"]}`,
		},
		{
			name:    "members create positional with repeated roles",
			args:    []string{"workspaces", "members", "create", "bob@example.com", "-w", "ml-team", "--roles", "Viewer", "--roles", " Editor ,Viewer"},
			wantReq: "POST " + membersPath, wantBody: `{"principal":"bob@example.com","roles":["Viewer","Editor"]}`,
		},
		{
			name:    "members update",
			args:    []string{"members", "update", "bob@example.com", "-w", "ml-team", "--roles", "Admin", "--no-wait"},
			wantReq: "PUT " + membersPath + "/bob@example.com?wait_role_propagation=false", wantBody: `{"roles":["Admin"]}`,
		},
		{name: "members delete wildcard", args: []string{"members", "delete", "*", "-w", "ml-team"}, wantReq: "DELETE " + membersPath + "/%2A"},
		{name: "members delete with --principal", args: []string{"members", "delete", "--principal", "*", "-w", "ml-team"}, wantReq: "DELETE " + membersPath + "/%2A"},
		{name: "principal with slash stays one segment", args: []string{"members", "delete", "a/b", "-w", "ml-team"}, wantReq: "DELETE " + membersPath + "/a%2Fb"},
		{name: "global flags before the command", args: []string{"-f", "json", "--verbose", "workspaces", "list"}, wantReq: "GET " + wsPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t)
			env := map[string]string{"NMP_BASE_URL": api.URL}
			for k, v := range tt.env {
				env[k] = v
			}
			res := runCLI(t, env, "", tt.args...)
			if res.code != 0 {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			reqs := api.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			if got := reqs[0].Method + " " + reqs[0].RequestURI; got != tt.wantReq {
				t.Errorf("request = %q\nwant      %q", got, tt.wantReq)
			}
			if reqs[0].Body != tt.wantBody {
				t.Errorf("body = %q, want %q", reqs[0].Body, tt.wantBody)
			}
		})
	}
}

func TestWorkspaceAndBaseURLFromContext(t *testing.T) {
	api := newFakeAPI(t)
	cfg := writeConfig(t, configWithContext(api.URL, "cfg-token", "ml-team"))
	res := runCLI(t, map[string]string{"NMP_CONFIG_FILE": cfg}, "", "members", "list")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	reqs := api.requests()
	if len(reqs) != 1 || reqs[0].RequestURI != membersPath || reqs[0].Header.Get("Authorization") != "Bearer cfg-token" {
		t.Errorf("requests = %+v", reqs)
	}
}

// Both member groups are built by one constructor; this pins that they
// stay identical in requests and output.
func TestMemberGroupsIdentical(t *testing.T) {
	for _, sub := range [][]string{
		{"list"},
		{"create", "*", "--roles", "Viewer"},
		{"update", "*", "--roles", "Viewer"},
		{"delete", "*"},
	} {
		t.Run(sub[0], func(t *testing.T) {
			var outs []string
			for _, group := range [][]string{{"members"}, {"workspaces", "members"}} {
				api := newFakeAPI(t)
				args := append(append(append([]string{}, group...), sub...), "-w", "ml-team", "-o", "json")
				res := runCLI(t, map[string]string{"NMP_BASE_URL": api.URL}, "", args...)
				reqs := api.requests()
				if res.code != 0 || len(reqs) != 1 {
					t.Fatalf("%v: exit %d, %d requests, stderr %q", args, res.code, len(reqs), res.stderr)
				}
				outs = append(outs, reqs[0].Method+" "+reqs[0].RequestURI+" "+reqs[0].Body+"\n"+res.stdout)
			}
			if outs[0] != outs[1] {
				t.Errorf("groups differ:\n%s\n---\n%s", outs[0], outs[1])
			}
		})
	}
}

func TestAllPages(t *testing.T) {
	api := newFakeAPI(t)
	api.set("GET "+wsPath+"?page=1&page_size=1", 200, pageJSON(1, 3, 3, workspaceJSON))
	api.set("GET "+wsPath+"?page=2&page_size=1", 200, pageJSON(2, 3, 3, defaultWSJSON))
	api.set("GET "+wsPath+"?page=3&page_size=1", 200, pageJSON(3, 3, 3, strings.Replace(workspaceJSON, "ml-team", "third", 1)))

	res := runCLI(t, map[string]string{"NMP_BASE_URL": api.URL}, "", "workspaces", "list", "--all-pages", "--page-size", "1", "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, w := range got {
		names = append(names, w["name"].(string))
	}
	if strings.Join(names, ",") != "ml-team,default,third" {
		t.Errorf("names = %v", names)
	}
	var uris []string
	for _, r := range api.requests() {
		uris = append(uris, r.RequestURI)
	}
	want := wsPath + "?page=1&page_size=1," + wsPath + "?page=2&page_size=1," + wsPath + "?page=3&page_size=1"
	if strings.Join(uris, ",") != want {
		t.Errorf("requests = %v", uris)
	}
	if strings.Contains(res.stderr, "Note") {
		t.Errorf("unexpected more-pages note: %q", res.stderr)
	}
}

func TestMorePagesNote(t *testing.T) {
	api := newFakeAPI(t)
	api.set("GET "+wsPath, 200, pageJSON(1, 3, 250, workspaceJSON))
	res := runCLI(t, map[string]string{"NMP_BASE_URL": api.URL}, "", "workspaces", "list", "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var items []any
	if err := json.Unmarshal([]byte(res.stdout), &items); err != nil || len(items) != 1 {
		t.Errorf("stdout is not the JSON array of one item: %q (%v)", res.stdout, err)
	}
	if !strings.Contains(res.stderr, "page 1 of 3 (250 results)") || !strings.Contains(res.stderr, "--all-pages") {
		t.Errorf("stderr = %q, want a more-pages note", res.stderr)
	}
}
