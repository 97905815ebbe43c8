package sqlstore_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/testenv"
)

// TestCloseReleasesSQLite: when Close returns, no connection of the store
// is left open, so another process can take the database at once (here:
// leave WAL mode, which needs every other connection gone). Connections
// used to return to their pool from a goroutine after a read, and one
// still on its way was closed only after Close had returned: about one
// round in four then failed with SQLITE_BUSY.
func TestCloseReleasesSQLite(t *testing.T) {
	// One migrated database, copied for every round (migrating each
	// would make this the slowest test of the package).
	template := filepath.Join(t.TempDir(), "template.db")
	st, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: "sqlite://" + template, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBuiltins(context.Background(), store.Seed{}); err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, st)
	db, err := os.ReadFile(template)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		path := filepath.Join(t.TempDir(), "entities.db")
		if err := os.WriteFile(path, db, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: "sqlite://" + path})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.ListWorkspaces(context.Background(), store.ListOptions{Page: 1, PageSize: 10, SortField: "name"}, nil); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(DELETE)")
		if err != nil {
			t.Fatal(err)
		}
		err = db.Ping()
		testenv.Close(t, db)
		if err != nil {
			t.Fatalf("round %d: the database is still held after Close: %v", i, err)
		}
	}
}
