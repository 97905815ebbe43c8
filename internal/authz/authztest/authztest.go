// Package authztest holds test helpers for packages that need a policy
// engine.
package authztest

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/testenv"
)

// StaticEngine returns an engine over the built-in policy data, with no
// bindings loaded yet.
func StaticEngine(t testing.TB) *authz.Engine {
	t.Helper()
	doc, err := authz.StaticDocument()
	if err != nil {
		t.Fatal(err)
	}
	e, err := authz.NewEngine(doc)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// SeededStore opens a SQLite store in a temporary directory with the
// built-in workspaces and the seed bindings (root@example.com is
// PlatformAdmin, "*" is Editor in default). It closes at test cleanup.
func SeededStore(t testing.TB) *sqlstore.Store {
	t.Helper()
	return Store(t, authz.Seed("root@example.com", "default"))
}

// Store opens a SQLite store in a temporary directory with the built-in
// workspaces and seed's bindings. It closes at test cleanup.
func Store(t testing.TB, seed store.Seed) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, sqlstore.Options{URL: "sqlite://" + filepath.Join(t.TempDir(), "e.db"), MaxConns: 4, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.Close(t, st) })
	if err := st.EnsureBuiltins(ctx, seed); err != nil {
		t.Fatal(err)
	}
	return st
}

// Engine returns an engine over the built-in policy data merged with extra
// (operator extra data, as a decoded YAML/JSON document; nil for none),
// with bindings loaded at revision 1 unless load is false.
func Engine(t testing.TB, extra map[string]any, bindings []store.RoleBinding, load bool) *authz.Engine {
	t.Helper()
	doc, err := authz.StaticDocument()
	if err != nil {
		t.Fatal(err)
	}
	if len(extra) > 0 {
		data, err := json.Marshal(extra)
		if err != nil {
			t.Fatal(err)
		}
		if err := doc.MergeExtra(data, "test extra data"); err != nil {
			t.Fatal(err)
		}
	}
	e, err := authz.NewEngine(doc)
	if err != nil {
		t.Fatal(err)
	}
	if load {
		if err := e.Load(store.PolicyBindings{Revision: 1, Bindings: bindings}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return e
}
