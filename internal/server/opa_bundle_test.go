package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/testenv"
	"github.com/nmp-project/nmp/internal/testenv/opatest"
)

// startWithExternalOPA starts nmp with provider opa and a real OPA that
// loads nmp's bundle with the documented configuration (long polling),
// and waits until OPA has activated the bundle.
func startWithExternalOPA(t testing.TB, mutate func(*config.Config)) (*servertest.Server, *opatest.OPA) {
	t.Helper()
	ln := servertest.Listen(t)
	cfgFile := filepath.Join(t.TempDir(), "opa.yaml")
	if err := os.WriteFile(cfgFile, []byte(opatest.DocumentedConfig(t, servertest.URL(ln))), 0o600); err != nil {
		t.Fatal(err)
	}
	o := opatest.Start(t, "--config-file", cfgFile)
	srv := servertest.StartOn(t, ln, func(c *config.Config) {
		c.Auth.Enabled = true
		c.Auth.TrustedProxies = []string{"127.0.0.1/32"} // OPA's bundle requests carry X-NMP-Principal-Id
		c.Auth.PolicyDecisionPointProvider = "opa"
		c.Auth.PolicyDecisionPointBaseURL = o.URL
		c.Auth.PolicyDecisionPointRequestTimeoutSeconds = 1
		c.Auth.PropagationPollIntervalSeconds = 0.02
		c.Auth.PropagationTimeoutSeconds = 20
		if mutate != nil {
			mutate(c)
		}
	})
	o.WaitHealthy("/health?bundles")
	return srv, o
}

type reply struct {
	status int
	header http.Header
	body   string
}

// send sends a request as principal (identity header; "" for none) and
// returns the status, headers and raw body.
func send(t testing.TB, method, url, principal, body string) reply {
	t.Helper()
	return sendAs(t, method, url, caller{principal: principal}, body)
}

// sendAs sends a request authenticated as c.
func sendAs(t testing.TB, method, url string, c caller, body string) reply {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	c.set(req.Header)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := servertest.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer testenv.Close(t, resp.Body)
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// TestExternalOPAThroughTheBundle runs the whole external-PDP loop with
// components nobody here wrote: a real OPA, configured as docs/opa.md
// says, long-polls this server's bundle and answers every decision of the
// server. Membership changes are enforced through OPA once the write
// returns (the write waits for OPA's has_role); a killed OPA turns
// decisions into 503 and fails readiness; a frozen OPA into 504; a
// restarted OPA fetches the bundle again and everything recovers without
// restarting nmp.
func TestExternalOPAThroughTheBundle(t *testing.T) {
	srv, o := startWithExternalOPA(t, nil)
	ws := srv.URL + "/apis/entities/v2/workspaces"

	if r := send(t, "POST", ws, "alice", `{"name": "ml"}`); r.status != 201 || r.header.Get("X-NMP-Role-Propagation") != "complete" {
		t.Fatalf("create workspace through OPA: %d %q %s", r.status, r.header.Get("X-NMP-Role-Propagation"), r.body)
	}
	if r := send(t, "GET", ws+"/ml", "bob", ""); r.status != 403 {
		t.Fatalf("bob before the grant: %d %s", r.status, r.body)
	}
	for round := 0; round < 3; round++ {
		r := send(t, "POST", ws+"/ml/members", "alice", `{"principal": "bob", "roles": ["Viewer"]}`)
		if r.status != 201 || r.header.Get("X-NMP-Role-Propagation") != "complete" {
			t.Fatalf("grant %d: %d %q %s", round, r.status, r.header.Get("X-NMP-Role-Propagation"), r.body)
		}
		// The write returned only once OPA agreed: the very next decision,
		// made by OPA, allows.
		if r := send(t, "GET", ws+"/ml", "bob", ""); r.status != 200 {
			t.Fatalf("bob after grant %d: %d %s", round, r.status, r.body)
		}
		r = send(t, "DELETE", ws+"/ml/members/bob", "alice", "")
		if r.status != 200 || r.header.Get("X-NMP-Role-Propagation") != "complete" {
			t.Fatalf("revoke %d: %d %q %s", round, r.status, r.header.Get("X-NMP-Role-Propagation"), r.body)
		}
		if r := send(t, "GET", ws+"/ml", "bob", ""); r.status != 403 {
			t.Fatalf("bob after revoke %d: %d %s", round, r.status, r.body)
		}
	}
	if !strings.Contains(o.Logs(), "/apis/auth/v2/iam/opa-bundle.tar.gz") {
		t.Error("OPA's log does not show the bundle downloads")
	}

	// A hung OPA: the decision times out after the configured 1 s.
	o.Freeze()
	start := time.Now()
	r := send(t, "GET", ws+"/ml", "alice", "")
	if r.status != 504 || !strings.Contains(r.body, "pdp_timeout") {
		t.Fatalf("frozen OPA: %d %s", r.status, r.body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("frozen OPA answered after %v", d)
	}
	o.Thaw()

	// A dead OPA: 503 at once, readiness fails.
	o.Kill()
	if r := send(t, "GET", ws+"/ml", "alice", ""); r.status != 503 || !strings.Contains(r.body, "pdp_unavailable") {
		t.Fatalf("killed OPA: %d %s", r.status, r.body)
	}
	waitReady(t, srv.URL, false)

	// Restarted, OPA loads the bundle again from nmp (it kept nothing) and
	// decisions and readiness recover with no restart of nmp.
	o.Restart()
	o.WaitHealthy("/health?bundles")
	if r := send(t, "GET", ws+"/ml", "alice", ""); r.status != 200 {
		t.Fatalf("after OPA's restart: %d %s", r.status, r.body)
	}
	if r := send(t, "GET", ws+"/ml", "bob", ""); r.status != 403 {
		t.Fatalf("bob after OPA's restart: %d %s", r.status, r.body)
	}
	waitReady(t, srv.URL, true)
}

// waitReady polls /health/ready until it is (or is not) 200.
func waitReady(t *testing.T, base string, ready bool) {
	t.Helper()
	eventually(t, fmt.Sprintf("/health/ready ready=%v", ready), func() bool {
		return (send(t, "GET", base+"/health/ready", "", "").status == 200) == ready
	})
}

// TestBundleIdenticalAcrossReplicas: two replicas on one PostgreSQL
// schema serve byte-identical bundles (same ETag) once they hold the
// same revision, so OPAs behind a load balancer never flap between them.
func TestBundleIdenticalAcrossReplicas(t *testing.T) {
	a, b := startReplicas(t)
	if r := send(t, "POST", a.URL+"/apis/entities/v2/workspaces", "alice", `{"name": "shared"}`); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	// Replica b learns alice's Admin binding through LISTEN/NOTIFY.
	eventually(t, "alice is Admin on replica b", func() bool {
		return send(t, "GET", b.URL+"/apis/entities/v2/workspaces/shared", "alice", "").status == 200
	})
	if r := send(t, "POST", b.URL+"/apis/entities/v2/workspaces/shared/members", "alice", `{"principal": "bob", "roles": ["Viewer", "Editor"]}`); r.status != 201 {
		t.Fatalf("add member on b: %d %s", r.status, r.body)
	}
	const path = "/apis/auth/v2/iam/opa-bundle.tar.gz"
	deadline := time.Now().Add(10 * time.Second)
	for {
		ra, rb := send(t, "GET", a.URL+path, "service:opa", ""), send(t, "GET", b.URL+path, "service:opa", "")
		if ra.status != 200 || rb.status != 200 {
			t.Fatalf("bundle: %d / %d", ra.status, rb.status)
		}
		if ra.body == rb.body {
			if ra.header.Get("ETag") == "" || ra.header.Get("ETag") != rb.header.Get("ETag") {
				t.Fatalf("same bytes, ETags %q and %q", ra.header.Get("ETag"), rb.header.Get("ETag"))
			}
			if !strings.HasPrefix(ra.body, "\x1f\x8b") {
				t.Fatal("not a gzip stream")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas still serve different bundles after 10 s (ETags %s, %s)", ra.header.Get("ETag"), rb.header.Get("ETag"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
