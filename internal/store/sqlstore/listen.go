package sqlstore

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// PolicyChannel is the PostgreSQL channel on which binding writes announce
// their new policy revision.
const PolicyChannel = "nmp_policy"

// Listen follows policy changes made by other replicas (PostgreSQL only):
// it calls changed with each announced revision, and connected each time
// the LISTEN is (re-)established, since changes made while it was not may
// have been missed (the caller catches up then). It returns when ctx ends.
// On SQLite, where there is one process, it returns at once.
func (s *Store) Listen(ctx context.Context, dsn string, log *slog.Logger, changed func(revision int64), connected func()) {
	if s.d != postgresDialect {
		return
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := listenOnce(ctx, dsn, func() {
			backoff = 100 * time.Millisecond
			connected()
		}, changed)
		if ctx.Err() != nil {
			return
		}
		log.Error("policy notifications lost; reconnecting", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func listenOnce(ctx context.Context, dsn string, connected func(), changed func(int64)) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+PolicyChannel); err != nil {
		return err
	}
	connected()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		rev, perr := strconv.ParseInt(n.Payload, 10, 64)
		if perr != nil {
			return errors.New("malformed policy notification payload")
		}
		changed(rev)
	}
}
