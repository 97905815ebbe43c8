package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/nmp-project/nmp/internal/store"
)

const auditCols = `id, occurred_at, actor, on_behalf_of, request_id, action, workspace, target, before_state, after_state`

func readAuditEvent(scan func(...any) error) (store.AuditEvent, error) {
	var (
		e             store.AuditEvent
		before, after sql.NullString
	)
	err := scan(&e.ID, &e.OccurredAt, &e.Actor, &e.OnBehalfOf, &e.RequestID, &e.Action, &e.Workspace, &e.Target, &before, &after)
	if before.Valid {
		e.Before = json.RawMessage(before.String)
	}
	if after.Valid {
		e.After = json.RawMessage(after.String)
	}
	return e, err
}

// auditChange is one event about to be written.
type auditChange struct {
	action    string
	workspace string // "" for none
	target    string
	// before and after are the target's state (nil: none).
	before, after any
}

// audit writes the event of a change inside the change's transaction c.
// The actor comes from ctx (store.WithAuditActor), else it is the system.
func (s *Store) audit(ctx context.Context, c conn, ch auditChange) error {
	a, ok := store.AuditActorFrom(ctx)
	if !ok || a.Principal == "" {
		a = store.AuditActor{Principal: store.AuditSystemActor, RequestID: a.RequestID}
	}
	doc := func(v any) (any, error) {
		if v == nil {
			return nil, nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
	before, err := doc(ch.before)
	if err != nil {
		return err
	}
	after, err := doc(ch.after)
	if err != nil {
		return err
	}
	j := s.d.jsonParam
	_, err = c.exec(ctx, `INSERT INTO audit_events (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, `+j+`, `+j+`)`,
		uuid.NewString(), s.now(), a.Principal, nullable(a.OnBehalfOf), nullable(a.RequestID), ch.action,
		nullable(ch.workspace), ch.target, before, after)
	return err
}

// nullable is NULL for "".
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ListAuditEvents reads one row more than the page to know whether another
// page follows.
func (s *Store) ListAuditEvents(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, bool, error) {
	if f.Page < 1 || f.PageSize < 1 {
		return nil, false, store.Invalid("invalid_page", "page and page_size must be at least 1")
	}
	if int64(f.Page-1) > (math.MaxInt64-1)/int64(f.PageSize) {
		return nil, false, store.Invalid("invalid_page", "page is too large")
	}
	l := &listQuery{}
	if f.Workspace != nil {
		l.and(`workspace = ?`, *f.Workspace)
	}
	if f.Principal != "" {
		l.and(`(actor = ? OR target = ?)`, f.Principal, f.Principal)
	}
	if f.Since != nil {
		l.and(`occurred_at >= ?`, store.NewTimestamp(*f.Since))
	}
	if f.Until != nil {
		l.and(`occurred_at < ?`, store.NewTimestamp(*f.Until))
	}
	where := ""
	if len(l.where) > 0 {
		where = " WHERE " + strings.Join(l.where, " AND ")
	}
	args := append(l.args, f.PageSize+1, int64(f.Page-1)*int64(f.PageSize))
	events, err := collect(ctx, s.read(), readAuditEvent, `SELECT `+auditCols+` FROM audit_events`+where+`
		ORDER BY occurred_at DESC, seq DESC LIMIT ? OFFSET ?`, args...)
	return onePage(events, f.PageSize, err)
}

// PruneAuditEvents deletes the events older than before.
func (s *Store) PruneAuditEvents(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(c conn) error {
		res, err := c.exec(ctx, `DELETE FROM audit_events WHERE occurred_at < ?`, store.NewTimestamp(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
