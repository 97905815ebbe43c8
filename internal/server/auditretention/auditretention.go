// Package auditretention is the server's background component that
// deletes audit events older than the retention period
// (auth.audit.retention_days): once at start, then once a day.
package auditretention

import (
	"context"
	"log/slog"
	"time"
)

// Store is what the pruner needs of the entity store (store.Store has it).
type Store interface {
	PruneAuditEvents(ctx context.Context, before time.Time) (int64, error)
}

// Pruner is a lifecycle component (Name, Run).
type Pruner struct {
	Store Store
	// Retention is how long events are kept; 0 or less keeps them
	// forever (Run then only waits for its end).
	Retention time.Duration
	// Clock is the time source (nil: time.Now).
	Clock func() time.Time
	Log   *slog.Logger
	// Tick, when set, replaces the daily timer: a prune runs at each
	// receive.
	Tick <-chan time.Time
	// OnPrune, when set, is called after every prune with its outcome.
	OnPrune func(deleted int64, err error)
}

// Every is the interval between two prunes after the first.
const Every = 24 * time.Hour

// Name implements lifecycle.Component.
func (p *Pruner) Name() string { return "audit retention" }

// Run prunes at once, then at every tick (daily), until ctx ends. A
// failed prune is logged and retried at the next tick; it never stops
// the component.
func (p *Pruner) Run(ctx context.Context) error {
	if p.Retention <= 0 {
		<-ctx.Done()
		return nil
	}
	tick := p.Tick
	if tick == nil {
		t := time.NewTicker(Every)
		defer t.Stop()
		tick = t.C
	}
	for {
		p.prune(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		}
	}
}

func (p *Pruner) prune(ctx context.Context) {
	now := time.Now
	if p.Clock != nil {
		now = p.Clock
	}
	before := now().Add(-p.Retention)
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	n, err := p.Store.PruneAuditEvents(pctx, before)
	cancel()
	switch {
	case ctx.Err() != nil:
		return
	case err != nil:
		p.Log.Warn("pruning old audit events failed; retried in a day", "error", err)
	case n > 0:
		p.Log.Info("old audit events deleted", "deleted", n, "before", before.UTC().Format(time.RFC3339))
	}
	if p.OnPrune != nil {
		p.OnPrune(n, err)
	}
}
