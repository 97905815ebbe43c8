package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/store/storetest"
)

func TestConformanceSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock store.Clock) store.Store {
		return OpenSQLite(t, clock)
	})
}

func TestConformancePostgres(t *testing.T) {
	base := os.Getenv("NMP_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("NMP_TEST_POSTGRES_URL is not set: PostgreSQL conformance skipped (CI sets it)")
	}
	storetest.Run(t, func(t *testing.T, clock store.Clock) store.Store {
		return OpenPostgres(t, base, clock)
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

// OpenPostgres creates a private schema for the test, opens a migrated
// store in it and drops the schema at cleanup.
func OpenPostgres(t testing.TB, base string, clock store.Clock) *sqlstore.Store {
	t.Helper()
	schema := "nmp_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	s, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: u.String(), Migrate: true, Clock: clock, MaxConns: 8})
	if err != nil {
		t.Fatal(fmt.Errorf("open postgres: %w", err))
	}
	return s
}
