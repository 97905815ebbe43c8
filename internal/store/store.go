// Package store defines the entity store: workspaces, their members (role
// bindings), projects and generic entities, behind one interface that every
// backend implements and one conformance suite (package storetest) checks.
package store

import (
	"context"
	"encoding/json"
	"time"
)

// Built-in workspaces, created at every start and never deletable.
const (
	DefaultWorkspace = "default"
	SystemWorkspace  = "system"
)

// AllWorkspaces is the workspace path value meaning "every workspace" in
// entity list requests.
const AllWorkspaces = "-"

// Workspace is the only authorization boundary of the platform.
type Workspace struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Audit
}

// Audit holds the creation and update stamps shared by every resource.
type Audit struct {
	CreatedAt Timestamp `json:"created_at"`
	CreatedBy *string   `json:"created_by"`
	UpdatedAt Timestamp `json:"updated_at"`
	UpdatedBy *string   `json:"updated_by"`
}

// Project groups entities inside a workspace.
type Project struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Workspace   string `json:"workspace"`
	Description string `json:"description"`
	Audit
}

// Entity is a generic typed document stored in a workspace.
type Entity struct {
	ID         string          `json:"id"`
	Workspace  string          `json:"workspace"`
	EntityType string          `json:"entity_type"`
	Name       string          `json:"name"`
	Parent     *string         `json:"parent"`
	Project    *string         `json:"project"`
	Data       json.RawMessage `json:"data"`
	Audit
	DBVersion int64 `json:"db_version"`
}

// RoleBinding grants a role to a principal in a workspace until revoked.
type RoleBinding struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Principal string     `json:"principal"`
	Workspace string     `json:"workspace"`
	Role      string     `json:"role"`
	GrantedBy string     `json:"granted_by"`
	GrantedAt Timestamp  `json:"granted_at"`
	RevokedAt *Timestamp `json:"revoked_at"`
	// Revision is the policy revision of the row's last change.
	Revision int64 `json:"-"`
}

// Member is a view of a workspace's active bindings grouped by principal.
type Member struct {
	Principal string    `json:"principal"`
	Roles     []string  `json:"roles"`
	GrantedAt Timestamp `json:"granted_at"`
	GrantedBy string    `json:"granted_by"`
}

// Deleted describes a completed deletion (or soft revocation).
type Deleted struct {
	ID        string    `json:"id"`
	DeletedAt Timestamp `json:"deleted_at"`
	// Revision is the policy revision the deletion produced (0 when it
	// changed no binding).
	Revision int64 `json:"-"`
}

// Actor is the principal performing a write, recorded in audit columns
// and as granted_by. Nil means anonymous (auth disabled).
type Actor = *string

// NewWorkspace is the input of CreateWorkspace.
type NewWorkspace struct {
	Name        string
	Description string
	By          Actor
	// Admin, when not empty, receives the Admin role on the new workspace
	// in the same transaction.
	Admin string
}

// NewProject is the input of CreateProject.
type NewProject struct {
	Workspace   string
	Name        string
	Description string
	By          Actor
}

// EntityKey identifies an entity by name. Parent nil means the
// parent-less entity.
type EntityKey struct {
	Workspace  string
	EntityType string
	Name       string
	Parent     *string
}

// NewEntity is the input of CreateEntity.
type NewEntity struct {
	EntityKey
	Project *string
	Data    json.RawMessage
	By      Actor
}

// EntityUpdate is the input of UpdateEntity. Data replaces the stored
// document; a non-nil DBVersion must equal the stored one.
type EntityUpdate struct {
	EntityKey
	Data      json.RawMessage
	Project   *string
	DBVersion *int64
	By        Actor
}

// NewRoleBinding is the input of CreateRoleBinding.
type NewRoleBinding struct {
	Principal string
	Workspace string
	Role      string
	By        string
}

// MemberChange is the result of a member write.
type MemberChange struct {
	Member Member
	// Revision is the policy revision the write produced (0 if nothing changed).
	Revision int64
}

// Seed lists the bindings created idempotently at start. A seed binding
// is skipped when a binding with its name exists, active or revoked.
type Seed struct {
	Bindings []SeedBinding
}

// SeedBinding is one row of the seed.
type SeedBinding struct {
	Name      string
	Principal string
	Workspace string
	Role      string
}

// PolicyBindings is the set of active bindings at a policy revision
// (ActiveBindings), or the bindings changed after revision Since up to
// Revision (BindingChanges).
type PolicyBindings struct {
	// Since is the revision after which changes were read (0 for a full
	// set).
	Since    int64
	Revision int64
	Bindings []RoleBinding
}

// PolicyEvent is one notice of the policy change feed.
type PolicyEvent struct {
	// Revision is a committed policy revision (0 when the event only
	// carries Resync or Err).
	Revision int64
	// Resync means notices may have been missed before this one (the feed
	// has just started or reconnected): the receiver must catch up from
	// the store rather than trust the notices it has.
	Resync bool
	// Err means the feed is interrupted: no notices arrive until the next
	// Resync.
	Err error
	// AccessKey is the jti of an access key whose state changed (status
	// change, revocation or rotation). Such an event carries nothing else:
	// it does not change the policy revision.
	AccessKey string
}

// ChangeFeed publishes committed policy changes and access-key state
// changes.
type ChangeFeed interface {
	// WatchPolicy calls emit for every committed change of the policy
	// revision and every committed access-key state change (an event with
	// AccessKey set) — this process's commits right after they commit and,
	// with a database shared by replicas, every other replica's — until
	// ctx ends, then returns ctx's error. The first event is a Resync.
	// After a Resync, key changes may have been missed like revisions:
	// receivers that cache keys must drop their cache. emit is called
	// from the committing goroutine or the feed's own goroutine and must
	// not block.
	WatchPolicy(ctx context.Context, emit func(PolicyEvent)) error
}

// Sighting is one principal's authenticated request time, as the
// last-seen recorder hands it to RecordLastSeen.
type Sighting struct {
	Principal string
	At        Timestamp
}

// Visibility restricts a list to the named workspaces. The policy decision
// point computes the set; the store only filters by it (before counting
// and paging, so totals stay exact). A nil *Visibility means no
// restriction; an empty Workspaces shows nothing.
type Visibility struct {
	Workspaces []string
}

// Store is the persistence interface of the platform. Every method is safe
// for concurrent use. Errors are *Error values (see errors.go) for expected
// outcomes such as not found or conflicts.
type Store interface {
	CreateWorkspace(ctx context.Context, in NewWorkspace) (Workspace, int64, error)
	GetWorkspace(ctx context.Context, name string) (Workspace, error)
	ListWorkspaces(ctx context.Context, opts ListOptions, vis *Visibility) (Page[Workspace], error)
	UpdateWorkspace(ctx context.Context, name, description string, by Actor) (Workspace, error)
	DeleteWorkspace(ctx context.Context, name string, by Actor) (Deleted, error)

	ListMembers(ctx context.Context, workspace string) ([]Member, error)
	AddMember(ctx context.Context, workspace, principal string, roles []string, by string) (MemberChange, error)
	SetMemberRoles(ctx context.Context, workspace, principal string, roles []string, by string) (MemberChange, error)
	RemoveMember(ctx context.Context, workspace, principal string) (Deleted, error)

	CreateRoleBinding(ctx context.Context, in NewRoleBinding) (RoleBinding, error)
	GetRoleBinding(ctx context.Context, name string) (RoleBinding, error)
	ListRoleBindings(ctx context.Context, opts ListOptions) (Page[RoleBinding], error)
	RevokeRoleBinding(ctx context.Context, name string) (Deleted, error)
	// ActiveBindings returns every active binding and the current revision,
	// read in one consistent snapshot.
	ActiveBindings(ctx context.Context) (PolicyBindings, error)
	// BindingChanges returns the bindings (active or revoked) whose last
	// change has a revision greater than after, and the current revision.
	BindingChanges(ctx context.Context, after int64) (PolicyBindings, error)
	// ScanActiveBindings calls fn with the principal, workspace and role
	// of every active binding and returns the policy revision, all read in
	// one consistent snapshot, without materializing the bindings. Rows
	// come in no particular order (backends group them by principal when
	// they can do so cheaply); fn may keep the strings. An error from fn
	// stops the scan and is returned as is.
	ScanActiveBindings(ctx context.Context, fn func(principal, workspace, role string) error) (revision int64, err error)

	CreateProject(ctx context.Context, in NewProject) (Project, error)
	GetProject(ctx context.Context, workspace, name string) (Project, error)
	ListProjects(ctx context.Context, workspace string, opts ListOptions) (Page[Project], error)
	UpdateProject(ctx context.Context, workspace, name, description string, by Actor) (Project, error)
	DeleteProject(ctx context.Context, workspace, name string) (Deleted, error)

	CreateEntity(ctx context.Context, in NewEntity) (Entity, error)
	GetEntity(ctx context.Context, key EntityKey) (Entity, error)
	GetEntityByID(ctx context.Context, id string) (Entity, error)
	// ListEntities lists entities of one type in a workspace, or in every
	// workspace when workspace is AllWorkspaces (restricted to vis).
	ListEntities(ctx context.Context, workspace, entityType string, opts ListOptions, vis *Visibility) (Page[Entity], error)
	UpdateEntity(ctx context.Context, in EntityUpdate) (Entity, error)
	DeleteEntity(ctx context.Context, key EntityKey) (Deleted, error)

	// RecordLastSeen stores the last-seen time of each principal of seen
	// in one transaction, keeping the later time: a time older than the
	// stored one (another replica's, a delayed batch) never moves it back.
	// A principal listed twice keeps its latest time. Empty principals are
	// refused (400-class *Error) and nothing is written.
	RecordLastSeen(ctx context.Context, seen []Sighting) error
	// LastSeen returns the last-seen times of the given principals in one
	// query; principals never seen are absent from the map.
	LastSeen(ctx context.Context, principals []string) (map[string]Timestamp, error)

	// CreateAccessKey registers a new key (status ACTIVE; a zero
	// CreatedAt is the store's clock). An invalid key is refused with a
	// KindInvalid *Error, an existing jti with a KindConflict one.
	CreateAccessKey(ctx context.Context, k AccessKey) (AccessKey, error)
	// GetAccessKey returns a key by jti (KindNotFound when absent).
	GetAccessKey(ctx context.Context, jti string) (AccessKey, error)
	// ListAccessKeys returns one page of the keys f selects and whether
	// more pages follow.
	ListAccessKeys(ctx context.Context, f AccessKeyFilter) ([]AccessKey, bool, error)
	// SetAccessKeyStatus moves a key to status to: ACTIVE→SUSPENDED,
	// SUSPENDED→ACTIVE, and ACTIVE, SUSPENDED or ROTATING→REVOKED (which
	// sets RevokedAt to now). Asking for the current status, or
	// unsuspending a key that is expired at now, returns the key with
	// changed false and writes nothing. Any other transition fails with
	// ErrInvalidState. A change is announced on the change feed.
	SetAccessKeyStatus(ctx context.Context, jti string, to AccessKeyStatus, now time.Time) (AccessKey, bool, error)
	// RotateAccessKey atomically moves the key jti, which must be ACTIVE
	// and not expired at now (else ErrInvalidState), to ROTATING with
	// grace until graceUntil and ReplacedBy next.JTI, and creates next as
	// CreateAccessKey does. Either both happen or neither. The change is
	// announced on the change feed.
	RotateAccessKey(ctx context.Context, jti string, graceUntil time.Time, next AccessKey, now time.Time) (prev AccessKey, created AccessKey, err error)
	// RecordAccessKeyUse stores the last-used times of a batch of uses in
	// one transaction, only ever moving a key's time forward; unknown jtis
	// are ignored. It announces nothing.
	RecordAccessKeyUse(ctx context.Context, uses []AccessKeyUse) error

	// ListAuditEvents returns one page of the audit events f selects,
	// newest first, and whether more pages follow.
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, bool, error)
	// PruneAuditEvents deletes the events that occurred before before and
	// returns how many it deleted.
	PruneAuditEvents(ctx context.Context, before time.Time) (int64, error)

	// EnsureBuiltins creates the built-in workspaces if missing and applies
	// the seed bindings idempotently.
	EnsureBuiltins(ctx context.Context, seed Seed) error
	// PolicyRevision returns the current policy revision.
	PolicyRevision(ctx context.Context) (int64, error)
	ChangeFeed
	Ping(ctx context.Context) error
	Close() error
}

// Clock returns the current time; stores take one so tests control time.
type Clock func() time.Time
