package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nmp-project/nmp/internal/store"
)

// pool is a connection pool whose callers wait at most wait for a free
// connection (database/sql alone waits as long as the caller's context):
// a caller that finds the pool busy for longer fails with an error that
// matches store.ErrUnavailable instead of queueing without bound.
type pool struct {
	db   *sql.DB
	wait time.Duration
	// releasing counts connections whose return to the pool is still
	// pending (releaseAfter); Close waits for them.
	releasing *sync.WaitGroup
}

// idleConnTimeout is how long a pooled connection may stay unused
// before it is closed.
const idleConnTimeout = 5 * time.Minute

// keepOpen bounds db to n connections and keeps up to n of them open
// between operations (database/sql keeps 2 unless told otherwise), so
// that concurrent requests reuse connections instead of closing the
// ones beyond two on their return and opening new ones at the next
// burst: a PostgreSQL connection costs a connection handshake and a
// server process, a SQLite one the pragmas and a schema read. One left
// unused for idleConnTimeout is closed, so that a burst's connections
// do not stay open for good.
func keepOpen(db *sql.DB, n int) {
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(idleConnTimeout)
}

// acquire takes a connection from the pool within p.wait; the caller
// closes it (which returns it to the pool). The wait bounds only the
// acquisition, not what the caller then does with the connection.
func (p pool) acquire(ctx context.Context) (*sql.Conn, error) {
	wctx, cancel := context.WithTimeout(ctx, p.wait)
	defer cancel()
	c, err := p.db.Conn(wctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("%w: no database connection became free within %s", store.ErrUnavailable, p.wait)
	}
	return c, err
}

// ExecContext runs q on a connection acquired within the bound.
func (p pool) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close() //nolint:errcheck // returns the connection to the pool; the result is what matters
	return c.ExecContext(ctx, q, args...)
}

// QueryContext runs q on a connection acquired within the bound; the
// connection returns to the pool when the rows are closed.
func (p pool) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := c.QueryContext(ctx, q, args...)
	p.releaseAfter(c)
	return rows, err
}

// queryRow runs q on a connection acquired within the bound; the
// connection returns to the pool when the row is scanned. An acquisition
// failure is the row's Scan error.
func (p pool) queryRow(ctx context.Context, q string, args ...any) rowScanner {
	c, err := p.acquire(ctx)
	if err != nil {
		return errRow{err}
	}
	row := c.QueryRowContext(ctx, q, args...)
	p.releaseAfter(c)
	return row
}

// rowScanner is a *sql.Row, or the error that kept a query from running.
type rowScanner interface {
	Scan(dest ...any) error
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// BeginTx starts a transaction on a connection acquired within the
// bound; the connection returns to the pool when the transaction ends.
func (p pool) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := c.BeginTx(ctx, opts)
	p.releaseAfter(c)
	return tx, err
}

// releaseAfter returns c to the pool once the rows, row or transaction
// started on it are done: sql.Conn.Close waits for them.
func (p pool) releaseAfter(c *sql.Conn) {
	p.releasing.Add(1)
	go func() {
		defer p.releasing.Done()
		c.Close() //nolint:errcheck // only returns the connection to the pool
	}()
}
