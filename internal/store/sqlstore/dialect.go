package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/nmp-project/nmp/internal/store"
)

// dialect holds everything that differs between the backends.
type dialect struct {
	name string
	open func(u *url.URL, maxConns int) (w, r *sql.DB, err error)
	// rebind turns ? placeholders into the backend's form.
	rebind func(q string) string
	// jsonParam is the placeholder for a JSON document parameter.
	jsonParam string
	// dataText(col) is an expression, taking one path parameter, that is
	// the string at that path of a JSON column, or NULL if it is not a
	// string.
	dataText func(col string) string
	dataPath func(segs []string) string
	// inSet is a condition, with its one parameter, that expr is one of
	// values (a non-empty set of strings).
	inSet func(expr string, values []string) (string, any)
	// lockPolicy serializes binding writers for the rest of the transaction.
	lockPolicy     string
	lockMigrations func(ctx context.Context, c conn) error
	// notify sends payload on PolicyChannel when the transaction commits
	// (PostgreSQL; a no-op on SQLite, whose only process is this one).
	notify func(ctx context.Context, c conn, payload string) error
	// forUpdate ends a SELECT that locks the rows it reads until the
	// transaction ends ("" on SQLite, whose write transactions hold the
	// database lock from BEGIN IMMEDIATE).
	forUpdate    string
	snapshotOpts *sql.TxOptions
	isUnique     func(err error) bool
}

// mapError turns a unique violation that slipped past the explicit
// checks (a concurrent insert) into a conflict.
func (d *dialect) mapError(err error) error {
	var se *store.Error
	if errors.As(err, &se) {
		return err
	}
	if d.isUnique(err) {
		return store.Conflict("already_exists", "Resource already exists")
	}
	return err
}

var sqliteDialect = &dialect{
	name: "sqlite",
	open: func(u *url.URL, maxConns int) (*sql.DB, *sql.DB, error) {
		path := u.Path
		if path == "" || u.Host != "" {
			return nil, nil, errors.New("sqlite URL must be sqlite:///absolute/path.db")
		}
		base := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_pragma=journal_mode(WAL)"
		w, err := sql.Open("sqlite", base+"&_txlock=immediate")
		if err != nil {
			return nil, nil, err
		}
		// One writer connection: SQLite has one writer at a time anyway,
		// and BEGIN IMMEDIATE makes every write transaction take the lock
		// up front so read-then-write checks cannot race.
		keepOpen(w, 1)
		r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
		if err != nil {
			return nil, nil, errors.Join(err, w.Close())
		}
		keepOpen(r, maxConns)
		return w, r, nil
	},
	rebind:    func(q string) string { return q },
	jsonParam: "?",
	dataText: func(col string) string {
		return "(CASE WHEN json_type(" + col + ", ?1x) = 'text' THEN json_extract(" + col + ", ?1x) END)"
	},
	dataPath: func(segs []string) string {
		var b strings.Builder
		b.WriteString("$")
		for _, s := range segs {
			b.WriteString(`."` + s + `"`)
		}
		return b.String()
	},
	inSet: func(expr string, values []string) (string, any) {
		doc, _ := json.Marshal(values) // a []string always marshals
		return expr + " IN (SELECT value FROM json_each(?))", string(doc)
	},
	lockPolicy:     `SELECT revision FROM policy_state WHERE id = 1`,
	lockMigrations: func(context.Context, conn) error { return nil }, // BEGIN IMMEDIATE
	notify:         func(context.Context, conn, string) error { return nil },
	isUnique: func(err error) bool {
		var e *sqlite.Error
		if errors.As(err, &e) {
			c := e.Code()
			return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
		}
		return false
	},
}

var postgresDialect = &dialect{
	name: "postgres",
	open: func(u *url.URL, maxConns int) (*sql.DB, *sql.DB, error) {
		db, err := sql.Open("pgx", u.String())
		if err != nil {
			return nil, nil, errors.New("invalid PostgreSQL URL")
		}
		keepOpen(db, maxConns)
		return db, db, nil
	},
	rebind: func(q string) string {
		var b strings.Builder
		n := 0
		for i := 0; i < len(q); i++ {
			if q[i] == '?' {
				n++
				b.WriteString("$" + strconv.Itoa(n))
				continue
			}
			b.WriteByte(q[i])
		}
		return b.String()
	},
	jsonParam: "CAST(? AS jsonb)",
	dataText: func(col string) string {
		return "(CASE WHEN jsonb_typeof(" + col + " #> CAST(?1x AS text[])) = 'string' THEN " + col + " #>> CAST(?1x AS text[]) END)"
	},
	dataPath: func(segs []string) string {
		return "{" + strings.Join(segs, ",") + "}"
	},
	inSet: func(expr string, values []string) (string, any) {
		return expr + " = ANY(?)", values // pgx sends a []string as text[]
	},
	lockPolicy: `SELECT revision FROM policy_state WHERE id = 1 FOR UPDATE`,
	lockMigrations: func(ctx context.Context, c conn) error {
		_, err := c.exec(ctx, `SELECT pg_advisory_xact_lock(7243016)`)
		return err
	},
	notify: func(ctx context.Context, c conn, payload string) error {
		_, err := c.exec(ctx, `SELECT pg_notify(`+channelSQL+`, ?)`, payload)
		return err
	},
	forUpdate:    " FOR UPDATE",
	snapshotOpts: &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
	isUnique: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505"
	},
}

// expandData replaces the ?1x marker of a dataText expression, which uses
// its path parameter twice, with plain placeholders and returns the
// argument list to go with it.
func expandData(expr, path string) (string, []any) {
	n := strings.Count(expr, "?1x")
	args := make([]any, n)
	for i := range args {
		args[i] = path
	}
	return strings.ReplaceAll(expr, "?1x", "?"), args
}
