package scalefixture

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/pgtest"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
)

// Seed is the seed of the fixture databases (authz.md "Seeding" with
// admin@example.com as admin_email and the default workspace "default").
var Seed = store.Seed{Bindings: []store.SeedBinding{
	{Name: "admin-example-com-system-platformadmin", Principal: "admin@example.com", Workspace: "system", Role: "PlatformAdmin"},
	{Name: "wildcard-default-editor", Principal: "*", Workspace: "default", Role: "Editor"},
	{Name: "wildcard-system-viewer", Principal: "*", Workspace: "system", Role: "Viewer"},
	{Name: "wildcard-system-workspacecreator", Principal: "*", Workspace: "system", Role: "WorkspaceCreator"},
}}

// Create migrates and seeds the database at dbURL as the server does at
// start, then fills it with n synthetic bindings (Fill). It returns the
// policy revision.
func Create(ctx context.Context, dbURL string, n int) (int64, error) {
	st, err := sqlstore.Open(ctx, sqlstore.Options{URL: dbURL, Migrate: true})
	if err != nil {
		return 0, err
	}
	err = st.EnsureBuiltins(ctx, Seed)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return Fill(ctx, dbURL, n)
}

// Cache creates fixture databases on first use and drops them when the
// test or benchmark it was made for ends, so that sub-benchmarks (whose
// functions run once per b.N round) share one database per size.
type Cache struct {
	parent testing.TB
	mu     sync.Mutex
	urls   map[string]string
}

// NewCache returns a cache whose databases live until tb's cleanup.
func NewCache(tb testing.TB) *Cache { return &Cache{parent: tb, urls: map[string]string{}} }

// URL returns the store URL of a database of kind "sqlite" or
// "postgres" holding n synthetic bindings, creating it on first use. A
// PostgreSQL database needs NMP_TEST_POSTGRES_URL; without it tb is
// skipped.
func (c *Cache) URL(tb testing.TB, kind string, n int) string {
	tb.Helper()
	if kind == "postgres" && os.Getenv("NMP_TEST_POSTGRES_URL") == "" {
		tb.Skip("NMP_TEST_POSTGRES_URL is not set")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := fmt.Sprintf("%s/%d", kind, n)
	if u, ok := c.urls[key]; ok {
		return u
	}
	var u string
	switch kind {
	case "sqlite":
		u = SQLiteURL(filepath.Join(c.parent.TempDir(), fmt.Sprintf("fixture-%d.db", n)))
	case "postgres":
		u = pgtest.SchemaURL(c.parent)
	default:
		tb.Fatalf("unknown database kind %q", kind)
	}
	if _, err := Create(context.Background(), u, n); err != nil {
		tb.Fatalf("create %s fixture of %d bindings: %v", kind, n, err)
	}
	c.urls[key] = u
	return u
}
