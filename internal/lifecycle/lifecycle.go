// Package lifecycle runs a server's background components (the database
// health checker, the policy syncer, …) under one supervisor: started in
// order, each in its own goroutine with its own context; stopped in
// reverse order, each waited for before the previous one is stopped, so
// that everything has returned before the caller closes what they use
// (the store).
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Component is a background task.
type Component interface {
	// Name identifies the component in logs and health.
	Name() string
	// Run works until ctx ends and then returns nil; an earlier return,
	// or any error, is a failure of the component.
	Run(ctx context.Context) error
}

// Reporter receives a component's unexpected end (health.State.Set).
type Reporter interface {
	Set(component string, err error)
}

// Group is a set of running components.
type Group struct {
	log    *slog.Logger
	report Reporter
	mu     sync.Mutex
	runs   []*run
	errs   []error
}

type run struct {
	c      Component
	cancel context.CancelFunc
	done   chan struct{}
}

// Start starts the components in the order given. report may be nil.
func Start(ctx context.Context, log *slog.Logger, report Reporter, components ...Component) *Group {
	g := &Group{log: log, report: report}
	for _, c := range components {
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		r := &run{c: c, cancel: cancel, done: make(chan struct{})}
		g.runs = append(g.runs, r)
		go g.run(cctx, r)
		log.Debug("component started", "component", c.Name())
	}
	return g
}

func (g *Group) run(ctx context.Context, r *run) {
	defer close(r.done)
	err := r.c.Run(ctx)
	if ctx.Err() != nil && err == nil {
		return
	}
	if err == nil {
		err = errors.New("returned before it was stopped")
	}
	err = fmt.Errorf("%s: %w", r.c.Name(), err)
	g.log.Error("background component failed", "component", r.c.Name(), "error", err)
	if g.report != nil {
		g.report.Set(r.c.Name(), err)
	}
	g.mu.Lock()
	g.errs = append(g.errs, err)
	g.mu.Unlock()
}

// Stop stops the components in reverse order, waiting for each, and
// returns the failures of components that ended on their own.
func (g *Group) Stop() error {
	for i := len(g.runs) - 1; i >= 0; i-- {
		r := g.runs[i]
		r.cancel()
		<-r.done
		g.log.Debug("component stopped", "component", r.c.Name())
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return errors.Join(g.errs...)
}

// Func adapts a function to Component.
type Func struct {
	N string
	F func(ctx context.Context) error
}

// Name implements Component.
func (f Func) Name() string { return f.N }

// Run implements Component.
func (f Func) Run(ctx context.Context) error { return f.F(ctx) }
