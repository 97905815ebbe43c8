package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
)

// TestBundleLongPollOutlivesWriteTimeout: a long-polling bundle request
// whose wait is longer than service.write_timeout_seconds still gets its
// 304 when the wait ends (its write deadline moves to the wait plus the
// timeout), where the listener's deadline alone would cut it.
func TestBundleLongPollOutlivesWriteTimeout(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) {
		production("127.0.0.1")(c)
		c.Service.WriteTimeoutSeconds = 1
	})
	status, h, _ := call(t, "GET", srv.URL+bundlePath, "", "X-NMP-Principal-Id", "service:opa")
	if status != http.StatusOK {
		t.Fatalf("bundle: %d", status)
	}
	start := time.Now()
	status, _, _ = call(t, "GET", srv.URL+bundlePath, "", "X-NMP-Principal-Id", "service:opa",
		"If-None-Match", h.Get("ETag"), "Prefer", "wait=2")
	if status != http.StatusNotModified {
		t.Fatalf("long poll past the write timeout: %d, want 304", status)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("answered after %s, before the 2 s wait", d)
	}
}
