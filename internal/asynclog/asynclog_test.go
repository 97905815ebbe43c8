package asynclog

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nmp-project/nmp/internal/asynclog/asynclogtest"
)

// writes records each Write separately.
type writes struct{ calls [][]byte }

func (w *writes) Write(p []byte) (int, error) {
	w.calls = append(w.calls, append([]byte(nil), p...))
	return len(p), nil
}

// TestBatchKeepsLinesWhole: a batch that would overflow is written before
// the next line, so every write to the output ends at a line's end, and a
// line longer than the batch is written whole.
func TestBatchKeepsLinesWhole(t *testing.T) {
	out := &writes{}
	q := New(Options[string]{Name: "test log", Output: out, BufferSize: 1000, Record: func(s string) slog.Record {
		r := slog.NewRecord(zeroTime, slog.LevelInfo, s, 0)
		return r
	}})
	ctx, cancel := context.WithCancel(context.Background())
	// queue everything first, so that the writer batches
	line := strings.Repeat("x", 1000)
	for range 200 { // about 200 KB: several batches
		q.Put(line)
	}
	q.Put(strings.Repeat("y", 3*batchSize)) // longer than a batch
	cancel()
	if err := q.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(out.calls) < 3 {
		t.Fatalf("%d writes, want several batches", len(out.calls))
	}
	n := 0
	for _, c := range out.calls {
		if len(c) == 0 || c[len(c)-1] != '\n' {
			t.Fatalf("a write does not end at a line's end: …%q", c[max(0, len(c)-20):])
		}
		n += bytes.Count(c, []byte("\n"))
	}
	if n != 201 {
		t.Errorf("%d lines written, want 201", n)
	}
}

// failing fails every write.
type failing struct{}

func (failing) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestFailureCounted: a line that cannot be written is counted as
// failed, not as written.
func TestFailureCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	failed := prometheus.NewCounter(prometheus.CounterOpts{Name: "failed_total", Help: "h"})
	written := prometheus.NewCounter(prometheus.CounterOpts{Name: "written_total", Help: "h"})
	reg.MustRegister(failed, written)
	q := New(Options[string]{Name: "test log", Output: failing{}, Failed: failed, Written: written, Record: func(s string) slog.Record {
		return slog.NewRecord(zeroTime, slog.LevelInfo, s, 0)
	}})
	q.Put("a")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = q.Run(ctx) // the error is Run's only when the final flush fails
	if f, w := asynclogtest.Counter(t, reg, "failed_total"), asynclogtest.Counter(t, reg, "written_total"); f != 1 || w != 0 {
		t.Errorf("failed %d, written %d; want 1, 0", f, w)
	}
}

var zeroTime time.Time

// TestAppendFallsBackToHandler: values Append formats are written as it
// formats them, the others through Record and the handler, in order, and
// all are counted as written.
func TestAppendFallsBackToHandler(t *testing.T) {
	var out bytes.Buffer
	written := prometheus.NewCounter(prometheus.CounterOpts{Name: "w", Help: "w"})
	q := New(Options[string]{Name: "test log", Output: &out, Written: written,
		Record: func(s string) slog.Record { return slog.NewRecord(zeroTime, slog.LevelInfo, s, 0) },
		Append: func(b []byte, s string) ([]byte, bool) {
			if strings.HasPrefix(s, "slow") {
				return b, false
			}
			return append(append(append(b, "fast:"...), s...), '\n'), true
		}})
	for _, s := range []string{"a", "slow b", "c"} {
		q.Put(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Run(ctx); err != nil {
		t.Fatal(err)
	}
	want := "fast:a\n{\"level\":\"INFO\",\"msg\":\"slow b\"}\nfast:c\n"
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	if n := testutil.ToFloat64(written); n != 3 {
		t.Errorf("written = %v, want 3", n)
	}
}
