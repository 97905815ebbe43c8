package server_test

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/policysync"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/testenv"
)

func get(t *testing.T, url, principal string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-NMP-Principal-Id", principal)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, resp.Body)
	return resp.StatusCode
}

// TestReplicasPropagateThroughPostgres runs two servers on one PostgreSQL
// schema: a membership change made through one reaches the other's PDP
// through LISTEN/NOTIFY, long before the 30 s full reload.
func TestReplicasPropagateThroughPostgres(t *testing.T) {
	a, b := startReplicas(t)
	create := func(url, principal, body string) {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("X-NMP-Principal-Id", principal)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("POST %s: %v %v", url, resp, err)
		}
		testenv.Close(t, resp.Body)
	}
	create(a.URL+"/apis/entities/v2/workspaces", "alice", `{"name": "shared"}`)
	waitFor(t, func() bool { return get(t, b.URL+"/apis/entities/v2/workspaces/shared", "alice") == 200 })
	if st := get(t, b.URL+"/apis/entities/v2/workspaces/shared", "bob"); st != 403 {
		t.Fatalf("bob on replica b: %d", st)
	}
	create(a.URL+"/apis/entities/v2/workspaces/shared/members", "alice", `{"principal": "bob", "roles": ["Viewer"]}`)
	waitFor(t, func() bool { return get(t, b.URL+"/apis/entities/v2/workspaces/shared", "bob") == 200 })
}

// startReplicas starts two servers (auth on) on one fresh PostgreSQL
// schema, or skips without PostgreSQL.
func startReplicas(t testing.TB) (a, b *servertest.Server) {
	t.Helper()
	dsn := servertest.PostgresURL(t)
	mutate := func(c *config.Config) {
		c.Auth.Enabled = true
		c.Entities.DatabaseConfig.URL = dsn
	}
	return servertest.Start(t, mutate), servertest.Start(t, mutate)
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

// TestReplicaRecoversAfterConnectionsKilled kills every connection of
// replica b (its pool and its LISTEN connection) while replica a revokes
// a role. b must notice, reconnect, catch up with the revocation it never
// heard of and be ready again by itself, promptly (its retries back off
// from 50 ms, not from the 30 s safety net).
func TestReplicaRecoversAfterConnectionsKilled(t *testing.T) {
	dsn := servertest.PostgresURL(t)
	app := "nmp-replica-b-" + uuid.NewString()[:8]
	a := servertest.Start(t, func(c *config.Config) {
		c.Auth.Enabled = true
		c.Entities.DatabaseConfig.URL = dsn
	})
	b := servertest.Start(t, func(c *config.Config) {
		c.Auth.Enabled = true
		c.Entities.DatabaseConfig.URL = dsn + "&application_name=" + app
	})
	send := func(method, url, body string) {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("X-NMP-Principal-Id", "alice")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %v %v", method, url, resp, err)
		}
		testenv.Close(t, resp.Body)
	}
	send("POST", a.URL+"/v2/workspaces", `{"name": "shared"}`)
	send("POST", a.URL+"/v2/workspaces/shared/members", `{"principal": "bob", "roles": ["Viewer"]}`)
	waitFor(t, func() bool { return get(t, b.URL+"/v2/workspaces/shared", "bob") == 200 })

	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, admin)
	var killed int
	if err := admin.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&killed); err != nil || killed == 0 {
		t.Fatalf("kill b's connections: %d, %v", killed, err)
	}
	start := time.Now()
	send("DELETE", a.URL+"/v2/workspaces/shared/members/bob", "")
	rev, err := a.Store().PolicyRevision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Server.Syncer().Wait(ctx, func(s policysync.Status) bool { return s.Applied >= rev && s.Err == nil && s.FeedErr == nil }); err != nil {
		t.Fatalf("replica b did not recover within 10 s: %v (status %+v)", err, b.Server.Syncer().Status())
	}
	t.Logf("replica b caught up %v after its connections were killed (killed %d)", time.Since(start), killed)
	waitFor(t, func() bool { return get(t, b.URL+"/health/ready", "") == 200 })
	if st := get(t, b.URL+"/v2/workspaces/shared", "bob"); st != 403 {
		t.Fatalf("bob on replica b after the revocation: %d", st)
	}
}
