package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/testenv"
)

// call sends a request and returns the status, headers and raw body.
func call(t *testing.T, method, url, body string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := servertest.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, resp.Body)
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// callJSON is call plus JSON decoding of the body into a map.
func callJSON(t *testing.T, method, url, body string, header ...string) (int, map[string]any) {
	t.Helper()
	status, _, b := call(t, method, url, body, header...)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: response is not a JSON object: %q", method, url, b)
	}
	return status, m
}

// expect asserts status and, if code is set, the error code.
func expect(t *testing.T, srv *servertest.Server, method, path, body string, status int, code string) map[string]any {
	t.Helper()
	got, m := callJSON(t, method, srv.URL+path, body)
	if got != status {
		t.Fatalf("%s %s %s: status %d, want %d; body %v", method, path, body, got, status, m)
	}
	if code != "" && m["code"] != code {
		t.Fatalf("%s %s: code %v, want %s; body %v", method, path, m["code"], code, m)
	}
	if status >= 400 {
		if d, ok := m["detail"].(string); !ok || d == "" {
			t.Fatalf("%s %s: error without a detail string: %v", method, path, m)
		}
	}
	return m
}

const ws = "/apis/entities/v2/workspaces"

func TestWorkspaceLifecycle(t *testing.T) {
	srv := servertest.Start(t, nil)
	m := expect(t, srv, "POST", ws, `{"name": "ml-team", "description": "ML"}`, 201, "")
	if m["name"] != "ml-team" || m["description"] != "ML" || m["created_by"] != nil || m["id"] == "" {
		t.Fatalf("created %v", m)
	}
	if ts, _ := m["created_at"].(string); len(ts) != len("2026-01-02T03:04:05.123456Z") || !strings.HasSuffix(ts, "Z") {
		t.Fatalf("timestamp format %q", ts)
	}
	expect(t, srv, "POST", ws, `{"name": "ml-team"}`, 409, "already_exists")
	expect(t, srv, "GET", ws+"/ml-team", "", 200, "")
	m = expect(t, srv, "PUT", ws+"/ml-team", `{"description": "new", "name": "ml-team"}`, 200, "")
	if m["description"] != "new" {
		t.Fatalf("updated %v", m)
	}
	expect(t, srv, "PUT", ws+"/ml-team", `{"description": "x", "name": "other"}`, 422, "validation_error")
	expect(t, srv, "POST", ws+"/ml-team/projects", `{"name": "p1"}`, 201, "")
	m = expect(t, srv, "DELETE", ws+"/ml-team", "", 409, "workspace_not_empty")
	if m["detail"] != "Cannot delete workspace 'ml-team': workspace contains entities that must be deleted first: project (1)" {
		t.Fatalf("detail %v", m["detail"])
	}
	expect(t, srv, "DELETE", ws+"/ml-team/projects/p1", "", 200, "")
	m = expect(t, srv, "DELETE", ws+"/ml-team", "", 200, "")
	if m["message"] != "Workspace deleted" || m["id"] == "" || m["deleted_at"] == "" {
		t.Fatalf("delete body %v", m)
	}
	expect(t, srv, "GET", ws+"/ml-team", "", 404, "not_found")
	expect(t, srv, "DELETE", ws+"/default", "", 409, "protected_workspace")
	expect(t, srv, "DELETE", ws+"/system", "", 409, "protected_workspace")
}

func TestAliasServesTheSamePage(t *testing.T) {
	srv := servertest.Start(t, nil)
	expect(t, srv, "POST", "/v2/workspaces", `{"name": "via-alias"}`, 201, "")
	_, _, canonical := call(t, "GET", srv.URL+ws+"?sort=name", "")
	_, _, alias := call(t, "GET", srv.URL+"/v2/workspaces?sort=name", "")
	if string(canonical) != string(alias) {
		t.Fatalf("alias differs:\n%s\n%s", canonical, alias)
	}
	var page struct {
		Data []struct{ Name string } `json:"data"`
	}
	if err := json.Unmarshal(alias, &page); err != nil || len(page.Data) != 3 {
		t.Fatalf("page %s (%v)", alias, err)
	}
	// Trailing slash and HEAD behave like the canonical GET, without redirects.
	expect(t, srv, "GET", "/v2/workspaces/via-alias/", "", 200, "")
	status, _, body := call(t, "HEAD", srv.URL+"/v2/workspaces/via-alias", "")
	if status != 200 || len(body) != 0 {
		t.Fatalf("HEAD: %d %q", status, body)
	}
}

func TestListPaging(t *testing.T) {
	srv := servertest.Start(t, nil)
	for _, n := range []string{"team-a", "team-b", "team-c", "other"} {
		expect(t, srv, "POST", ws, `{"name": "`+n+`"}`, 201, "")
	}
	m := expect(t, srv, "GET", ws+"?page_size=2&page=2&sort=name&filter[name][$like]=TEAM", "", 200, "")
	want := `{"data":[{"name":"team-c"}],"filter":{"name":{"$like":"TEAM"}},"pagination":{"current_page_size":1,"page":2,"page_size":2,"total_pages":2,"total_results":3},"sort":"name"}`
	data := m["data"].([]any)
	m["data"] = []map[string]any{{"name": data[0].(map[string]any)["name"]}}
	if got, _ := json.Marshal(m); string(got) != want {
		t.Fatalf("page:\n got %s\nwant %s", got, want)
	}
	m = expect(t, srv, "GET", ws+"?page=99", "", 200, "")
	if len(m["data"].([]any)) != 0 || m["pagination"].(map[string]any)["total_results"] != float64(6) || m["filter"] != nil {
		t.Fatalf("past the end: %v", m)
	}
	m = expect(t, srv, "GET", ws+"?filter[name][$in]=team-a,other", "", 200, "")
	if m["pagination"].(map[string]any)["total_results"] != float64(2) {
		t.Fatalf("$in: %v", m)
	}
}

func TestMembers(t *testing.T) {
	srv := servertest.Start(t, nil)
	expect(t, srv, "POST", ws, `{"name": "ml-team"}`, 201, "")
	m := expect(t, srv, "POST", ws+"/ml-team/members", `{"principal": "bob@example.com", "roles": ["Viewer"]}`, 201, "")
	if m["principal"] != "bob@example.com" || m["granted_by"] != "anonymous" {
		t.Fatalf("member %v", m)
	}
	m = expect(t, srv, "POST", ws+"/ml-team/members", `{"principal": "*"}`, 201, "")
	if r := m["roles"].([]any); len(r) != 1 || r[0] != "Editor" {
		t.Fatalf("default role: %v", m)
	}
	expect(t, srv, "POST", ws+"/ml-team/members", `{"principal": "*", "roles": ["Editor"]}`, 409, "member_exists")
	m = expect(t, srv, "PUT", ws+"/ml-team/members/%2A?wait_role_propagation=false", `{"roles": ["Viewer", "Admin", "Viewer"]}`, 200, "")
	if r := m["roles"].([]any); len(r) != 2 || r[0] != "Admin" || r[1] != "Viewer" {
		t.Fatalf("roles: %v", m)
	}
	m = expect(t, srv, "GET", ws+"/ml-team/members", "", 200, "")
	if d := m["data"].([]any); len(d) != 2 || d[0].(map[string]any)["principal"] != "*" {
		t.Fatalf("list: %v", m)
	}
	expect(t, srv, "DELETE", ws+"/ml-team/members/%2A", "", 409, "last_admin")
	m = expect(t, srv, "DELETE", ws+"/ml-team/members/bob@example.com", "", 200, "")
	if m["message"] != "Member removed" || m["id"] != "bob@example.com" {
		t.Fatalf("remove: %v", m)
	}
	expect(t, srv, "DELETE", ws+"/ml-team/members/bob@example.com", "", 404, "member_not_found")
	expect(t, srv, "PUT", ws+"/ml-team/members/nobody", `{"roles": ["Viewer"]}`, 404, "member_not_found")
	expect(t, srv, "GET", ws+"/nope/members", "", 404, "not_found")
}

func TestPropagationHeader(t *testing.T) {
	srv := servertest.Start(t, nil)
	tests := []struct {
		name, method, path, body, want string
	}{
		{"create waits", "POST", ws, `{"name": "p-one"}`, "complete"},
		{"member add waits", "POST", ws + "/p-one/members", `{"principal": "a"}`, "complete"},
		{"no wait", "POST", ws + "/p-one/members?wait_role_propagation=false", `{"principal": "b"}`, "skipped"},
		{"delete never waits", "DELETE", ws + "/p-one/members/a?wait_role_propagation=true", "", "complete"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := call(t, tc.method, srv.URL+tc.path, tc.body)
			if status >= 300 || h.Get("X-NMP-Role-Propagation") != tc.want {
				t.Fatalf("%d %q: header %q, want %q", status, body, h.Get("X-NMP-Role-Propagation"), tc.want)
			}
		})
	}
	expect(t, srv, "DELETE", ws+"/p-one/members/b", "", 200, "")
	status, h, _ := call(t, "DELETE", srv.URL+ws+"/p-one", "")
	if status != 200 || h.Get("X-NMP-Role-Propagation") != "skipped" {
		t.Fatalf("workspace delete: %d %q", status, h.Get("X-NMP-Role-Propagation"))
	}
}

func TestProjectsAndEntities(t *testing.T) {
	srv := servertest.Start(t, nil)
	expect(t, srv, "POST", ws, `{"name": "ws-one"}`, 201, "")
	expect(t, srv, "POST", ws+"/ws-one/projects", `{"name": "proj", "description": "d"}`, 201, "")
	expect(t, srv, "POST", ws+"/ws-one/projects", `{"name": "proj"}`, 409, "already_exists")
	expect(t, srv, "PUT", ws+"/ws-one/projects/proj", `{"description": "e"}`, 200, "")
	m := expect(t, srv, "GET", ws+"/ws-one/projects?filter[name]=proj", "", 200, "")
	if m["pagination"].(map[string]any)["total_results"] != float64(1) {
		t.Fatalf("projects %v", m)
	}
	e := expect(t, srv, "POST", ws+"/ws-one/entities/dataset", `{"name": "d1", "project": "proj", "data": {"target": "gpu"}}`, 201, "")
	if e["db_version"] != float64(1) || e["project"] != "proj" || !strings.HasPrefix(e["id"].(string), "dataset-") {
		t.Fatalf("entity %v", e)
	}
	expect(t, srv, "POST", ws+"/ws-one/entities/dataset", `{"name": "d1", "data": {}}`, 409, "already_exists")
	expect(t, srv, "POST", ws+"/ws-one/entities/dataset", `{"name": "d2", "project": "nope", "data": {}}`, 422, "validation_error")
	expect(t, srv, "POST", ws+"/ws-one/entities/dataset", `{"name": "d1", "parent": "root", "data": {}}`, 201, "")
	m = expect(t, srv, "GET", ws+"/ws-one/entities/dataset/d1?parent=root", "", 200, "")
	if m["parent"] != "root" {
		t.Fatalf("child %v", m)
	}
	expect(t, srv, "DELETE", ws+"/ws-one/projects/proj", "", 409, "project_not_empty")
	expect(t, srv, "PUT", ws+"/ws-one/entities/dataset/d1", `{"data": {"v": 2}, "db_version": 1}`, 200, "")
	expect(t, srv, "PUT", ws+"/ws-one/entities/dataset/d1", `{"data": {"v": 3}, "db_version": 1}`, 409, "version_conflict")
	m = expect(t, srv, "GET", "/apis/entities/v2/entities/"+e["id"].(string), "", 200, "")
	if m["db_version"] != float64(2) || m["project"] != nil {
		t.Fatalf("by id %v", m)
	}
	m = expect(t, srv, "GET", ws+"/-/entities/dataset?filter[data.v][$eq]=2", "", 200, "")
	if m["pagination"].(map[string]any)["total_results"] != float64(0) {
		t.Fatalf("numbers are not strings: %v", m)
	}
	m = expect(t, srv, "GET", ws+"/-/entities/dataset?sort=name", "", 200, "")
	if m["pagination"].(map[string]any)["total_results"] != float64(2) {
		t.Fatalf("cross-workspace list %v", m)
	}
	expect(t, srv, "DELETE", ws+"/ws-one/entities/dataset/d1?parent=root", "", 200, "")
	expect(t, srv, "DELETE", ws+"/ws-one/entities/dataset/d1", "", 200, "")
	expect(t, srv, "GET", ws+"/ws-one/entities/dataset/d1", "", 404, "not_found")
}

func TestHealthStatusMetrics(t *testing.T) {
	srv := servertest.Start(t, nil)
	if m := expect(t, srv, "GET", "/health/live", "", 200, ""); m["status"] != "live" {
		t.Fatal(m)
	}
	srv.WaitReady(t)
	if m := expect(t, srv, "GET", "/health/ready", "", 200, ""); m["status"] != "ready" {
		t.Fatal(m)
	}
	m := expect(t, srv, "GET", "/status", "", 200, "")
	if m["status"] != "healthy" || m["policy"].(map[string]any)["provider"] != "embedded" {
		t.Fatal(m)
	}
	m = expect(t, srv, "GET", "/cluster-info", "", 200, "")
	if m["name"] != "nmp" || m["auth_enabled"] != false {
		t.Fatal(m)
	}
	expect(t, srv, "GET", ws+"/default", "", 200, "")
	_, _, body := call(t, "GET", srv.URL+"/metrics", "")
	text := string(body)
	for _, want := range []string{
		`nmp_http_requests_total{code="200",method="GET",route="/apis/entities/v2/workspaces/{name}"} 1`,
		`nmp_policy_revision 1`,
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("metrics lack %q", want)
		}
	}
	if strings.Contains(text, "/workspaces/default") {
		t.Fatal("metrics labels must not hold raw paths")
	}
}

func TestRequestID(t *testing.T) {
	srv := servertest.Start(t, nil)
	tests := []struct {
		name, sent string
		echoed     bool
	}{
		{"echoed", "abc-123", true},
		{"max length", strings.Repeat("x", 128), true},
		{"too long", strings.Repeat("x", 129), false},
		{"not printable", "a b", false},
		{"absent", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h http.Header
			if tc.sent != "" {
				_, h, _ = call(t, "GET", srv.URL+"/health/live", "", "X-Request-Id", tc.sent)
			} else {
				_, h, _ = call(t, "GET", srv.URL+"/health/live", "")
			}
			got := h.Get("X-Request-Id")
			if got == "" || (got == tc.sent) != tc.echoed {
				t.Fatalf("sent %q got %q", tc.sent, got)
			}
		})
	}
}
