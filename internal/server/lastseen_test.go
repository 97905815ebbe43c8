package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/testenv"
)

// writeCounter is the real store, counting the last-seen writes that
// reach it.
type writeCounter struct {
	*sqlstore.Store
	writes atomic.Int64
}

func (c *writeCounter) RecordLastSeen(ctx context.Context, seen []store.Sighting) error {
	c.writes.Add(1)
	return c.Store.RecordLastSeen(ctx, seen)
}

// raceBuild is true when the tests run with the race detector.
var raceBuild bool

// TestLastSeenWritesAndShutdown: 10,000 requests by one principal from
// four clients over ten simulated minutes, with a write forced after
// every tenth of them, reach the store as one write per 5-minute window;
// a request made just before shutdown is written by the shutdown and
// survives a restart. Under the race detector, where a request costs
// about ten times as much, 2,000 requests cover the same ten minutes.
func TestLastSeenWritesAndShutdown(t *testing.T) {
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "entities.db")
	st, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: dbURL, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	counted := &writeCounter{Store: st}
	var offset atomic.Int64
	start := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	now := func() time.Time { return start.Add(time.Duration(offset.Load())) }

	cfg := config.Default()
	cfg.Platform.DataDir = filepath.Join(t.TempDir(), "data")
	devMode(cfg)
	if _, err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), server.WithStore(counted), server.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	get := func() {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/v2/workspaces/default", nil)
		req.Header.Set("X-NMP-Principal-Id", "alice@example.com")
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("request: %d", resp.StatusCode)
		}
	}
	// 10 rounds of 1,000 requests from 4 clients, the clock moving 60 ms
	// a request (600 s in all); a write after every round.
	const rounds, clients = 10, 4
	perClient, step := 250, 60*time.Millisecond
	if raceBuild {
		perClient, step = 50, 300*time.Millisecond
	}
	for range rounds {
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for range perClient {
					get()
					offset.Add(int64(step))
				}
			})
		}
		wg.Wait()
		if err := srv.LastSeen().Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Two windows (from 0 s and from 300 s): two writes, not ten.
	if w := counted.writes.Load(); w != 2 {
		t.Fatalf("%d requests caused %d last-seen writes, want 2", rounds*clients*perClient, w)
	}
	got, err := counted.LastSeen(ctx, []string{"alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	// The first request of the second window was recorded.
	if at := got["alice@example.com"].Time; at.Before(start.Add(300*time.Second)) || !at.Before(start.Add(310*time.Second)) {
		t.Fatalf("stored %v, want the start of the second window (300 s)", got)
	}

	// A request in a new window, then shutdown: the shutdown writes it.
	offset.Add(int64(5 * time.Minute))
	last := now()
	get()
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if w := counted.writes.Load(); w != 3 {
		t.Fatalf("%d writes after shutdown, want 3", w)
	}
	reopened, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, reopened)
	got, err = reopened.LastSeen(context.Background(), []string{"alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if want := store.NewTimestamp(last); !got["alice@example.com"].Equal(want.Time) {
		t.Fatalf("after restart: %v, want %s", got, want)
	}
}

// lastSeenFaults is a real store whose last-seen reads and writes can be
// made to fail, as when the database stops answering.
type lastSeenFaults struct {
	store.Store
	fail atomic.Bool
}

func (f *lastSeenFaults) RecordLastSeen(ctx context.Context, seen []store.Sighting) error {
	if f.fail.Load() {
		return errInjected
	}
	return f.Store.RecordLastSeen(ctx, seen)
}

func (f *lastSeenFaults) LastSeen(ctx context.Context, principals []string) (map[string]store.Timestamp, error) {
	if f.fail.Load() {
		return nil, errInjected
	}
	return f.Store.LastSeen(ctx, principals)
}

// TestLastSeenFailures: while last-seen times cannot be read or written,
// a member write still succeeds (its time answered as null), a list
// fails rather than showing wrong times, and a failed write of the times
// makes /health/ready fail until a later write succeeds, which then
// stores the times held back.
func TestLastSeenFailures(t *testing.T) {
	st := &lastSeenFaults{Store: openFaulty(t).Store}
	srv := servertest.Start(t, devMode, server.WithStore(st))
	srv.WaitReady(t)
	if resp, _ := call(t, srv, "root@example.com", "POST", "/v2/workspaces", `{"name":"ml"}`); resp.StatusCode != 201 {
		t.Fatalf("create: %d", resp.StatusCode)
	}

	st.fail.Store(true)
	resp, m := call(t, srv, "root@example.com", "POST", "/v2/workspaces/ml/members", `{"principal":"bob","roles":["Viewer"]}`)
	if resp.StatusCode != 201 || m["principal"] != "bob" || m["last_seen_at"] != nil {
		t.Fatalf("member write while times are unreadable: %d %v", resp.StatusCode, m)
	}
	if resp, _ := call(t, srv, "root@example.com", "GET", "/v2/workspaces/ml/members", ""); resp.StatusCode != 500 {
		t.Fatalf("member list while times are unreadable: %d, want 500", resp.StatusCode)
	}
	if err := srv.Server.LastSeen().Flush(context.Background()); !errors.Is(err, errInjected) {
		t.Fatalf("flush: %v, want the injected failure", err)
	}
	if resp, body := call(t, srv, "", "GET", "/health/ready", ""); resp.StatusCode != 503 || !strings.Contains(fmt.Sprint(body), "last seen") {
		t.Fatalf("ready while times cannot be written: %d %v", resp.StatusCode, body)
	}

	st.fail.Store(false)
	if err := srv.Server.LastSeen().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.WaitReady(t)
	_, m = call(t, srv, "root@example.com", "GET", "/v2/workspaces/ml/members", "")
	for _, it := range m["data"].([]any) {
		if mem := it.(map[string]any); mem["principal"] == "root@example.com" && mem["last_seen_at"] == nil {
			t.Fatalf("root's time held back during the failure was not written: %v", m)
		}
	}
}
