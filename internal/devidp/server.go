package devidp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/nmp-project/nmp/internal/config"
)

// Running is a provider serving on a listener (see Start).
type Running struct {
	// Provider is the running provider.
	Provider *Provider
	// Issuer is its issuer URL (also the base URL of its routes).
	Issuer string
	// Addr is the address it listens on (the real port when 0 was asked).
	Addr string

	done chan struct{}
	err  error
}

// Done is closed once the server has shut down.
func (r *Running) Done() <-chan struct{} { return r.done }

// Wait blocks until the server has shut down and returns nil after a
// graceful shutdown, else the serve or shutdown error.
func (r *Running) Wait() error {
	<-r.done
	return r.err
}

// Start loads or creates the signing key (cfg.DevIDPSigningKeyFile()),
// listens on listen ("" = cfg.DevIDP.ListenAddress; port 0 picks a free
// port) and serves the provider until ctx is cancelled, then shuts down
// gracefully within service.shutdown_timeout_seconds. The issuer is
// dev_idp.issuer, else http://<listen> with the port actually bound. It
// logs Banner at WARN level. Start does not refuse non-loopback addresses:
// callers decide (nmp dev-idp requires --allow-non-loopback).
func Start(ctx context.Context, cfg *config.Config, listen string, log *slog.Logger, opts ...Option) (*Running, error) {
	if listen == "" {
		listen = cfg.DevIDP.ListenAddress
	}
	keyFile := cfg.DevIDPSigningKeyFile()
	key, err := LoadOrCreateKey(keyFile)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("dev IdP signing key file is accessible by group or others; chmod 600 it", "path", keyFile)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("dev IdP: listen on %s: %w", listen, err)
	}
	issuer := defaultIssuer(listen, ln.Addr())
	if cfg.DevIDP.Issuer != nil && *cfg.DevIDP.Issuer != "" {
		issuer = *cfg.DevIDP.Issuer
	}
	p, err := New(cfg.DevIDP, issuer, key, append([]Option{WithLogger(log)}, opts...)...)
	if err != nil {
		return nil, errors.Join(err, ln.Close())
	}
	srv := &http.Server{
		Handler:           p.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	run := &Running{Provider: p, Issuer: issuer, Addr: ln.Addr().String(), done: make(chan struct{})}

	clientIDs := make([]string, 0, len(p.store.clients))
	for id := range p.store.clients {
		clientIDs = append(clientIDs, id)
	}
	slices.Sort(clientIDs)
	log.Warn(Banner)
	log.Info("development identity provider listening", "address", run.Addr, "issuer", issuer,
		"signing_key_file", keyFile, "kid", p.KeyID(), "users", len(p.store.users), "clients", clientIDs)

	timeout := time.Duration(cfg.Service.ShutdownTimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	go func() {
		defer close(run.done)
		select {
		case err := <-serveErr:
			run.err = fmt.Errorf("dev IdP: serve: %w", err)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
			err := srv.Shutdown(sctx)
			cancel()
			if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
				run.err = fmt.Errorf("dev IdP: serve: %w", err)
			}
			if err != nil {
				run.err = fmt.Errorf("dev IdP: shutdown: %w", err)
			}
			log.Info("development identity provider stopped")
		}
	}()
	return run, nil
}

// defaultIssuer is http://<listen>, with the bound port if listen asked
// for port 0 and the bound address if listen had no host.
func defaultIssuer(listen string, bound net.Addr) string {
	host, port, err := net.SplitHostPort(listen)
	bhost, bport, berr := net.SplitHostPort(bound.String())
	if err != nil || berr != nil {
		return "http://" + bound.String()
	}
	if port == "0" || port == "" {
		port = bport
	}
	if host == "" {
		host = bhost
	}
	return "http://" + net.JoinHostPort(host, port)
}
