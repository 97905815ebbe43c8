package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

func get(t *testing.T, url, principal string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-NMP-Principal-Id", principal)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestReplicasPropagateThroughPostgres runs two servers on one PostgreSQL
// schema: a membership change made through one reaches the other's PDP
// through LISTEN/NOTIFY, long before the 30 s full reload.
func TestReplicasPropagateThroughPostgres(t *testing.T) {
	dsn := servertest.PostgresURL(t)
	mutate := func(c *config.Config) {
		c.Auth.Enabled = true
		c.Entities.DatabaseConfig.URL = dsn
	}
	a := servertest.Start(t, mutate)
	b := servertest.Start(t, mutate)
	create := func(url, principal, body string) {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("X-NMP-Principal-Id", principal)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("POST %s: %v %v", url, resp, err)
		}
		resp.Body.Close()
	}
	create(a.URL+"/apis/entities/v2/workspaces", "alice", `{"name": "shared"}`)
	waitFor(t, func() bool { return get(t, b.URL+"/apis/entities/v2/workspaces/shared", "alice") == 200 })
	if st := get(t, b.URL+"/apis/entities/v2/workspaces/shared", "bob"); st != 403 {
		t.Fatalf("bob on replica b: %d", st)
	}
	create(a.URL+"/apis/entities/v2/workspaces/shared/members", "alice", `{"principal": "bob", "roles": ["Viewer"]}`)
	waitFor(t, func() bool { return get(t, b.URL+"/apis/entities/v2/workspaces/shared", "bob") == 200 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("change did not reach the other replica within 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
