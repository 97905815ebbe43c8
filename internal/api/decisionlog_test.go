package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/api"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/decisionlog"
	"github.com/nmp-project/nmp/internal/health"
	"github.com/nmp-project/nmp/internal/metrics"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/store"
)

// stuckOutput is a decision log output whose first Write reports that it
// started and then waits until the test releases it.
type stuckOutput struct {
	entered, release chan struct{}
	once             sync.Once
}

func (s *stuckOutput) Write(p []byte) (int, error) {
	s.once.Do(func() {
		close(s.entered)
		<-s.release
	})
	return len(p), nil
}

// TestDecisionLogNeverDelaysRequests: while the decision log's output is
// stuck and its buffer full, requests are still answered, and each of
// their decisions that does not fit is dropped and counted.
func TestDecisionLogNeverDelaysRequests(t *testing.T) {
	engine := adminAliceEngine(t)
	cfg := config.Default()
	cfg.Auth.Enabled = true
	m := metrics.New()
	out := &stuckOutput{entered: make(chan struct{}), release: make(chan struct{})}
	dl := decisionlog.New(decisionlog.Options{Output: out, AllowSampleRate: 1, BufferSize: 1, Registerer: m.Registry()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dl.Run(ctx) }()
	var release sync.Once
	t.Cleanup(func() {
		release.Do(func() { close(out.release) })
		cancel()
		if err := <-done; err != nil {
			t.Errorf("decision log: %v", err)
		}
	})
	h := api.New(api.Options{Config: cfg, Store: authztest.Store(t, store.Seed{}), Roles: authz.NewCatalog(engine.Document()),
		Health: health.New("policy"), Metrics: m, Logger: slog.New(slog.DiscardHandler), PDP: pdp.NewEmbedded(engine),
		Tokens: tokens{}, DecisionLog: dl})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: 10 * time.Second}
	get := func() {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/apis/entities/v2/workspaces", nil)
		req.Header.Set("Authorization", "Bearer alice")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request not answered while the decision log is stuck: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	get() // its entry is taken by the writer, which gets stuck in the output
	select {
	case <-out.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the decision log never wrote")
	}
	for range 5 { // one fits in the buffer, four are dropped
		get()
	}
	if v := counterValue(t, m, "nmp_decision_log_dropped_total"); v != 4 {
		t.Errorf("nmp_decision_log_dropped_total = %v, want 4", v)
	}
	if v := counterValue(t, m, "nmp_decision_log_logged_total"); v != 6 {
		t.Errorf("nmp_decision_log_logged_total = %v, want 6", v)
	}
}

func counterValue(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
