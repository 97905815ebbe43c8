package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/testenv"
	"github.com/nmp-project/nmp/internal/testenv/opatest"
)

// unloadedData is data.authz before any binding is known (every
// non-public request is denied).
func unloadedData(t *testing.T) map[string]any {
	t.Helper()
	e := authztest.StaticEngine(t)
	return e.DataDocument()
}

// withOPA configures provider opa at url (development mode, auth on).
func withOPA(url string, mutate func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		devMode(c)
		c.Auth.PolicyDecisionPointProvider = "opa"
		c.Auth.PolicyDecisionPointBaseURL = url
		c.Auth.PolicyDecisionPointRequestTimeoutSeconds = 1
		c.Auth.PropagationPollIntervalSeconds = 0.05
		if mutate != nil {
			mutate(c)
		}
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestOPAProviderFailsClosed: with provider opa every decision comes from
// OPA; while OPA is down a request that needs a decision is 503
// pdp_unavailable, never a 2xx; when OPA is back, decisions are back.
func TestOPAProviderFailsClosed(t *testing.T) {
	o := opatest.StartPolicy(t, opatest.Policy{Data: unloadedData(t)})
	srv := servertest.Start(t, withOPA(o.URL, nil))
	o.SetData(srv.Server.Engine().DataDocument())

	requests := []struct {
		name, principal, method, path, body string
		want                                int
	}{
		{"admin lists workspaces", "root@example.com", "GET", "/v2/workspaces", "", 200},
		{"admin creates a workspace", "root@example.com", "POST", "/v2/workspaces?wait_role_propagation=false", `{"name":"ml"}`, 201},
		{"stranger deletes it", "mallory", "DELETE", "/v2/workspaces/ml", "", 403},
		{"anonymous reads", "", "GET", "/v2/workspaces/default/projects", "", 401},
		{"wildcard editor creates a project", "bob", "POST", "/v2/workspaces/default/projects", `{"name":"p1"}`, 201},
	}
	for _, rq := range requests {
		if resp, body := call(t, srv, rq.principal, rq.method, rq.path, rq.body); resp.StatusCode != rq.want {
			t.Fatalf("OPA up, %s: %d %v, want %d", rq.name, resp.StatusCode, body, rq.want)
		}
	}
	if m := metricsText(t, srv); !strings.Contains(m, `nmp_pdp_requests_total{entrypoint="allow",provider="opa",result="allow"}`) ||
		!strings.Contains(m, `nmp_pdp_requests_total{entrypoint="allow",provider="opa",result="deny"}`) {
		t.Fatalf("no OPA decisions counted:\n%s", grep(m, "nmp_pdp_"))
	}

	o.Kill()
	for i, rq := range requests {
		if rq.principal == "" {
			continue // anonymous is still asked, but a 401 would be no proof
		}
		path := strings.ReplaceAll(rq.path, "p1", "p2")
		body := strings.ReplaceAll(strings.ReplaceAll(rq.body, "p1", "p2"), `"ml"`, `"ml`+strconv.Itoa(i)+`"`)
		resp, out := call(t, srv, rq.principal, rq.method, path, body)
		if resp.StatusCode != http.StatusServiceUnavailable || out["code"] != "pdp_unavailable" {
			t.Fatalf("OPA down, %s: %d %v, want 503 pdp_unavailable", rq.name, resp.StatusCode, out)
		}
	}
	if m := metricsText(t, srv); !strings.Contains(m, `nmp_pdp_requests_total{entrypoint="allow",provider="opa",result="unavailable"} 4`) {
		t.Fatalf("unavailable calls not counted:\n%s", grep(m, "nmp_pdp_requests_total"))
	}
	if logs := srv.Logs(); !strings.Contains(logs, "OPA decision failed") || !strings.Contains(logs, "failure=unavailable") {
		t.Fatalf("failure not logged:\n%s", grep(logs, "OPA"))
	}

	o.Restart()
	o.SetData(srv.Server.Engine().DataDocument())
	if resp, body := call(t, srv, "root@example.com", "GET", "/v2/workspaces", ""); resp.StatusCode != 200 {
		t.Fatalf("OPA back: %d %v", resp.StatusCode, body)
	}
}

// TestOPAReadiness: /health/ready fails while OPA is down and recovers
// once OPA is back with this process's revision; /status shows OPA's
// state.
func TestOPAReadiness(t *testing.T) {
	o := opatest.StartPolicy(t, opatest.Policy{Data: unloadedData(t), Revision: "0"})
	srv := servertest.Start(t, withOPA(o.URL, nil))
	o.Kill()
	eventually(t, "readiness fails while OPA is down", func() bool {
		resp, body := call(t, srv, "", "GET", "/health/ready", "")
		return resp.StatusCode == 503 && strings.Contains(fmt.Sprint(body["reasons"]), "pdp: OPA unreachable")
	})
	if resp, _ := call(t, srv, "root@example.com", "GET", "/v2/workspaces", ""); resp.StatusCode != 503 {
		t.Fatalf("decision with OPA down: %d", resp.StatusCode)
	}

	revision := srv.Server.Syncer().Status().Applied
	o.Rewrite(opatest.Policy{Data: srv.Server.Engine().DataDocument(), Revision: strconv.FormatInt(revision, 10)})
	o.Restart()
	eventually(t, "readiness recovers with OPA back", func() bool {
		resp, _ := call(t, srv, "", "GET", "/health/ready", "")
		return resp.StatusCode == 200
	})
	_, status := call(t, srv, "", "GET", "/status", "")
	policy, _ := status["policy"].(map[string]any)
	opa, _ := policy["opa"].(map[string]any)
	if policy["provider"] != "opa" || opa["ready"] != true || opa["revision"] != float64(revision) || opa["error"] != nil {
		t.Fatalf("/status policy: %v", policy)
	}
}

// TestOPARolePropagation: with provider opa a binding write waits until
// OPA's has_role agrees with the change (complete), or reports timeout
// when OPA never does (this OPA is only updated by the test).
func TestOPARolePropagation(t *testing.T) {
	o := opatest.StartPolicy(t, opatest.Policy{Data: unloadedData(t)})
	srv := servertest.Start(t, withOPA(o.URL, func(c *config.Config) { c.Auth.PropagationTimeoutSeconds = 1 }))
	engine := srv.Server.Engine()
	o.SetData(engine.DataDocument())

	const admin = "root@example.com"
	steps := []struct {
		name, method, path, body string
		// sync: the test gives OPA the new data once this process holds
		// the write's revision (as the bundle would); else OPA stays stale.
		sync       bool
		wantStatus int
		want       string
	}{
		{"workspace create, OPA updated", "POST", "/v2/workspaces", `{"name":"ml"}`, true, 201, "complete"},
		{"member add, OPA updated", "POST", "/v2/workspaces/ml/members", `{"principal":"bob","roles":["Editor","Viewer"]}`, true, 201, "complete"},
		{"member update removing a role, OPA updated", "PUT", "/v2/workspaces/ml/members/bob", `{"roles":["Viewer"]}`, true, 200, "complete"},
		{"member delete, OPA updated", "DELETE", "/v2/workspaces/ml/members/bob", "", true, 200, "complete"},
		{"role binding create, OPA updated", "POST", "/apis/auth/v2/iam/role-bindings", `{"principal":"carol","workspace":"ml","role":"Viewer"}`, true, 201, "complete"},
		{"role binding delete, OPA updated", "DELETE", "/apis/auth/v2/iam/role-bindings/{last}", "", true, 200, "complete"},
		{"member add, OPA stale, no wait", "POST", "/v2/workspaces/ml/members?wait_role_propagation=false", `{"principal":"dave","roles":["Viewer"]}`, false, 201, "skipped"},
		{"member add, OPA stale", "POST", "/v2/workspaces/ml/members", `{"principal":"erin","roles":["Viewer"]}`, false, 201, "timeout"},
		{"member update, OPA stale", "PUT", "/v2/workspaces/ml/members/erin", `{"roles":["Editor"]}`, false, 200, "timeout"},
	}
	last := ""
	for _, st := range steps {
		before := engine.Revision()
		type result struct {
			resp *http.Response
			body map[string]any
		}
		done := make(chan result, 1)
		start := time.Now()
		path := strings.ReplaceAll(st.path, "{last}", last)
		go func() {
			resp, body := call(t, srv, admin, st.method, path, st.body)
			done <- result{resp, body}
		}()
		if st.sync {
			eventually(t, st.name+": this process applies the write", func() bool { return engine.Revision() > before })
			select {
			case res := <-done:
				t.Fatalf("%s: answered %q before OPA had the change", st.name, res.resp.Header.Get("X-NMP-Role-Propagation"))
			default:
			}
			o.SetData(engine.DataDocument())
		}
		res := <-done
		last, _ = res.body["name"].(string)
		elapsed := time.Since(start)
		got := res.resp.Header.Get("X-NMP-Role-Propagation")
		if res.resp.StatusCode != st.wantStatus || got != st.want {
			t.Fatalf("%s: %d %q (%v), want %d %q", st.name, res.resp.StatusCode, got, res.body, st.wantStatus, st.want)
		}
		if st.want == "timeout" && elapsed < time.Second {
			t.Fatalf("%s: timeout after %v, before auth.propagation_timeout_seconds", st.name, elapsed)
		}
		if st.want == "skipped" && elapsed > 500*time.Millisecond {
			t.Fatalf("%s: skipped after %v: it polled", st.name, elapsed)
		}
		t.Logf("%s: %s after %v", st.name, got, elapsed.Round(time.Millisecond))
	}
	if logs := srv.Logs(); !strings.Contains(logs, "committed role change not yet visible in the external OPA") {
		t.Fatalf("timeout not logged:\n%s", grep(logs, "propagation"))
	}
}

func metricsText(t *testing.T, srv *servertest.Server) string {
	t.Helper()
	resp, err := servertest.Client.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, resp.Body)
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// grep returns the lines of s containing sub.
func grep(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
