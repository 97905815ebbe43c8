// Package policysync keeps the embedded policy engine in step with the
// store: it is the engine's only writer. It consumes the store's change
// feed (this process's commits and, on PostgreSQL, every replica's;
// access-key events on the same feed are ignored),
// applies changes in revision order, reloads fully when changes may have
// been missed, retries failures promptly with backoff, runs the periodic
// safety net, reports its state to health and metrics, and lets a write
// wait until its revision is applied here.
package policysync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/health"
	"github.com/nmp-project/nmp/internal/metrics"
	"github.com/nmp-project/nmp/internal/store"
)

// Health components the syncer reports.
const (
	// HealthPolicy is ready once the first full load succeeded and while
	// the last attempt to catch up succeeded.
	HealthPolicy = "policy"
	// HealthFeed is ready while the change feed is connected.
	HealthFeed = "policy_feed"
)

// Source is where policy data comes from: the store.
type Source interface {
	store.ChangeFeed
	// ScanActiveBindings streams the full set (a full load).
	authz.ActiveBindingScanner
	BindingChanges(ctx context.Context, after int64) (store.PolicyBindings, error)
	PolicyRevision(ctx context.Context) (int64, error)
}

// Options configure a Syncer.
type Options struct {
	Engine *authz.Engine
	Source Source
	// Interval is the safety net: how often the store's revision is
	// compared with the engine's (≤ 0: never).
	Interval time.Duration
	// BackoffMin and BackoffMax bound the retry delay after a failure
	// (defaults 50 ms and 5 s).
	BackoffMin, BackoffMax time.Duration
	Clock                  func() time.Time
	Log                    *slog.Logger
	Metrics                *metrics.Metrics
	Health                 *health.State
}

// Status is the syncer's state for /status and tests.
type Status struct {
	// Applied is the revision the engine holds; Known the highest
	// revision this process has heard of.
	Applied, Known int64
	// LastFullLoad is the time of the last full load (zero if none).
	LastFullLoad time.Time
	// Err is the last failure while the syncer is behind, else nil.
	Err error
	// FeedErr is the change feed's interruption, else nil.
	FeedErr error
}

// ErrPropagation means this process could not apply a committed change;
// it wraps the cause.
var ErrPropagation = errors.New("policy change not applied to this process")

// Syncer is the engine's only writer. Create it with New, load once with
// Prime, then Run it until its context ends.
type Syncer struct {
	o Options

	wake chan struct{} // capacity 1: "something to do"

	mu       sync.Mutex
	known    int64 // highest revision announced or read
	resync   bool  // a full load is due
	check    bool  // a safety-net comparison is due
	failure  *failure
	feedErr  error
	lastFull time.Time
	changed  chan struct{} // closed and replaced at every state change
}

// failure is the current episode of failed attempts.
type failure struct {
	// target is the highest revision the last failed attempt had to
	// reach: every write at or below it is known not to be applied.
	target int64
	err    error
	since  time.Time
}

// New returns a syncer; nothing runs until Prime or Run.
func New(o Options) *Syncer {
	if o.BackoffMin <= 0 {
		o.BackoffMin = 50 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 5 * time.Second
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return &Syncer{o: o, wake: make(chan struct{}, 1), changed: make(chan struct{})}
}

// Name implements lifecycle.Component.
func (s *Syncer) Name() string { return "policy syncer" }

// Prime performs the first full load before Run starts, so that a server
// answers decisions from its first request. A failure is reported like
// any other and Run retries it.
func (s *Syncer) Prime(ctx context.Context) error {
	s.mu.Lock()
	s.resync = true
	s.mu.Unlock()
	return s.step(ctx)
}

// Run consumes the change feed and keeps the engine current until ctx
// ends.
func (s *Syncer) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchErr := make(chan error, 1)
	go func() { watchErr <- s.o.Source.WatchPolicy(ctx, s.note) }()
	loopDone := make(chan struct{})
	go func() { defer close(loopDone); s.loop(ctx) }()
	var err error
	select {
	case err = <-watchErr: // the feed stopped: stop the loop too
		cancel()
		<-loopDone
	case <-loopDone:
		err = <-watchErr
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("policy change feed stopped: %w", err)
}

// note receives feed events; it never blocks. Access-key events are not
// the syncer's: a key's state change does not change the policy revision.
func (s *Syncer) note(ev store.PolicyEvent) {
	if ev.AccessKey != "" {
		return
	}
	s.mu.Lock()
	switch {
	case ev.Err != nil:
		if s.feedErr == nil {
			s.o.Log.Warn("policy change feed interrupted; reconnecting (changes by other replicas wait until it is back)", "error", ev.Err)
			s.o.Metrics.PolicyFeedInterruptions.Inc()
		}
		s.feedErr = ev.Err
		// The cause (it may name the database host and user) is logged
		// above; readiness is public.
		s.o.Health.Set(HealthFeed, errors.New("change feed interrupted; reconnecting"))
	case ev.Resync:
		if s.feedErr != nil {
			s.o.Log.Info("policy change feed reconnected; catching up")
		}
		s.feedErr = nil
		s.resync = true
		s.o.Health.Set(HealthFeed, nil)
	}
	if ev.Revision > s.known {
		s.known = ev.Revision
	}
	s.broadcastLocked()
	s.mu.Unlock()
	s.poke()
}

func (s *Syncer) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Syncer) loop(ctx context.Context) {
	var tick <-chan time.Time
	if s.o.Interval > 0 {
		t := time.NewTicker(s.o.Interval)
		defer t.Stop()
		tick = t.C
	}
	var retry *time.Timer
	backoff := s.o.BackoffMin
	for {
		var retryC <-chan time.Time
		if retry != nil {
			retryC = retry.C
		}
		select {
		case <-ctx.Done():
			if retry != nil {
				retry.Stop()
			}
			return
		case <-s.wake:
		case <-tick:
			s.mu.Lock()
			s.check = true
			s.mu.Unlock()
		case <-retryC:
		}
		if retry != nil {
			retry.Stop()
			retry = nil
		}
		if err := s.step(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			retry = time.NewTimer(backoff)
			backoff = min(2*backoff, s.o.BackoffMax)
			continue
		}
		backoff = s.o.BackoffMin
	}
}

// step does what is due: a full load (first time), a catch-up after the
// feed (re)connected, a safety-net comparison, or an incremental catch-up.
func (s *Syncer) step(ctx context.Context) error {
	s.mu.Lock()
	resync, check, target := s.resync, s.check, s.known
	s.resync, s.check = false, false
	s.mu.Unlock()

	e := s.o.Engine
	var err error
	switch {
	case !e.Loaded():
		err = s.fullLoad(ctx)
	case resync:
		// Notices may have been lost: every row changed after the
		// engine's revision carries a higher revision, so reading by
		// revision catches up on all of them without a full load.
		err = s.catchUp(ctx)
	case check:
		err = s.safetyNet(ctx)
	case target > e.Revision():
		err = s.catchUp(ctx)
	}
	if err != nil {
		s.mu.Lock()
		s.resync = s.resync || resync
		s.check = s.check || check
		s.mu.Unlock()
		s.failed(target, err)
		return err
	}
	s.succeeded()
	return nil
}

// fullLoad replaces the engine's bindings with the store's active set,
// streamed into a new index.
func (s *Syncer) fullLoad(ctx context.Context) error {
	now := s.o.Clock()
	rev, err := s.o.Engine.LoadFrom(ctx, s.o.Source, now)
	switch {
	case errors.Is(err, authz.ErrStale):
		return s.storeBehind(rev)
	case err != nil:
		return fmt.Errorf("full load: %w", err)
	}
	s.mu.Lock()
	s.lastFull = now
	s.known = max(s.known, rev)
	s.mu.Unlock()
	s.o.Metrics.PolicyFullLoads.Inc()
	return nil
}

// catchUp applies the changes committed after the engine's revision.
func (s *Syncer) catchUp(ctx context.Context) error {
	pb, err := s.o.Source.BindingChanges(ctx, s.o.Engine.Revision())
	if err != nil {
		return fmt.Errorf("read changes: %w", err)
	}
	if pb.Revision < s.o.Engine.Revision() {
		return s.storeBehind(pb.Revision)
	}
	if err := s.o.Engine.Apply(pb); err != nil {
		if errors.Is(err, authz.ErrGap) {
			return s.fullLoad(ctx)
		}
		return err
	}
	s.mu.Lock()
	s.known = max(s.known, pb.Revision)
	s.mu.Unlock()
	return nil
}

// safetyNet compares the store's revision with the engine's and catches
// up only when a change was missed: an idle server reads one row.
func (s *Syncer) safetyNet(ctx context.Context) error {
	rev, err := s.o.Source.PolicyRevision(ctx)
	if err != nil {
		return fmt.Errorf("read the policy revision: %w", err)
	}
	applied := s.o.Engine.Revision()
	switch {
	case rev < applied:
		return s.storeBehind(rev)
	case rev > applied:
		s.mu.Lock()
		missed := rev > s.known
		s.known = max(s.known, rev)
		s.mu.Unlock()
		if missed {
			s.o.Metrics.PolicyMissedChanges.Inc()
			s.o.Log.Warn("policy safety net found changes no notice announced; catching up", "applied_revision", applied, "store_revision", rev)
		}
		return s.catchUp(ctx)
	}
	return nil
}

// publicError is a failure whose text names no database detail, so
// readiness may show it.
type publicError struct{ error }

func (s *Syncer) storeBehind(rev int64) error {
	return publicError{fmt.Errorf("the store's policy revision %d is older than this process's %d (database restored from a backup?); "+
		"this process keeps refusing to go back: restart it", rev, s.o.Engine.Revision())}
}

func (s *Syncer) failed(target int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	applied := s.o.Engine.Revision()
	target = max(target, s.known)
	s.o.Metrics.PolicySyncFailures.Inc()
	if s.failure == nil {
		s.failure = &failure{since: s.o.Clock()}
		s.o.Log.Error("policy not in step with the store; retrying with backoff, readiness fails until it catches up",
			"applied_revision", applied, "known_revision", target, "gap", target-applied, "error", err)
	}
	s.failure.target, s.failure.err = target, err
	// The cause is logged (above, when the failure starts); readiness is
	// public and names no database detail.
	reason := "the last refresh failed"
	if pe := (publicError{}); errors.As(err, &pe) {
		reason = pe.Error()
	}
	s.o.Health.Set(HealthPolicy, fmt.Errorf("behind the store (applied revision %d, committed %d): %s", applied, target, reason))
	s.broadcastLocked()
}

func (s *Syncer) succeeded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	rev := s.o.Engine.Revision()
	if s.failure != nil {
		s.o.Log.Info("policy caught up with the store", "revision", rev, "behind_for", s.o.Clock().Sub(s.failure.since).String())
		s.failure = nil
	}
	s.o.Health.Set(HealthPolicy, nil)
	s.o.Metrics.PolicyRevision.Set(float64(rev))
	s.broadcastLocked()
}

func (s *Syncer) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Await waits until the engine holds revision (a change committed by
// this process, already announced on the feed). It returns nil once
// applied, an error wrapping ErrPropagation when an attempt to apply it
// failed (the syncer keeps retrying; the caller must not report success),
// or ctx's error.
func (s *Syncer) Await(ctx context.Context, revision int64) error {
	for {
		s.mu.Lock()
		if s.o.Engine.Revision() >= revision {
			s.mu.Unlock()
			return nil
		}
		if f := s.failure; f != nil && f.target >= revision {
			err := f.err
			s.mu.Unlock()
			return fmt.Errorf("%w (revision %d): %w", ErrPropagation, revision, err)
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Wait waits until cond holds for the syncer's status, or ctx ends.
func (s *Syncer) Wait(ctx context.Context, cond func(Status) bool) error {
	for {
		s.mu.Lock()
		st := s.statusLocked()
		ch := s.changed
		s.mu.Unlock()
		if cond(st) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Status returns the current state.
func (s *Syncer) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked()
}

func (s *Syncer) statusLocked() Status {
	st := Status{Applied: s.o.Engine.Revision(), Known: s.known, LastFullLoad: s.lastFull, FeedErr: s.feedErr}
	if s.failure != nil {
		st.Err = s.failure.err
	}
	return st
}
