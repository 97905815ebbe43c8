package server

import (
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nmp-project/nmp/internal/config"
)

// The garbage collector's heap floor (service.gc_min_heap_mib,
// docs/configuration.md). Go starts a collection when the heap has grown
// GOGC percent (100) above what the last one found live. The server's
// live data is small unless it holds a large policy (a few MB plus the
// snapshot), so a busy server collects many times a second, and the
// collector costs about a tenth of a request's CPU (docs/benchmarks.md).
// The tuner keeps the next collection's goal at the floor or above:
// after every collection it sets the percent to reach the floor from the
// live heap, and to Go's 100 once the live heap is half the floor or
// more, so that a large policy (hundreds of MB live) is collected exactly
// as before.

// gcBasePercent is Go's default, which the tuner never goes below.
const gcBasePercent = 100

// gcMaxPercent bounds the percent for a nearly empty heap.
const gcMaxPercent = 100_000

// gcPercentFor is the percent whose goal, from a live heap of live
// bytes, is the floor (never below Go's default). Before the first
// collection (live 0) Go's goal is 4 MB at 100 %.
func gcPercentFor(live, floor uint64) int {
	const initialHeap = 4 << 20
	if live < initialHeap {
		live = initialHeap
	}
	if floor <= 2*live {
		return gcBasePercent
	}
	return int(min(floor*100/live-100, gcMaxPercent))
}

// GCTuner sets the collector's percent after every collection (from the
// runtime's finalizer goroutine, not a goroutine of its own).
type GCTuner struct {
	floor   uint64
	mu      sync.Mutex // a tuning and Stop, one after the other
	stopped atomic.Bool
	tunings atomic.Int64 // how often it has set the percent
	percent atomic.Int64 // the last percent set
	live    []metrics.Sample
}

// StartGCTuner applies service.gc_min_heap_mib unless environ sets GOGC
// (an operator who sets it means it) or the key is 0; it returns nil
// then. The setting is process-wide, so the commands that serve start
// it, not New. It logs what it does once.
func StartGCTuner(cfg *config.Config, environ []string, log *slog.Logger) *GCTuner {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GOGC="); ok && v != "" {
			log.Info("garbage collector: GOGC is set in the environment; service.gc_min_heap_mib not applied", "gogc", v)
			return nil
		}
	}
	if cfg.Service.GCMinHeapMiB == 0 {
		return nil
	}
	t := &GCTuner{floor: uint64(cfg.Service.GCMinHeapMiB) << 20, live: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.tune()
	t.arm()
	log.Debug("garbage collector: heap floor", "gc_min_heap_mib", cfg.Service.GCMinHeapMiB, "gc_percent", t.percent.Load())
	return t
}

// Stop stops tuning and gives the collector Go's default percent back.
func (t *GCTuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped.Swap(true) {
		debug.SetGCPercent(gcBasePercent)
	}
}

// sentinel is garbage whose finalizer runs once a collection has found
// it unreachable: after every collection, since each run arms a new one.
// (It holds a pointer, so it is never put in a tiny-object block, whose
// finalizers may never run.)
type sentinel struct{ t *GCTuner }

func (t *GCTuner) arm() {
	runtime.SetFinalizer(&sentinel{t: t}, func(s *sentinel) {
		if s.t.stopped.Load() {
			return
		}
		s.t.tune()
		s.t.arm()
	})
}

// tune sets the percent from the live heap of the last collection.
func (t *GCTuner) tune() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped.Load() {
		return
	}
	metrics.Read(t.live)
	var live uint64
	if t.live[0].Value.Kind() == metrics.KindUint64 {
		live = t.live[0].Value.Uint64()
	}
	p := gcPercentFor(live, t.floor)
	if int64(p) != t.percent.Load() {
		debug.SetGCPercent(p)
		t.percent.Store(int64(p))
	}
	t.tunings.Add(1)
}
