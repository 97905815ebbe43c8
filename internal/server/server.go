// Package server assembles and runs the platform process: it opens and
// migrates the store, seeds it, serves the API on one HTTP port and shuts
// down gracefully.
package server

import (
	"context"
	"crypto/tls"
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

	"github.com/nmp-project/nmp/internal/accesslog"
	"github.com/nmp-project/nmp/internal/api"
	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authn/accesskey"
	"github.com/nmp-project/nmp/internal/authn/introspect"
	"github.com/nmp-project/nmp/internal/authn/jwtverify"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/bundle"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/decisionlog"
	"github.com/nmp-project/nmp/internal/extauthz"
	"github.com/nmp-project/nmp/internal/hardening"
	"github.com/nmp-project/nmp/internal/health"
	"github.com/nmp-project/nmp/internal/lastseen"
	"github.com/nmp-project/nmp/internal/lifecycle"
	"github.com/nmp-project/nmp/internal/metrics"
	"github.com/nmp-project/nmp/internal/pdp"
	"github.com/nmp-project/nmp/internal/policysync"
	"github.com/nmp-project/nmp/internal/server/auditretention"
	"github.com/nmp-project/nmp/internal/signing"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/tlsconfig"
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
	syncer  *policysync.Syncer
	bundle  *bundle.Server        // the OPA bundle endpoint's builder and cache
	idp     *authn.DiscoveryCache // nil without OIDC
	opa     *pdp.OPA              // nil unless the provider is opa
	handler http.Handler
	clock   store.Clock
	// keys refreshes the IdP key sets in the background; nil without OIDC.
	keys *jwtverify.KeyRefresher
	// tls is the listener's TLS configuration; nil serves plain HTTP.
	tls *tls.Config
	// extAuthz is the Envoy ext_authz gRPC server; nil when
	// auth.ext_authz.grpc_address is empty.
	extAuthz         *extauthz.Server
	extAuthzListener net.Listener // WithExtAuthzListener
	// probeClient probes the OIDC issuers for the hardening report
	// (WithProbeClient); nil: a default client.
	probeClient *http.Client
	// lastSeen records callers' request times and writes them in batches.
	lastSeen *lastseen.Recorder
	// accessKeyRegistry answers the access-key validator
	// (WithAccessKeyRegistry); accessKeys caches it. signingKeys is the
	// platform's token signing key. All nil unless auth.access_keys.enabled.
	accessKeyRegistry accesskey.Registry
	accessKeys        *accesskey.Cache
	// keyUse writes the access keys' last_used_at (nil without keys).
	keyUse      *lastseen.Recorder
	signingKeys *signing.Keys
	// decisions is the decision log (nil unless auth.decision_log.enabled);
	// decisionOutput its file, closed by decisions.Run or when New fails.
	decisions *decisionlog.Logger
	accessLog *accesslog.Logger // nil when off or below service.log_level
	// accessLogOutput receives the access log (nil: os.Stderr).
	accessLogOutput io.Writer
	decisionOutput  io.Closer
}

// Option adjusts a Server (used by tests).
type Option func(*Server)

// WithClock sets the clock of the store.
func WithClock(c store.Clock) Option { return func(s *Server) { s.clock = c } }

// WithExtAuthzListener makes the Envoy ext_authz server (when
// auth.ext_authz.grpc_address is set) serve on ln instead of listening on
// that address (tests use a 127.0.0.1:0 listener).
func WithExtAuthzListener(ln net.Listener) Option { return func(s *Server) { s.extAuthzListener = ln } }

// WithProbeClient sets the client the hardening report probes the OIDC
// issuers with (tests pass one trusting their certificate authority).
func WithProbeClient(c *http.Client) Option { return func(s *Server) { s.probeClient = c } }

// WithAccessLogOutput sets where the access log is written (default
// os.Stderr); the CLI passes the writer its service log goes to.
func WithAccessLogOutput(w io.Writer) Option { return func(s *Server) { s.accessLogOutput = w } }

// WithStore makes the server use st instead of opening the configured
// database (tests inject failing stores this way). The server owns st
// from then on and closes it when Serve returns or New fails.
func WithStore(st store.Store) Option { return func(s *Server) { s.store = st } }

// WithAccessKeyRegistry replaces the access-key registry the validator
// asks about every access-key token (by default the store's); tests use
// it to make the registry fail.
func WithAccessKeyRegistry(r accesskey.Registry) Option {
	return func(s *Server) { s.accessKeyRegistry = r }
}

// Health components besides the policy syncer's.
const healthDatabase = "database"

// errDatabaseUnreachable is the public reason of a failed database check.
var errDatabaseUnreachable = errors.New("database unreachable")

// New opens the store (unless one was injected), applies migrations,
// creates the built-in workspaces and seed bindings, loads the policy and
// builds the HTTP handler.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (_ *Server, err error) {
	s := &Server{cfg: cfg, log: log, health: health.New(healthDatabase, policysync.HealthPolicy, policysync.HealthFeed),
		metrics: metrics.New(), clock: time.Now}
	for _, o := range opts {
		o(s)
	}
	defer func() {
		if err != nil && s.store != nil {
			err = errors.Join(err, s.store.Close())
		}
		if err != nil && s.decisionOutput != nil {
			err = errors.Join(err, s.decisionOutput.Close())
		}
	}()
	if cfg.Auth.PolicyDecisionPointProvider == "opa" {
		s.health.Set(pdp.HealthComponent, errors.New("OPA not checked yet"))
	}
	if s.tls, err = tlsconfig.Server(cfg.Service.TLS, log); err != nil {
		return nil, err
	}
	doc, err := authz.LoadDocument(cfg.Auth.ExtraAuthzDataFiles)
	if err != nil {
		return nil, err
	}
	if s.engine, err = authz.NewEngine(doc); err != nil {
		return nil, fmt.Errorf("authorization data: %w", err)
	}
	if s.store == nil {
		dbURL, err := databaseURL(cfg)
		if err != nil {
			return nil, err
		}
		sq, err := sqlstore.Open(ctx, sqlstore.Options{
			URL: dbURL, MaxConns: cfg.Entities.DatabaseConfig.ConnectionsLimit,
			ConnectTimeout: time.Duration(cfg.Entities.DatabaseConfig.ConnectTimeoutSeconds) * time.Second,
			Migrate:        cfg.Entities.RunMigrations, Clock: s.clock,
			PoolWait: time.Duration(cfg.Entities.DatabaseConfig.PoolWaitTimeoutSeconds) * time.Second,
		})
		if err != nil {
			return nil, fmt.Errorf("open entity store: %w", err)
		}
		// Requests' store operations are bounded and their driver errors
		// classified (503 store_unavailable, 507 insufficient_storage).
		s.store = sqlstore.Guard(sq, time.Duration(cfg.Entities.DatabaseConfig.StatementTimeoutSeconds)*time.Second)
	}
	st := s.store
	var seed store.Seed
	if cfg.Platform.SeedOnStartup {
		admin := ""
		if cfg.Auth.AdminEmail != nil {
			admin = *cfg.Auth.AdminEmail
		}
		seed = authz.Seed(admin, cfg.Auth.DefaultWorkspace)
	}
	if err := st.EnsureBuiltins(ctx, seed); err != nil {
		return nil, fmt.Errorf("seed the entity store: %w", err)
	}
	s.health.Set(healthDatabase, nil)
	s.syncer = policysync.New(policysync.Options{Engine: s.engine, Source: st,
		Interval: time.Duration(cfg.Auth.PolicyDataRefreshInterval * float64(time.Second)),
		Clock:    s.clock, Log: log, Metrics: s.metrics, Health: s.health})
	_ = s.syncer.Prime(ctx) // a failure is logged, fails readiness and is retried by Run
	var idp *authn.DiscoveryCache
	if cfg.Auth.Enabled && cfg.Auth.OIDC.Enabled {
		idp = &authn.DiscoveryCache{Issuer: cfg.Auth.OIDC.Issuer, TTL: time.Duration(cfg.Auth.OIDC.DiscoveryCacheTTL) * time.Second,
			Client: &http.Client{Timeout: 5 * time.Second}, Now: s.clock,
			MinGap: time.Duration(cfg.Auth.OIDC.JWKSRefetchMinIntervalSeconds) * time.Second}
		s.idp = idp
	}
	var tokens authn.TokenValidator
	router := &authn.TokenRouter{Log: log, Now: s.clock}
	if cfg.Auth.Enabled && (cfg.Auth.OIDC.Enabled || cfg.Auth.AllowUnsignedJWT) {
		v, err := jwtverify.New(cfg.Auth, jwtverify.WithClock(s.clock), jwtverify.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("token validation: %w", err)
		}
		if cfg.Auth.OIDC.Enabled {
			s.keys = v.KeyRefresher()
		}
		router.JWT = v
		if cfg.Auth.OIDC.Enabled && cfg.Auth.OIDC.Introspection.Enabled {
			in, err := introspect.New(cfg.Auth, v, introspect.WithClock(s.clock), introspect.WithLogger(log))
			if err != nil {
				return nil, fmt.Errorf("token introspection: %w", err)
			}
			router.Opaque = in
		}
		tokens = router
	}
	if cfg.Auth.AccessKeys.Enabled {
		if err := s.setUpAccessKeys(cfg, log); err != nil {
			return nil, err
		}
		if cfg.Auth.Enabled {
			v, err := accesskey.NewValidator(cfg, s.signingKeys, s.accessKeys, accesskey.WithClock(s.clock))
			if err != nil {
				return nil, fmt.Errorf("access keys: %w", err)
			}
			router.AccessKeys, router.AccessKeyIssuer = v, cfg.TokenSigningIssuer()
			tokens = router // a bearer validator is configured, even without OIDC
		}
	}
	var dp pdp.DecisionPoint = pdp.NewEmbedded(s.engine)
	if cfg.Auth.PolicyDecisionPointProvider == "opa" {
		// OPA decides; the embedded engine and the syncer keep running
		// (workspace visibility, /status, the bundle OPA loads).
		if s.opa, err = pdp.NewOPA(pdp.OPAOptions{BaseURL: cfg.Auth.PolicyDecisionPointBaseURL,
			Timeout: time.Duration(cfg.Auth.PolicyDecisionPointRequestTimeoutSeconds) * time.Second,
			Local:   s.engine, Metrics: s.metrics, Log: log}); err != nil {
			return nil, fmt.Errorf("auth.policy_decision_point_base_url: %w", err)
		}
		dp = s.opa
	}
	s.bundle = bundle.New(bundle.Options{Source: s.engine, Changes: s.syncer, CacheSeconds: cfg.Auth.BundleCacheSeconds,
		Registerer: s.metrics.Registry(), Log: log})
	s.lastSeen = lastseen.New(lastseen.Options{Store: st, Interval: time.Duration(cfg.Auth.LastSeenIntervalSeconds) * time.Second,
		Clock: s.clock, Log: log, Health: s.health, StopTimeout: time.Duration(cfg.Service.ShutdownTimeoutSeconds) * time.Second})
	catalog := authz.NewCatalog(doc)
	if s.decisions, err = s.newDecisionLog(cfg, catalog, log); err != nil {
		return nil, err
	}
	s.accessLog = s.newAccessLog(cfg, log)
	apiOpts := api.Options{Config: cfg, Store: st, Roles: catalog, Health: s.health, DecisionLog: s.decisions, AccessLog: s.accessLog,
		Metrics: s.metrics, Logger: log, PDP: dp,
		Tokens: tokens, IdP: idp, Propagation: s.syncer,
		PropagationTimeout: propagationTimeout(cfg),
		LocalPDP:           pdp.NewEmbedded(s.engine), Bundle: s.bundle, LastSeen: s.lastSeen,
		Hardening: api.HardeningOptions{Roles: doc.Roles, Client: s.probeClient, Now: s.clock, StaleMembers: staleMembers(cfg, st)}}
	if s.signingKeys != nil {
		apiOpts.SigningKeys = s.signingKeys
		apiOpts.AccessKeys = api.AccessKeyOptions{Minter: accesskey.NewMinter(cfg, s.signingKeys), Policy: accesskey.NewPolicy(cfg),
			Issuer: cfg.TokenSigningIssuer(), Audience: cfg.Auth.AccessKeys.Audience, Invalidate: s.accessKeys.Invalidate}
		apiOpts.KeyUse, apiOpts.Clock = s.keyUse, s.clock
	}
	s.handler = api.New(apiOpts)
	if addr := cfg.Auth.ExtAuthz.GRPCAddress; addr != "" {
		if s.extAuthz, err = extauthz.New(extauthz.Options{Address: addr, Listener: s.extAuthzListener, Gateway: api.NewGateway(apiOpts), TLS: s.tls, // the same certificates (and client CA) as HTTPS
			Registerer: s.metrics.Registry(), Log: log,
			StopTimeout: time.Duration(cfg.Service.ShutdownTimeoutSeconds) * time.Second}); err != nil {
			return nil, err
		}
	}
	if cfg.DatabaseKind() == config.DatabaseSQLite {
		log.Info("entity store ready", "backend", config.DatabaseSQLite, "database", cfg.SQLitePath())
	} else {
		log.Info("entity store ready", "backend", config.DatabasePostgres, "database", cfg.Entities.DatabaseConfig.RedactedURL())
	}
	return s, nil
}

// setUpAccessKeys loads (or generates) the token signing key and wraps the
// access-key registry in its cache.
func (s *Server) setUpAccessKeys(cfg *config.Config, log *slog.Logger) error {
	if s.accessKeyRegistry == nil {
		s.accessKeyRegistry = keyRegistry{store: s.store, clock: s.clock}
	}
	keys, err := signing.Load(cfg, log)
	if err != nil {
		return fmt.Errorf("access keys: %w", err)
	}
	s.signingKeys = keys
	s.accessKeys = accesskey.NewCache(s.accessKeyRegistry, accesskey.CacheClock(s.clock))
	s.keyUse = newKeyUseRecorder(s.store, s)
	s.health.Set(keyFeedComponent, errors.New("not connected yet"))
	log.Info("access keys enabled", "issuer", cfg.TokenSigningIssuer(), "key_id", keys.KeyID(),
		"audience", cfg.Auth.AccessKeys.Audience)
	return nil
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

// TLSConfig is the listener's TLS configuration from service.tls, nil when
// the server speaks plain HTTP. Another listener of the process may use it
// (the server clones it); its certificate follows the files' rotation.
func (s *Server) TLSConfig() *tls.Config { return s.tls }

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
	hs := s.httpServer(ctx)
	// Background components run from before the first request until
	// after the last one, and have all returned before the store closes.
	background := []lifecycle.Component{lifecycle.Func{N: "database health check", F: s.checkDatabase}, s.syncer}
	if s.keys != nil {
		background = append(background, s.keys)
	}
	if s.idp != nil {
		background = append(background, lifecycle.Func{N: "identity provider check", F: s.checkIdP})
	}
	if s.opa != nil {
		background = append(background, s.opaMonitor())
		defer s.opa.CloseIdleConnections()
	}
	if s.accessKeys != nil {
		background = append(background, keyFeed{feed: s.store, cache: s.accessKeys, health: s.health})
	}
	background = append(background, &auditretention.Pruner{Store: s.store, Clock: s.clock, Log: s.log,
		Retention: time.Duration(s.cfg.Auth.Audit.RetentionDays) * 24 * time.Hour})
	// Stopped after the listeners: they write what the last requests left.
	background = append(background, s.lastSeen)
	if s.keyUse != nil {
		background = append(background, s.keyUse)
	}
	if s.decisions != nil {
		background = append(background, s.decisions) // flushed after the last decision
	}
	if s.accessLog != nil {
		background = append(background, s.accessLog) // flushed after the last request
	}
	if s.extAuthz != nil {
		// Started last, stopped first: in-flight Checks finish before the
		// components and the store they use stop.
		if err := s.extAuthz.Listen(); err != nil {
			return errors.Join(err, s.store.Close())
		}
		background = append(background, s.extAuthz)
	}
	components := lifecycle.Start(ctx, s.log, s.health, background...)

	hs.RegisterOnShutdown(s.bundle.Close) // long-polling bundle requests answer 304 at once
	errc := make(chan error, 1)
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
		hs.TLSConfig = s.tls
		go func() { errc <- hs.ServeTLS(ln, "", "") }() // the certificate comes from TLSConfig.GetCertificate
	} else {
		go func() { errc <- hs.Serve(ln) }()
	}
	s.log.Info("serving", "address", ln.Addr().String(), "url", scheme+"://"+ln.Addr().String(),
		"tls", s.tls != nil, "mutual_tls", s.tls != nil && s.tls.ClientCAs != nil, "auth_enabled", s.cfg.Auth.Enabled)

	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		s.log.Info("shutting down", "timeout_seconds", s.cfg.Service.ShutdownTimeoutSeconds)
		sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.Service.ShutdownTimeoutSeconds)*time.Second)
		defer cancel()
		serveErr = hs.Shutdown(sctx)
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			serveErr = errors.Join(serveErr, err)
		}
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	if err := components.Stop(); err != nil {
		serveErr = errors.Join(serveErr, err)
	}
	if err := s.store.Close(); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("close store: %w", err))
	}
	s.log.Info("stopped")
	return serveErr
}

// httpServer is the listener's server with the service section's limits
// (docs/configuration.md, "Limits"): timeouts, header size and, in front
// of the handler, the bound on requests served at once.
func (s *Server) httpServer(ctx context.Context) *http.Server {
	c := s.cfg.Service
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	return &http.Server{
		Handler:           limitConcurrency(s.handler, c.MaxConcurrentRequests, s.metrics),
		ReadHeaderTimeout: sec(c.ReadHeaderTimeoutSeconds),
		ReadTimeout:       sec(c.ReadTimeoutSeconds),
		WriteTimeout:      sec(c.WriteTimeoutSeconds),
		IdleTimeout:       sec(c.IdleTimeoutSeconds),
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// opaMonitor is the readiness check of the external OPA (health
// component "pdp"): OPA answers, has activated its bundles, and its authz
// bundle holds this process's policy revision or lags behind it for less
// than auth.propagation_timeout_seconds.
func (s *Server) opaMonitor() *pdp.Monitor {
	return s.opa.Monitor(pdp.MonitorOptions{
		Local: func() int64 {
			st := s.syncer.Status()
			return max(st.Applied, st.Known)
		},
		MaxLag: propagationTimeout(s.cfg),
		Clock:  s.clock, Health: s.health, Log: s.log,
	})
}

// propagationTimeout is auth.propagation_timeout_seconds (0: 30 s).
func propagationTimeout(cfg *config.Config) time.Duration {
	if cfg.Auth.PropagationTimeoutSeconds <= 0 {
		return 30 * time.Second
	}
	return time.Duration(cfg.Auth.PropagationTimeoutSeconds) * time.Second
}

// checkDatabase pings the store every db_health_check_interval_seconds
// and records the result for readiness, until ctx ends.
func (s *Server) checkDatabase(ctx context.Context) error {
	interval := time.Duration(s.cfg.Entities.DBHealthCheckIntervalSeconds) * time.Second
	if interval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := s.store.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// The detail (host, user, driver message) goes to the log
			// only: readiness and /status are public.
			s.log.Error("database health check failed", "error", err)
			err = errDatabaseUnreachable
		}
		s.health.Set(healthDatabase, err)
	}
}

// checkIdP reads the issuer's discovery document once at start, so that a
// misconfigured issuer (most often a trailing slash: "https://idp/" versus
// "https://idp") is named in the log right away rather than at the first
// token; an IdP that does not answer yet is only a warning (tokens are
// verified with the keys fetched when they arrive). It then waits to be
// stopped.
func (s *Server) checkIdP(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := s.idp.Get(cctx)
	cancel()
	switch {
	case err == nil:
		s.log.Info("identity provider answers", "issuer", s.cfg.Auth.OIDC.Issuer)
	case errors.Is(err, authn.ErrIssuerMismatch):
		s.log.Error("auth.oidc.issuer does not match the identity provider's discovery document: tokens will be refused", "error", err)
	case ctx.Err() == nil:
		s.log.Warn("identity provider not reachable at start; retried on demand", "issuer", s.cfg.Auth.OIDC.Issuer, "error", err)
	}
	<-ctx.Done()
	return nil
}

// LastSeen is the recorder of callers' last-seen times.
func (s *Server) LastSeen() *lastseen.Recorder { return s.lastSeen }

// Syncer is the policy syncer (the engine's only writer).
func (s *Server) Syncer() *policysync.Syncer { return s.syncer }

// Engine is the embedded policy engine.
func (s *Server) Engine() *authz.Engine { return s.engine }

// staleMembers is the hardening report's source of stale access: the
// store's last-seen times, or nil (the finding is unknown) when recording
// is off.
func staleMembers(cfg *config.Config, st store.Store) hardening.StaleMembersFunc {
	if cfg.Auth.LastSeenIntervalSeconds <= 0 {
		return nil
	}
	return hardening.StaleMembersFrom(st)
}

// Health returns the readiness the server reports at /health/ready.
func (s *Server) Health() *health.State { return s.health }

// Run builds the server and serves on its configured address until ctx
// is cancelled.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) error {
	s, err := New(ctx, cfg, log, opts...)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.Addr())
	if err != nil {
		return errors.Join(fmt.Errorf("listen on %s: %w", s.Addr(), err), s.store.Close())
	}
	return s.Serve(ctx, ln)
}
