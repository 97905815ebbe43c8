// Package scalefixture fills a migrated store's database with many
// synthetic role bindings, fast: one transaction, the role_bindings
// indexes dropped during the insert and rebuilt once afterwards, a
// prepared insert on SQLite and COPY on PostgreSQL. It is for tests,
// benchmarks and the load measurements of docs/benchmarks.md only.
package scalefixture

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/nmp-project/nmp/internal/store"
)

// The probe binding Fill adds to the n synthetic ones: ProbePrincipal is
// Editor in ProbeWorkspace, so it may create a project there.
const (
	ProbePrincipal = "probe@example.com"
	ProbeWorkspace = "ws-0"
	ProbeRole      = "Editor"
)

var roles = [3]string{"Viewer", "Editor", "Admin"}

// Binding returns the i-th (0 ≤ i < n) of n synthetic active bindings:
// about n/3 users "user-<k>@example.com", each holding up to three
// bindings with distinct roles (Viewer, Editor, Admin) in pseudo-random
// workspaces among max(n/10, 1) ("ws-<k>"). No two are the same grant.
// Consecutive i belong to pseudo-randomly ordered users, as rows written
// over time would be.
func Binding(n, i int) (principal, workspace, role string) {
	j := int((uint64(i) * stride(n)) % uint64(n))
	w := max(n/10, 1)
	return fmt.Sprintf("user-%d@example.com", j/3), fmt.Sprintf("ws-%d", mix(uint64(j))%uint64(w)), roles[j%3]
}

// stride is a multiplier coprime to n, so i -> i*stride mod n permutes.
func stride(n int) uint64 {
	s := uint64(2654435761) % uint64(n)
	for gcd(s, uint64(n)) != 1 {
		s++
	}
	return s
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// mix is splitmix64's finalizer.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Fill inserts the n synthetic bindings, the probe binding and the
// workspaces they name into the migrated database at dbURL ("sqlite:///abs/path.db" or a PostgreSQL
// URL, whose search_path is honoured), all at one new policy revision,
// which it returns. Nothing else may write to the database meanwhile.
func Fill(ctx context.Context, dbURL string, n int) (int64, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return 0, err
	}
	switch u.Scheme {
	case "sqlite":
		return fillSQLite(ctx, u.Path, n)
	case "postgres", "postgresql":
		return fillPostgres(ctx, dbURL, n)
	}
	return 0, fmt.Errorf("unsupported database URL %q", dbURL)
}

// row is one binding row as inserted.
type row struct {
	id, name, principal, workspace, role string
}

// rows calls fn with the n synthetic rows and the probe.
func rows(n int, fn func(r row) error) error {
	for i := range n {
		p, w, r := Binding(n, i)
		if err := fn(row{fmt.Sprintf("fx-%09d", i), fmt.Sprintf("fx-%09d", i), p, w, r}); err != nil {
			return err
		}
	}
	return fn(row{"fx-probe", "fx-probe", ProbePrincipal, ProbeWorkspace, ProbeRole})
}

// workspaces calls fn with the id and name of the workspaces the n
// synthetic bindings name ("ws-0" … "ws-<max(n/10,1)-1>").
func workspaces(n int, fn func(id, name string) error) error {
	for k := range max(n/10, 1) {
		if err := fn(fmt.Sprintf("fxw-%09d", k), fmt.Sprintf("ws-%d", k)); err != nil {
			return err
		}
	}
	return nil
}

var grantedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func fillSQLite(ctx context.Context, path string, n int) (rev int64, err error) {
	// No journal (a failed fill leaves a broken fixture, which is thrown
	// away), sorts for the index builds in memory, a large page cache.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(OFF)"+
		"&_pragma=synchronous(OFF)&_pragma=temp_store(MEMORY)&_pragma=cache_size(-65536)&_pragma=threads(2)&_txlock=immediate")
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // after commit: no-op
	if err := tx.QueryRowContext(ctx, `UPDATE policy_state SET revision = revision + 1 WHERE id = 1 RETURNING revision`).Scan(&rev); err != nil {
		return 0, err
	}
	indexes, err := dropIndexes(ctx, tx, `SELECT name, sql FROM sqlite_master
		WHERE type = 'index' AND tbl_name = 'role_bindings' AND sql IS NOT NULL`)
	if err != nil {
		return 0, err
	}
	// Multi-row inserts: the per-statement cost of database/sql and the
	// driver, not SQLite, dominates single-row inserts.
	const perStmt = 500
	stmt := func(k int) string {
		return `INSERT INTO role_bindings (id, name, principal, workspace, role, granted_by, granted_at, revision) VALUES ` +
			strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, 'fixture', ?, ?),`, k), ",")
	}
	full, err := tx.PrepareContext(ctx, stmt(perStmt))
	if err != nil {
		return 0, err
	}
	defer full.Close() //nolint:errcheck // the transaction's commit reports what matters
	args := make([]any, 0, 7*perStmt)
	flush := func() error {
		var err error
		if len(args) == cap(args) {
			_, err = full.ExecContext(ctx, args...)
		} else if len(args) > 0 {
			_, err = tx.ExecContext(ctx, stmt(len(args)/7), args...)
		}
		args = args[:0]
		return err
	}
	at := store.NewTimestamp(grantedAt).String()
	if err := rows(n, func(r row) error {
		args = append(args, r.id, r.name, r.principal, r.workspace, r.role, at, rev)
		if len(args) == cap(args) {
			return flush()
		}
		return nil
	}); err != nil {
		return 0, err
	}
	if err := flush(); err != nil {
		return 0, err
	}
	if err := workspaces(n, func(id, name string) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO workspaces (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)`, id, name, at, at)
		return err
	}); err != nil {
		return 0, err
	}
	for _, def := range indexes {
		if _, err := tx.ExecContext(ctx, def); err != nil {
			return 0, fmt.Errorf("recreate index: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	// Back to the store's journal mode.
	_, err = db.ExecContext(ctx, `PRAGMA journal_mode=WAL`)
	return rev, err
}

// dropIndexes drops the secondary indexes listed by q (name, definition)
// and returns their definitions.
func dropIndexes(ctx context.Context, tx *sql.Tx, q string) ([]string, error) {
	rs, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	var names, defs []string
	for rs.Next() {
		var name, def string
		if err := rs.Scan(&name, &def); err != nil {
			return nil, errors.Join(err, rs.Close())
		}
		names, defs = append(names, name), append(defs, def)
	}
	if err := errors.Join(rs.Err(), rs.Close()); err != nil {
		return nil, err
	}
	for _, name := range names {
		if _, err := tx.ExecContext(ctx, `DROP INDEX `+name); err != nil {
			return nil, err
		}
	}
	return defs, nil
}

func fillPostgres(ctx context.Context, dbURL string, n int) (int64, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx) //nolint:errcheck // the data is committed or not before this
	var rev int64
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `UPDATE policy_state SET revision = revision + 1 WHERE id = 1 RETURNING revision`).Scan(&rev); err != nil {
			return err
		}
		var indexes []string
		rs, err := tx.Query(ctx, `SELECT i.indexname, i.indexdef FROM pg_indexes i
			JOIN pg_index x ON x.indexrelid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass
			WHERE i.tablename = 'role_bindings' AND i.schemaname = current_schema() AND NOT x.indisprimary`)
		if err != nil {
			return err
		}
		var names []string
		for rs.Next() {
			var name, def string
			if err := rs.Scan(&name, &def); err != nil {
				return err
			}
			names, indexes = append(names, name), append(indexes, def)
		}
		if rs.Close(); rs.Err() != nil {
			return rs.Err()
		}
		for _, name := range names {
			if _, err := tx.Exec(ctx, `DROP INDEX `+pgx.Identifier{name}.Sanitize()); err != nil {
				return err
			}
		}
		var batch [][]any
		flush := func() error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"role_bindings"},
				[]string{"id", "name", "principal", "workspace", "role", "granted_by", "granted_at", "revision"},
				pgx.CopyFromRows(batch))
			batch = batch[:0]
			return err
		}
		if err := rows(n, func(r row) error {
			batch = append(batch, []any{r.id, r.name, r.principal, r.workspace, r.role, "fixture", grantedAt, rev})
			if len(batch) == 50_000 {
				return flush()
			}
			return nil
		}); err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
		var ws [][]any
		if err := workspaces(n, func(id, name string) error {
			ws = append(ws, []any{id, name, grantedAt, grantedAt})
			return nil
		}); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"workspaces"}, []string{"id", "name", "created_at", "updated_at"},
			pgx.CopyFromRows(ws)); err != nil {
			return err
		}
		for _, def := range indexes {
			if _, err := tx.Exec(ctx, def); err != nil {
				return fmt.Errorf("recreate index: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Statistics and the visibility map, as autovacuum would leave them.
	_, err = conn.Exec(ctx, `VACUUM ANALYZE role_bindings`)
	return rev, err
}

// SQLiteURL is the store URL of a SQLite database file.
func SQLiteURL(path string) string {
	if !strings.HasPrefix(path, "/") {
		panic("scalefixture: SQLite path must be absolute: " + path)
	}
	return "sqlite://" + path
}
