// Package pgtest gives tests a private PostgreSQL schema in the database
// named by NMP_TEST_POSTGRES_URL.
package pgtest

import (
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	"github.com/nmp-project/nmp/internal/testenv"
)

// SchemaURL creates a fresh schema, dropped at cleanup, and returns a URL
// whose search_path selects it. Without NMP_TEST_POSTGRES_URL the test is
// skipped with a message saying so.
func SchemaURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("NMP_TEST_POSTGRES_URL")
	if base == "" {
		testenv.Missing(t, "PostgreSQL", "NMP_TEST_POSTGRES_URL is not set")
	}
	schema := "nmp_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.Close(t, admin) })
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
	return u.String()
}
