package pdp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/health"
	"github.com/nmp-project/nmp/internal/metrics"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/testenv/opatest"
)

// loadedEngine is the static engine with a varied set of bindings:
// members, a wildcard, groups, an email, a service and a PlatformAdmin.
func loadedEngine(t *testing.T) *authz.Engine {
	t.Helper()
	e := authztest.StaticEngine(t)
	bindings := []struct{ p, ws, role string }{
		{"*", "default", "Editor"},
		{"*", "system", "Viewer"},
		{"*", "system", "WorkspaceCreator"},
		{"alice", "ml-team", "Admin"},
		{"bob@example.com", "ml-team", "Viewer"},
		{"data-eng", "ml-team", "Editor"},
		{"carol", "research", "Viewer"},
		{"ops", "system", authz.RolePlatformAdmin},
		{"service:trainer", "ml-team", "JobRunner"},
	}
	pb := store.PolicyBindings{Revision: 3}
	for i, b := range bindings {
		pb.Bindings = append(pb.Bindings, store.RoleBinding{ID: fmt.Sprint(i), Principal: b.p, Workspace: b.ws, Role: b.role, Revision: 3})
	}
	if err := e.Load(pb, time.Now()); err != nil {
		t.Fatal(err)
	}
	return e
}

func newOPA(t *testing.T, url string, timeout time.Duration, e *authz.Engine, m *metrics.Metrics) *pdp.OPA {
	t.Helper()
	p, err := pdp.NewOPA(pdp.OPAOptions{BaseURL: url, Timeout: timeout, Local: e, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.CloseIdleConnections)
	return p
}

// TestOPAMatchesEmbedded puts the same questions to a real OPA running the
// shipped policy over the engine's data and to the embedded engine: every
// answer must be equal, and the table must produce allows and denies.
func TestOPAMatchesEmbedded(t *testing.T) {
	e := loadedEngine(t)
	o := opatest.StartPolicy(t, opatest.Policy{Data: e.DataDocument()})
	remote := newOPA(t, o.URL, 5*time.Second, e, metrics.New())
	local := pdp.NewEmbedded(e)
	ctx := context.Background()

	type caller struct {
		name string
		in   authz.Input
	}
	callers := []caller{
		{"anonymous", authz.Input{}},
		{"alice", authz.Input{PrincipalID: "alice"}},
		{"bob by email", authz.Input{PrincipalID: "u-bob", PrincipalEmail: "bob@example.com"}},
		{"group member", authz.Input{PrincipalID: "dave", PrincipalGroups: []string{"data-eng", "other"}}},
		{"platform admin by group", authz.Input{PrincipalID: "erin", PrincipalGroups: []string{"ops"}}},
		{"service", authz.Input{PrincipalID: "service:trainer"}},
		{"scoped reader", authz.Input{PrincipalID: "alice", Scopes: []string{"entities:read"}}},
		{"permission-shaped scope", authz.Input{PrincipalID: "alice", Scopes: []string{"entities.read"}}},
		{"on behalf of", authz.Input{PrincipalID: "service:trainer", OnBehalfOf: "carol"}},
	}
	requests := []struct{ method, path string }{
		{"GET", "/apis/entities/v2/workspaces"},
		{"POST", "/apis/entities/v2/workspaces"},
		{"GET", "/v2/workspaces/ml-team"},
		{"DELETE", "/apis/entities/v2/workspaces/ml-team"},
		{"PUT", "/apis/entities/v2/workspaces/research"},
		{"GET", "/apis/entities/v2/workspaces/ml-team/members"},
		{"POST", "/apis/entities/v2/workspaces/ml-team/members"},
		{"POST", "/apis/entities/v2/workspaces/default/projects"},
		{"GET", "/apis/entities/v2/workspaces/-/projects"},
		{"HEAD", "/apis/entities/v2/workspaces/research/entities/models"},
		{"GET", "/apis/auth/v2/iam/role-bindings"},
		{"GET", "/apis/auth/discovery"},
		{"GET", "/apis/auth/v2/iam/opa-bundle.tar.gz"},
		{"GET", "/no/such/service"},
		{"GET", "/apis/entities/v2/workspaces/%2e%2e"},
	}
	decided := map[bool]int{}
	for _, c := range callers {
		for _, r := range requests {
			in := c.in
			in.Method, in.Path = r.method, r.path
			name := fmt.Sprintf("allow/%s/%s %s", c.name, r.method, r.path)
			got, err := remote.Allow(ctx, in)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			want, _ := local.Allow(ctx, in)
			if got != want {
				t.Errorf("%s: OPA %+v, embedded %+v", name, got, want)
			}
			decided[got.Allowed]++
		}
	}
	permissions := []struct {
		name string
		in   authz.PermissionsInput
	}{
		{"member reads", authz.PermissionsInput{PrincipalID: "alice", Workspace: "ml-team", Permissions: []string{"projects.read"}}},
		{"viewer cannot create", authz.PermissionsInput{PrincipalID: "u-bob", PrincipalEmail: "bob@example.com", Workspace: "ml-team", Permissions: []string{"projects.create"}}},
		{"group editor creates", authz.PermissionsInput{PrincipalID: "dave", PrincipalGroups: []string{"data-eng"}, Workspace: "ml-team", Permissions: []string{"projects.create", "projects.read"}}},
		{"wildcard editor", authz.PermissionsInput{PrincipalID: "zed", Workspace: "default", Permissions: []string{"projects.create"}}},
		{"stranger", authz.PermissionsInput{PrincipalID: "zed", Workspace: "research", Permissions: []string{"projects.read"}}},
		{"platform admin", authz.PermissionsInput{PrincipalID: "erin", PrincipalGroups: []string{"ops"}, Workspace: "research", Permissions: []string{"workspaces.delete"}}},
		{"on behalf of", authz.PermissionsInput{PrincipalID: "service:trainer", OnBehalfOf: "carol", Workspace: "research", Permissions: []string{"projects.read"}}},
		{"no permissions", authz.PermissionsInput{PrincipalID: "alice", Workspace: "ml-team"}},
		{"no workspace", authz.PermissionsInput{PrincipalID: "alice", Permissions: []string{"projects.read"}}},
		{"anonymous", authz.PermissionsInput{Workspace: "default", Permissions: []string{"projects.read"}}},
	}
	for _, tc := range permissions {
		got, err := remote.HasPermissions(ctx, tc.in)
		if err != nil {
			t.Fatalf("has_permissions/%s: %v", tc.name, err)
		}
		if want, _ := local.HasPermissions(ctx, tc.in); got != want {
			t.Errorf("has_permissions/%s: OPA %v, embedded %v", tc.name, got, want)
		}
		decided[got]++
	}
	roles := []struct {
		name string
		in   authz.RoleInput
	}{
		{"direct", authz.RoleInput{PrincipalID: "alice", Workspace: "ml-team", Role: "Admin"}},
		{"no includes", authz.RoleInput{PrincipalID: "alice", Workspace: "ml-team", Role: "Viewer"}},
		{"by email", authz.RoleInput{PrincipalID: "u-bob", PrincipalEmail: "bob@example.com", Workspace: "ml-team", Role: "Viewer"}},
		{"by group", authz.RoleInput{PrincipalID: "dave", PrincipalGroups: []string{"data-eng"}, Workspace: "ml-team", Role: "Editor"}},
		{"no wildcard fallback", authz.RoleInput{PrincipalID: "zed", Workspace: "default", Role: "Editor"}},
		{"the wildcard itself", authz.RoleInput{PrincipalID: "*", Workspace: "default", Role: "Editor"}},
		{"platform admin", authz.RoleInput{PrincipalID: "ops", Workspace: "system", Role: authz.RolePlatformAdmin}},
		{"unknown role", authz.RoleInput{PrincipalID: "alice", Workspace: "ml-team", Role: "Owner"}},
	}
	for _, tc := range roles {
		got, err := remote.HasRole(ctx, tc.in)
		if err != nil {
			t.Fatalf("has_role/%s: %v", tc.name, err)
		}
		if want, _ := local.HasRole(ctx, tc.in); got != want {
			t.Errorf("has_role/%s: OPA %v, embedded %v", tc.name, got, want)
		}
		decided[got]++
	}
	if decided[true] < 20 || decided[false] < 20 {
		t.Fatalf("the table is one-sided: %d true, %d false", decided[true], decided[false])
	}
	t.Logf("%d answers equal (%d true, %d false)", decided[true]+decided[false], decided[true], decided[false])

	// VisibleWorkspaces comes from the local engine.
	v, err := remote.VisibleWorkspaces(ctx, authz.Subject{PrincipalID: "alice"})
	if want, _ := local.VisibleWorkspaces(ctx, authz.Subject{PrincipalID: "alice"}); err != nil || fmt.Sprint(v) != fmt.Sprint(want) {
		t.Fatalf("visible: %+v, %v; want %+v", v, err, want)
	}
}

// question is one cheap decision asked of dp.
func question(ctx context.Context, dp pdp.DecisionPoint) error {
	_, err := dp.HasRole(ctx, authz.RoleInput{PrincipalID: "alice", Workspace: "ml-team", Role: "Admin"})
	return err
}

// counter reads nmp_pdp_requests_total{provider="opa",entrypoint,result}
// from the metrics endpoint's text.
func counter(t *testing.T, m *metrics.Metrics, entrypoint, result string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	prefix := fmt.Sprintf(`nmp_pdp_requests_total{entrypoint=%q,provider="opa",result=%q} `, entrypoint, result)
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// TestOPAKilled: a dead OPA is ErrUnavailable at once (no waiting for the
// timeout), and the decision point recovers when OPA is back.
func TestOPAKilled(t *testing.T) {
	e := loadedEngine(t)
	o := opatest.StartPolicy(t, opatest.Policy{Data: e.DataDocument()})
	m := metrics.New()
	remote := newOPA(t, o.URL, 5*time.Second, e, m)
	ctx := context.Background()
	if err := question(ctx, remote); err != nil {
		t.Fatal(err)
	}
	o.Kill()
	start := time.Now()
	err := question(ctx, remote)
	if elapsed := time.Since(start); !errors.Is(err, pdp.ErrUnavailable) || elapsed > 2*time.Second {
		t.Fatalf("killed OPA: %v after %v; want ErrUnavailable at once", err, elapsed)
	}
	if _, err := remote.Allow(ctx, authz.Input{PrincipalID: "alice", Method: "GET", Path: "/v2/workspaces"}); pdp.Failure(err) != pdp.ErrUnavailable {
		t.Fatalf("allow with OPA killed: %v", err)
	}
	if got := counter(t, m, "has_role", "unavailable"); got != 1 {
		t.Fatalf("unavailable has_role calls counted %v, want 1", got)
	}
	o.Restart()
	if err := question(ctx, remote); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if got := counter(t, m, "has_role", "allow"); got != 2 {
		t.Fatalf("allowed has_role calls counted %v, want 2", got)
	}
}

// TestOPAHung: an OPA that accepts connections but never answers (SIGSTOP)
// is ErrTimeout after the configured timeout, and answers again after
// SIGCONT.
func TestOPAHung(t *testing.T) {
	e := loadedEngine(t)
	o := opatest.StartPolicy(t, opatest.Policy{Data: e.DataDocument()})
	m := metrics.New()
	const timeout = time.Second
	remote := newOPA(t, o.URL, timeout, e, m)
	ctx := context.Background()
	if err := question(ctx, remote); err != nil {
		t.Fatal(err)
	}
	o.Freeze()
	stopped := true
	defer func() {
		if stopped {
			o.Thaw()
		}
	}()
	for i, ask := range []func() error{
		func() error { return question(ctx, remote) }, // pooled connection
		func() error { // a new connection, accepted by the kernel
			fresh := newOPA(t, o.URL, timeout, e, nil)
			_, err := fresh.Allow(ctx, authz.Input{PrincipalID: "alice", Method: "GET", Path: "/v2/workspaces"})
			return err
		},
	} {
		start := time.Now()
		err := ask()
		elapsed := time.Since(start)
		if !errors.Is(err, pdp.ErrTimeout) || elapsed < timeout || elapsed > 3*timeout {
			t.Fatalf("question %d to a hung OPA: %v after %v; want ErrTimeout after %v", i, err, elapsed, timeout)
		}
	}
	if got := counter(t, m, "has_role", "timeout"); got != 1 {
		t.Fatalf("timed-out calls counted %v, want 1", got)
	}
	o.Thaw()
	stopped = false
	if err := question(ctx, remote); err != nil {
		t.Fatalf("after SIGCONT: %v", err)
	}
}

// TestOPAAnswers covers answers a real OPA running the shipped policy
// cannot be made to give: each must be an error (never an allow), except
// an absent or empty result, which is a deny.
func TestOPAAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		// want: nil for a deny without error, else the failure kind.
		want error
	}{
		{"empty result object", 200, `{"result": {}}`, nil},
		{"absent result", 200, `{}`, nil},
		{"null result", 200, `{"result": null}`, nil},
		{"server error", 500, `{"code": "internal_error", "message": "boom"}`, pdp.ErrBadAnswer},
		{"not found", 404, `{}`, pdp.ErrBadAnswer},
		{"redirect not followed", 302, ``, pdp.ErrBadAnswer},
		{"not JSON", 200, `<html>proxy error</html>`, pdp.ErrBadAnswer},
		{"truncated JSON", 200, `{"result": {"allowed": tr`, pdp.ErrBadAnswer},
		{"result not an object", 200, `{"result": true}`, pdp.ErrBadAnswer},
		{"result is a list", 200, `{"result": [true]}`, pdp.ErrBadAnswer},
		{"flag is a string", 200, `{"result": {"allowed": "true", "has_role": "true", "reason": "x"}}`, pdp.ErrBadAnswer},
		{"flag is a number", 200, `{"result": {"allowed": 1, "has_role": 1}}`, pdp.ErrBadAnswer},
		{"flag is null", 200, `{"result": {"allowed": null, "has_role": null}}`, pdp.ErrBadAnswer},
		{"flag missing", 200, `{"result": {"reason": "platform_admin", "other": true}}`, pdp.ErrBadAnswer},
		{"oversized", 200, `{"result": {"allowed": true, "has_role": true, "pad": "` + strings.Repeat("x", 1<<20) + `"}}`, pdp.ErrBadAnswer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.status == http.StatusFound {
					http.Redirect(w, r, "/elsewhere", http.StatusFound)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			remote := newOPA(t, srv.URL, 5*time.Second, authztest.StaticEngine(t), nil)
			ctx := context.Background()
			d, err := remote.Allow(ctx, authz.Input{PrincipalID: "alice", Method: "GET", Path: "/x"})
			hp, errP := remote.HasPermissions(ctx, authz.PermissionsInput{PrincipalID: "alice", Workspace: "w", Permissions: []string{"p.q"}})
			hr, errR := remote.HasRole(ctx, authz.RoleInput{PrincipalID: "alice", Workspace: "w", Role: "Admin"})
			if d.Allowed || hp || hr {
				t.Fatalf("allowed something: allow %+v, has_permissions %v, has_role %v", d, hp, hr)
			}
			for i, err := range []error{err, errP, errR} {
				if tc.want == nil && err != nil || tc.want != nil && pdp.Failure(err) != tc.want {
					t.Fatalf("entrypoint %d: error %v, want %v", i, err, tc.want)
				}
			}
			if tc.want == nil && d != (authz.Decision{Allowed: false, Reason: pdp.ReasonNoResult}) {
				t.Fatalf("allow decision %+v, want a deny with reason %s", d, pdp.ReasonNoResult)
			}
		})
	}
}

// TestOPARequests checks what is sent: the entrypoint's path and
// {"input": …} with the field names of the policy, empty optional fields
// left out.
func TestOPARequests(t *testing.T) {
	type seen struct {
		method, path, contentType string
		body                      map[string]any
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Error(err)
		}
		got <- seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), body}
		_, _ = io.WriteString(w, `{"result": {"allowed": true, "reason": "permission_granted", "has_role": true}}`)
	}))
	defer srv.Close()
	remote := newOPA(t, srv.URL+"/", 5*time.Second, authztest.StaticEngine(t), nil)
	ctx := context.Background()
	tests := []struct {
		name string
		ask  func() error
		path string
		want string
	}{
		{"allow, every field", func() error {
			d, err := remote.Allow(ctx, authz.Input{PrincipalID: "service:s", PrincipalEmail: "s@x.y", PrincipalGroups: []string{"g"},
				OnBehalfOf: "u1", Method: "POST", Path: "/v2/workspaces", Scopes: []string{"entities:write"}})
			if d != (authz.Decision{Allowed: true, Reason: "permission_granted"}) {
				return fmt.Errorf("decision %+v", d)
			}
			return err
		}, "/v1/data/authz/allow",
			`{"input":{"method":"POST","on_behalf_of_principal_id":"u1","path":"/v2/workspaces","principal_email":"s@x.y","principal_groups":["g"],"principal_id":"service:s","scopes":["entities:write"]}}`},
		{"allow, anonymous", func() error {
			_, err := remote.Allow(ctx, authz.Input{Method: "GET", Path: "/x"})
			return err
		}, "/v1/data/authz/allow", `{"input":{"method":"GET","path":"/x","principal_id":""}}`},
		{"has_permissions", func() error {
			_, err := remote.HasPermissions(ctx, authz.PermissionsInput{PrincipalID: "a", Workspace: "w", Permissions: []string{"p.q"}})
			return err
		}, "/v1/data/authz/has_permissions", `{"input":{"permissions":["p.q"],"principal_id":"a","workspace":"w"}}`},
		{"has_permissions without permissions", func() error {
			_, err := remote.HasPermissions(ctx, authz.PermissionsInput{PrincipalID: "a", Workspace: "w"})
			return err
		}, "/v1/data/authz/has_permissions", `{"input":{"permissions":[],"principal_id":"a","workspace":"w"}}`},
		{"has_role", func() error {
			_, err := remote.HasRole(ctx, authz.RoleInput{PrincipalID: "a", PrincipalGroups: []string{"g1", "g2"}, Workspace: "w", Role: "Admin"})
			return err
		}, "/v1/data/authz/has_role", `{"input":{"principal_groups":["g1","g2"],"principal_id":"a","role":"Admin","workspace":"w"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.ask(); err != nil {
				t.Fatal(err)
			}
			s := <-got
			body, err := json.Marshal(s.body)
			if err != nil {
				t.Fatal(err)
			}
			if s.method != http.MethodPost || s.path != tc.path || s.contentType != "application/json" || string(body) != tc.want {
				t.Fatalf("got %s %s (%s) %s\nwant POST %s %s", s.method, s.path, s.contentType, body, tc.path, tc.want)
			}
		})
	}
}

// fakeClock is a settable clock.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

// TestMonitor drives the readiness check against a real OPA serving a
// bundle: in step, lagging within the limit, stale beyond it, down, and
// back with the current revision.
func TestMonitor(t *testing.T) {
	e := loadedEngine(t)
	o := opatest.StartPolicy(t, opatest.Policy{Data: e.DataDocument(), Revision: "5"})
	remote := newOPA(t, o.URL, time.Second, e, nil)
	hs := health.New(pdp.HealthComponent)
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	local := int64(5)
	const maxLag = 30 * time.Second
	mon := remote.Monitor(pdp.MonitorOptions{Local: func() int64 { return local }, MaxLag: maxLag, Clock: clock.Now, Health: hs})
	ctx := context.Background()

	if ok, _ := hs.Ready(); ok {
		t.Fatal("ready before the first check")
	}
	check := func(step string, wantReady bool, wantReason string) pdp.RemoteStatus {
		t.Helper()
		err := mon.Check(ctx)
		ok, reasons := hs.Ready()
		if ok != wantReady || (err == nil) != wantReady {
			t.Fatalf("%s: ready %v (%q), check error %v; want ready %v", step, ok, reasons, err, wantReady)
		}
		if !wantReady && (len(reasons) != 1 || !strings.HasPrefix(reasons[0], "pdp: ") || !strings.Contains(reasons[0], wantReason)) {
			t.Fatalf("%s: reasons %q, want one pdp reason containing %q", step, reasons, wantReason)
		}
		st := remote.Remote()
		if !st.CheckedAt.Equal(clock.now) || (st.Err == nil) != wantReady {
			t.Fatalf("%s: remote status %+v", step, st)
		}
		return st
	}

	if st := check("in step", true, ""); !st.Reachable || !st.HasRevision || st.Revision != 5 || st.Local != 5 {
		t.Fatalf("in step: %+v", st)
	}
	local = 7 // this process learned a revision OPA lacks
	if st := check("lagging", true, ""); !st.BehindSince.Equal(clock.now) {
		t.Fatalf("lagging: %+v", st)
	}
	clock.now = clock.now.Add(maxLag - time.Millisecond)
	check("lagging just below the limit", true, "")
	clock.now = clock.now.Add(time.Millisecond)
	check("stale", false, "OPA is behind: its bundle has revision 5, this process has 7")

	o.Kill()
	if st := check("down", false, "OPA unreachable"); st.Reachable {
		t.Fatalf("down: %+v", st)
	}
	o.Rewrite(opatest.Policy{Data: e.DataDocument(), Revision: "7"})
	o.Restart()
	if st := check("back with revision 7", true, ""); st.Revision != 7 || !st.BehindSince.IsZero() {
		t.Fatalf("back: %+v", st)
	}
}

// TestMonitorAnswers covers health and bundle answers of OPA that are not
// ready.
func TestMonitorAnswers(t *testing.T) {
	tests := []struct {
		name         string
		healthStatus int
		bundles      string
		wantReady    bool
		want         string
	}{
		{"bundles not activated", 500, `{"result": {}}`, false, "OPA has not activated its bundles"},
		{"no bundle", 200, `{"result": {}}`, false, `no activated bundle with root "authz"`},
		{"other roots only", 200, `{"result": {"x": {"manifest": {"revision": "9", "roots": ["other"]}}}}`, false, `no activated bundle with root "authz"`},
		{"revision not a number", 200, `{"result": {"nmp": {"manifest": {"revision": "abc", "roots": ["authz"]}}}}`, false, `has revision "abc"`},
		{"bundle status not JSON", 200, `nope`, false, "not the expected JSON"},
		{"authz bundle among others", 200, `{"result": {"a": {"manifest": {"revision": "x", "roots": ["other"]}}, "nmp": {"manifest": {"revision": "4", "roots": ["authz"]}}}}`, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/health":
					if _, ok := r.URL.Query()["bundles"]; !ok {
						t.Errorf("health check without ?bundles: %s", r.URL)
					}
					w.WriteHeader(tc.healthStatus)
					_, _ = io.WriteString(w, `{}`)
				case "/v1/data/system/bundles":
					_, _ = io.WriteString(w, tc.bundles)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			remote := newOPA(t, srv.URL, time.Second, authztest.StaticEngine(t), nil)
			hs := health.New(pdp.HealthComponent)
			mon := remote.Monitor(pdp.MonitorOptions{Local: func() int64 { return 4 }, MaxLag: time.Second, Health: hs})
			err := mon.Check(context.Background())
			if ok, _ := hs.Ready(); ok != tc.wantReady || (err == nil) != tc.wantReady {
				t.Fatalf("ready %v, error %v; want ready %v", ok, err, tc.wantReady)
			}
			if !tc.wantReady && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
}

// TestMonitorRun: the component checks at once, reports to health and
// returns when stopped.
func TestMonitorRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"result": {"nmp": {"manifest": {"revision": "2", "roots": ["authz"]}}}}`)
	}))
	defer srv.Close()
	remote := newOPA(t, srv.URL, time.Second, authztest.StaticEngine(t), nil)
	hs := health.New(pdp.HealthComponent)
	mon := remote.Monitor(pdp.MonitorOptions{Local: func() int64 { return 2 }, MaxLag: time.Second, Health: hs, Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mon.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for ok, _ := hs.Ready(); !ok; ok, _ = hs.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the first check did not make the component ready")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if mon.Name() != pdp.HealthComponent {
		t.Fatalf("name %q", mon.Name())
	}
}

// TestNewOPARefuses: a configuration that cannot work is refused at start.
func TestNewOPARefuses(t *testing.T) {
	e := authztest.StaticEngine(t)
	tests := []struct {
		name string
		o    pdp.OPAOptions
	}{
		{"not a URL", pdp.OPAOptions{BaseURL: "opa:8181", Timeout: time.Second, Local: e}},
		{"no timeout", pdp.OPAOptions{BaseURL: "http://opa:8181", Local: e}},
		{"no engine", pdp.OPAOptions{BaseURL: "http://opa:8181", Timeout: time.Second}},
	}
	for _, tc := range tests {
		if _, err := pdp.NewOPA(tc.o); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
