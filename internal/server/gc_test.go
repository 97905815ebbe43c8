package server

import (
	"bytes"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/config"
)

// TestApplyGCPercent: service.gc_percent becomes the runtime's target,
// unless GOGC is set in the environment, which wins and is logged.
func TestApplyGCPercent(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	cfg := config.Default()
	if cfg.Service.GCPercent != 400 {
		t.Fatalf("default service.gc_percent = %d, want 400", cfg.Service.GCPercent)
	}
	for _, tc := range []struct {
		name        string
		environ     []string
		setting     int
		want        int // the runtime's target afterwards
		wantFromEnv bool
		wantLog     string
	}{
		{name: "config applies", environ: []string{"HOME=/root"}, setting: 250, want: 250},
		{name: "empty GOGC is unset", environ: []string{"GOGC="}, setting: 300, want: 300},
		{name: "GOGC wins", environ: []string{"GOGC=50"}, setting: 400, want: 123, wantFromEnv: true, wantLog: "gogc=50"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(123)
			cfg.Service.GCPercent = tc.setting
			var logs bytes.Buffer
			got, fromEnv := ApplyGCPercent(cfg, tc.environ, slog.New(slog.NewTextHandler(&logs, nil)))
			if now := debug.SetGCPercent(100); now != tc.want {
				t.Errorf("runtime GC percent = %d, want %d", now, tc.want)
			}
			if fromEnv != tc.wantFromEnv || (!fromEnv && got != tc.setting) {
				t.Errorf("ApplyGCPercent = %d, %v; want %d, %v", got, fromEnv, tc.setting, tc.wantFromEnv)
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log %q lacks %q", logs.String(), tc.wantLog)
			}
		})
	}
}
