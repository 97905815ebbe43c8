// Package lastseen records when each principal last made an authenticated
// request, so that operators can find stale access.
//
// Seen is called on the request path and costs almost nothing: one
// lock-free map lookup and one atomic load in the common case, no store
// access and no allocation. A principal's sighting is handed on at most
// once per interval; the Recorder's background component (Run) writes the
// pending sightings in one batch every interval, and once more when it is
// stopped. A crash loses at most the last interval's sightings, and a
// stored time is accurate to one interval.
package lastseen

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/ident"
	"github.com/nmp-project/nmp/internal/store"
)

// HealthComponent is the recorder's name in logs and health.
const HealthComponent = "last seen"

// DefaultInterval is auth.last_seen_interval_seconds' default.
const DefaultInterval = 5 * time.Minute

// Writer is the part of the store the recorder writes to.
type Writer interface {
	RecordLastSeen(ctx context.Context, seen []store.Sighting) error
}

// Reporter receives every failed write and the first successful write
// after a failure (health.State.Set).
type Reporter interface {
	Set(component string, err error)
}

// Options configure New.
type Options struct {
	Store Writer
	// Interval is the window: at most one write per principal per
	// interval, and the period of the batched writes. Zero or less
	// disables recording (Seen does nothing, Run only waits).
	Interval time.Duration
	// Clock is the time source of SeenCaller and of the pruning of idle
	// principals; nil means time.Now.
	Clock func() time.Time
	// Log receives write failures; nil discards them.
	Log *slog.Logger
	// Health receives write failures and recoveries; may be nil.
	Health Reporter
	// StopTimeout bounds the final write when Run is stopped (0: 10 s).
	StopTimeout time.Duration
	// Name is the recorder's component name in health and logs (""
	// means HealthComponent); a second recorder (access-key use) needs
	// its own.
	Name string
}

// Recorder coalesces sightings and writes them in batches. A nil
// *Recorder records nothing.
type Recorder struct {
	name        string
	store       Writer
	interval    int64 // nanoseconds; 0 = disabled
	clock       func() time.Time
	log         *slog.Logger
	health      Reporter
	stopTimeout time.Duration

	// entries maps a principal to its *entry. Reads (the common case)
	// take no lock.
	entries sync.Map

	mu      sync.Mutex
	pending map[string]time.Time // sightings not yet written
	failing bool                 // the last write failed
}

// entry is one principal's window.
type entry struct {
	// due is the Unix time in nanoseconds from which the next sighting is
	// handed on for writing.
	due atomic.Int64
}

// New returns a recorder; it records once Seen is called and writes once
// Run runs.
func New(o Options) *Recorder {
	r := &Recorder{name: o.Name, store: o.Store, clock: o.Clock, log: o.Log, health: o.Health,
		stopTimeout: o.StopTimeout, pending: map[string]time.Time{}}
	if o.Interval > 0 {
		r.interval = int64(o.Interval)
	}
	if r.name == "" {
		r.name = HealthComponent
	}
	if r.clock == nil {
		r.clock = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.stopTimeout <= 0 {
		r.stopTimeout = 10 * time.Second
	}
	return r
}

// Enabled reports whether the recorder records anything.
func (r *Recorder) Enabled() bool { return r != nil && r.interval > 0 }

// Seen notes that principal made an authenticated request at now. At most
// one sighting per principal per interval is kept for writing; the others
// cost one map lookup and one atomic load. "" and "*" are ignored.
func (r *Recorder) Seen(principal string, now time.Time) {
	if r == nil || r.interval == 0 || principal == "" || principal == ident.Wildcard {
		return
	}
	v, ok := r.entries.Load(principal)
	if !ok {
		v, _ = r.entries.LoadOrStore(principal, &entry{})
	}
	e := v.(*entry)
	n := now.UnixNano()
	due := e.due.Load()
	if n < due {
		return
	}
	if !e.due.CompareAndSwap(due, n+r.interval) {
		return // another request of the same principal won the window
	}
	r.mu.Lock()
	if cur, ok := r.pending[principal]; !ok || now.After(cur) {
		r.pending[principal] = now
	}
	r.mu.Unlock()
}

// SeenCaller records an authenticated caller at the recorder's clock: its
// id, email and groups, and those of the user it acts for — every binding
// principal the request could have been granted through, so a group
// binding shows when a member of the group last called. Anonymous callers
// (nil or without an id) record nothing.
func (r *Recorder) SeenCaller(p *authn.Principal) {
	if !r.Enabled() || p == nil || p.ID == "" {
		return
	}
	now := r.clock()
	r.seenIDs(p, now)
	if u := p.OnBehalfOf; u != nil {
		r.seenIDs(u, now)
	}
}

func (r *Recorder) seenIDs(p *authn.Principal, now time.Time) {
	r.Seen(p.ID, now)
	if p.Email != p.ID {
		r.Seen(p.Email, now)
	}
	for _, g := range p.Groups {
		r.Seen(g, now)
	}
}

// Pending returns the number of sightings waiting to be written.
func (r *Recorder) Pending() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Flush writes the pending sightings in one batch. On failure they stay
// pending (merged with newer ones, the later time winning) for the next
// flush, and the failure is logged and reported to health; the next
// successful flush reports recovery.
func (r *Recorder) Flush(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	batch := r.pending
	r.pending = make(map[string]time.Time, len(batch))
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	seen := make([]store.Sighting, 0, len(batch))
	for p, at := range batch {
		seen = append(seen, store.Sighting{Principal: p, At: store.NewTimestamp(at)})
	}
	err := r.store.RecordLastSeen(ctx, seen)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		for p, at := range batch {
			if cur, ok := r.pending[p]; !ok || at.After(cur) {
				r.pending[p] = at
			}
		}
		r.failing = true
		r.log.Error("recording "+r.name+" times failed; retried at the next write", "entries", len(batch), "error", err)
		if r.health != nil {
			r.health.Set(r.name, err)
		}
		return err
	}
	if r.failing {
		r.failing = false
		r.log.Info("recording "+r.name+" times works again", "entries", len(batch))
		if r.health != nil {
			r.health.Set(r.name, nil)
		}
	}
	return nil
}

// prune forgets principals whose window ended more than one interval ago,
// so that the map holds only recently active principals. A principal
// pruned while it is being seen at worst gets one more write.
func (r *Recorder) prune(now time.Time) {
	limit := now.UnixNano() - r.interval
	r.entries.Range(func(k, v any) bool {
		if v.(*entry).due.Load() < limit {
			r.entries.CompareAndDelete(k, v)
		}
		return true
	})
}

// Name implements lifecycle.Component.
func (r *Recorder) Name() string { return r.name }

// Run writes the pending sightings every interval until ctx ends, then
// writes what it still holds (bounded by StopTimeout) and returns. A
// failed periodic write is retried at the next one; a failed final write
// is returned.
func (r *Recorder) Run(ctx context.Context) error {
	if !r.Enabled() {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(time.Duration(r.interval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.stopTimeout)
			defer cancel()
			if err := r.Flush(fctx); err != nil {
				return fmt.Errorf("final write of %s times: %w", r.name, err)
			}
			return nil
		case <-t.C:
		}
		_ = r.Flush(ctx) // logged and reported; retried at the next tick
		r.prune(r.clock())
	}
}
