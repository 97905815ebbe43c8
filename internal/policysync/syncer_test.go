package policysync_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/health"
	"github.com/nmp-project/nmp/internal/metrics"
	"github.com/nmp-project/nmp/internal/policysync"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/testenv"
)

var ctx = context.Background()

// source wraps a real store: it can fail reads, drop change notices,
// inject feed events, hold full loads at a gate, and counts reads.
type source struct {
	store.Store
	failReads  atomic.Bool
	dropNotice atomic.Bool
	gate       atomic.Pointer[chan struct{}] // full loads wait on it when set
	loading    chan struct{}                 // a full load has read its data (when gated)

	full, changes, revisions atomic.Int64
	revisionCalls            chan struct{}

	mu   sync.Mutex
	emit func(store.PolicyEvent)
}

var errInjected = errors.New("injected read failure")

func newSource(st store.Store) *source {
	return &source{Store: st, loading: make(chan struct{}, 16), revisionCalls: make(chan struct{}, 1024)}
}

func (s *source) WatchPolicy(ctx context.Context, emit func(store.PolicyEvent)) error {
	s.mu.Lock()
	s.emit = emit
	s.mu.Unlock()
	return s.Store.WatchPolicy(ctx, func(ev store.PolicyEvent) {
		if ev.Revision != 0 && s.dropNotice.Load() {
			return
		}
		emit(ev)
	})
}

// inject sends a feed event as the store would.
func (s *source) inject(ev store.PolicyEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emit(ev)
}

func (s *source) ScanActiveBindings(ctx context.Context, fn func(principal, workspace, role string) error) (int64, error) {
	s.full.Add(1)
	if s.failReads.Load() {
		return 0, errInjected
	}
	rev, err := s.Store.ScanActiveBindings(ctx, fn)
	if g := s.gate.Load(); g != nil {
		s.loading <- struct{}{}
		<-*g
	}
	return rev, err
}

func (s *source) BindingChanges(ctx context.Context, after int64) (store.PolicyBindings, error) {
	if s.failReads.Load() {
		return store.PolicyBindings{}, errInjected
	}
	pb, err := s.Store.BindingChanges(ctx, after)
	s.changes.Add(1) // counted once read, so a count means a read that succeeded
	return pb, err
}

func (s *source) PolicyRevision(ctx context.Context) (int64, error) {
	s.revisions.Add(1)
	select {
	case s.revisionCalls <- struct{}{}:
	default:
	}
	if s.failReads.Load() {
		return 0, errInjected
	}
	return s.Store.PolicyRevision(ctx)
}

type fixture struct {
	path    string
	st      *sqlstore.Store
	src     *source
	engine  *authz.Engine
	syncer  *policysync.Syncer
	health  *health.State
	metrics *metrics.Metrics
	logs    *testenv.Buffer
}

// start opens a seeded SQLite store, primes a syncer on it and runs it
// until the test ends (checking that Run returns nil when stopped).
func start(t *testing.T, interval time.Duration) *fixture {
	t.Helper()
	f := open(t, interval)
	if err := f.syncer.Prime(ctx); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	return f
}

// open prepares the store and the syncer without loading or running it.
func open(t *testing.T, interval time.Duration) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := sqlstore.Open(ctx, sqlstore.Options{URL: "sqlite://" + path, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.Close(t, st) })
	if err := st.EnsureBuiltins(ctx, authz.Seed("root@example.com", "default")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateWorkspace(ctx, store.NewWorkspace{Name: "ml", Admin: "alice"}); err != nil {
		t.Fatal(err)
	}
	e := authztest.StaticEngine(t)
	f := &fixture{path: path, st: st, src: newSource(st), engine: e, health: health.New(policysync.HealthPolicy, policysync.HealthFeed),
		metrics: metrics.New(), logs: &testenv.Buffer{}}
	f.syncer = policysync.New(policysync.Options{Engine: e, Source: f.src, Interval: interval,
		BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(f.logs, nil)), Metrics: f.metrics, Health: f.health})
	return f
}

// run runs the syncer until the test ends and waits for it to be ready.
func (f *fixture) run(t *testing.T) {
	t.Helper()
	f.runNoWait(t)
	// The feed's first event is a Resync, answered by a catch-up (one
	// change read): wait for it, so that tests start from a quiet syncer.
	f.wait(t, "the feed to connect and the start-up catch-up", func(s policysync.Status) bool {
		return s.FeedErr == nil && f.ready() && f.src.changes.Load() >= 1
	})
}

func (f *fixture) runNoWait(t *testing.T) {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.syncer.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	})
}

func (f *fixture) ready() bool { ok, _ := f.health.Ready(); return ok }

func (f *fixture) wait(t *testing.T, what string, cond func(policysync.Status) bool) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := f.syncer.Wait(wctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v (status %+v)", what, err, f.syncer.Status())
	}
}

func (f *fixture) await(t *testing.T, rev int64) error {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return f.syncer.Await(actx, rev)
}

func (f *fixture) bobIsEditor() bool {
	return f.engine.Allow(authz.Input{PrincipalID: "bob", Method: "POST", Path: "/apis/entities/v2/workspaces/ml/projects"}).Allowed
}

func TestAwaitAppliesCommittedChanges(t *testing.T) {
	f := start(t, 0)
	ch, err := f.st.AddMember(ctx, "ml", "bob", []string{"Editor"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.await(t, ch.Revision); err != nil {
		t.Fatal(err)
	}
	if !f.bobIsEditor() {
		t.Fatal("granted role not applied when Await returned")
	}
	del, err := f.st.RemoveMember(ctx, "ml", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.await(t, del.Revision); err != nil {
		t.Fatal(err)
	}
	if f.bobIsEditor() {
		t.Fatal("revoked role still effective when Await returned")
	}
	if n := f.src.full.Load(); n != 1 {
		t.Fatalf("%d full loads; changes must be applied incrementally after the first", n)
	}
}

// TestFailedPropagationIsReportedAndRecovers: reads fail after a commit,
// so this process cannot apply it. Await must say so (never success),
// readiness fails naming the gap, the failure is counted on every
// attempt but logged once, and everything recovers by itself once reads
// work again — without another write or a safety-net tick.
func TestFailedPropagationIsReportedAndRecovers(t *testing.T) {
	f := start(t, 0)
	f.src.failReads.Store(true)
	ch, err := f.st.AddMember(ctx, "ml", "bob", []string{"Editor"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	err = f.await(t, ch.Revision)
	if !errors.Is(err, policysync.ErrPropagation) || !errors.Is(err, errInjected) {
		t.Fatalf("Await: %v, want ErrPropagation wrapping the cause", err)
	}
	if f.bobIsEditor() {
		t.Fatal("not applied, yet effective?")
	}
	ok, reasons := f.health.Ready()
	if ok || len(reasons) != 1 || !strings.Contains(reasons[0], "behind the store") || !strings.Contains(reasons[0], "committed") {
		t.Fatalf("readiness %v %q, want not ready with the gap", ok, reasons)
	}
	// Several retries happen (backoff 1-20 ms) ...
	f.wait(t, "three failed attempts", func(policysync.Status) bool {
		return testutil.ToFloat64(f.metrics.PolicySyncFailures) >= 3
	})
	// ... logged once.
	if n := strings.Count(f.logs.String(), "policy not in step with the store"); n != 1 {
		t.Fatalf("failure logged %d times, want once:\n%s", n, f.logs.String())
	}
	if !strings.Contains(f.logs.String(), "gap=1") {
		t.Fatalf("the log line must carry the revision gap:\n%s", f.logs.String())
	}
	f.src.failReads.Store(false)
	f.wait(t, "recovery", func(s policysync.Status) bool { return s.Err == nil && s.Applied >= ch.Revision })
	if !f.ready() || !f.bobIsEditor() {
		t.Fatalf("after recovery: ready %v, bob editor %v", f.ready(), f.bobIsEditor())
	}
	if err := f.await(t, ch.Revision); err != nil {
		t.Fatalf("Await after recovery: %v", err)
	}
	if !strings.Contains(f.logs.String(), "policy caught up with the store") {
		t.Fatalf("recovery not logged:\n%s", f.logs.String())
	}
}

// TestIdleSafetyNetReadsOnlyTheRevision: with nothing changing, each
// safety-net tick costs one revision read — no full load, no change read.
func TestIdleSafetyNetReadsOnlyTheRevision(t *testing.T) {
	f := start(t, time.Millisecond)
	full, changes := f.src.full.Load(), f.src.changes.Load()
	for range len(f.src.revisionCalls) {
		<-f.src.revisionCalls
	}
	for range 20 {
		select {
		case <-f.src.revisionCalls:
		case <-time.After(10 * time.Second):
			t.Fatal("the safety net does not run")
		}
	}
	if f.src.full.Load() != full || f.src.changes.Load() != changes {
		t.Fatalf("idle ticks read more than the revision: full loads %d → %d, change reads %d → %d",
			full, f.src.full.Load(), changes, f.src.changes.Load())
	}
}

// TestSafetyNetCatchesMissedChanges: a change whose notice was lost is
// applied at the next tick, incrementally, and counted.
func TestSafetyNetCatchesMissedChanges(t *testing.T) {
	f := start(t, 5*time.Millisecond)
	f.src.dropNotice.Store(true)
	ch, err := f.st.AddMember(ctx, "ml", "bob", []string{"Editor"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	f.wait(t, "the safety net", func(s policysync.Status) bool { return s.Applied >= ch.Revision })
	if !f.bobIsEditor() {
		t.Fatal("missed change not applied")
	}
	if got := testutil.ToFloat64(f.metrics.PolicyMissedChanges); got != 1 {
		t.Fatalf("missed changes counted %v, want 1", got)
	}
	if n := f.src.full.Load(); n != 1 {
		t.Fatalf("%d full loads; the catch-up must be incremental", n)
	}
}

// TestFeedInterruption: an interrupted feed fails readiness; changes
// committed meanwhile (their notices lost) are caught up by revision when
// the feed's Resync arrives, and readiness comes back.
func TestFeedInterruption(t *testing.T) {
	f := start(t, 0)
	f.src.inject(store.PolicyEvent{Err: errors.New("connection reset")})
	if ok, reasons := f.health.Ready(); ok || !strings.Contains(strings.Join(reasons, ";"), "change feed interrupted") {
		t.Fatalf("readiness %v %q", ok, reasons)
	}
	f.src.dropNotice.Store(true)
	ch, err := f.st.AddMember(ctx, "ml", "bob", []string{"Editor"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	f.src.dropNotice.Store(false)
	f.src.inject(store.PolicyEvent{Resync: true})
	f.wait(t, "the catch-up after the resync", func(s policysync.Status) bool { return s.Applied >= ch.Revision && f.ready() })
	if !f.bobIsEditor() {
		t.Fatal("change made while the feed was down not applied")
	}
	if got := testutil.ToFloat64(f.metrics.PolicyFeedInterruptions); got != 1 {
		t.Fatalf("interruptions %v, want 1", got)
	}
	if n := f.src.full.Load(); n != 1 {
		t.Fatalf("%d full loads; a resync catches up by revision", n)
	}
}

// TestSlowFullLoadRacingRevocation: a full load has read revision N and is
// slow to finish while bob's role is revoked (N+1). The syncer is the
// engine's only writer, so the revocation waits for the load and is then
// applied on top: when Await returns, bob is denied, and stays denied.
func TestSlowFullLoadRacingRevocation(t *testing.T) {
	f := open(t, time.Millisecond) // the safety net ticks all along
	if _, err := f.st.AddMember(ctx, "ml", "bob", []string{"Editor"}, "alice"); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	f.src.gate.Store(&gate)
	f.runNoWait(t)
	<-f.src.loading // the load has read revision N with bob as Editor
	f.src.gate.Store(nil)
	del, err := f.st.RemoveMember(ctx, "ml", "bob")
	if err != nil {
		t.Fatal(err)
	}
	awaited := make(chan error, 1)
	go func() { awaited <- f.await(t, del.Revision) }()
	close(gate) // the slow reload finishes after the revocation committed
	if err := <-awaited; err != nil {
		t.Fatal(err)
	}
	if f.bobIsEditor() {
		t.Fatal("the revoked role is effective after the revocation was reported applied")
	}
	if st := f.syncer.Status(); st.Applied != del.Revision {
		t.Fatalf("applied %d, want %d", st.Applied, del.Revision)
	}
}

// TestStoreBehindEngine: a store whose revision went back (a restored
// backup) is never followed back; readiness says why.
func TestStoreBehindEngine(t *testing.T) {
	f := start(t, time.Millisecond)
	if _, err := f.st.AddMember(ctx, "ml", "bob", []string{"Editor"}, "alice"); err != nil {
		t.Fatal(err)
	}
	f.wait(t, "the grant", func(s policysync.Status) bool { return s.Applied == s.Known && f.bobIsEditor() })
	// Roll the revision back by hand, as a restore would.
	db, err := sql.Open("sqlite", f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, db)
	if _, err := db.ExecContext(ctx, `UPDATE policy_state SET revision = 1`); err != nil {
		t.Fatal(err)
	}
	f.wait(t, "the safety net to notice", func(s policysync.Status) bool { return s.Err != nil })
	if ok, reasons := f.health.Ready(); ok || !strings.Contains(strings.Join(reasons, ";"), "older than this process") {
		t.Fatalf("readiness %v %q", ok, reasons)
	}
	if !f.bobIsEditor() {
		t.Fatal("the engine went back")
	}
}

// TestAccessKeyEventsIgnored: events naming an access key share the feed
// but are not policy changes: even one carrying a revision number moves
// nothing the syncer knows, and real access-key writes on the store leave
// the engine's revision and the next binding change's propagation as they
// were.
func TestAccessKeyEventsIgnored(t *testing.T) {
	f := start(t, 0)
	before := f.syncer.Status()
	f.src.inject(store.PolicyEvent{AccessKey: "ak_0123456789abcdef0123456789abcdef", Revision: before.Known + 5})
	if st := f.syncer.Status(); st.Known != before.Known || st.Applied != before.Applied || st.Err != nil {
		t.Fatalf("an access-key event changed the syncer: %+v → %+v", before, st)
	}
	k, err := f.st.CreateAccessKey(ctx, store.AccessKey{JTI: "ak_fedcba9876543210fedcba9876543210", Principal: "alice",
		EntityType: store.AccessKeyUser, Issuer: "https://nmp.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.st.SetAccessKeyStatus(ctx, k.JTI, store.AccessKeyRevoked, time.Now()); err != nil {
		t.Fatal(err)
	}
	if st := f.syncer.Status(); st.Known != before.Known || st.Applied != before.Applied {
		t.Fatalf("an access-key write moved the policy revision: %+v → %+v", before, st)
	}
	ch, err := f.st.AddMember(ctx, "ml", "bob", []string{"Editor"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Revision != before.Known+1 {
		t.Fatalf("binding change at revision %d, want %d (access-key writes must not take revisions)", ch.Revision, before.Known+1)
	}
	if err := f.await(t, ch.Revision); err != nil || !f.bobIsEditor() {
		t.Fatalf("binding change after access-key events: %v (bob editor %v)", err, f.bobIsEditor())
	}
}
