package auditretention_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/server/auditretention"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/testenv"
)

type outcome struct {
	n   int64
	err error
}

func openStore(t *testing.T, clock func() time.Time) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: "sqlite://" + filepath.Join(t.TempDir(), "e.db"),
		Migrate: true, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.Close(t, s) })
	return s
}

func count(t *testing.T, s store.Store) int {
	t.Helper()
	evs, _, err := s.ListAuditEvents(context.Background(), store.AuditFilter{Page: 1, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// TestPrunesAtStartThenDaily: the first prune runs at start and deletes
// exactly the events older than the retention; the next runs at the
// (daily) tick, with the clock of that moment.
func TestPrunesAtStartThenDaily(t *testing.T) {
	day0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var offset atomic.Int64
	now := func() time.Time { return day0.Add(time.Duration(offset.Load())) }
	ctx := context.Background()
	s := openStore(t, now)
	if err := s.EnsureBuiltins(ctx, store.Seed{}); err != nil { // two events on day 0
		t.Fatal(err)
	}
	offset.Store(int64(10 * 24 * time.Hour))
	if _, _, err := s.CreateWorkspace(ctx, store.NewWorkspace{Name: "w10", Admin: "alice"}); err != nil { // two on day 10
		t.Fatal(err)
	}
	if n := count(t, s); n != 4 {
		t.Fatalf("%d events before pruning, want 4", n)
	}

	tick := make(chan time.Time)
	pruned := make(chan outcome)
	p := &auditretention.Pruner{Store: s, Retention: 5 * 24 * time.Hour, Clock: now, Log: slog.New(slog.DiscardHandler),
		Tick: tick, OnPrune: func(n int64, err error) { pruned <- outcome{n, err} }}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()

	if o := <-pruned; o.err != nil || o.n != 2 {
		t.Fatalf("prune at start: %d, %v; want the 2 events of day 0", o.n, o.err)
	}
	if n := count(t, s); n != 2 {
		t.Fatalf("%d events left, want day 10's 2", n)
	}
	offset.Store(int64(16 * 24 * time.Hour))
	tick <- now()
	if o := <-pruned; o.err != nil || o.n != 2 {
		t.Fatalf("daily prune: %d, %v; want day 10's 2 events", o.n, o.err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := count(t, s); n != 0 {
		t.Fatalf("%d events left", n)
	}
}

// TestZeroRetentionKeepsEverything: with retention 0 nothing is ever
// deleted, and Run ends with its context.
func TestZeroRetentionKeepsEverything(t *testing.T) {
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	s := openStore(t, func() time.Time { return old })
	if err := s.EnsureBuiltins(context.Background(), store.Seed{}); err != nil {
		t.Fatal(err)
	}
	pruned := make(chan outcome, 1)
	p := &auditretention.Pruner{Store: s, Retention: 0, Log: slog.New(slog.DiscardHandler),
		OnPrune: func(n int64, err error) { pruned <- outcome{n, err} }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	// A pruner would prune at once, long before this bound; nothing may
	// happen within it.
	select {
	case o := <-pruned:
		t.Fatalf("retention 0 pruned: %d, %v", o.n, o.err)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := count(t, s); n != 2 {
		t.Fatalf("retention 0 left %d of 2 events", n)
	}
}
