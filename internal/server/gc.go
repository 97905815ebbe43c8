package server

import (
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/nmp-project/nmp/internal/config"
)

// ApplyGCPercent sets the Go garbage collector's target to
// service.gc_percent (docs/configuration.md), unless environ sets GOGC:
// the runtime read that variable at start, and an operator who sets it
// means it. It returns the target in effect ("" source: GOGC) and logs
// it once. It is process-wide, so the commands that serve call it, not
// New.
//
// The server's live heap is small (the policy snapshot, caches, pooled
// buffers), so with Go's default of 100 a busy server collects many
// times a second; 400 lets the heap grow to five times the live data
// between collections and saves about a tenth of the CPU of a request
// (docs/benchmarks.md).
func ApplyGCPercent(cfg *config.Config, environ []string, log *slog.Logger) (percent int, fromEnv bool) {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GOGC="); ok && v != "" {
			log.Info("garbage collector", "gogc", v, "source", "GOGC environment variable; service.gc_percent not applied")
			return 0, true
		}
	}
	debug.SetGCPercent(cfg.Service.GCPercent)
	log.Debug("garbage collector", "gc_percent", cfg.Service.GCPercent, "source", "service.gc_percent")
	return cfg.Service.GCPercent, false
}
