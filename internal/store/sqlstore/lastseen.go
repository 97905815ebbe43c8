package sqlstore

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/nmp-project/nmp/internal/store"
)

// lastSeenChunk bounds the rows of one upsert statement (two parameters a
// row), well under both backends' parameter limits.
const lastSeenChunk = 500

// RecordLastSeen upserts the batch in one transaction, keeping the later
// time of the stored and the given one.
func (s *Store) RecordLastSeen(ctx context.Context, seen []store.Sighting) error {
	latest := make(map[string]store.Timestamp, len(seen))
	for _, v := range seen {
		if v.Principal == "" {
			return store.Invalid("invalid_principal", "A last-seen principal must not be empty")
		}
		if cur, ok := latest[v.Principal]; !ok || v.At.After(cur.Time) {
			latest[v.Principal] = v.At
		}
	}
	if len(latest) == 0 {
		return nil
	}
	// Sorted, so that concurrent batches (replicas sharing a database)
	// lock rows in one order.
	principals := slices.Sorted(maps.Keys(latest))
	return s.tx(ctx, func(c conn) error {
		for chunk := range slices.Chunk(principals, lastSeenChunk) {
			var q strings.Builder
			q.WriteString(`INSERT INTO last_seen (principal, last_seen_at) VALUES `)
			args := make([]any, 0, 2*len(chunk))
			for i, p := range chunk {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?)")
				args = append(args, p, latest[p])
			}
			q.WriteString(` ON CONFLICT (principal) DO UPDATE SET last_seen_at = excluded.last_seen_at
				WHERE excluded.last_seen_at > last_seen.last_seen_at`)
			if _, err := c.exec(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// LastSeen reads the stored times of principals in one query.
func (s *Store) LastSeen(ctx context.Context, principals []string) (map[string]store.Timestamp, error) {
	out := make(map[string]store.Timestamp, len(principals))
	if len(principals) == 0 {
		return out, nil
	}
	cond, arg := s.d.inSet("principal", principals)
	rows, err := s.read().query(ctx, `SELECT principal, last_seen_at FROM last_seen WHERE `+cond, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close() //nolint:errcheck // read-only
	for rows.Next() {
		var p string
		var at store.Timestamp
		if err := rows.Scan(&p, &at); err != nil {
			return nil, err
		}
		out[p] = at
	}
	return out, rows.Err()
}
