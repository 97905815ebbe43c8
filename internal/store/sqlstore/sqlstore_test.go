package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/pgtest"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/store/storetest"
)

func TestConformanceSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock store.Clock) store.Store {
		return OpenSQLite(t, clock)
	})
}

func TestConformancePostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock store.Clock) store.Store {
		s, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: pgtest.SchemaURL(t), Migrate: true, Clock: clock, MaxConns: 8})
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		return s
	})
}

// OpenSQLite opens a migrated store in a fresh temporary directory.
func OpenSQLite(t testing.TB, clock store.Clock) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), sqlstore.Options{
		URL: "sqlite://" + filepath.Join(t.TempDir(), "entities.db"), Migrate: true, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
