package sqlstore

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nmp-project/nmp/internal/store"
)

// PolicyChannel is the PostgreSQL channel on which binding writes announce
// their new policy revision (NOTIFY in the writing transaction).
const PolicyChannel = "nmp_policy"

// feed fans this process's committed policy revisions out to its watchers.
type feed struct {
	mu   sync.Mutex
	next int
	subs map[int]func(store.PolicyEvent)
}

func (f *feed) subscribe(emit func(store.PolicyEvent)) (cancel func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[int]func(store.PolicyEvent){}
	}
	id := f.next
	f.next++
	f.subs[id] = emit
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, id)
	}
}

// publish calls every watcher; holding the lock guarantees that no
// watcher is called after its cancel returned.
func (f *feed) publish(ev store.PolicyEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, emit := range f.subs {
		emit(ev)
	}
}

// Reconnect backoff of the PostgreSQL LISTEN connection.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// WatchPolicy implements store.ChangeFeed: this process's commits are
// published as they commit; on PostgreSQL, a dedicated connection also
// LISTENs on PolicyChannel for every replica's commits, reconnecting with
// backoff, and each (re)connection is a Resync since notices may have been
// missed meanwhile.
func (s *Store) WatchPolicy(ctx context.Context, emit func(store.PolicyEvent)) error {
	cancel := s.feed.subscribe(emit)
	defer cancel()
	if s.d != postgresDialect {
		emit(store.PolicyEvent{Resync: true})
		<-ctx.Done()
		return ctx.Err()
	}
	backoff := listenBackoffMin
	for {
		err := s.listenOnce(ctx, func() {
			backoff = listenBackoffMin
			emit(store.PolicyEvent{Resync: true})
		}, emit)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		emit(store.PolicyEvent{Err: err})
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, listenBackoffMax)
	}
}

func (s *Store) listenOnce(ctx context.Context, connected func(), emit func(store.PolicyEvent)) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, s.dsn)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // best effort
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
		if perr != nil || rev <= 0 {
			return errors.New("malformed policy notification payload")
		}
		emit(store.PolicyEvent{Revision: rev})
	}
}
