package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/api"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/bundle"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/health"
	"github.com/nmp-project/nmp/internal/metrics"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/testenv"
)

const bundlePath = "/apis/auth/v2/iam/opa-bundle.tar.gz"

var etagForm = regexp.MustCompile(`^"[0-9a-f]{32}"$`)

// TestBundleEndpoint drives the bundle through the whole platform process:
// OPA's usual identity (service:opa from a trusted proxy) and a
// PlatformAdmin may read it, others get the policy's bundle_forbidden
// deny; the cache age is auth.bundle_cache_seconds; and a long poll is
// answered with the new bundle when a write changes the bindings.
func TestBundleEndpoint(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) {
		production("127.0.0.1")(c)
		c.Auth.BundleCacheSeconds = 17
	})
	status, h, body := call(t, "GET", srv.URL+bundlePath, "", "X-NMP-Principal-Id", "service:opa")
	tag := h.Get("ETag")
	if status != 200 || !etagForm.MatchString(tag) || h.Get("Content-Type") != bundle.ContentType ||
		h.Get("Cache-Control") != "max-age=17, must-revalidate" || len(body) == 0 {
		t.Fatalf("service:opa: %d %v (%d bytes)", status, h, len(body))
	}
	if status, h, _ := call(t, "GET", srv.URL+bundlePath, "", "X-NMP-Principal-Id", "root@example.com"); status != 200 || h.Get("ETag") != tag {
		t.Fatalf("PlatformAdmin: %d %v", status, h)
	}
	for _, who := range []string{"alice@example.com", "service-account:reader"} {
		before := len(securityLines(srv))
		as(t, srv, who, "GET", bundlePath, "", 403, "forbidden")
		if lines := securityLines(srv)[before:]; len(lines) != 1 || !strings.Contains(lines[0], "pdp_reason=bundle_forbidden") {
			t.Fatalf("%s: security lines %q", who, lines)
		}
	}
	if status, _, _ := call(t, "GET", srv.URL+bundlePath, ""); status != 401 {
		t.Fatalf("anonymous: %d", status)
	}
	if status, h, body := call(t, "GET", srv.URL+bundlePath, "", "X-NMP-Principal-Id", "service:opa", "If-None-Match", tag); status != 304 ||
		h.Get("ETag") != tag || h.Get("Cache-Control") != "max-age=17, must-revalidate" || len(body) != 0 {
		t.Fatalf("If-None-Match: %d %v %q", status, h, body)
	}

	// OPA's long poll, answered by a write that changes the bindings.
	type answer struct {
		status int
		h      http.Header
	}
	done := make(chan answer, 1)
	go func() {
		req, err := http.NewRequest("GET", srv.URL+bundlePath, nil)
		if err != nil {
			t.Error(err)
			done <- answer{}
			return
		}
		req.Header.Set("X-NMP-Principal-Id", "service:opa")
		req.Header.Set("If-None-Match", tag)
		req.Header.Set("Prefer", "modes=snapshot,delta;wait=60")
		resp, err := servertest.Client.Do(req)
		if err != nil {
			t.Error(err)
			done <- answer{}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		done <- answer{resp.StatusCode, resp.Header}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(metricsText(t, srv), "\nnmp_bundle_waiters 1\n") {
		if time.Now().After(deadline) {
			t.Fatal("the long poll never waited")
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	as(t, srv, "root@example.com", "POST", ws, `{"name": "ml-team"}`, 201, "")
	got := <-done
	if got.status != 200 || got.h.Get("ETag") == tag || !etagForm.MatchString(got.h.Get("ETag")) {
		t.Fatalf("long poll after a change: %d %v", got.status, got.h)
	}
	m := metricsText(t, srv)
	for _, line := range []string{"nmp_bundle_builds_total 2", "nmp_bundle_waiters 0", `nmp_bundle_responses_total{code="304"} 1`} {
		if !strings.Contains(m, "\n"+line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}

// failing is a decision point that cannot answer anything.
type failing struct{ asked atomic.Int64 }

func (f *failing) Allow(context.Context, authz.Input) (authz.Decision, error) {
	f.asked.Add(1)
	return authz.Decision{Allowed: true}, pdp.ErrUnavailable
}

func (f *failing) HasPermissions(context.Context, authz.PermissionsInput) (bool, error) {
	f.asked.Add(1)
	return true, pdp.ErrUnavailable
}

func (f *failing) HasRole(context.Context, authz.RoleInput) (bool, error) {
	f.asked.Add(1)
	return true, pdp.ErrUnavailable
}

func (f *failing) VisibleWorkspaces(context.Context, authz.Subject) (pdp.Visible, error) {
	f.asked.Add(1)
	return pdp.Visible{All: true}, pdp.ErrUnavailable
}

// TestBundleDecidedInProcess: with a configured decision point that fails
// for everything (an external OPA without its first bundle), requests to
// the bundle path, in any spelling and with any method, are still
// decided by the in-process evaluator; every other path fails closed.
func TestBundleDecidedInProcess(t *testing.T) {
	st := authztest.Store(t, store.Seed{})
	engine := authztest.StaticEngine(t)
	if err := engine.Load(store.PolicyBindings{Revision: 2, Bindings: []store.RoleBinding{
		{ID: "1", Principal: "root", Workspace: store.SystemWorkspace, Role: authz.RolePlatformAdmin, Revision: 1},
		{ID: "2", Principal: "bob", Workspace: store.SystemWorkspace, Role: "Viewer", Revision: 2},
	}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Auth.Enabled = true // development mode: identity headers from any client
	remote := &failing{}
	h := api.New(api.Options{Config: cfg, Store: st, Roles: authz.NewCatalog(engine.Document()), Health: health.New("policy"),
		Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), PDP: remote,
		LocalPDP: pdp.NewEmbedded(engine), Bundle: bundle.New(bundle.Options{Source: engine})})
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)

	cases := []struct {
		name, who, method, path string
		status                  int
		code                    string
	}{
		{"admin", "root", "GET", bundlePath, 200, ""},
		{"service", "service:opa", "GET", bundlePath, 200, ""},
		{"admin HEAD", "root", "HEAD", bundlePath, 200, ""},
		{"escaped segment", "root", "GET", "/apis/auth/v2/iam/opa%2Dbundle.tar.gz", 200, ""},
		{"trailing slash", "service:opa", "GET", bundlePath + "/", 200, ""},
		{"viewer", "bob", "GET", bundlePath, 403, "forbidden"},
		{"no binding", "carol", "GET", bundlePath, 403, "forbidden"},
		{"anonymous", "", "GET", bundlePath, 401, "unauthorized"},
		{"other method, allowed", "root", "POST", bundlePath, 405, "method_not_allowed"},
		{"other method, no permission", "bob", "DELETE", bundlePath, 405, "method_not_allowed"},
		{"escaped slash is another path", "root", "GET", "/apis/auth/v2/iam%2Fopa-bundle.tar.gz", 503, "pdp_unavailable"},
		{"other path", "root", "GET", ws, 503, "pdp_unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			asked := remote.asked.Load()
			req, err := http.NewRequest(tc.method, hs.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.who != "" {
				req.Header.Set("X-NMP-Principal-Id", tc.who)
			}
			resp, err := servertest.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer testenv.Close(t, resp.Body)
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.status)
			}
			if tc.code != "" {
				var m map[string]any
				if err := json.Unmarshal(body, &m); err != nil || m["code"] != tc.code {
					t.Fatalf("body %s, want code %s", body, tc.code)
				}
			}
			if tc.status == 200 && resp.Header.Get("Content-Type") != bundle.ContentType {
				t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
			}
			onBundle := tc.status != 503
			if n := remote.asked.Load() - asked; onBundle && n != 0 || !onBundle && n == 0 {
				t.Fatalf("the configured decision point was asked %d times", n)
			}
		})
	}
}
