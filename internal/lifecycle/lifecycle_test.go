package lifecycle_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/nmp-project/nmp/internal/lifecycle"
)

type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.log, " ")
}

type reporter struct {
	mu   sync.Mutex
	errs map[string]error
	set  chan struct{} // nil, or told of each Set
}

func (r *reporter) Set(c string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs[c] = err
	select {
	case r.set <- struct{}{}:
	default:
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestStopsInReverseOrderAndWaits: components start in order and are
// stopped last-first, each having returned before the previous one is
// stopped.
func TestStopsInReverseOrderAndWaits(t *testing.T) {
	ev := &events{}
	started := make(chan string, 3)
	comp := func(name string) lifecycle.Component {
		return lifecycle.Func{N: name, F: func(ctx context.Context) error {
			started <- name
			<-ctx.Done()
			ev.add("stop:" + name)
			return nil
		}}
	}
	g := lifecycle.Start(context.Background(), quiet, nil, comp("a"), comp("b"), comp("c"))
	for range 3 {
		<-started
	}
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := ev.String(); got != "stop:c stop:b stop:a" {
		t.Fatalf("stop order %q", got)
	}
}

// TestEarlyEndIsAFailure: a component that returns before it is stopped,
// with or without an error, is reported to health and by Stop.
func TestEarlyEndIsAFailure(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "error", err: errors.New("boom"), want: "crashy: boom"},
		{name: "nil before stop", err: nil, want: "crashy: returned before it was stopped"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := &reporter{errs: map[string]error{}, set: make(chan struct{}, 1)}
			g := lifecycle.Start(context.Background(), quiet, rep, lifecycle.Func{N: "crashy", F: func(context.Context) error {
				return tc.err
			}})
			// Stop only once the group has seen the early end: a Stop
			// between the component's return and that check would be
			// an ordinary stop.
			<-rep.set
			err := g.Stop()
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Stop: %v, want %q", err, tc.want)
			}
			rep.mu.Lock()
			defer rep.mu.Unlock()
			if rep.errs["crashy"] == nil || rep.errs["crashy"].Error() != tc.want {
				t.Fatalf("health got %v", rep.errs["crashy"])
			}
		})
	}
}

// TestParentContextDoesNotStopComponents: only Stop stops them, so a
// server can finish its requests before its components end.
func TestParentContextDoesNotStopComponents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	running := make(chan struct{})
	stopped := make(chan struct{})
	g := lifecycle.Start(ctx, quiet, nil, lifecycle.Func{N: "x", F: func(c context.Context) error {
		close(running)
		<-c.Done()
		close(stopped)
		return nil
	}})
	<-running
	cancel()
	select {
	case <-stopped:
		t.Fatal("cancelling the parent stopped the component")
	default:
	}
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	<-stopped
}
