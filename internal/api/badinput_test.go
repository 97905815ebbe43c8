package api_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/testenv"
)

// TestBadInput sends malformed requests to every endpoint: each gets a
// clear 4xx with a detail (and the offending field, for 422) and none of
// them changes anything.
func TestBadInput(t *testing.T) {
	srv := servertest.Start(t, nil)
	expect(t, srv, "POST", ws, `{"name": "ml-team"}`, 201, "")
	expect(t, srv, "POST", ws+"/ml-team/members", `{"principal": "alice", "roles": ["Admin"]}`, 201, "")
	expect(t, srv, "POST", ws+"/ml-team/projects", `{"name": "proj"}`, 201, "")
	expect(t, srv, "POST", ws+"/ml-team/entities/model", `{"name": "m1", "data": {}}`, 201, "")
	before := snapshot(t, srv)

	long := strings.Repeat("a", 64)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
		field                    string // expected last element of errors[0].loc
	}{
		// Workspace names and bodies.
		{"name too short", "POST", ws, `{"name": "a"}`, 422, "validation_error", "name"},
		{"name uppercase", "POST", ws, `{"name": "ML-team"}`, 422, "validation_error", "name"},
		{"name starts with digit", "POST", ws, `{"name": "1team"}`, 422, "validation_error", "name"},
		{"name trailing dash", "POST", ws, `{"name": "team-"}`, 422, "validation_error", "name"},
		{"name double dash", "POST", ws, `{"name": "a--b"}`, 422, "validation_error", "name"},
		{"name too long", "POST", ws, `{"name": "` + long + `"}`, 422, "validation_error", "name"},
		{"name underscore", "POST", ws, `{"name": "a_b"}`, 422, "validation_error", "name"},
		{"name reserved dash", "POST", ws, `{"name": "-"}`, 422, "validation_error", "name"},
		{"name wrong type", "POST", ws, `{"name": 12}`, 422, "validation_error", "name"},
		{"name null", "POST", ws, `{"name": null}`, 422, "validation_error", "name"},
		{"name missing", "POST", ws, `{"description": "x"}`, 422, "validation_error", "name"},
		{"unknown field", "POST", ws, `{"name": "ok-name", "owner": "x"}`, 422, "validation_error", "owner"},
		{"description too long", "POST", ws, `{"name": "ok-name", "description": "` + strings.Repeat("d", 1025) + `"}`, 422, "validation_error", "description"},
		{"description wrong type", "POST", ws, `{"name": "ok-name", "description": ["x"]}`, 422, "validation_error", "description"},
		{"malformed json", "POST", ws, `{"name": "ok-name"`, 400, "invalid_json", ""},
		{"trailing garbage", "POST", ws, `{"name": "ok-name"} x`, 400, "invalid_json", ""},
		{"array body", "POST", ws, `["ok-name"]`, 422, "validation_error", "body"},
		{"empty body", "POST", ws, ``, 422, "validation_error", "body"},
		{"bad wait flag", "POST", ws + "?wait_role_propagation=maybe", `{"name": "ok-name"}`, 422, "validation_error", "wait_role_propagation"},
		{"update unknown field", "PUT", ws + "/ml-team", `{"description": "x", "extra": 1}`, 422, "validation_error", "extra"},
		{"update missing description", "PUT", ws + "/ml-team", `{}`, 422, "validation_error", "description"},
		{"rename refused", "PUT", ws + "/ml-team", `{"description": "x", "name": "other"}`, 422, "validation_error", "name"},
		{"get bad path name", "GET", ws + "/Bad_Name", "", 422, "validation_error", "name"},
		{"delete bad path name", "DELETE", ws + "/x", "", 422, "validation_error", "name"},
		{"update missing workspace", "PUT", ws + "/nope", `{"description": "x"}`, 404, "not_found", ""},

		// Lists: paging, sort, filters.
		{"page size too large", "GET", ws + "?page_size=1001", "", 422, "validation_error", "page_size"},
		{"page zero", "GET", ws + "?page=0", "", 422, "validation_error", "page"},
		{"page not a number", "GET", ws + "?page=abc", "", 422, "validation_error", "page"},
		{"unknown sort", "GET", ws + "?sort=-owner", "", 400, "invalid_sort", ""},
		{"unknown filter field", "GET", ws + "?filter[owner]=x", "", 400, "invalid_filter", ""},
		{"unknown operator", "GET", ws + "?filter[name][$regex]=x", "", 400, "invalid_filter", ""},
		{"operator for another kind", "GET", ws + "?filter[name][$gt]=x", "", 400, "invalid_filter", ""},
		{"bad timestamp", "GET", ws + "?filter[created_at][$gte]=yesterday", "", 400, "invalid_filter", ""},
		{"malformed filter key", "GET", ws + "?filter[name=x", "", 400, "invalid_filter", ""},
		{"filter repeated", "GET", ws + "?filter[name]=a&filter[name]=b", "", 400, "invalid_filter", ""},
		{"empty $in", "GET", ws + "?filter[name][$in]=,", "", 400, "invalid_filter", ""},
		{"data filter on workspaces", "GET", ws + "?filter[data.x]=1", "", 400, "invalid_filter", ""},
		{"bad data path", "GET", ws + "/ml-team/entities/model?filter[data.a..b]=1", "", 400, "invalid_filter", ""},
		{"data path injection", "GET", ws + "/ml-team/entities/model?filter[data.a')--]=1", "", 400, "invalid_filter", ""},
		{"project filter unknown", "GET", ws + "/ml-team/projects?filter[description]=x", "", 400, "invalid_filter", ""},

		// Members.
		{"principal with space", "POST", ws + "/ml-team/members", `{"principal": "bad principal"}`, 422, "validation_error", "principal"},
		{"principal too long", "POST", ws + "/ml-team/members", `{"principal": "` + strings.Repeat("p", 257) + `"}`, 422, "validation_error", "principal"},
		{"principal missing", "POST", ws + "/ml-team/members", `{"roles": ["Viewer"]}`, 422, "validation_error", "principal"},
		{"unknown role", "POST", ws + "/ml-team/members", `{"principal": "bob", "roles": ["Owner"]}`, 422, "unknown_role", ""},
		{"platform admin not assignable", "POST", ws + "/ml-team/members", `{"principal": "bob", "roles": ["PlatformAdmin"]}`, 422, "role_not_assignable", ""},
		{"service system not assignable", "PUT", ws + "/ml-team/members/alice", `{"roles": ["ServiceSystem"]}`, 422, "role_not_assignable", ""},
		{"empty roles", "POST", ws + "/ml-team/members", `{"principal": "bob", "roles": []}`, 422, "validation_error", "roles"},
		{"roles not a list", "POST", ws + "/ml-team/members", `{"principal": "bob", "roles": "Viewer"}`, 422, "validation_error", "roles"},
		{"update roles missing", "PUT", ws + "/ml-team/members/alice", `{}`, 422, "validation_error", "roles"},
		{"update roles null", "PUT", ws + "/ml-team/members/alice", `{"roles": null}`, 422, "validation_error", "roles"},
		{"members of bad workspace", "GET", ws + "/BAD/members", "", 422, "validation_error", "workspace"},
		{"member path bad principal", "DELETE", ws + "/ml-team/members/a%20b", "", 422, "validation_error", "principal"},
		{"last admin demoted", "PUT", ws + "/ml-team/members/alice", `{"roles": ["Viewer"]}`, 409, "last_admin", ""},
		{"last admin removed", "DELETE", ws + "/ml-team/members/alice", "", 409, "last_admin", ""},

		// Projects.
		{"project bad name", "POST", ws + "/ml-team/projects", `{"name": "P"}`, 422, "validation_error", "name"},
		{"project unknown field", "POST", ws + "/ml-team/projects", `{"name": "p2", "x": 1}`, 422, "validation_error", "x"},
		{"project in missing workspace", "POST", ws + "/nope/projects", `{"name": "p2"}`, 404, "not_found", ""},
		{"project update unknown field", "PUT", ws + "/ml-team/projects/proj", `{"description": "x", "name": "proj"}`, 422, "validation_error", "name"},

		// Entities.
		{"reserved entity type", "POST", ws + "/ml-team/entities/workspace", `{"name": "x", "data": {}}`, 422, "validation_error", "type"},
		{"bad entity type", "POST", ws + "/ml-team/entities/Model", `{"name": "x", "data": {}}`, 422, "validation_error", "type"},
		{"bad entity name", "POST", ws + "/ml-team/entities/model", `{"name": ".hidden", "data": {}}`, 422, "validation_error", "name"},
		{"data missing", "POST", ws + "/ml-team/entities/model", `{"name": "x"}`, 422, "validation_error", "data"},
		{"data not an object", "POST", ws + "/ml-team/entities/model", `{"name": "x", "data": [1]}`, 422, "validation_error", "data"},
		{"bad parent", "POST", ws + "/ml-team/entities/model", `{"name": "x", "parent": "a b", "data": {}}`, 422, "validation_error", "parent"},
		{"create in all workspaces", "POST", ws + "/-/entities/model", `{"name": "x", "data": {}}`, 422, "validation_error", "workspace"},
		{"bad db_version", "PUT", ws + "/ml-team/entities/model/m1", `{"data": {}, "db_version": 0}`, 422, "validation_error", "db_version"},
		{"db_version wrong type", "PUT", ws + "/ml-team/entities/model/m1", `{"data": {}, "db_version": "1"}`, 422, "validation_error", "db_version"},
		{"stale db_version", "PUT", ws + "/ml-team/entities/model/m1", `{"data": {}, "db_version": 7}`, 409, "version_conflict", ""},
		{"bad parent query", "GET", ws + "/ml-team/entities/model/m1?parent=a%20b", "", 422, "validation_error", "parent"},
		{"entity id too long", "GET", "/apis/entities/v2/entities/" + strings.Repeat("x", 301), "", 422, "validation_error", "id"},

		// Paths and routing.
		{"dot segment", "GET", ws + "/%2e%2e/members", "", 400, "invalid_input", ""},
		{"empty segment", "GET", ws + "//members", "", 400, "invalid_input", ""},
		{"unknown route", "GET", "/apis/entities/v2/nothing", "", 404, "not_found", ""},
		{"wrong method", "PATCH", ws + "/ml-team", `{}`, 405, "method_not_allowed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := expect(t, srv, tc.method, tc.path, tc.body, tc.status, tc.code)
			if tc.field == "" {
				return
			}
			errs, _ := m["errors"].([]any)
			if len(errs) == 0 {
				t.Fatalf("no errors[] naming %q: %v", tc.field, m)
			}
			loc := errs[0].(map[string]any)["loc"].([]any)
			if loc[len(loc)-1] != tc.field || !strings.Contains(m["detail"].(string), tc.field) {
				t.Fatalf("error does not name %q: %v", tc.field, m)
			}
		})
	}
	if after := snapshot(t, srv); after != before {
		t.Fatalf("refused requests changed the store:\nbefore %s\nafter  %s", before, after)
	}
}

func TestBodyTooLarge(t *testing.T) {
	srv := servertest.Start(t, nil)
	big := `{"name": "big-one", "description": "` + strings.Repeat("x", 1<<20) + `"}`
	tests := []struct {
		name    string
		chunked bool
	}{
		{"content-length", false},
		{"chunked", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(big)
			if tc.chunked {
				body = io.MultiReader(strings.NewReader(big)) // hides the length
			}
			req, _ := http.NewRequest("POST", srv.URL+ws, body)
			resp, err := servertest.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			testenv.Close(t, resp.Body)
			if resp.StatusCode != 413 || !strings.Contains(string(b), `"body_too_large"`) {
				t.Fatalf("got %d %s", resp.StatusCode, b)
			}
		})
	}
	expect(t, srv, "GET", ws+"/big-one", "", 404, "not_found")
}

// snapshot renders everything the bad requests could have touched.
func snapshot(t *testing.T, srv *servertest.Server) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{ws + "?sort=name", ws + "/ml-team/members", ws + "/ml-team/projects", ws + "/ml-team/entities/model", ws + "/-/entities/model"} {
		_, _, body := call(t, "GET", srv.URL+p, "")
		fmt.Fprintf(&b, "%s\n", body)
	}
	rev, err := srv.Store().PolicyRevision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "revision %d", rev)
	return b.String()
}
