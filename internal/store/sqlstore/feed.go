package sqlstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nmp-project/nmp/internal/store"
)

// PolicyChannel is the PostgreSQL channel on which binding writes announce
// their new policy revision, and access-key writes the key whose state
// they changed (NOTIFY in the writing transaction). A payload is either
// the decimal revision or accessKeyPrefix and the key's jti.
//
// That is the channel of a store in the schema "public". A store in
// another schema notifies and listens on a channel of its own,
// "nmp_policy_" and the first 16 hex digits of the SHA-256 of the schema's
// name (channelSQL), so that deployments or tests sharing a database in
// different schemas never receive each other's notices.
const PolicyChannel = "nmp_policy"

// channelSQL is the notification channel of the connection's schema,
// computed by PostgreSQL itself so that the notifying transaction and the
// LISTEN connection (both on the store's search_path) always agree.
const channelSQL = `CASE WHEN current_schema() = 'public' THEN '` + PolicyChannel + `' ELSE '` + PolicyChannel +
	`_' || left(encode(sha256(convert_to(current_schema(), 'UTF8')), 'hex'), 16) END`

// accessKeyPrefix starts the payload of an access-key notice.
const accessKeyPrefix = "ak:"

func revisionNotice(rev int64) string { return strconv.FormatInt(rev, 10) }

func accessKeyNotice(jti string) string { return accessKeyPrefix + jti }

// errMalformedNotice is a payload on PolicyChannel that is neither a
// revision nor an access-key notice.
var errMalformedNotice = errors.New("malformed policy notification payload")

// parseNotice turns a PolicyChannel payload into the event it announces:
// a positive decimal revision, or "ak:" and a valid access key jti.
func parseNotice(payload string) (store.PolicyEvent, error) {
	if jti, ok := strings.CutPrefix(payload, accessKeyPrefix); ok {
		if !store.ValidJTI(jti) {
			return store.PolicyEvent{}, errMalformedNotice
		}
		return store.PolicyEvent{AccessKey: jti}, nil
	}
	rev, err := strconv.ParseInt(payload, 10, 64)
	if err != nil || rev <= 0 {
		return store.PolicyEvent{}, errMalformedNotice
	}
	return store.PolicyEvent{Revision: rev}, nil
}

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

// WatchPolicy implements store.ChangeFeed: this process's commits (new
// policy revisions and access-key state changes) are published as they
// commit; on PostgreSQL, a dedicated connection also LISTENs on the
// schema's channel (PolicyChannel) for every replica's commits, reconnecting with backoff,
// and each (re)connection is a Resync since notices may have been missed
// meanwhile. A malformed payload ends the connection like a network
// failure (an Err, then a Resync once reconnected).
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
	var channel string
	if err := conn.QueryRow(ctx, "SELECT "+channelSQL).Scan(&channel); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	connected()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		ev, err := parseNotice(n.Payload)
		if err != nil {
			return err
		}
		emit(ev)
	}
}
