package lastseen_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/health"
	"github.com/nmp-project/nmp/internal/lastseen"
	"github.com/nmp-project/nmp/internal/lifecycle"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/testenv"
)

var base = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// clock is a test clock moved by the test.
type clock struct{ n atomic.Int64 }

func (c *clock) Now() time.Time               { return base.Add(time.Duration(c.n.Load())) }
func (c *clock) Advance(d time.Duration)      { c.n.Add(int64(d)) }
func (c *clock) At(d time.Duration) time.Time { return base.Add(d) }

// countingStore is the real SQLite store, counting the last-seen writes
// that reach it.
type countingStore struct {
	*sqlstore.Store
	writes atomic.Int64 // RecordLastSeen calls
	rows   atomic.Int64 // sightings in them
}

func (c *countingStore) RecordLastSeen(ctx context.Context, seen []store.Sighting) error {
	c.writes.Add(1)
	c.rows.Add(int64(len(seen)))
	return c.Store.RecordLastSeen(ctx, seen)
}

func openStore(t *testing.T) *countingStore {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), sqlstore.Options{
		URL: "sqlite://" + filepath.Join(t.TempDir(), "entities.db"), Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.Close(t, s) })
	return &countingStore{Store: s}
}

func lastSeen(t *testing.T, s store.Store, principals ...string) map[string]time.Time {
	t.Helper()
	got, err := s.LastSeen(context.Background(), principals)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]time.Time, len(got))
	for p, at := range got {
		out[p] = at.Time
	}
	return out
}

func wantSeen(t *testing.T, what string, got map[string]time.Time, want map[string]time.Time) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
	for p, w := range want {
		if g, ok := got[p]; !ok || !g.Equal(w) {
			t.Fatalf("%s: %s last seen %v, want %v (all: %v)", what, p, g, w, got)
		}
	}
}

// TestManyRequestsFewWrites: 10,000 requests by one principal over about
// 17 minutes, with the background write every 5 minutes, reach the store
// as a handful of writes of one row each, and the stored time is the
// start of the last window.
func TestManyRequestsFewWrites(t *testing.T) {
	st := openStore(t)
	clk := &clock{}
	r := lastseen.New(lastseen.Options{Store: st, Interval: 5 * time.Minute, Clock: clk.Now})
	ctx := context.Background()
	const requests, step = 10000, 100 * time.Millisecond // 1000 s in all
	var lastFlush time.Duration
	for i := range requests {
		r.Seen("alice@example.com", clk.Now())
		if now := time.Duration(i) * step; now-lastFlush >= 5*time.Minute { // the ticker's tick
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			lastFlush = now
		}
		clk.Advance(step)
	}
	if err := r.Flush(ctx); err != nil { // the final write at stop
		t.Fatal(err)
	}
	// 1000 s are four 5-minute windows: four sightings, four writes.
	if w, n := st.writes.Load(), st.rows.Load(); w > 4 || n > 4 || n == 0 {
		t.Fatalf("10,000 requests caused %d writes of %d rows, want at most 4 of one row each", w, n)
	}
	wantSeen(t, "after the requests", lastSeen(t, st, "alice@example.com"),
		map[string]time.Time{"alice@example.com": clk.At(900 * time.Second)})
}

// TestOneWritePerWindow: after a principal's sighting, its requests in
// the rest of the window write nothing, even when writes happen more
// often than the window; the first request after the window does.
func TestOneWritePerWindow(t *testing.T) {
	st := openStore(t)
	r := lastseen.New(lastseen.Options{Store: st, Interval: 5 * time.Minute})
	steps := []struct {
		name       string
		at         time.Duration
		wantWrites int64
		wantSeen   time.Duration
	}{
		{"first request", 0, 1, 0},
		{"one minute later", time.Minute, 1, 0},
		{"just before the window ends", 5*time.Minute - time.Microsecond, 1, 0},
		{"the window has ended", 5 * time.Minute, 2, 5 * time.Minute},
		{"inside the second window", 7 * time.Minute, 2, 5 * time.Minute},
	}
	for _, s := range steps {
		r.Seen("gina", base.Add(s.at))
		if err := r.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if w := st.writes.Load(); w != s.wantWrites {
			t.Fatalf("%s: %d writes, want %d", s.name, w, s.wantWrites)
		}
		wantSeen(t, s.name, lastSeen(t, st, "gina"), map[string]time.Time{"gina": base.Add(s.wantSeen)})
	}
}

// TestConcurrentRequestsOneSighting: 10,000 requests by one principal at
// the same instant from many goroutines hand on exactly one sighting.
func TestConcurrentRequestsOneSighting(t *testing.T) {
	st := openStore(t)
	clk := &clock{}
	r := lastseen.New(lastseen.Options{Store: st, Interval: time.Minute, Clock: clk.Now})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10000 / 8 {
				r.Seen("bob", clk.Now())
			}
		})
	}
	wg.Wait()
	if p := r.Pending(); p != 1 {
		t.Fatalf("pending %d sightings, want 1", p)
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w, n := st.writes.Load(), st.rows.Load(); w != 1 || n != 1 {
		t.Fatalf("%d writes of %d rows, want 1 of 1", w, n)
	}
	wantSeen(t, "stored", lastSeen(t, st, "bob"), map[string]time.Time{"bob": base})
}

// TestOlderTimeNeverMovesBack: two replicas share the store; the one that
// writes last holds an older sighting, which does not move the time back.
func TestOlderTimeNeverMovesBack(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	a := lastseen.New(lastseen.Options{Store: st, Interval: time.Minute})
	b := lastseen.New(lastseen.Options{Store: st, Interval: time.Minute})
	a.Seen("carol", base.Add(10*time.Minute))
	b.Seen("carol", base.Add(5*time.Minute))
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wantSeen(t, "after both replicas wrote", lastSeen(t, st, "carol"), map[string]time.Time{"carol": base.Add(10 * time.Minute)})
	// A time later than the stored one does move it.
	b.Seen("carol", base.Add(20*time.Minute))
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wantSeen(t, "after a later sighting", lastSeen(t, st, "carol"), map[string]time.Time{"carol": base.Add(20 * time.Minute)})
}

// TestStopWritesPending: sightings made since the last periodic write are
// written when the component is stopped (the interval is an hour, so no
// periodic write happens in the test).
func TestStopWritesPending(t *testing.T) {
	st := openStore(t)
	clk := &clock{}
	r := lastseen.New(lastseen.Options{Store: st, Interval: time.Hour, Clock: clk.Now})
	g := lifecycle.Start(context.Background(), slog.New(slog.DiscardHandler), nil, r)
	r.SeenCaller(&authn.Principal{ID: "dave", Email: "dave@example.com"})
	if got := lastSeen(t, st, "dave", "dave@example.com"); len(got) != 0 {
		t.Fatalf("written before the stop: %v", got)
	}
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	wantSeen(t, "after the stop", lastSeen(t, st, "dave", "dave@example.com"),
		map[string]time.Time{"dave": base, "dave@example.com": base})
	if p := r.Pending(); p != 0 {
		t.Fatalf("%d sightings still pending after the stop", p)
	}
}

// TestFailedWriteIsRetried: a write the store refuses (here: its context
// is already over) keeps the sightings, reports the failure to health,
// and the next write stores them and reports recovery.
func TestFailedWriteIsRetried(t *testing.T) {
	st := openStore(t)
	h := health.New()
	r := lastseen.New(lastseen.Options{Store: st, Interval: time.Minute, Health: h})
	r.Seen("erin", base)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Flush(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("flush with a cancelled context: %v, want context.Canceled", err)
	}
	if ready, reasons := h.Ready(); ready || len(reasons) != 1 {
		t.Fatalf("health after a failed write: ready=%v %v", ready, reasons)
	}
	// A later sighting of erin in the next window, and an older one of
	// frank, join the retained sighting.
	r.Seen("erin", base.Add(2*time.Minute))
	r.Seen("frank", base.Add(-time.Hour))
	if p := r.Pending(); p != 2 {
		t.Fatalf("pending %d, want 2 (the failed write's sighting is kept)", p)
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ready, reasons := h.Ready(); !ready {
		t.Fatalf("health after the retry: %v", reasons)
	}
	wantSeen(t, "after the retry", lastSeen(t, st, "erin", "frank"),
		map[string]time.Time{"erin": base.Add(2 * time.Minute), "frank": base.Add(-time.Hour)})
}

// TestSeenCaller: the caller's id, email and groups and the on-behalf-of
// user's are recorded; anonymous callers and "*" are not.
func TestSeenCaller(t *testing.T) {
	tests := []struct {
		name   string
		caller *authn.Principal
		want   []string
	}{
		{"anonymous", nil, nil},
		{"no id", &authn.Principal{Email: "x@example.com"}, nil},
		{"id only", &authn.Principal{ID: "u1"}, []string{"u1"}},
		{"id and groups", &authn.Principal{ID: "u1", Groups: []string{"eng", "*"}}, []string{"u1", "eng"}},
		{"id and email", &authn.Principal{ID: "u1", Email: "u1@example.com"}, []string{"u1", "u1@example.com"}},
		{"email as id", &authn.Principal{ID: "u1@example.com", Email: "u1@example.com"}, []string{"u1@example.com"}},
		{"on behalf of", &authn.Principal{ID: "service:jobs", OnBehalfOf: &authn.Principal{ID: "u2", Email: "u2@example.com", Groups: []string{"ops"}}},
			[]string{"service:jobs", "u2", "u2@example.com", "ops"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			r := lastseen.New(lastseen.Options{Store: st, Interval: time.Minute, Clock: func() time.Time { return base }})
			r.SeenCaller(tc.caller)
			r.Seen("*", base)
			if err := r.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := map[string]time.Time{}
			for _, p := range tc.want {
				want[p] = base
			}
			wantSeen(t, "recorded", lastSeen(t, st, "u1", "u1@example.com", "x@example.com", "service:jobs", "u2", "u2@example.com", "eng", "ops", "*"), want)
		})
	}
}

// TestDisabled: interval 0 records nothing, and Run waits to be stopped.
func TestDisabled(t *testing.T) {
	st := openStore(t)
	r := lastseen.New(lastseen.Options{Store: st, Interval: 0})
	g := lifecycle.Start(context.Background(), slog.New(slog.DiscardHandler), nil, r)
	r.Seen("alice", base)
	r.SeenCaller(&authn.Principal{ID: "bob"})
	if p := r.Pending(); p != 0 {
		t.Fatalf("disabled recorder holds %d sightings", p)
	}
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	if w := st.writes.Load(); w != 0 {
		t.Fatalf("disabled recorder wrote %d times", w)
	}
	var nilRecorder *lastseen.Recorder
	nilRecorder.Seen("alice", base) // must not panic
	nilRecorder.SeenCaller(&authn.Principal{ID: "alice"})
}

// BenchmarkSeen is the request-path cost: one principal from every
// goroutine (the hot case), and 1,000 principals.
func BenchmarkSeen(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("principals=%d", n), func(b *testing.B) {
			r := lastseen.New(lastseen.Options{Interval: 5 * time.Minute}) // never flushed
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("user-%d@example.com", i)
			}
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					r.Seen(names[i%n], now)
					i++
				}
			})
		})
	}
}

// BenchmarkSeenCaller is what the identify middleware adds per request:
// the clock read and the sightings of the caller's id and email, from
// every goroutine at once.
func BenchmarkSeenCaller(b *testing.B) {
	r := lastseen.New(lastseen.Options{Interval: 5 * time.Minute}) // never flushed
	p := &authn.Principal{ID: "u-alice", Email: "alice@example.com"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.SeenCaller(p)
		}
	})
}
