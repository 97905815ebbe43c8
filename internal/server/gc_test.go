package server

import (
	"bytes"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/config"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name        string
		live, floor uint64
		want        int
	}{
		{name: "before the first collection: the floor from Go's 4 MB", live: 0, floor: 64 * mib, want: 1500},
		{name: "small live heap", live: 8 * mib, floor: 64 * mib, want: 700},
		{name: "a third of the floor", live: 20 * mib, floor: 64 * mib, want: 220},
		{name: "half the floor: Go's default", live: 32 * mib, floor: 64 * mib, want: 100},
		{name: "large policy: Go's default", live: 130 * mib, floor: 64 * mib, want: 100},
		{name: "bounded", live: 4 * mib, floor: 1 << 50, want: gcMaxPercent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gcPercentFor(tc.live, tc.floor); got != tc.want {
				t.Errorf("gcPercentFor(%d MiB, %d MiB) = %d, want %d", tc.live/mib, tc.floor/mib, got, tc.want)
			}
		})
	}
}

// TestGCTuner: the tuner sets the percent at start and again after every
// collection, stops when told (giving Go's default back), and stays off
// when GOGC is set or the floor is 0.
func TestGCTuner(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	cfg := config.Default()
	if cfg.Service.GCMinHeapMiB != 64 {
		t.Fatalf("default service.gc_min_heap_mib = %d, want 64", cfg.Service.GCMinHeapMiB)
	}
	log := slog.New(slog.DiscardHandler)

	cfg.Service.GCMinHeapMiB = 1 << 20 // 1 TiB: far above any live heap here
	tu := StartGCTuner(cfg, []string{"HOME=/root"}, log)
	if tu == nil {
		t.Fatal("StartGCTuner returned nil")
	}
	if now := debug.SetGCPercent(-1); now != gcMaxPercent {
		t.Errorf("percent at start = %d, want %d", now, gcMaxPercent)
	}
	debug.SetGCPercent(123) // the next collection's tuning must set it again
	tu.percent.Store(123)
	before := tu.tunings.Load()
	deadline := time.Now().Add(10 * time.Second)
	for tu.tunings.Load() < before+2 { // two collections, two finalizer runs
		if time.Now().After(deadline) {
			t.Fatalf("tuned %d times after collections, want 2", tu.tunings.Load()-before)
		}
		runtime.GC()
		time.Sleep(time.Millisecond) // the finalizer goroutine runs after the collection
	}
	if now := debug.SetGCPercent(100); now != gcMaxPercent {
		t.Errorf("percent after collections = %d, want %d", now, gcMaxPercent)
	}
	tu.Stop()
	if now := debug.SetGCPercent(77); now != gcBasePercent {
		t.Errorf("percent after Stop = %d, want %d", now, gcBasePercent)
	}
	stopped := tu.tunings.Load()
	for range 3 {
		runtime.GC()
	}
	time.Sleep(10 * time.Millisecond)
	if n := tu.tunings.Load(); n != stopped {
		t.Errorf("tuned %d times after Stop", n-stopped)
	}
	if now := debug.SetGCPercent(100); now != 77 {
		t.Errorf("a stopped tuner changed the percent to %d", now)
	}

	for _, tc := range []struct {
		name    string
		environ []string
		floor   int
		wantLog string
	}{
		{name: "GOGC wins", environ: []string{"GOGC=50"}, floor: 64, wantLog: "gogc=50"},
		{name: "floor 0 is off", environ: nil, floor: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(123)
			cfg.Service.GCMinHeapMiB = tc.floor
			var logs bytes.Buffer
			if tu := StartGCTuner(cfg, tc.environ, slog.New(slog.NewTextHandler(&logs, nil))); tu != nil {
				tu.Stop()
				t.Fatal("StartGCTuner started")
			}
			if now := debug.SetGCPercent(100); now != 123 {
				t.Errorf("percent = %d, want 123 (untouched)", now)
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log %q lacks %q", logs.String(), tc.wantLog)
			}
		})
	}
}
