package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/api"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/health"
	"github.com/nmp-project/nmp/internal/metrics"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/testenv"
)

// The tests in this file prove that every authorization decision of the
// API comes from the api.Options.PDP decision point: the API runs with a
// recording DecisionPoint whose answers the test sets, next to an engine
// that would answer the opposite, and each caller must follow the
// recorder, be seen asking it, and fail closed when it fails.

// recorder is a DecisionPoint that records every question. The middleware
// request for a path in pass is allowed, so that the handler behind it
// runs; every other question gets err if set, else answer.
type recorder struct {
	pass    map[string]bool
	answer  bool
	visible []string // VisibleWorkspaces when answer is true
	err     error

	mu    sync.Mutex
	calls []string
}

func (f *recorder) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// take returns the questions asked since the last take.
func (f *recorder) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *recorder) Allow(_ context.Context, in authz.Input) (authz.Decision, error) {
	f.record("allow %s %s %s", in.PrincipalID, in.Method, in.Path)
	if f.pass[in.Path] {
		return authz.Decision{Allowed: true, Reason: "recorder_pass"}, nil
	}
	if f.err != nil {
		return authz.Decision{Allowed: true, Reason: "must_not_be_used"}, f.err
	}
	return authz.Decision{Allowed: f.answer, Reason: fmt.Sprintf("recorder_%v", f.answer)}, nil
}

func (f *recorder) HasPermissions(_ context.Context, in authz.PermissionsInput) (bool, error) {
	f.record("has_permissions %s %s %s", in.PrincipalID, in.Workspace, strings.Join(in.Permissions, ","))
	return f.answer && f.err == nil, f.err
}

func (f *recorder) HasRole(_ context.Context, in authz.RoleInput) (bool, error) {
	f.record("has_role %s %s %s", in.PrincipalID, in.Workspace, in.Role)
	return f.answer && f.err == nil, f.err
}

func (f *recorder) VisibleWorkspaces(_ context.Context, s authz.Subject) (pdp.Visible, error) {
	f.record("visible %s", s.PrincipalID)
	switch {
	case f.err != nil:
		return pdp.Visible{All: true}, f.err
	case f.answer:
		return pdp.Visible{Workspaces: f.visible}, nil
	}
	return pdp.Visible{Workspaces: []string{}}, nil
}

// tokens accepts the bearer token "alice" (the callout needs a validator).
type tokens struct{}

func (tokens) Validate(_ context.Context, tok string) (*authn.Principal, error) {
	if tok == "alice" {
		return &authn.Principal{ID: "alice"}, nil
	}
	return nil, &authn.InvalidToken{Reason: "malformed", Detail: "unknown test token"}
}

// adminAliceEngine is the static policy loaded with alice as
// PlatformAdmin (it allows her everything).
func adminAliceEngine(t testing.TB) *authz.Engine {
	t.Helper()
	engine := authztest.StaticEngine(t)
	if err := engine.Load(store.PolicyBindings{Revision: 1, Bindings: []store.RoleBinding{
		{ID: "1", Principal: "alice", Workspace: store.SystemWorkspace, Role: authz.RolePlatformAdmin, Revision: 1},
	}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	return engine
}

// decisionServer runs the API (auth enabled, development mode, callout
// with authorization) with dp as its decision point, a SQLite store with
// workspaces ws-a and ws-b holding one "model" entity each, and an
// engine: loaded with alice as PlatformAdmin (it would allow everything)
// when engineAllows, else never loaded (it would refuse everything).
func decisionServer(t *testing.T, dp pdp.DecisionPoint, engineAllows bool) (url string, logs *testenv.Buffer) {
	t.Helper()
	ctx := context.Background()
	st := authztest.Store(t, store.Seed{})
	for _, ws := range []string{"ws-a", "ws-b"} {
		if _, _, err := st.CreateWorkspace(ctx, store.NewWorkspace{Name: ws}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateEntity(ctx, store.NewEntity{EntityKey: store.EntityKey{Workspace: ws, EntityType: "model", Name: "m-" + ws},
			Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	engine := authztest.StaticEngine(t)
	if engineAllows {
		engine = adminAliceEngine(t)
	}
	cfg := config.Default()
	cfg.Auth.Enabled = true
	cfg.Auth.AuthenticateAuthorize = true
	logs = &testenv.Buffer{}
	h := api.New(api.Options{Config: cfg, Store: st, Roles: authz.NewCatalog(engine.Document()), Health: health.New("policy"),
		Metrics: metrics.New(), Logger: slog.New(slog.NewTextHandler(logs, nil)), PDP: dp, Tokens: tokens{}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, logs
}

const (
	authzPath     = "/apis/auth/v2/authz/"
	entitiesAll   = ws + "/-/entities/model"
	roleBindings  = "/apis/auth/v2/iam/role-bindings"
	calloutPrefix = "/apis/auth/authenticate"
)

// passPaths are the requests the recorder's middleware answer lets through.
var passPaths = map[string]bool{
	authzPath + "allow": true, authzPath + "has_permissions": true, authzPath + "has_role": true,
	selfCheckPath: true, ws: true, entitiesAll: true, roleBindings: true,
}

// decisionCase is one caller of the decision point.
type decisionCase struct {
	name         string
	method, path string
	body         string
	header       []string
	// asked are questions the recorder must have been asked; askedIfNo
	// too when its answer is no.
	asked, askedIfNo []string
	// no and yes check the response when the recorder answers no / yes.
	no, yes func(status int, h map[string][]string, body map[string]any) string
}

func decisionCases() []decisionCase {
	alice := []string{"X-NMP-Principal-Id", "alice"}
	status := func(want int, code string) func(int, map[string][]string, map[string]any) string {
		return func(got int, _ map[string][]string, m map[string]any) string {
			if got != want || (code != "" && m["code"] != code) {
				return fmt.Sprintf("got %d %v, want %d %s", got, m, want, code)
			}
			return ""
		}
	}
	result := func(want string) func(int, map[string][]string, map[string]any) string {
		return func(got int, _ map[string][]string, m map[string]any) string {
			b, _ := json.Marshal(m["result"])
			if got != 200 || string(b) != want {
				return fmt.Sprintf("got %d %v, want 200 result %s", got, m, want)
			}
			return ""
		}
	}
	answer := func(allowed bool, reason string) func(int, map[string][]string, map[string]any) string {
		return func(got int, _ map[string][]string, m map[string]any) string {
			if got != 200 || m["allowed"] != allowed || m["reason"] != reason {
				return fmt.Sprintf("got %d %v, want allowed %v reason %s", got, m, allowed, reason)
			}
			return ""
		}
	}
	listed := func(field string, want ...string) func(int, map[string][]string, map[string]any) string {
		return func(got int, _ map[string][]string, m map[string]any) string {
			data, _ := m["data"].([]any)
			var names []string
			for _, it := range data {
				names = append(names, fmt.Sprint(it.(map[string]any)[field]))
			}
			slices.Sort(names)
			total := m["pagination"].(map[string]any)["total_results"]
			if got != 200 || strings.Join(names, ",") != strings.Join(want, ",") || total != float64(len(want)) {
				return fmt.Sprintf("got %d %v (total %v), want %v", got, names, total, want)
			}
			return ""
		}
	}
	return []decisionCase{
		{name: "middleware", method: "GET", path: ws + "/ws-a", header: alice,
			asked: []string{"allow alice GET " + ws + "/ws-a"},
			no:    status(403, "forbidden"), yes: status(200, "")},
		{name: "middleware, anonymous", method: "GET", path: ws + "/ws-a",
			asked: []string{"allow  GET " + ws + "/ws-a"},
			no:    status(401, "unauthorized"), yes: status(200, "")},
		{name: "entrypoint allow", method: "POST", path: authzPath + "allow", header: alice,
			body:  `{"input": {"principal_id": "bob", "method": "GET", "path": "/asked"}}`,
			asked: []string{"allow bob GET /asked"},
			no:    result(`{"allowed":false,"headers":{"X-NMP-Authorized":"false"},"reason":"recorder_false"}`),
			yes:   result(`{"allowed":true,"headers":{"X-NMP-Authorized":"true"},"reason":"recorder_true"}`)},
		{name: "entrypoint allow, Envoy form", method: "POST", path: authzPath + "allow", header: alice,
			body:  envoy("GET", "/asked", `"x-nmp-principal-id": "bob"`),
			asked: []string{"allow bob GET /asked"},
			no:    result(`{"allowed":false,"headers":{"X-NMP-Authorized":"false"},"reason":"recorder_false"}`),
			yes:   result(`{"allowed":true,"headers":{"X-NMP-Authorized":"true"},"reason":"recorder_true"}`)},
		{name: "entrypoint has_permissions", method: "POST", path: authzPath + "has_permissions", header: alice,
			body:  `{"input": {"principal_id": "bob", "workspace": "ws-a", "permissions": ["projects.read"]}}`,
			asked: []string{"has_permissions bob ws-a projects.read"},
			no:    result(`{"allowed":false}`), yes: result(`{"allowed":true}`)},
		{name: "entrypoint has_role", method: "POST", path: authzPath + "has_role", header: alice,
			body:  `{"input": {"principal_id": "bob", "workspace": "ws-a", "role": "Admin"}}`,
			asked: []string{"has_role bob ws-a Admin"},
			no:    result(`{"has_role":false}`), yes: result(`{"has_role":true}`)},
		{name: "self-check, request form", method: "POST", path: selfCheckPath, header: alice,
			body:  `{"method": "get", "path": "/asked"}`,
			asked: []string{"allow alice GET /asked"},
			no:    answer(false, "recorder_false"), yes: answer(true, "recorder_true")},
		{name: "self-check, workspace form", method: "POST", path: selfCheckPath, header: alice,
			body:  `{"workspace": "ws-a", "permissions": ["projects.read"]}`,
			asked: []string{"has_role alice system PlatformAdmin"},
			no:    answer(false, "permission_missing"), yes: answer(true, "platform_admin")},
		{name: "self-check, workspace form asks has_permissions", method: "POST", path: selfCheckPath, header: alice,
			body:      `{"workspace": "ws-a", "permissions": ["projects.read", "ws-b/projects.create"]}`,
			asked:     []string{"has_role alice system PlatformAdmin"},
			askedIfNo: []string{"has_permissions alice ws-a projects.read,ws-b/projects.create"},
			no:        answer(false, "permission_missing"), yes: answer(true, "platform_admin")},
		{name: "self-check as another principal", method: "POST", path: selfCheckPath, header: alice,
			body:  `{"method": "GET", "path": "/asked", "as": {"principal_id": "bob"}}`,
			asked: []string{"has_role alice system PlatformAdmin"},
			no:    status(403, "forbidden"), yes: answer(true, "recorder_true")},
		{name: "workspace list", method: "GET", path: ws, header: alice,
			asked: []string{"visible alice"},
			no:    listed("name"), yes: listed("name", "ws-b")},
		{name: "entity list across workspaces", method: "GET", path: entitiesAll, header: alice,
			asked: []string{"visible alice"},
			no:    listed("name"), yes: listed("name", "m-ws-b")},
		{name: "role-binding admin check", method: "GET", path: roleBindings, header: alice,
			asked: []string{"has_role alice system PlatformAdmin"},
			no:    status(403, "role_binding_admin_only"), yes: status(200, "")},
		{name: "gateway callout", method: "GET", path: calloutPrefix + "/v2/workspaces/ws-a", header: []string{"Authorization", "Bearer alice"},
			asked: []string{"allow alice GET /v2/workspaces/ws-a"},
			no:    status(403, "forbidden"),
			yes: func(got int, h map[string][]string, m map[string]any) string {
				if got != 200 || strings.Join(h["X-Nmp-Authorized"], "") != "true" || m["principal"] != "alice" {
					return fmt.Sprintf("got %d %v %v", got, h, m)
				}
				return ""
			}},
	}
}

// TestDecisionPointDecides: with a decision point that says no, every
// caller denies although the engine would allow; with one that says yes,
// every caller allows although the engine cannot answer.
func TestDecisionPointDecides(t *testing.T) {
	for _, answer := range []bool{false, true} {
		t.Run(fmt.Sprintf("decision point says %v", answer), func(t *testing.T) {
			rec := &recorder{pass: passPaths, answer: answer, visible: []string{"ws-b"}}
			url, _ := decisionServer(t, rec, !answer)
			for _, tc := range decisionCases() {
				t.Run(tc.name, func(t *testing.T) {
					rec.take()
					status, h, body := call(t, tc.method, url+tc.path, tc.body, tc.header...)
					var m map[string]any
					_ = json.Unmarshal(body, &m)
					check := tc.no
					if answer {
						check = tc.yes
					}
					if msg := check(status, h, m); msg != "" {
						t.Fatal(msg)
					}
					asked, want := rec.take(), tc.asked
					if !answer {
						want = append(want, tc.askedIfNo...)
					}
					for _, q := range want {
						if !slices.Contains(asked, q) {
							t.Fatalf("the decision point was not asked %q; asked %q", q, asked)
						}
					}
				})
			}
		})
	}
}

// TestDecisionPointFailsClosed: when the decision point fails, every
// caller refuses with the mapped status (never a success) and writes one
// security log line, although the engine would allow.
func TestDecisionPointFailsClosed(t *testing.T) {
	failures := []struct {
		err    error
		status int
		code   string
	}{
		{pdp.ErrUnavailable, 503, "pdp_unavailable"},
		{fmt.Errorf("dial tcp: %w", pdp.ErrUnavailable), 503, "pdp_unavailable"},
		{pdp.ErrTimeout, 504, "pdp_timeout"},
		{fmt.Errorf("post: %w", context.DeadlineExceeded), 504, "pdp_timeout"},
		{pdp.ErrBadAnswer, 502, "pdp_error"},
		{errors.New("evaluator exploded"), 502, "pdp_error"},
	}
	for _, f := range failures {
		t.Run(f.err.Error(), func(t *testing.T) {
			rec := &recorder{pass: passPaths, answer: true, visible: []string{"ws-a", "ws-b"}, err: f.err}
			url, logs := decisionServer(t, rec, true)
			for _, tc := range decisionCases() {
				t.Run(tc.name, func(t *testing.T) {
					rec.take()
					before := strings.Count(logs.String(), "event=security")
					status, _, body := call(t, tc.method, url+tc.path, tc.body, tc.header...)
					var m map[string]any
					_ = json.Unmarshal(body, &m)
					if status != f.status || m["code"] != f.code {
						t.Fatalf("got %d %v, want %d %s", status, m, f.status, f.code)
					}
					if len(rec.take()) == 0 {
						t.Fatal("the decision point was not asked")
					}
					lines := strings.Count(logs.String(), "event=security") - before
					if lines != 1 || !strings.Contains(logs.String(), "reason=pdp_unavailable") {
						t.Fatalf("%d security log lines for one refusal:\n%s", lines, logs.String())
					}
				})
			}
		})
	}
}
