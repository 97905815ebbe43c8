package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/pgtest"
	"github.com/nmp-project/nmp/internal/testenv"
)

// TestPoolWaitIsBounded takes every connection of the pools: a read and a
// write then fail after PoolWait with an error matching
// store.ErrUnavailable (rather than waiting as long as their context),
// and succeed again once a connection is returned.
func TestPoolWaitIsBounded(t *testing.T) {
	onEachBackend(t, Options{MaxConns: 1, PoolWait: 200 * time.Millisecond}, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if err := s.EnsureBuiltins(ctx, store.Seed{}); err != nil {
			t.Fatal(err)
		}
		// Hold every connection (on PostgreSQL r and w are one pool).
		rc, err := s.r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wc := rc
		if s.w != s.r {
			if wc, err = s.w.Conn(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// The caller's own context would wait a minute: the pool's
		// bound must end the wait first.
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		start := time.Now()
		_, err = s.GetWorkspace(cctx, "default")
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("read with the pool taken: %v, want store.ErrUnavailable", err)
		}
		_, _, err = s.CreateWorkspace(cctx, store.NewWorkspace{Name: "w1"})
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("write with the pool taken: %v, want store.ErrUnavailable", err)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Fatalf("waited %s", d)
		}
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
		if wc != rc {
			if err := wc.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.GetWorkspace(ctx, "default"); err != nil {
			t.Fatalf("read after the connections returned: %v", err)
		}
		if _, _, err := s.CreateWorkspace(ctx, store.NewWorkspace{Name: "w1"}); err != nil {
			t.Fatalf("write after the connections returned: %v", err)
		}
	})
}

// TestPoolKeepsItsConnections takes every connection of the reader pool
// at once, as a burst of concurrent requests does, and returns them: all
// stay open for the next operations instead of all but two being closed
// on their return (database/sql's default) and opened again at the next
// burst.
func TestPoolKeepsItsConnections(t *testing.T) {
	const maxConns = 4
	onEachBackend(t, Options{MaxConns: maxConns}, func(t *testing.T, s *Store) {
		ctx := context.Background()
		burst := func() {
			t.Helper()
			var held []*sql.Conn
			for range maxConns {
				c, err := s.r.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, c)
			}
			for _, c := range held {
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
			}
		}
		burst()
		opened := s.r.Stats().OpenConnections
		if opened != maxConns {
			t.Fatalf("%d connections open after a burst of %d, want all kept", opened, maxConns)
		}
		for range 3 {
			burst()
			if _, err := s.GetWorkspace(ctx, "default"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("GetWorkspace: %v, want not found", err)
			}
		}
		s.rp.releasing.Wait() // the read's connection is back in the pool
		st := s.r.Stats()
		if st.MaxIdleClosed != 0 || st.OpenConnections != maxConns {
			t.Fatalf("after four bursts: %d connections closed as surplus idle ones, %d open; want 0 and %d",
				st.MaxIdleClosed, st.OpenConnections, maxConns)
		}
	})
}

// onEachBackend runs f in a subtest per backend (SQLite, and PostgreSQL
// when NMP_TEST_POSTGRES_URL is set) on a migrated store opened with
// opts, closed at cleanup.
func onEachBackend(t *testing.T, opts Options, f func(t *testing.T, s *Store)) {
	backends := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "entities.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.SchemaURL(t) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			o := opts
			o.URL, o.Migrate = b.url(t), true
			s, err := Open(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { testenv.Close(t, s) })
			f(t, s)
		})
	}
}
