package server_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// BenchmarkIdentifyLastSeen is the cost of last-seen recording on the
// request path: GET one workspace through the whole handler chain as an
// identified caller (development-mode identity headers, the cheapest
// identification, so recording's share is the largest), with recording on
// (the default window) and off, serially and from every core at once.
func BenchmarkIdentifyLastSeen(b *testing.B) {
	for _, rec := range []struct {
		name     string
		interval int
	}{{"recording=off", 0}, {"recording=on", 300}} {
		srv := servertest.Start(b, func(c *config.Config) {
			c.Auth.Enabled = true
			c.Auth.LastSeenIntervalSeconds = rec.interval
		})
		h := srv.Server.Handler()
		newReq := func() *http.Request {
			req := httptest.NewRequest(http.MethodGet, "/apis/entities/v2/workspaces/default", nil)
			req.RemoteAddr = "127.0.0.1:40000"
			req.Header.Set("X-NMP-Principal-Id", "u-alice")
			req.Header.Set("X-NMP-Principal-Email", "alice@example.com")
			return req
		}
		serve := func(req *http.Request) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
		serve(newReq())
		b.Run(rec.name+"/serial", func(b *testing.B) {
			req := newReq()
			b.ReportAllocs()
			for b.Loop() {
				serve(req)
			}
		})
		b.Run(rec.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := newReq()
				for pb.Next() {
					serve(req)
				}
			})
		})
	}
}
