// Package health tracks the readiness of the server's components (the
// database, later the policy) for /health/ready and /status.
package health

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// State is the readiness of named components. A component is not ready
// until it first reports success.
type State struct {
	mu         sync.RWMutex
	components map[string]string // name -> "" when ready, else the reason
	changed    chan struct{}     // closed and replaced on every Set
}

// New returns a state where every named component is pending.
func New(components ...string) *State {
	s := &State{components: make(map[string]string, len(components)), changed: make(chan struct{})}
	for _, c := range components {
		s.components[c] = c + " not checked yet"
	}
	return s
}

// Set records a component's latest check: nil is ready.
func (s *State) Set(component string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
	if err == nil {
		s.components[component] = ""
		return
	}
	s.components[component] = component + ": " + err.Error()
}

// WaitReady returns once every component is ready, or the context's error
// with the reasons still outstanding. It waits on Set, never polls.
func (s *State) WaitReady(ctx context.Context) error {
	return s.WaitFor(ctx, func(ready bool, _ []string) bool { return ready })
}

// WaitFor returns once cond holds for the readiness and reasons, or the
// context's error with the reasons outstanding. It waits on Set, never
// polls.
func (s *State) WaitFor(ctx context.Context, cond func(ready bool, reasons []string) bool) error {
	for {
		s.mu.RLock()
		ch := s.changed
		s.mu.RUnlock()
		ready, reasons := s.Ready()
		if cond(ready, reasons) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: not ready: %s", ctx.Err(), strings.Join(reasons, "; "))
		}
	}
}

// Ready reports whether every component is ready, and the reasons (sorted
// by component) of those that are not.
func (s *State) Ready() (bool, []string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.components))
	for n := range s.components {
		names = append(names, n)
	}
	sort.Strings(names)
	var reasons []string
	for _, n := range names {
		if r := s.components[n]; r != "" {
			reasons = append(reasons, r)
		}
	}
	return len(reasons) == 0, reasons
}
