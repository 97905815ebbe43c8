//go:build faults

package faulttest

import (
	"context"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authn/oidctest"
	"github.com/nmp-project/nmp/internal/store/pgtest"
)

// TestSteadyLoad: sustained load with auth on (RS256) answers every
// request correctly: 0 errors, 0 wrong decisions, every acknowledged
// write present afterwards.
func TestSteadyLoad(t *testing.T) {
	tests := []struct {
		name  string
		dbURL func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return pgtest.SchemaURL(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := oidctest.New(t)
			p := startServer(t, serverOptions{dataDir: t.TempDir(), dbURL: tt.dbURL(t), issuer: iss})
			l := newLoad(t, p.url, iss, 10*time.Second)
			l.setup()
			ctx, cancel := context.WithTimeout(context.Background(), duration(t, 2*time.Second))
			defer cancel()
			wall := l.run(ctx)
			l.report("steady "+tt.name, wall)
			if lost := l.verify(); lost > 0 {
				t.Errorf("%d acknowledged writes lost", lost)
			}
		})
	}
}
