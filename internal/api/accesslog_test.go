package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/accesslog"
	"github.com/nmp-project/nmp/internal/api"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/health"
	"github.com/nmp-project/nmp/internal/metrics"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/store"
)

// accessLogAPI is the API with auth on and the given access log.
func accessLogAPI(t testing.TB, al *accesslog.Logger, m *metrics.Metrics) http.Handler {
	engine := adminAliceEngine(t)
	cfg := config.Default()
	cfg.Auth.Enabled = true
	return api.New(api.Options{Config: cfg, Store: authztest.Store(t, store.Seed{}), Roles: authz.NewCatalog(engine.Document()),
		Health: health.New("policy"), Metrics: m, Logger: slog.New(slog.DiscardHandler), PDP: pdp.NewEmbedded(engine),
		Tokens: tokens{}, AccessLog: al})
}

// TestAccessLogSamplesSuccessesOnly: at sample rate 0 the middleware logs
// no successful request but every error (a 401 refusal, a 404), with the
// principal when one was identified and credential query parameters
// redacted. (Denials are 403s: status ≥ 400 like any error.)
func TestAccessLogSamplesSuccessesOnly(t *testing.T) {
	m := metrics.New()
	var out bytes.Buffer
	al := accesslog.New(accesslog.Options{Output: &out, SampleRate: 0, Registerer: m.Registry()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- al.Run(ctx) }()
	h := accessLogAPI(t, al, m)
	serve := func(path, bearer string) int {
		req := httptest.NewRequest("GET", path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if c := serve("/apis/entities/v2/workspaces?access_token=sekrit1", "alice"); c != http.StatusOK {
		t.Fatalf("alice: status %d", c)
	}
	if c := serve("/apis/entities/v2/workspaces?token=sekrit2", ""); c != http.StatusUnauthorized {
		t.Fatalf("anonymous: status %d", c)
	}
	if c := serve("/apis/entities/v2/workspaces/missing?password=sekrit3", "alice"); c != http.StatusNotFound {
		t.Fatalf("missing workspace: status %d", c)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "sekrit") {
		t.Errorf("a credential reached the access log: %s", out.String())
	}
	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got = append(got, e)
	}
	if len(got) != 2 {
		t.Fatalf("%d lines, want the 401 and the 404 only: %s", len(got), out.String())
	}
	if got[0]["status"] != 401.0 || got[0]["query"] != "token=REDACTED" || got[0]["principal"] != nil {
		t.Errorf("401 line = %v", got[0])
	}
	if got[1]["status"] != 404.0 || got[1]["query"] != "password=REDACTED" || got[1]["principal"] != "alice" {
		t.Errorf("404 line = %v", got[1])
	}
	if got[0]["request_id"] == "" || got[0]["path"] != "/apis/entities/v2/workspaces" {
		t.Errorf("401 line = %v", got[0])
	}
}

// BenchmarkAccessLog is the API's cost per request (the gateway callout
// authenticating a bearer token, auth on, served in process: a request
// that does not touch the database) with the access log at the default
// configuration (info, every request, plain text to a discarded output,
// written by the background writer) and off.
func BenchmarkAccessLog(b *testing.B) {
	for _, bc := range []struct {
		name string
		off  bool
	}{{"default", false}, {"off", true}} {
		b.Run(bc.name, func(b *testing.B) {
			m := metrics.New()
			al := accesslog.New(accesslog.Options{Output: io.Discard, Off: bc.off, SampleRate: 1, Registerer: m.Registry(),
				Handler: func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			if al != nil {
				go func() { done <- al.Run(ctx) }()
			} else {
				done <- nil
			}
			h := accessLogAPI(b, al, m)
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", "/apis/auth/authenticate?page=1", nil)
				req.Header.Set("Authorization", "Bearer alice")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
