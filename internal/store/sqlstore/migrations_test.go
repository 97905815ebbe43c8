package sqlstore

import (
	"io/fs"
	"slices"
	"testing"
)

// TestMigrationsMatchAcrossDialects: every migration exists for both
// backends, so that a version recorded in schema_migrations means the
// same schema on either.
func TestMigrationsMatchAcrossDialects(t *testing.T) {
	list := func(d string) []string {
		entries, err := fs.ReadDir(migrationsFS, "migrations/"+d)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	sqlite, postgres := list(sqliteDialect.name), list(postgresDialect.name)
	if !slices.Equal(sqlite, postgres) {
		t.Fatalf("migrations differ: sqlite %v, postgres %v", sqlite, postgres)
	}
	if !slices.Contains(sqlite, "0003_access_keys.sql") {
		t.Fatalf("the access-key registry migration is missing: %v", sqlite)
	}
}
