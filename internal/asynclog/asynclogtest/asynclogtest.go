// Package asynclogtest holds what the tests of the logs built on
// internal/asynclog share: an output that gets stuck, counter values and
// JSON lines.
package asynclogtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Gate is an output whose first Write reports that it started (Entered
// is closed) and then waits until Release is closed.
type Gate struct {
	Entered, Release chan struct{}
	once             sync.Once
	mu               sync.Mutex
	buf              bytes.Buffer
}

// NewGate returns a closed gate.
func NewGate() *Gate { return &Gate{Entered: make(chan struct{}), Release: make(chan struct{})} }

func (g *Gate) Write(p []byte) (int, error) {
	g.once.Do(func() {
		close(g.Entered)
		<-g.Release
	})
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

// Bytes is what was written.
func (g *Gate) Bytes() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]byte(nil), g.buf.Bytes()...)
}

// Counter is the value of counter name in reg.
func Counter(t testing.TB, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return int(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// Lines parses the JSON lines of out, failing on any line that is not a
// JSON object.
func Lines(t testing.TB, out []byte) []map[string]any {
	t.Helper()
	var entries []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", sc.Text(), err)
		}
		entries = append(entries, m)
	}
	return entries
}

// Start runs run (a logger's Run) in a goroutine; stop ends it and
// returns its error, and is called when the test ends if the test did
// not.
func Start(t testing.TB, run func(context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() { _ = stop() })
	return stop
}
