// Package servertest starts a real platform server on a loopback listener
// for tests of the API, the CLI and end-to-end flows.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/pgtest"
	"github.com/nmp-project/nmp/internal/testenv"
)

// Server is a running test server.
type Server struct {
	URL    string
	Config *config.Config
	Server *server.Server
	logs   *testenv.Buffer
	stop   func() error
}

// Stop stops the server as a shutdown signal would and waits until it has
// (its final writes done, the store closed); later calls do nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Errorf("server stopped with error: %v", err)
	}
}

// Logs returns everything the server logged so far.
func (s *Server) Logs() string { return s.logs.String() }

// WaitReady blocks until every component of the server reports ready
// (the policy change feed connects a moment after the listener opens), or
// fails the test after ten seconds with the reasons still outstanding.
func (s *Server) WaitReady(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Server.Health().WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

// Store returns the server's store.
func (s *Server) Store() store.Store { return s.Server.Store() }

// Start runs a server with a fresh SQLite data dir on 127.0.0.1:0; mutate
// may adjust the configuration first. It stops at test cleanup.
func Start(t testing.TB, mutate func(*config.Config), opts ...server.Option) *Server {
	t.Helper()
	return StartOn(t, Listen(t), mutate, opts...)
}

// Listen opens a loopback listener for StartOn, so that a test knows the
// server's URL before the server is configured (an external OPA that
// fetches the server's bundle and answers its decisions needs both URLs).
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// URL is the base URL of a listener.
func URL(ln net.Listener) string { return "http://" + ln.Addr().String() }

// StartOn is Start on a listener the test opened.
func StartOn(t testing.TB, ln net.Listener, mutate func(*config.Config), opts ...server.Option) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.Platform.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Entities.DBHealthCheckIntervalSeconds = 1
	if mutate != nil {
		mutate(cfg)
	}
	if _, err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	logs := &testenv.Buffer{}
	var sink io.Writer = logs
	if testing.Verbose() {
		sink = io.MultiWriter(logs, testWriter{t})
	}
	log := slog.New(slog.NewTextHandler(sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, log, opts...)
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	stop := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("server stopped with error: %v", err)
		}
	})
	return &Server{URL: URL(ln), Config: cfg, Server: srv, logs: logs, stop: stop}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// Client is the HTTP client tests use (no redirects followed, so a
// redirect would be visible).
var Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// PostgresURL returns the URL of a fresh PostgreSQL schema, or skips the
// test when NMP_TEST_POSTGRES_URL is not set.
func PostgresURL(t testing.TB) string { return pgtest.SchemaURL(t) }
