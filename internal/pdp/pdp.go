// Package pdp is the one door to authorization decisions. Every caller —
// the request middleware, the gateway callout, the PDP HTTP entrypoints,
// self-check, list visibility and the role-binding admin check — asks a
// DecisionPoint, so replacing the provider (the embedded evaluator today,
// an external OPA next) changes every decision and nothing can bypass it.
//
// A DecisionPoint that cannot answer returns an error; callers must treat
// any error as a deny (fail closed). Errors are ErrUnavailable, ErrTimeout
// or ErrBadAnswer (tested with errors.Is); Failure classifies any other
// error as one of them, which the edge maps to 503, 504 and 502.
package pdp

import (
	"context"
	"errors"
	"fmt"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/store"
)

// DecisionPoint answers the policy's questions (authz.md "PDP entrypoints"
// plus list visibility).
type DecisionPoint interface {
	// Allow is the allow entrypoint: may this principal send this request?
	Allow(ctx context.Context, in authz.Input) (authz.Decision, error)
	// HasPermissions is the has_permissions entrypoint.
	HasPermissions(ctx context.Context, in authz.PermissionsInput) (bool, error)
	// HasRole is the has_role entrypoint: the role is bound directly in the
	// workspace to the principal id, email or a group.
	HasRole(ctx context.Context, in authz.RoleInput) (bool, error)
	// VisibleWorkspaces is the workspaces in which one of the subject's ids
	// (principal id, email, groups) or "*" holds an active binding; All
	// for a PlatformAdmin or a service principal (api.md GET /workspaces).
	VisibleWorkspaces(ctx context.Context, s authz.Subject) (Visible, error)
}

// Visible is a set of visible workspaces: All, or exactly Workspaces.
type Visible = authz.Visible

// The three ways a decision can fail (authz.md "Failure mapping").
var (
	// ErrUnavailable: no decision can be made (not loaded yet, connection
	// refused); 503 pdp_unavailable.
	ErrUnavailable = errors.New("policy decision point unavailable")
	// ErrTimeout: the decision did not come in time; 504 pdp_timeout.
	ErrTimeout = errors.New("policy decision point timed out")
	// ErrBadAnswer: an answer came but cannot be used (non-2xx,
	// unparsable, an evaluator error); 502 pdp_error.
	ErrBadAnswer = errors.New("policy decision point gave no usable answer")
)

// Failure returns the kind of a decision error: ErrTimeout for a timeout
// (including an expired context deadline), ErrUnavailable when the
// provider is unavailable, else ErrBadAnswer. Nil stays nil.
func Failure(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return ErrTimeout
	case errors.Is(err, ErrUnavailable):
		return ErrUnavailable
	}
	return ErrBadAnswer
}

// IsPlatformAdmin asks whether s holds PlatformAdmin in the system
// workspace: has_role over its principal id, email and groups, which is
// exactly the policy's admin rule.
func IsPlatformAdmin(ctx context.Context, dp DecisionPoint, s authz.Subject) (bool, error) {
	return dp.HasRole(ctx, authz.RoleInput{PrincipalID: s.PrincipalID, PrincipalEmail: s.Email,
		PrincipalGroups: s.Groups, Workspace: store.SystemWorkspace, Role: authz.RolePlatformAdmin})
}

// Subject is the policy's view of a principal (nil: anonymous, no ids).
func Subject(p *authn.Principal) authz.Subject {
	if p == nil {
		return authz.Subject{}
	}
	return authz.Subject{PrincipalID: p.ID, Email: p.Email, Groups: p.Groups}
}

// RequestInput is the allow input for principal p (nil: anonymous)
// sending method and path, with p's scopes and on-behalf-of user.
func RequestInput(p *authn.Principal, method, path string) authz.Input {
	in := authz.Input{Method: method, Path: path}
	if p != nil {
		in.PrincipalID, in.PrincipalEmail, in.PrincipalGroups, in.Scopes = p.ID, p.Email, p.Groups, p.Scopes
		if p.OnBehalfOf != nil {
			in.OnBehalfOf = p.OnBehalfOf.ID
		}
	}
	return in
}

// Embedded is the decision point of the embedded evaluator: unavailable
// until the engine has loaded bindings, then the engine's answers.
type Embedded struct{ engine *authz.Engine }

var _ DecisionPoint = (*Embedded)(nil)

// NewEmbedded wraps the engine.
func NewEmbedded(e *authz.Engine) *Embedded { return &Embedded{engine: e} }

// ready is ErrUnavailable before the first load; an expired or cancelled
// context is honoured like a remote provider would.
func (p *Embedded) ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", ErrTimeout, err)
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !p.engine.Loaded() {
		return fmt.Errorf("%w: role bindings not loaded yet", ErrUnavailable)
	}
	return nil
}

// Allow implements DecisionPoint.
func (p *Embedded) Allow(ctx context.Context, in authz.Input) (authz.Decision, error) {
	if err := p.ready(ctx); err != nil {
		return authz.Decision{}, err
	}
	return p.engine.Allow(in), nil
}

// AllowRepeated is Allow through the engine's memo of answers to
// repeated questions (authz.Engine.AllowRepeated); see
// ForRepeatedQuestions.
func (p *Embedded) AllowRepeated(ctx context.Context, in authz.Input) (authz.Decision, error) {
	if err := p.ready(ctx); err != nil {
		return authz.Decision{}, err
	}
	return p.engine.AllowRepeated(in), nil
}

// repeater is a decision point that keeps the answers it gives to
// questions asked again and again until its data changes.
type repeater interface {
	AllowRepeated(ctx context.Context, in authz.Input) (authz.Decision, error)
}

// ForRepeatedQuestions is dp for questions that recur with the same input,
// such as a caller's right to call an API endpoint: its Allow is dp's
// AllowRepeated when dp has one (the embedded evaluator), else dp's own
// Allow. The answers are the same either way.
func ForRepeatedQuestions(dp DecisionPoint) DecisionPoint {
	if r, ok := dp.(repeater); ok {
		return repeated{DecisionPoint: dp, r: r}
	}
	return dp
}

type repeated struct {
	DecisionPoint
	r repeater
}

func (d repeated) Allow(ctx context.Context, in authz.Input) (authz.Decision, error) {
	return d.r.AllowRepeated(ctx, in)
}

// HasPermissions implements DecisionPoint.
func (p *Embedded) HasPermissions(ctx context.Context, in authz.PermissionsInput) (bool, error) {
	if err := p.ready(ctx); err != nil {
		return false, err
	}
	return p.engine.HasPermissions(in), nil
}

// HasRole implements DecisionPoint.
func (p *Embedded) HasRole(ctx context.Context, in authz.RoleInput) (bool, error) {
	if err := p.ready(ctx); err != nil {
		return false, err
	}
	return p.engine.HasRole(in), nil
}

// VisibleWorkspaces implements DecisionPoint.
func (p *Embedded) VisibleWorkspaces(ctx context.Context, s authz.Subject) (Visible, error) {
	if err := p.ready(ctx); err != nil {
		return Visible{}, err
	}
	return p.engine.VisibleWorkspaces(s), nil
}
