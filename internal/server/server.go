// Package server assembles and runs the platform process: it opens and
// migrates the store, seeds it, serves the API on one HTTP port and shuts
// down gracefully.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nmp-project/nmp/internal/api"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authn/jwtverify"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/health"
	"github.com/nmp-project/nmp/internal/metrics"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
)

// NewLogger returns the server's structured logger per service.log_level
// and service.log_format.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Server is an assembled platform process.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	store   store.Store
	health  *health.State
	metrics *metrics.Metrics
	engine  *authz.Engine
	handler http.Handler
	clock   store.Clock
}

// Option adjusts a Server (used by tests).
type Option func(*Server)

// WithClock sets the clock of the store.
func WithClock(c store.Clock) Option { return func(s *Server) { s.clock = c } }

// New opens the store, applies migrations, creates the built-in
// workspaces and seed bindings, and builds the HTTP handler.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (*Server, error) {
	s := &Server{cfg: cfg, log: log, health: health.New("database", "policy"), metrics: metrics.New(), clock: time.Now}
	for _, o := range opts {
		o(s)
	}
	if cfg.Auth.PolicyDecisionPointProvider != "embedded" {
		return nil, fmt.Errorf("auth.policy_decision_point_provider %q is not supported by this version (use embedded)", cfg.Auth.PolicyDecisionPointProvider)
	}
	doc, err := authz.LoadDocument(cfg.Auth.ExtraAuthzDataFiles)
	if err != nil {
		return nil, err
	}
	if s.engine, err = authz.NewEngine(doc); err != nil {
		return nil, fmt.Errorf("authorization data: %w", err)
	}
	dbURL, err := databaseURL(cfg)
	if err != nil {
		return nil, err
	}
	st, err := sqlstore.Open(ctx, sqlstore.Options{
		URL: dbURL, MaxConns: cfg.Entities.DatabaseConfig.ConnectionsLimit,
		ConnectTimeout: time.Duration(cfg.Entities.DatabaseConfig.ConnectTimeoutSeconds) * time.Second,
		Migrate:        cfg.Entities.RunMigrations, Clock: s.clock,
	})
	if err != nil {
		return nil, fmt.Errorf("open entity store: %w", err)
	}
	s.store = st
	var seed store.Seed
	if cfg.Platform.SeedOnStartup {
		admin := ""
		if cfg.Auth.AdminEmail != nil {
			admin = *cfg.Auth.AdminEmail
		}
		seed = authz.Seed(admin, cfg.Auth.DefaultWorkspace)
	}
	if err := st.EnsureBuiltins(ctx, seed); err != nil {
		st.Close()
		return nil, fmt.Errorf("seed the entity store: %w", err)
	}
	s.health.Set("database", nil)
	s.reloadPolicy(ctx)
	var idp *authn.DiscoveryCache
	if cfg.Auth.Enabled && cfg.Auth.OIDC.Enabled {
		idp = &authn.DiscoveryCache{Issuer: cfg.Auth.OIDC.Issuer, TTL: time.Duration(cfg.Auth.OIDC.DiscoveryCacheTTL) * time.Second,
			Client: &http.Client{Timeout: 5 * time.Second}, Now: s.clock}
	}
	var tokens authn.TokenValidator
	if cfg.Auth.Enabled && (cfg.Auth.OIDC.Enabled || cfg.Auth.AllowUnsignedJWT) {
		v, err := jwtverify.New(cfg.Auth, jwtverify.WithClock(s.clock), jwtverify.WithLogger(log))
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("token validation: %w", err)
		}
		tokens = v
	}
	s.handler = api.New(api.Options{Config: cfg, Store: st, Roles: authz.NewCatalog(doc), Health: s.health,
		Metrics: s.metrics, Logger: log, Engine: s.engine, PDP: api.EmbeddedPDP{Engine: s.engine},
		Tokens: tokens, IdP: idp, OnPolicyChange: s.syncPolicy})
	where := cfg.SQLitePath()
	if st.Dialect() != "sqlite" {
		where = cfg.Entities.DatabaseConfig.RedactedURL()
	}
	log.Info("entity store ready", "backend", st.Dialect(), "database", where)
	return s, nil
}

// databaseURL resolves the store URL; the default SQLite file lives in the
// data directory, which is created 0700.
func databaseURL(cfg *config.Config) (string, error) {
	if cfg.DatabaseKind() == "postgres" {
		return cfg.Entities.DatabaseConfig.URL, nil
	}
	path := cfg.SQLitePath()
	if err := os.MkdirAll(cfg.Platform.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("create data dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create database dir: %w", err)
	}
	// Create the file owner-only before SQLite does (SQLite gives its WAL
	// and shared-memory files the database file's mode).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("create database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return "sqlite://" + path, nil
}

// Handler is the complete HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Store is the opened entity store.
func (s *Server) Store() store.Store { return s.store }

// Addr is the configured listen address.
func (s *Server) Addr() string {
	return net.JoinHostPort(s.cfg.Service.Host, strconv.Itoa(s.cfg.Service.Port))
}

// Serve serves on ln until ctx is cancelled, then stops accepting, lets
// in-flight requests finish (up to service.shutdown_timeout_seconds) and
// closes the store.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	checkCtx, stopChecks := context.WithCancel(ctx)
	defer stopChecks()
	go s.checkDatabase(checkCtx)
	go s.refreshPolicy(checkCtx)
	if st, ok := s.store.(*sqlstore.Store); ok {
		// Other replicas' binding changes: apply each announced revision;
		// on every (re)connect reload fully, as notifications may have been
		// missed meanwhile.
		go st.Listen(checkCtx, s.cfg.Entities.DatabaseConfig.URL, s.log,
			func(int64) { s.syncPolicy(checkCtx, 0) },
			func() { s.reloadPolicy(checkCtx) })
	}

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("serving", "address", ln.Addr().String(), "auth_enabled", s.cfg.Auth.Enabled)

	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		s.log.Info("shutting down", "timeout_seconds", s.cfg.Service.ShutdownTimeoutSeconds)
		sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.Service.ShutdownTimeoutSeconds)*time.Second)
		defer cancel()
		serveErr = hs.Shutdown(sctx)
		<-errc
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	if err := s.store.Close(); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("close store: %w", err))
	}
	s.log.Info("stopped")
	return serveErr
}

// every runs fn every interval until ctx ends (never if interval ≤ 0).
func every(ctx context.Context, interval time.Duration, fn func()) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// checkDatabase pings the store every db_health_check_interval_seconds
// and records the result for readiness.
func (s *Server) checkDatabase(ctx context.Context) {
	interval := time.Duration(s.cfg.Entities.DBHealthCheckIntervalSeconds) * time.Second
	every(ctx, interval, func() {
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := s.store.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Error("database health check failed", "error", err)
		}
		s.health.Set("database", err)
	})
}

// syncPolicy applies binding changes committed by this process before the
// write responds, so the next request sees them.
func (s *Server) syncPolicy(ctx context.Context, _ int64) {
	if err := s.engine.Sync(ctx, s.store, s.clock()); err != nil {
		s.metrics.PolicyReloadFailures.Inc()
		s.log.Error("policy update failed; the next full reload retries", "error", err)
		return
	}
	s.metrics.PolicyRevision.Set(float64(s.engine.Revision()))
}

// reloadPolicy loads every binding. A failure keeps the last snapshot,
// is logged and fails readiness until the next success.
func (s *Server) reloadPolicy(ctx context.Context) {
	_, err := s.engine.LoadFrom(ctx, s.store, s.clock())
	if errors.Is(err, authz.ErrStale) { // a newer change was applied meanwhile
		err = nil
	}
	s.health.Set("policy", err)
	if err != nil {
		s.metrics.PolicyReloadFailures.Inc()
		s.log.Error("policy reload failed", "error", err)
		return
	}
	s.metrics.PolicyRevision.Set(float64(s.engine.Revision()))
}

// refreshPolicy is the safety net: a full reload every
// auth.policy_data_refresh_interval seconds.
func (s *Server) refreshPolicy(ctx context.Context) {
	every(ctx, time.Duration(s.cfg.Auth.PolicyDataRefreshInterval*float64(time.Second)), func() { s.reloadPolicy(ctx) })
}

// Engine is the embedded policy engine.
func (s *Server) Engine() *authz.Engine { return s.engine }

// Run builds the server and serves on its configured address until ctx
// is cancelled.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	s, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.Addr())
	if err != nil {
		s.store.Close()
		return fmt.Errorf("listen on %s: %w", s.Addr(), err)
	}
	return s.Serve(ctx, ln)
}
