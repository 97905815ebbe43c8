package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"path/filepath"
	"testing"

	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/pgtest"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/store/storetest"
	"github.com/nmp-project/nmp/internal/testenv"
)

func TestConformanceSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, clock store.Clock) store.Store {
		return OpenSQLite(t, clock)
	})
}

func TestConformancePostgres(t *testing.T) {
	t.Parallel()
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

// openReplica opens a migrated PostgreSQL store on dsn, one replica of a
// deployment, closed at cleanup.
func openReplica(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: dsn, Migrate: true, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.Close(t, s) })
	return s
}

// TestPolicyFeedAcrossReplicas: on PostgreSQL a commit by one store (a
// replica) reaches another's watcher through LISTEN/NOTIFY, and a killed
// LISTEN connection is reported (Err) and followed by a Resync once it is
// back.
func TestPolicyFeedAcrossReplicas(t *testing.T) {
	dsn := pgtest.SchemaURL(t)
	// b's connections carry an application name of their own, so that
	// only its LISTEN connection is killed below.
	app := "nmp-feed-test-" + uuid.NewString()[:8]
	a, b := openReplica(t, dsn), openReplica(t, dsn+"&application_name="+app)
	ctx := context.Background()
	if err := a.EnsureBuiltins(ctx, storetest.DefaultSeed("admin@example.com")); err != nil {
		t.Fatal(err)
	}
	rec := storetest.Watch(t, b)
	_, rev, err := a.CreateWorkspace(ctx, store.NewWorkspace{Name: "replicated", Admin: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, "the other replica's revision", 0, 20*time.Second, func(ev store.PolicyEvent) bool { return ev.Revision == rev })

	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, admin)
	var killed int
	if err := admin.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND query LIKE 'LISTEN %'`, app).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminate the LISTEN connection: killed %d, %v", killed, err)
	}
	i := rec.WaitFor(t, "an interruption", 0, 20*time.Second, func(ev store.PolicyEvent) bool { return ev.Err != nil })
	rec.WaitFor(t, "a resync after the interruption", i+1, 20*time.Second, func(ev store.PolicyEvent) bool { return ev.Resync })
	// And notices flow again.
	ch, err := a.AddMember(ctx, "replicated", "bob", []string{"Viewer"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, "a revision after the reconnect", i+1, 20*time.Second, func(ev store.PolicyEvent) bool { return ev.Revision == ch.Revision })
}

// TestAccessKeyFeedAcrossReplicas: on PostgreSQL an access-key status
// change, rotation or revocation committed by one store (a replica)
// reaches another's watcher as an event naming the key, through
// LISTEN/NOTIFY (the other store's own feed never sees the commit).
func TestAccessKeyFeedAcrossReplicas(t *testing.T) {
	dsn := pgtest.SchemaURL(t)
	a, b := openReplica(t, dsn), openReplica(t, dsn)
	ctx := context.Background()
	rec := storetest.Watch(t, b)
	now := time.Now()
	k, err := a.CreateAccessKey(ctx, storetest.NewAccessKey("alice"))
	if err != nil {
		t.Fatal(err)
	}
	about := func(jti string) func(store.PolicyEvent) bool {
		return func(ev store.PolicyEvent) bool { return ev.AccessKey == jti && ev.Revision == 0 && !ev.Resync }
	}
	if _, _, err := a.SetAccessKeyStatus(ctx, k.JTI, store.AccessKeySuspended, now); err != nil {
		t.Fatal(err)
	}
	i := rec.WaitFor(t, "the suspension on the other replica", 0, 20*time.Second, about(k.JTI))
	if _, _, err := a.SetAccessKeyStatus(ctx, k.JTI, store.AccessKeyActive, now); err != nil {
		t.Fatal(err)
	}
	i = rec.WaitFor(t, "the unsuspension on the other replica", i+1, 20*time.Second, about(k.JTI))
	if _, _, err := a.RotateAccessKey(ctx, k.JTI, now.Add(time.Hour), storetest.NewAccessKey("alice"), now); err != nil {
		t.Fatal(err)
	}
	i = rec.WaitFor(t, "the rotation on the other replica", i+1, 20*time.Second, about(k.JTI))
	if _, _, err := a.SetAccessKeyStatus(ctx, k.JTI, store.AccessKeyRevoked, now); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, "the revocation on the other replica", i+1, 20*time.Second, about(k.JTI))
}

// TestPolicyFeedStaysInItsSchema: two deployments sharing a database in
// different schemas never see each other's notices. The other schema's
// commits come first; a replica of this schema, which learns of its
// sibling's commits only through LISTEN, then receives its sibling's
// revision, and nothing before it may be the other schema's (PostgreSQL
// delivers notices in commit order).
func TestPolicyFeedStaysInItsSchema(t *testing.T) {
	dsnA, dsnB := pgtest.SchemaURL(t), pgtest.SchemaURL(t)
	ctx := context.Background()
	a, b1, b2 := openReplica(t, dsnA), openReplica(t, dsnB), openReplica(t, dsnB)
	for _, s := range []*sqlstore.Store{a, b1} {
		if err := s.EnsureBuiltins(ctx, storetest.DefaultSeed("admin@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	// The other schema's revisions first pass any this test reaches in
	// its own (notices are only delivered to listeners present at
	// commit, so these reach nobody).
	for i := range 12 {
		if _, _, err := a.CreateWorkspace(ctx, store.NewWorkspace{Name: fmt.Sprintf("early-%d", i), Admin: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	rec := storetest.Watch(t, b2)
	var revsA []int64
	for i := range 4 {
		_, rev, err := a.CreateWorkspace(ctx, store.NewWorkspace{Name: fmt.Sprintf("other-%d", i), Admin: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		revsA = append(revsA, rev)
	}
	_, revB, err := b1.CreateWorkspace(ctx, store.NewWorkspace{Name: "mine", Admin: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(revsA, revB) {
		t.Fatalf("revision %d in both schemas: the test cannot tell them apart", revB)
	}
	i := rec.WaitFor(t, "the sibling replica's revision", 0, 20*time.Second, func(ev store.PolicyEvent) bool { return ev.Revision == revB })
	for _, ev := range rec.Events()[:i] {
		if slices.Contains(revsA, ev.Revision) {
			t.Fatalf("a notice of the other schema (revision %d) reached this schema's replica: %+v", ev.Revision, rec.Events())
		}
	}
}
