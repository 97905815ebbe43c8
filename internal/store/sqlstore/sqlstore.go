// Package sqlstore implements store.Store on SQL databases: embedded
// SQLite (pure Go, the default) and PostgreSQL (pgx). One implementation
// serves both; the differences live in the dialect.
package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nmp-project/nmp/internal/store"
)

//go:embed migrations
var migrationsFS embed.FS

// Options configure Open.
type Options struct {
	// URL is "sqlite:///abs/path.db", "postgres://…" or "postgresql://…".
	URL string
	// MaxConns bounds the connection pool (PostgreSQL, SQLite readers).
	MaxConns int
	// ConnectTimeout bounds the first connection.
	ConnectTimeout time.Duration
	// Migrate applies the embedded migrations at open.
	Migrate bool
	// Clock is the time source; nil means time.Now.
	Clock store.Clock
	// PoolWait bounds how long an operation waits for a free connection
	// of the pool before it fails with store.ErrUnavailable (0: 10 s).
	PoolWait time.Duration
}

// Store is the SQL implementation of store.Store.
type Store struct {
	d *dialect
	w *sql.DB // writer: every write transaction runs here
	r *sql.DB // reader: plain reads (the same pool on PostgreSQL)
	// wp and rp are w and r with a bounded wait for a connection.
	wp, rp pool
	clock  store.Clock
	dsn    string // for the PostgreSQL LISTEN connection
	feed   feed   // this process's committed policy revisions
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named by opts.URL, checks the connection
// and applies migrations when asked.
func Open(ctx context.Context, opts Options) (*Store, error) {
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, errors.New("invalid database URL")
	}
	var d *dialect
	switch u.Scheme {
	case "sqlite":
		d = sqliteDialect
	case "postgres", "postgresql":
		d = postgresDialect
	default:
		return nil, fmt.Errorf("unsupported database URL scheme %q", u.Scheme)
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 10
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 30 * time.Second
	}
	if opts.PoolWait <= 0 {
		opts.PoolWait = 10 * time.Second
	}
	s := &Store{d: d, clock: opts.Clock, dsn: opts.URL}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.w, s.r, err = d.open(u, opts.MaxConns); err != nil {
		return nil, err
	}
	s.wp, s.rp = pool{s.w, opts.PoolWait, new(sync.WaitGroup)}, pool{s.r, opts.PoolWait, new(sync.WaitGroup)}
	cctx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	defer cancel()
	if err := s.Ping(cctx); err != nil {
		return nil, errors.Join(fmt.Errorf("connect to %s database: %w", d.name, err), s.Close())
	}
	if opts.Migrate {
		if err := s.migrate(ctx); err != nil {
			return nil, errors.Join(err, s.Close())
		}
	}
	return s, nil
}

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return err
	}
	if s.r != s.w {
		return s.r.PingContext(ctx)
	}
	return nil
}

// Close closes the connection pools.
func (s *Store) Close() error {
	// Connections are returned to their pool by a goroutine once their
	// rows are read (pool.releaseAfter); one still on its way back would
	// be closed only after Close returned, holding the SQLite database
	// open (and locked) for a moment longer.
	s.wp.releasing.Wait()
	s.rp.releasing.Wait()
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

func (s *Store) now() store.Timestamp { return store.NewTimestamp(s.clock()) }

// querier is what a pool and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// conn runs dialect-neutral SQL (with ? placeholders) on a querier.
type conn struct {
	q querier
	d *dialect
	// t is the write transaction's state (nil outside tx).
	t *txState
}

// txState is what a write transaction records for after its commit.
type txState struct {
	// revision is the policy revision the transaction produced (0 if it
	// changed no binding).
	revision int64
	// accessKeys are the jtis of the access keys whose state it changed.
	accessKeys []string
}

func (c conn) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return c.q.ExecContext(ctx, c.d.rebind(q), args...)
}

func (c conn) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return c.q.QueryContext(ctx, c.d.rebind(q), args...)
}

func (c conn) row(ctx context.Context, q string, args ...any) rowScanner {
	if p, ok := c.q.(pool); ok {
		return p.queryRow(ctx, c.d.rebind(q), args...)
	}
	return c.q.(*sql.Tx).QueryRowContext(ctx, c.d.rebind(q), args...)
}

// read returns a conn on the reader pool.
func (s *Store) read() conn { return conn{q: s.rp, d: s.d} }

// tx runs fn in a write transaction and commits it when fn succeeds. A
// transaction that changed the policy revision or access-key states is
// published to this process's policy watchers once it has committed.
func (s *Store) tx(ctx context.Context, fn func(c conn) error) error {
	tx, err := s.wp.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	st := &txState{}
	if err := fn(conn{tx, s.d, st}); err != nil {
		_ = tx.Rollback()
		return s.d.mapError(err)
	}
	if err := tx.Commit(); err != nil {
		return s.d.mapError(fmt.Errorf("commit: %w", err))
	}
	if st.revision > 0 {
		s.feed.publish(store.PolicyEvent{Revision: st.revision})
	}
	for _, jti := range st.accessKeys {
		s.feed.publish(store.PolicyEvent{AccessKey: jti})
	}
	return nil
}

// snapshot runs fn in a read-only transaction that sees one consistent
// state of the database.
func (s *Store) snapshot(ctx context.Context, fn func(c conn) error) error {
	tx, err := s.rp.BeginTx(ctx, s.d.snapshotOpts)
	if err != nil {
		return fmt.Errorf("begin read transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	return fn(conn{q: tx, d: s.d})
}

func (s *Store) migrate(ctx context.Context) error {
	dir := "migrations/" + s.d.name
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return s.tx(ctx, func(c conn) error {
		if err := s.d.lockMigrations(ctx, c); err != nil {
			return err
		}
		if _, err := c.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		for _, name := range names {
			version := strings.TrimSuffix(name, ".sql")
			var n int
			if err := c.row(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			body, err := migrationsFS.ReadFile(dir + "/" + name)
			if err != nil {
				return err
			}
			// Migrations contain no placeholders; run them unrebound.
			if _, err := c.q.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", version, err)
			}
			if _, err := c.exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, s.now().String()); err != nil {
				return err
			}
		}
		return nil
	})
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// shortID returns 20 random lowercase base32 characters (100 bits).
func shortID() string {
	var b [13]byte
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])[:20]
}
