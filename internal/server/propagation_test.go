package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/policysync"
	"github.com/nmp-project/nmp/internal/server"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/testenv"
)

// faultyStore is a real store whose policy reads can be made to fail —
// as after a commit when the database then becomes unreachable — and
// which records any use after Close.
type faultyStore struct {
	store.Store
	failPolicyReads atomic.Bool
	closed          atomic.Bool
	usedAfterClose  atomic.Int64
}

var errInjected = errors.New("injected: database unreachable")

func (f *faultyStore) use() {
	if f.closed.Load() {
		f.usedAfterClose.Add(1)
	}
}

func (f *faultyStore) ActiveBindings(ctx context.Context) (store.PolicyBindings, error) {
	f.use()
	if f.failPolicyReads.Load() {
		return store.PolicyBindings{}, errInjected
	}
	return f.Store.ActiveBindings(ctx)
}

func (f *faultyStore) ScanActiveBindings(ctx context.Context, fn func(principal, workspace, role string) error) (int64, error) {
	f.use()
	if f.failPolicyReads.Load() {
		return 0, errInjected
	}
	return f.Store.ScanActiveBindings(ctx, fn)
}

func (f *faultyStore) BindingChanges(ctx context.Context, after int64) (store.PolicyBindings, error) {
	f.use()
	if f.failPolicyReads.Load() {
		return store.PolicyBindings{}, errInjected
	}
	return f.Store.BindingChanges(ctx, after)
}

func (f *faultyStore) PolicyRevision(ctx context.Context) (int64, error) {
	f.use()
	if f.failPolicyReads.Load() {
		return 0, errInjected
	}
	return f.Store.PolicyRevision(ctx)
}

func (f *faultyStore) Ping(ctx context.Context) error {
	f.use()
	return f.Store.Ping(ctx)
}

func (f *faultyStore) Close() error {
	f.closed.Store(true)
	return f.Store.Close()
}

func openFaulty(t *testing.T) *faultyStore {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), sqlstore.Options{
		URL: "sqlite://" + filepath.Join(t.TempDir(), "entities.db"), Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	return &faultyStore{Store: st}
}

func devMode(c *config.Config) {
	c.Auth.Enabled = true
	admin := "root@example.com"
	c.Auth.AdminEmail = &admin
}

// call sends a request as principal (development-mode identity header)
// and decodes the JSON body.
func call(t *testing.T, srv *servertest.Server, principal, method, path, body string) (*http.Response, map[string]any) {
	t.Helper()
	r := send(t, method, srv.URL+path, principal, body)
	var out map[string]any
	_ = json.Unmarshal([]byte(r.body), &out)
	return &http.Response{StatusCode: r.status, Header: r.header}, out
}

// TestPropagationFailureIsNotReportedComplete: the database stops
// answering the policy's reads right after a member write commits. The
// response must not claim the change is in effect, readiness fails with
// the revision gap, the failure is counted, and everything recovers by
// itself once the database answers — no further write needed.
func TestPropagationFailureIsNotReportedComplete(t *testing.T) {
	st := openFaulty(t)
	srv := servertest.Start(t, devMode, server.WithStore(st))
	srv.WaitReady(t)
	if resp, _ := call(t, srv, "root@example.com", "POST", "/v2/workspaces", `{"name":"ml"}`); resp.StatusCode != 201 {
		t.Fatalf("create workspace: %d", resp.StatusCode)
	}

	st.failPolicyReads.Store(true)
	resp, _ := call(t, srv, "root@example.com", "POST", "/v2/workspaces/ml/members", `{"principal":"bob","roles":["Editor"]}`)
	if resp.StatusCode != 201 {
		t.Fatalf("add member: %d (the write itself committed)", resp.StatusCode)
	}
	if got := resp.Header.Get("X-NMP-Role-Propagation"); got != "failed" {
		t.Fatalf("X-NMP-Role-Propagation %q, want failed", got)
	}
	resp, body := call(t, srv, "", "GET", "/health/ready", "")
	if resp.StatusCode != 503 || !strings.Contains(fmt.Sprint(body["reasons"]), "behind the store (applied revision") {
		t.Fatalf("ready: %d %v", resp.StatusCode, body)
	}
	if resp, _ := call(t, srv, "bob", "POST", "/v2/workspaces/ml/projects", `{"name":"proj-a"}`); resp.StatusCode != 403 {
		t.Fatalf("bob's grant is not applied here yet, so 403 expected, got %d", resp.StatusCode)
	}
	_, status := call(t, srv, "", "GET", "/status", "")
	policy, _ := status["policy"].(map[string]any)
	if status["status"] != "degraded" || policy["error"] == nil || !(policy["committed_revision"].(float64) > policy["revision"].(float64)) {
		t.Fatalf("/status while behind: %v", status)
	}
	if m := metricsBody(t, srv); !strings.Contains(m, "nmp_policy_sync_failures_total") || strings.Contains(m, "nmp_policy_sync_failures_total 0\n") {
		t.Fatalf("failures not counted:\n%s", grepLines(m, "nmp_policy_sync"))
	}
	if n := strings.Count(srv.Logs(), "policy not in step with the store"); n != 1 {
		t.Fatalf("the failure must be logged once, got %d", n)
	}

	st.failPolicyReads.Store(false)
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Server.Syncer().Wait(wctx, func(s policysync.Status) bool { return s.Err == nil && s.Applied == s.Known }); err != nil {
		t.Fatalf("no recovery: %v", err)
	}
	if resp, body := call(t, srv, "", "GET", "/health/ready", ""); resp.StatusCode != 200 {
		t.Fatalf("ready after recovery: %d %v", resp.StatusCode, body)
	}
	if resp, _ := call(t, srv, "bob", "POST", "/v2/workspaces/ml/projects", `{"name":"proj-a"}`); resp.StatusCode != 201 {
		t.Fatalf("bob's grant after recovery: %d", resp.StatusCode)
	}
	if !strings.Contains(srv.Logs(), "policy caught up with the store") {
		t.Fatal("recovery not logged")
	}
}

func metricsBody(t *testing.T, srv *servertest.Server) string {
	t.Helper()
	resp, err := servertest.Client.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, resp.Body)
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRevokedRoleNeverComesBack is the outside view of the race: with a
// safety net ticking every millisecond and unrelated member changes
// running, a role revoked through the API must be denied on every request
// after the DELETE answered "complete" (it used to come back when a slow
// reload overwrote the newer snapshot).
func TestRevokedRoleNeverComesBack(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) {
		devMode(c)
		c.Auth.PolicyDataRefreshInterval = 0.001
	})
	for _, ws := range []string{"victim", "noise"} {
		if resp, _ := call(t, srv, "root@example.com", "POST", "/v2/workspaces", `{"name":"`+ws+`"}`); resp.StatusCode != 201 {
			t.Fatalf("create %s: %d", ws, resp.StatusCode)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("noise-%d-%d", w, i%5)
				call(t, srv, "root@example.com", "POST", "/v2/workspaces/noise/members", `{"principal":"`+p+`","roles":["Viewer"]}`)
				call(t, srv, "root@example.com", "DELETE", "/v2/workspaces/noise/members/"+p, "")
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	const rounds, probes = 30, 6
	wrong := 0
	for i := range rounds {
		resp, _ := call(t, srv, "root@example.com", "POST", "/v2/workspaces/victim/members", `{"principal":"eve","roles":["Editor"]}`)
		if resp.StatusCode != 201 || resp.Header.Get("X-NMP-Role-Propagation") != "complete" {
			t.Fatalf("round %d grant: %d %q", i, resp.StatusCode, resp.Header.Get("X-NMP-Role-Propagation"))
		}
		if resp, _ := call(t, srv, "eve", "PUT", "/v2/workspaces/victim/projects/none", `{"description":"x"}`); resp.StatusCode != 404 {
			t.Fatalf("round %d: eve as Editor should reach the handler (404), got %d", i, resp.StatusCode)
		}
		resp, _ = call(t, srv, "root@example.com", "DELETE", "/v2/workspaces/victim/members/eve", "")
		if resp.StatusCode != 200 || resp.Header.Get("X-NMP-Role-Propagation") != "complete" {
			t.Fatalf("round %d revoke: %d %q", i, resp.StatusCode, resp.Header.Get("X-NMP-Role-Propagation"))
		}
		for range probes {
			if resp, _ := call(t, srv, "eve", "PUT", "/v2/workspaces/victim/projects/none", `{"description":"x"}`); resp.StatusCode != 403 {
				wrong++
			}
		}
	}
	if wrong > 0 {
		t.Fatalf("a revoked Editor was let through %d times in %d requests", wrong, rounds*probes)
	}
}
