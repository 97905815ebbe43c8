package pdp_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/store"
)

// ask puts every question to dp once and returns the errors.
func ask(ctx context.Context, dp pdp.DecisionPoint) []error {
	_, e1 := dp.Allow(ctx, authz.Input{PrincipalID: "a", Method: "GET", Path: "/apis/entities/v2/workspaces"})
	_, e2 := dp.HasPermissions(ctx, authz.PermissionsInput{PrincipalID: "a", Workspace: "default", Permissions: []string{"projects.read"}})
	_, e3 := dp.HasRole(ctx, authz.RoleInput{PrincipalID: "a", Workspace: "default", Role: "Editor"})
	_, e4 := dp.VisibleWorkspaces(ctx, authz.Subject{PrincipalID: "a"})
	return []error{e1, e2, e3, e4}
}

func TestEmbedded(t *testing.T) {
	e := authztest.StaticEngine(t)
	dp := pdp.NewEmbedded(e)
	ctx := context.Background()

	// Before the first load every question is unavailable.
	for i, err := range ask(ctx, dp) {
		if !errors.Is(err, pdp.ErrUnavailable) {
			t.Fatalf("question %d before load: %v", i, err)
		}
	}

	if err := e.Load(store.PolicyBindings{Revision: 1, Bindings: []store.RoleBinding{
		{ID: "1", Principal: "*", Workspace: "default", Role: "Editor", Revision: 1},
		{ID: "2", Principal: "alice", Workspace: "ml-team", Role: "Admin", Revision: 1},
		{ID: "3", Principal: "ops", Workspace: "system", Role: authz.RolePlatformAdmin, Revision: 1},
	}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for i, err := range ask(ctx, dp) {
		if err != nil {
			t.Fatalf("question %d after load: %v", i, err)
		}
	}
	d, _ := dp.Allow(ctx, authz.Input{PrincipalID: "alice", Method: "DELETE", Path: "/v2/workspaces/ml-team"})
	if d != (authz.Decision{Allowed: true, Reason: "permission_granted"}) {
		t.Fatalf("allow: %+v", d)
	}
	if ok, _ := dp.HasPermissions(ctx, authz.PermissionsInput{PrincipalID: "bob", Workspace: "ml-team", Permissions: []string{"projects.read"}}); ok {
		t.Fatal("has_permissions: bob reads ml-team")
	}
	if ok, _ := dp.HasRole(ctx, authz.RoleInput{PrincipalID: "alice", Workspace: "ml-team", Role: "Admin"}); !ok {
		t.Fatal("has_role: alice is no Admin")
	}
	if v, _ := dp.VisibleWorkspaces(ctx, authz.Subject{PrincipalID: "alice"}); !reflect.DeepEqual(v, pdp.Visible{Workspaces: []string{"default", "ml-team"}}) {
		t.Fatalf("visible: %+v", v)
	}
	for _, tc := range []struct {
		sub  authz.Subject
		want bool
	}{
		{authz.Subject{PrincipalID: "x", Groups: []string{"ops"}}, true},
		{authz.Subject{PrincipalID: "alice"}, false},
		{authz.Subject{}, false},
	} {
		if got, err := pdp.IsPlatformAdmin(ctx, dp, tc.sub); got != tc.want || err != nil {
			t.Fatalf("IsPlatformAdmin(%+v) = %v, %v", tc.sub, got, err)
		}
	}

	// A dead context is honoured: a deadline is a timeout, a cancellation unavailable.
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	for i, err := range ask(expired, dp) {
		if !errors.Is(err, pdp.ErrTimeout) {
			t.Fatalf("question %d with an expired deadline: %v", i, err)
		}
	}
	cancelled, cancel2 := context.WithCancel(ctx)
	cancel2()
	for i, err := range ask(cancelled, dp) {
		if !errors.Is(err, pdp.ErrUnavailable) {
			t.Fatalf("question %d with a cancelled context: %v", i, err)
		}
	}
}

func TestFailure(t *testing.T) {
	tests := []struct {
		err, want error
	}{
		{nil, nil},
		{pdp.ErrUnavailable, pdp.ErrUnavailable},
		{fmt.Errorf("dial: %w", pdp.ErrUnavailable), pdp.ErrUnavailable},
		{pdp.ErrTimeout, pdp.ErrTimeout},
		{fmt.Errorf("post: %w", context.DeadlineExceeded), pdp.ErrTimeout},
		{pdp.ErrBadAnswer, pdp.ErrBadAnswer},
		{errors.New("anything else"), pdp.ErrBadAnswer},
	}
	for _, tc := range tests {
		if got := pdp.Failure(tc.err); got != tc.want {
			t.Errorf("Failure(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestRequestInput(t *testing.T) {
	if got := pdp.RequestInput(nil, "GET", "/x"); !reflect.DeepEqual(got, authz.Input{Method: "GET", Path: "/x"}) {
		t.Fatalf("anonymous: %+v", got)
	}
	p := &authn.Principal{ID: "service:s", Email: "s@x.y", Groups: []string{"g"}, Scopes: []string{"platform:read"},
		OnBehalfOf: &authn.Principal{ID: "u1"}}
	want := authz.Input{PrincipalID: "service:s", PrincipalEmail: "s@x.y", PrincipalGroups: []string{"g"},
		Scopes: []string{"platform:read"}, OnBehalfOf: "u1", Method: "POST", Path: "/y"}
	if got := pdp.RequestInput(p, "POST", "/y"); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got := pdp.Subject(p); !reflect.DeepEqual(got, authz.Subject{PrincipalID: "service:s", Email: "s@x.y", Groups: []string{"g"}}) {
		t.Fatalf("subject %+v", got)
	}
}

// TestForRepeatedQuestions: the embedded evaluator answers repeated
// questions through its memo, with the same answers and the same refusal
// before the first load; a decision point without a memo is used as is.
func TestForRepeatedQuestions(t *testing.T) {
	e := authztest.StaticEngine(t)
	dp := pdp.NewEmbedded(e)
	rep := pdp.ForRepeatedQuestions(dp)
	if rep == pdp.DecisionPoint(dp) {
		t.Fatal("the embedded evaluator was not given its memo")
	}
	ctx := context.Background()
	in := authz.Input{PrincipalID: "alice", Method: "DELETE", Path: "/v2/workspaces/ml-team"}
	if _, err := rep.Allow(ctx, in); !errors.Is(err, pdp.ErrUnavailable) {
		t.Fatalf("before load: %v", err)
	}
	if err := e.Load(store.PolicyBindings{Revision: 1, Bindings: []store.RoleBinding{
		{ID: "2", Principal: "alice", Workspace: "ml-team", Role: "Admin", Revision: 1},
	}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if d, err := rep.Allow(ctx, in); err != nil || d != (authz.Decision{Allowed: true, Reason: "permission_granted"}) {
			t.Fatalf("after load: %+v, %v", d, err)
		}
	}
	if ok, err := rep.HasRole(ctx, authz.RoleInput{PrincipalID: "alice", Workspace: "ml-team", Role: "Admin"}); !ok || err != nil {
		t.Fatalf("has_role through the wrapper: %v, %v", ok, err)
	}
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if _, err := rep.Allow(expired, in); !errors.Is(err, pdp.ErrTimeout) {
		t.Fatalf("expired context: %v", err)
	}
	var other pdp.DecisionPoint = noMemo{dp}
	if got := pdp.ForRepeatedQuestions(other); got != other {
		t.Fatalf("a decision point without a memo was wrapped: %T", got)
	}
}

// noMemo hides the embedded evaluator's AllowRepeated.
type noMemo struct{ pdp.DecisionPoint }
