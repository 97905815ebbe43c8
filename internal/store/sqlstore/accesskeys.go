package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/nmp-project/nmp/internal/store"
)

const accessKeyCols = `jti, name, description, principal, entity_type, issuer, audiences, scopes, status,
	created_at, created_by, expires_at, grace_period_expires_at, last_used_at, revoked_at, replaced_by`

func readAccessKey(scan func(...any) error) (store.AccessKey, error) {
	var (
		k                                 store.AccessKey
		audiences                         string
		scopes                            sql.NullString
		status                            string
		created                           store.Timestamp
		expires, grace, lastUsed, revoked *store.Timestamp
	)
	err := scan(&k.JTI, &k.Name, &k.Description, &k.Principal, &k.EntityType, &k.Issuer, &audiences, &scopes, &status,
		&created, &k.CreatedBy, &expires, &grace, &lastUsed, &revoked, &k.ReplacedBy)
	if err != nil {
		return k, err
	}
	if err := json.Unmarshal([]byte(audiences), &k.Audiences); err != nil {
		return k, fmt.Errorf("access key %s: audiences: %w", k.JTI, err)
	}
	if k.Audiences == nil {
		k.Audiences = []string{}
	}
	if scopes.Valid {
		k.Scopes = []string{}
		if err := json.Unmarshal([]byte(scopes.String), &k.Scopes); err != nil {
			return k, fmt.Errorf("access key %s: scopes: %w", k.JTI, err)
		}
	}
	k.Status = store.AccessKeyStatus(status)
	k.CreatedAt = created.Time
	k.ExpiresAt, k.GracePeriodExpiresAt = timeOf(expires), timeOf(grace)
	k.LastUsedAt, k.RevokedAt = timeOf(lastUsed), timeOf(revoked)
	return k, nil
}

func timeOf(t *store.Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}

// stamp is the stored form of an optional instant (nil stays NULL).
func stamp(t *time.Time) *store.Timestamp {
	if t == nil {
		return nil
	}
	v := store.NewTimestamp(*t)
	return &v
}

// truncated is t as the store keeps it: UTC, microseconds.
func truncated(t *time.Time) *time.Time { return timeOf(stamp(t)) }

// checkNewAccessKey validates a key about to be created and returns it
// as it will be stored (status ACTIVE, times in UTC with microseconds, a
// zero CreatedAt replaced by now).
func checkNewAccessKey(k store.AccessKey, now time.Time) (store.AccessKey, error) {
	switch {
	case !store.ValidJTI(k.JTI):
		return k, store.Invalid("invalid_jti", "An access key id must be 'ak_' and 32 lowercase hex digits")
	case k.EntityType != store.AccessKeyUser && k.EntityType != store.AccessKeyServiceAccount:
		return k, store.Invalid("invalid_entity_type", "An access key's entity type must be %s or %s",
			store.AccessKeyUser, store.AccessKeyServiceAccount)
	case k.Status != "" && k.Status != store.AccessKeyActive:
		return k, store.Invalid("invalid_status", "A new access key must be %s", store.AccessKeyActive)
	case k.Principal == "":
		return k, store.Invalid("invalid_principal", "An access key must have a principal")
	case utf8.RuneCountInString(k.Name) > store.AccessKeyNameMax || !utf8.ValidString(k.Name):
		return k, store.Invalid("invalid_name", "An access key name has at most %d characters", store.AccessKeyNameMax)
	case utf8.RuneCountInString(k.Description) > store.AccessKeyDescriptionMax || !utf8.ValidString(k.Description):
		return k, store.Invalid("invalid_description", "An access key description has at most %d characters", store.AccessKeyDescriptionMax)
	case k.GracePeriodExpiresAt != nil || k.LastUsedAt != nil || k.RevokedAt != nil || k.ReplacedBy != "":
		return k, store.Invalid("invalid_access_key", "A new access key has no grace period, use, revocation or successor")
	}
	k.Status = store.AccessKeyActive
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now
	}
	k.CreatedAt = store.NewTimestamp(k.CreatedAt).Time
	k.ExpiresAt = truncated(k.ExpiresAt)
	if k.Audiences == nil {
		k.Audiences = []string{}
	}
	k.Audiences = slices.Clone(k.Audiences)
	k.Scopes = slices.Clone(k.Scopes) // keeps nil and empty apart
	return k, nil
}

func (s *Store) insertAccessKey(ctx context.Context, c conn, k store.AccessKey) error {
	if _, err := getAccessKey(ctx, c, k.JTI, false); err == nil {
		return store.Conflict("already_exists", "Access key '%s' already exists", k.JTI)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	audiences, _ := json.Marshal(k.Audiences) // a []string always marshals
	var scopes any
	if k.Scopes != nil {
		doc, _ := json.Marshal(k.Scopes)
		scopes = string(doc)
	}
	j := s.d.jsonParam
	if _, err := c.exec(ctx, `INSERT INTO access_keys (`+accessKeyCols+`)
		VALUES (?, ?, ?, ?, ?, ?, `+j+`, `+j+`, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.JTI, k.Name, k.Description, k.Principal, k.EntityType, k.Issuer, string(audiences), scopes, string(k.Status),
		store.NewTimestamp(k.CreatedAt), k.CreatedBy, stamp(k.ExpiresAt), stamp(k.GracePeriodExpiresAt),
		stamp(k.LastUsedAt), stamp(k.RevokedAt), k.ReplacedBy); err != nil {
		return err
	}
	return s.audit(ctx, c, auditChange{action: store.AuditAccessKeyCreate, target: k.JTI, after: store.AccessKeyAuditState(k)})
}

// accessKeyActions are the audit actions of status changes, by target
// status.
var accessKeyActions = map[store.AccessKeyStatus]string{
	store.AccessKeySuspended: store.AuditAccessKeySuspend,
	store.AccessKeyActive:    store.AuditAccessKeyUnsuspend,
	store.AccessKeyRevoked:   store.AuditAccessKeyRevoke,
}

// getAccessKey reads a key; lock (inside a write transaction) keeps the
// row locked until the transaction ends on PostgreSQL.
func getAccessKey(ctx context.Context, c conn, jti string, lock bool) (store.AccessKey, error) {
	q := `SELECT ` + accessKeyCols + ` FROM access_keys WHERE jti = ?`
	if lock {
		q += c.d.forUpdate
	}
	k, err := one(ctx, c, readAccessKey, q, jti)
	if errors.Is(err, sql.ErrNoRows) {
		return k, store.AccessKeyNotFound(jti)
	}
	return k, err
}

// announceAccessKey notifies other replicas (PostgreSQL, at commit) and,
// after the commit, this process's watchers that the key's state changed.
func (s *Store) announceAccessKey(ctx context.Context, c conn, jti string) error {
	if c.t != nil {
		c.t.accessKeys = append(c.t.accessKeys, jti)
	}
	return s.d.notify(ctx, c, accessKeyNotice(jti))
}

// CreateAccessKey validates and inserts a new key.
func (s *Store) CreateAccessKey(ctx context.Context, k store.AccessKey) (store.AccessKey, error) {
	k, err := checkNewAccessKey(k, s.clock())
	if err != nil {
		return store.AccessKey{}, err
	}
	if err := s.tx(ctx, func(c conn) error { return s.insertAccessKey(ctx, c, k) }); err != nil {
		return store.AccessKey{}, err
	}
	return k, nil
}

// GetAccessKey returns a key by jti.
func (s *Store) GetAccessKey(ctx context.Context, jti string) (store.AccessKey, error) {
	return getAccessKey(ctx, s.read(), jti, false)
}

// ListAccessKeys reads one row more than the page to know whether another
// page follows.
func (s *Store) ListAccessKeys(ctx context.Context, f store.AccessKeyFilter) ([]store.AccessKey, bool, error) {
	if f.Page < 1 || f.PageSize < 1 {
		return nil, false, store.Invalid("invalid_page", "page and page_size must be at least 1")
	}
	cond := `principal = ?`
	if f.IncludeServiceAccounts {
		cond = `(principal = ? OR entity_type = '` + store.AccessKeyServiceAccount + `')`
	}
	keys, err := collect(ctx, s.read(), readAccessKey, `SELECT `+accessKeyCols+` FROM access_keys WHERE `+cond+`
		ORDER BY created_at DESC, jti LIMIT ? OFFSET ?`, f.Principal, f.PageSize+1, store.ListOptions{Page: f.Page, PageSize: f.PageSize}.Offset())
	return onePage(keys, f.PageSize, err)
}

// onePage turns the rows of a query that read one row more than a page
// (LIMIT size+1) into the page (never nil) and whether more follow.
func onePage[T any](rows []T, size int, err error) ([]T, bool, error) {
	if err != nil {
		return nil, false, err
	}
	if rows == nil {
		rows = []T{}
	}
	more := len(rows) > size
	if more {
		rows = rows[:size]
	}
	return rows, more, nil
}

// accessKeyMoves lists the transitions SetAccessKeyStatus makes, by target.
var accessKeyMoves = map[store.AccessKeyStatus][]store.AccessKeyStatus{
	store.AccessKeySuspended: {store.AccessKeyActive},
	store.AccessKeyActive:    {store.AccessKeySuspended},
	store.AccessKeyRevoked:   {store.AccessKeyActive, store.AccessKeySuspended, store.AccessKeyRotating},
	store.AccessKeyRotating:  {}, // only RotateAccessKey
}

// SetAccessKeyStatus makes one status transition under the row's lock.
func (s *Store) SetAccessKeyStatus(ctx context.Context, jti string, to store.AccessKeyStatus, now time.Time) (store.AccessKey, bool, error) {
	from, ok := accessKeyMoves[to]
	if !ok {
		return store.AccessKey{}, false, store.Invalid("invalid_status", "'%s' is not a status an access key can be set to", to)
	}
	var (
		k       store.AccessKey
		changed bool
	)
	err := s.tx(ctx, func(c conn) error {
		var err error
		if k, err = getAccessKey(ctx, c, jti, true); err != nil {
			return err
		}
		switch {
		case k.Status == to:
			return nil
		case to == store.AccessKeyActive && k.Status == store.AccessKeySuspended && k.StatusAt(now) == store.AccessKeyExpired:
			return nil // unsuspending an expired key changes nothing
		case !slices.Contains(from, k.Status):
			return store.InvalidState("Access key '%s' is %s and cannot become %s", jti, k.Status, to)
		}
		before := store.AccessKeyAuditState(k)
		k.Status = to
		if to == store.AccessKeyRevoked {
			k.RevokedAt = truncated(&now)
		}
		if _, err := c.exec(ctx, `UPDATE access_keys SET status = ?, revoked_at = ? WHERE jti = ?`,
			string(k.Status), stamp(k.RevokedAt), jti); err != nil {
			return err
		}
		changed = true
		if err := s.audit(ctx, c, auditChange{action: accessKeyActions[to], target: jti,
			before: before, after: store.AccessKeyAuditState(k)}); err != nil {
			return err
		}
		return s.announceAccessKey(ctx, c, jti)
	})
	if err != nil {
		return store.AccessKey{}, false, err
	}
	return k, changed, nil
}

// RotateAccessKey moves jti to ROTATING and creates next in one
// transaction.
func (s *Store) RotateAccessKey(ctx context.Context, jti string, graceUntil time.Time, next store.AccessKey, now time.Time) (store.AccessKey, store.AccessKey, error) {
	next, err := checkNewAccessKey(next, now)
	if err != nil {
		return store.AccessKey{}, store.AccessKey{}, err
	}
	var prev store.AccessKey
	err = s.tx(ctx, func(c conn) error {
		var err error
		if prev, err = getAccessKey(ctx, c, jti, true); err != nil {
			return err
		}
		if st := prev.StatusAt(now); st != store.AccessKeyActive {
			return store.InvalidState("Access key '%s' is %s; only %s keys can be rotated", jti, st, store.AccessKeyActive)
		}
		before := store.AccessKeyAuditState(prev)
		prev.Status, prev.ReplacedBy = store.AccessKeyRotating, next.JTI
		prev.GracePeriodExpiresAt = truncated(&graceUntil)
		if _, err := c.exec(ctx, `UPDATE access_keys SET status = ?, grace_period_expires_at = ?, replaced_by = ? WHERE jti = ?`,
			string(prev.Status), stamp(prev.GracePeriodExpiresAt), prev.ReplacedBy, jti); err != nil {
			return err
		}
		if err := s.audit(ctx, c, auditChange{action: store.AuditAccessKeyRotate, target: jti,
			before: before, after: store.AccessKeyAuditState(prev)}); err != nil {
			return err
		}
		if err := s.insertAccessKey(ctx, c, next); err != nil {
			return err
		}
		return s.announceAccessKey(ctx, c, jti)
	})
	if err != nil {
		return store.AccessKey{}, store.AccessKey{}, err
	}
	return prev, next, nil
}

// RecordAccessKeyUse moves last_used_at forward for each key of the batch,
// in jti order so that concurrent batches lock rows in one order.
func (s *Store) RecordAccessKeyUse(ctx context.Context, uses []store.AccessKeyUse) error {
	latest := make(map[string]store.Timestamp, len(uses))
	for _, u := range uses {
		at := store.NewTimestamp(u.At)
		if cur, ok := latest[u.JTI]; !ok || at.After(cur.Time) {
			latest[u.JTI] = at
		}
	}
	if len(latest) == 0 {
		return nil
	}
	return s.tx(ctx, func(c conn) error {
		for _, jti := range slices.Sorted(maps.Keys(latest)) {
			at := latest[jti]
			if _, err := c.exec(ctx, `UPDATE access_keys SET last_used_at = ?
				WHERE jti = ? AND (last_used_at IS NULL OR last_used_at < ?)`, at, jti, at); err != nil {
				return err
			}
		}
		return nil
	})
}
