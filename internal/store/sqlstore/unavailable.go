package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/nmp-project/nmp/internal/store"
)

// classify turns a driver error that says the database cannot be used
// right now into one that matches store.ErrUnavailable (unreachable,
// connection lost, server shutting down, operation timeout) or
// store.ErrInsufficientStorage (SQLite: disk full or an I/O error on
// write). Other errors, and errors already classified, are returned
// unchanged.
func classify(err error) error {
	switch {
	case err == nil, errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrInsufficientStorage):
		return err
	}
	var se *store.Error
	if errors.As(err, &se) {
		return err
	}
	if isFull(err) {
		return fmt.Errorf("%w: %w", store.ErrInsufficientStorage, err)
	}
	if isUnavailable(err) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

func isFull(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	primary := e.Code() & 0xff
	return primary == sqlite3.SQLITE_FULL || primary == sqlite3.SQLITE_IOERR
}

func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-57P03: admin shutdown,
		// crash shutdown, cannot connect now; 53300: too many connections.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" ||
			pe.Code == "57P03" || pe.Code == "53300"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	if pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	var le *sqlite.Error
	if errors.As(err, &le) {
		// The database stayed locked past busy_timeout.
		primary := le.Code() & 0xff
		return primary == sqlite3.SQLITE_BUSY || primary == sqlite3.SQLITE_LOCKED
	}
	// pgx reports a connection it closed after an error as "conn closed".
	return strings.Contains(err.Error(), "conn closed")
}

// Guarded is a Store whose request-path operations are bounded by an
// operation timeout and whose driver errors are classified (see
// store.ErrUnavailable and store.ErrInsufficientStorage). The background
// operations that may legitimately run long (watching the change feed,
// loading every active binding) keep the caller's context.
type Guarded struct {
	// Store is not embedded: every store.Store method must be written
	// out here, so a method added to the interface cannot reach the
	// request path unguarded (the build fails until it is wrapped).
	Store   *Store
	timeout time.Duration
}

// Guard wraps s; timeout <= 0 means no operation timeout (errors are
// still classified).
func Guard(s *Store, timeout time.Duration) *Guarded {
	return &Guarded{Store: s, timeout: timeout}
}

var _ store.Store = (*Guarded)(nil)

func guard[T any](g *Guarded, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	if g.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	v, err := f(ctx)
	if err != nil && ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		// The operation timeout fired (not the caller going away).
		err = fmt.Errorf("%w: operation timed out after %v: %w", store.ErrUnavailable, g.timeout, err)
	}
	return v, classify(err)
}

func guard0(g *Guarded, ctx context.Context, f func(context.Context) error) error {
	_, err := guard(g, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, f(ctx) })
	return err
}

// Ping checks the database within the operation timeout.
func (g *Guarded) Ping(ctx context.Context) error { return guard0(g, ctx, g.Store.Ping) }

// CreateWorkspace implements store.Store.
func (g *Guarded) CreateWorkspace(ctx context.Context, in store.NewWorkspace) (store.Workspace, int64, error) {
	var rev int64
	w, err := guard(g, ctx, func(ctx context.Context) (w store.Workspace, err error) {
		w, rev, err = g.Store.CreateWorkspace(ctx, in)
		return w, err
	})
	return w, rev, err
}

// GetWorkspace implements store.Store.
func (g *Guarded) GetWorkspace(ctx context.Context, name string) (store.Workspace, error) {
	return guard(g, ctx, func(ctx context.Context) (store.Workspace, error) { return g.Store.GetWorkspace(ctx, name) })
}

// ListWorkspaces implements store.Store.
func (g *Guarded) ListWorkspaces(ctx context.Context, opts store.ListOptions, vis *store.Visibility) (store.Page[store.Workspace], error) {
	return guard(g, ctx, func(ctx context.Context) (store.Page[store.Workspace], error) {
		return g.Store.ListWorkspaces(ctx, opts, vis)
	})
}

// UpdateWorkspace implements store.Store.
func (g *Guarded) UpdateWorkspace(ctx context.Context, name, description string, by store.Actor) (store.Workspace, error) {
	return guard(g, ctx, func(ctx context.Context) (store.Workspace, error) {
		return g.Store.UpdateWorkspace(ctx, name, description, by)
	})
}

// DeleteWorkspace implements store.Store.
func (g *Guarded) DeleteWorkspace(ctx context.Context, name string, by store.Actor) (store.Deleted, error) {
	return guard(g, ctx, func(ctx context.Context) (store.Deleted, error) { return g.Store.DeleteWorkspace(ctx, name, by) })
}

// ListMembers implements store.Store.
func (g *Guarded) ListMembers(ctx context.Context, workspace string) ([]store.Member, error) {
	return guard(g, ctx, func(ctx context.Context) ([]store.Member, error) { return g.Store.ListMembers(ctx, workspace) })
}

// AddMember implements store.Store.
func (g *Guarded) AddMember(ctx context.Context, workspace, principal string, roles []string, by string) (store.MemberChange, error) {
	return guard(g, ctx, func(ctx context.Context) (store.MemberChange, error) {
		return g.Store.AddMember(ctx, workspace, principal, roles, by)
	})
}

// SetMemberRoles implements store.Store.
func (g *Guarded) SetMemberRoles(ctx context.Context, workspace, principal string, roles []string, by string) (store.MemberChange, error) {
	return guard(g, ctx, func(ctx context.Context) (store.MemberChange, error) {
		return g.Store.SetMemberRoles(ctx, workspace, principal, roles, by)
	})
}

// RemoveMember implements store.Store.
func (g *Guarded) RemoveMember(ctx context.Context, workspace, principal string) (store.Deleted, error) {
	return guard(g, ctx, func(ctx context.Context) (store.Deleted, error) {
		return g.Store.RemoveMember(ctx, workspace, principal)
	})
}

// CreateRoleBinding implements store.Store.
func (g *Guarded) CreateRoleBinding(ctx context.Context, in store.NewRoleBinding) (store.RoleBinding, error) {
	return guard(g, ctx, func(ctx context.Context) (store.RoleBinding, error) { return g.Store.CreateRoleBinding(ctx, in) })
}

// GetRoleBinding implements store.Store.
func (g *Guarded) GetRoleBinding(ctx context.Context, name string) (store.RoleBinding, error) {
	return guard(g, ctx, func(ctx context.Context) (store.RoleBinding, error) { return g.Store.GetRoleBinding(ctx, name) })
}

// ListRoleBindings implements store.Store.
func (g *Guarded) ListRoleBindings(ctx context.Context, opts store.ListOptions) (store.Page[store.RoleBinding], error) {
	return guard(g, ctx, func(ctx context.Context) (store.Page[store.RoleBinding], error) {
		return g.Store.ListRoleBindings(ctx, opts)
	})
}

// RevokeRoleBinding implements store.Store.
func (g *Guarded) RevokeRoleBinding(ctx context.Context, name string) (store.Deleted, error) {
	return guard(g, ctx, func(ctx context.Context) (store.Deleted, error) { return g.Store.RevokeRoleBinding(ctx, name) })
}

// BindingChanges implements store.Store.
func (g *Guarded) BindingChanges(ctx context.Context, after int64) (store.PolicyBindings, error) {
	return guard(g, ctx, func(ctx context.Context) (store.PolicyBindings, error) { return g.Store.BindingChanges(ctx, after) })
}

// PolicyRevision implements store.Store.
func (g *Guarded) PolicyRevision(ctx context.Context) (int64, error) {
	return guard(g, ctx, g.Store.PolicyRevision)
}

// CreateProject implements store.Store.
func (g *Guarded) CreateProject(ctx context.Context, in store.NewProject) (store.Project, error) {
	return guard(g, ctx, func(ctx context.Context) (store.Project, error) { return g.Store.CreateProject(ctx, in) })
}

// GetProject implements store.Store.
func (g *Guarded) GetProject(ctx context.Context, workspace, name string) (store.Project, error) {
	return guard(g, ctx, func(ctx context.Context) (store.Project, error) { return g.Store.GetProject(ctx, workspace, name) })
}

// ListProjects implements store.Store.
func (g *Guarded) ListProjects(ctx context.Context, workspace string, opts store.ListOptions) (store.Page[store.Project], error) {
	return guard(g, ctx, func(ctx context.Context) (store.Page[store.Project], error) {
		return g.Store.ListProjects(ctx, workspace, opts)
	})
}

// UpdateProject implements store.Store.
func (g *Guarded) UpdateProject(ctx context.Context, workspace, name, description string, by store.Actor) (store.Project, error) {
	return guard(g, ctx, func(ctx context.Context) (store.Project, error) {
		return g.Store.UpdateProject(ctx, workspace, name, description, by)
	})
}

// DeleteProject implements store.Store.
func (g *Guarded) DeleteProject(ctx context.Context, workspace, name string) (store.Deleted, error) {
	return guard(g, ctx, func(ctx context.Context) (store.Deleted, error) { return g.Store.DeleteProject(ctx, workspace, name) })
}

// CreateEntity implements store.Store.
func (g *Guarded) CreateEntity(ctx context.Context, in store.NewEntity) (store.Entity, error) {
	return guard(g, ctx, func(ctx context.Context) (store.Entity, error) { return g.Store.CreateEntity(ctx, in) })
}

// GetEntity implements store.Store.
func (g *Guarded) GetEntity(ctx context.Context, key store.EntityKey) (store.Entity, error) {
	return guard(g, ctx, func(ctx context.Context) (store.Entity, error) { return g.Store.GetEntity(ctx, key) })
}

// GetEntityByID implements store.Store.
func (g *Guarded) GetEntityByID(ctx context.Context, id string) (store.Entity, error) {
	return guard(g, ctx, func(ctx context.Context) (store.Entity, error) { return g.Store.GetEntityByID(ctx, id) })
}

// ListEntities implements store.Store.
func (g *Guarded) ListEntities(ctx context.Context, workspace, entityType string, opts store.ListOptions, vis *store.Visibility) (store.Page[store.Entity], error) {
	return guard(g, ctx, func(ctx context.Context) (store.Page[store.Entity], error) {
		return g.Store.ListEntities(ctx, workspace, entityType, opts, vis)
	})
}

// UpdateEntity implements store.Store.
func (g *Guarded) UpdateEntity(ctx context.Context, in store.EntityUpdate) (store.Entity, error) {
	return guard(g, ctx, func(ctx context.Context) (store.Entity, error) { return g.Store.UpdateEntity(ctx, in) })
}

// DeleteEntity implements store.Store.
func (g *Guarded) DeleteEntity(ctx context.Context, key store.EntityKey) (store.Deleted, error) {
	return guard(g, ctx, func(ctx context.Context) (store.Deleted, error) { return g.Store.DeleteEntity(ctx, key) })
}

// RecordLastSeen implements store.Store.
func (g *Guarded) RecordLastSeen(ctx context.Context, seen []store.Sighting) error {
	return guard0(g, ctx, func(ctx context.Context) error { return g.Store.RecordLastSeen(ctx, seen) })
}

// LastSeen implements store.Store.
func (g *Guarded) LastSeen(ctx context.Context, principals []string) (map[string]store.Timestamp, error) {
	return guard(g, ctx, func(ctx context.Context) (map[string]store.Timestamp, error) {
		return g.Store.LastSeen(ctx, principals)
	})
}

// CreateAccessKey implements store.Store.
func (g *Guarded) CreateAccessKey(ctx context.Context, k store.AccessKey) (store.AccessKey, error) {
	return guard(g, ctx, func(ctx context.Context) (store.AccessKey, error) { return g.Store.CreateAccessKey(ctx, k) })
}

// GetAccessKey implements store.Store.
func (g *Guarded) GetAccessKey(ctx context.Context, jti string) (store.AccessKey, error) {
	return guard(g, ctx, func(ctx context.Context) (store.AccessKey, error) { return g.Store.GetAccessKey(ctx, jti) })
}

// ListAccessKeys implements store.Store.
func (g *Guarded) ListAccessKeys(ctx context.Context, f store.AccessKeyFilter) ([]store.AccessKey, bool, error) {
	var more bool
	keys, err := guard(g, ctx, func(ctx context.Context) (keys []store.AccessKey, err error) {
		keys, more, err = g.Store.ListAccessKeys(ctx, f)
		return keys, err
	})
	return keys, more, err
}

// SetAccessKeyStatus implements store.Store.
func (g *Guarded) SetAccessKeyStatus(ctx context.Context, jti string, to store.AccessKeyStatus, now time.Time) (store.AccessKey, bool, error) {
	var changed bool
	k, err := guard(g, ctx, func(ctx context.Context) (k store.AccessKey, err error) {
		k, changed, err = g.Store.SetAccessKeyStatus(ctx, jti, to, now)
		return k, err
	})
	return k, changed, err
}

// RotateAccessKey implements store.Store.
func (g *Guarded) RotateAccessKey(ctx context.Context, jti string, graceUntil time.Time, next store.AccessKey, now time.Time) (store.AccessKey, store.AccessKey, error) {
	var created store.AccessKey
	prev, err := guard(g, ctx, func(ctx context.Context) (prev store.AccessKey, err error) {
		prev, created, err = g.Store.RotateAccessKey(ctx, jti, graceUntil, next, now)
		return prev, err
	})
	return prev, created, err
}

// RecordAccessKeyUse implements store.Store.
func (g *Guarded) RecordAccessKeyUse(ctx context.Context, uses []store.AccessKeyUse) error {
	return guard0(g, ctx, func(ctx context.Context) error { return g.Store.RecordAccessKeyUse(ctx, uses) })
}

// ListAuditEvents implements store.Store.
func (g *Guarded) ListAuditEvents(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, bool, error) {
	var more bool
	events, err := guard(g, ctx, func(ctx context.Context) (events []store.AuditEvent, err error) {
		events, more, err = g.Store.ListAuditEvents(ctx, f)
		return events, err
	})
	return events, more, err
}

// PruneAuditEvents implements store.Store.
func (g *Guarded) PruneAuditEvents(ctx context.Context, before time.Time) (int64, error) {
	return guard(g, ctx, func(ctx context.Context) (int64, error) { return g.Store.PruneAuditEvents(ctx, before) })
}

// The methods below are not on a request's path: the change feed and the
// full policy loads run as long as they need under their caller's
// context, seeding runs once at start, and Close ends the store. They
// are passed through unchanged.

// WatchPolicy implements store.ChangeFeed.
func (g *Guarded) WatchPolicy(ctx context.Context, emit func(store.PolicyEvent)) error {
	return g.Store.WatchPolicy(ctx, emit)
}

// ActiveBindings implements store.Store.
func (g *Guarded) ActiveBindings(ctx context.Context) (store.PolicyBindings, error) {
	return g.Store.ActiveBindings(ctx)
}

// ScanActiveBindings implements store.Store.
func (g *Guarded) ScanActiveBindings(ctx context.Context, fn func(principal, workspace, role string) error) (int64, error) {
	return g.Store.ScanActiveBindings(ctx, fn)
}

// EnsureBuiltins implements store.Store.
func (g *Guarded) EnsureBuiltins(ctx context.Context, seed store.Seed) error {
	return g.Store.EnsureBuiltins(ctx, seed)
}

// Close implements store.Store.
func (g *Guarded) Close() error { return g.Store.Close() }
