package store

import (
	"context"
	"encoding/json"
	"time"
)

// Audit actions: the kinds of access change the store records. Each is
// written by the store method that makes the change, in the same
// transaction, so a change and its event commit together or not at all.
const (
	AuditMemberCreate       = "member.create"
	AuditMemberUpdate       = "member.update"
	AuditMemberDelete       = "member.delete"
	AuditRoleBindingCreate  = "role_binding.create"
	AuditRoleBindingDelete  = "role_binding.delete"
	AuditWorkspaceCreate    = "workspace.create"
	AuditWorkspaceDelete    = "workspace.delete"
	AuditAccessKeyCreate    = "access_key.create"
	AuditAccessKeySuspend   = "access_key.suspend"
	AuditAccessKeyUnsuspend = "access_key.unsuspend"
	AuditAccessKeyRotate    = "access_key.rotate"
	AuditAccessKeyRevoke    = "access_key.revoke"
)

// AuditSystemActor is the actor of changes made without a caller in the
// context: the built-ins and seed bindings applied at start.
const AuditSystemActor = "system"

// AuditActor is who makes the changes of a request: the principal, the
// user it acts for (if any) and the request id. The API puts it into the
// request's context once the caller is identified; store writes read it
// with AuditActorFrom.
type AuditActor struct {
	Principal  string
	OnBehalfOf string
	RequestID  string
}

// AuditActorKey is the key of the audit actor in a context:
// WithAuditActor uses it, and a context that carries a request's state
// itself (the API's request context) answers it with an AuditActor.
type AuditActorKey struct{}

// WithAuditActor returns ctx carrying a, the actor of the audit events of
// every store write made with it.
func WithAuditActor(ctx context.Context, a AuditActor) context.Context {
	return context.WithValue(ctx, AuditActorKey{}, a)
}

// AuditActorFrom returns the actor ctx carries (WithAuditActor) and
// whether there is one.
func AuditActorFrom(ctx context.Context) (AuditActor, bool) {
	a, ok := ctx.Value(AuditActorKey{}).(AuditActor)
	return a, ok
}

// AuditEvent is one recorded access change. Before and After are the
// changed entity's relevant state as JSON (null for a creation's Before
// and a deletion's After); they never hold a token or secret.
type AuditEvent struct {
	ID         string          `json:"id"`
	OccurredAt Timestamp       `json:"occurred_at"`
	Actor      string          `json:"actor"`
	OnBehalfOf *string         `json:"on_behalf_of"`
	RequestID  *string         `json:"request_id"`
	Action     string          `json:"action"`
	Workspace  *string         `json:"workspace"`
	Target     string          `json:"target"`
	Before     json.RawMessage `json:"before"`
	After      json.RawMessage `json:"after"`
}

// AuditFilter selects the events of ListAuditEvents, newest first.
// Workspace nil means every workspace (and events of none); Principal, when
// set, matches the actor or the target; Since is inclusive, Until
// exclusive. Page starts at 1; PageSize is at least 1.
type AuditFilter struct {
	Workspace      *string
	Principal      string
	Since, Until   *time.Time
	Page, PageSize int
}

// The state recorded in Before and After, per kind of target.

// AuditMemberState is a member's roles in a workspace.
type AuditMemberState struct {
	Roles []string `json:"roles"`
}

// AuditBindingState is a role binding.
type AuditBindingState struct {
	Principal string `json:"principal"`
	Workspace string `json:"workspace"`
	Role      string `json:"role"`
	GrantedBy string `json:"granted_by"`
}

// AuditWorkspaceState is a workspace; on deletion, RevokedBindings lists
// the bindings the deletion revoked.
type AuditWorkspaceState struct {
	Name            string              `json:"name"`
	Description     string              `json:"description"`
	RevokedBindings []AuditBindingState `json:"revoked_bindings,omitempty"`
}

// AuditAccessKeyState is an access key's metadata (never its token).
type AuditAccessKeyState struct {
	Name                 string          `json:"name"`
	Principal            string          `json:"principal"`
	EntityType           string          `json:"entity_type"`
	Status               AccessKeyStatus `json:"status"`
	Scopes               []string        `json:"scopes"`
	ExpiresAt            *Timestamp      `json:"expires_at"`
	GracePeriodExpiresAt *Timestamp      `json:"grace_period_expires_at,omitempty"`
	ReplacedBy           string          `json:"replaced_by,omitempty"`
}

// AccessKeyAuditState is the recorded state of k.
func AccessKeyAuditState(k AccessKey) AuditAccessKeyState {
	st := AuditAccessKeyState{Name: k.Name, Principal: k.Principal, EntityType: k.EntityType, Status: k.Status,
		Scopes: k.Scopes, ReplacedBy: k.ReplacedBy}
	if k.ExpiresAt != nil {
		t := NewTimestamp(*k.ExpiresAt)
		st.ExpiresAt = &t
	}
	if k.GracePeriodExpiresAt != nil {
		t := NewTimestamp(*k.GracePeriodExpiresAt)
		st.GracePeriodExpiresAt = &t
	}
	return st
}
