package cli

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/devidp"
	"github.com/nmp-project/nmp/internal/server"
)

func newDevIDPCommand(app *App) *cobra.Command {
	var (
		file             string
		listen           string
		allowNonLoopback bool
	)
	cmd := &cobra.Command{
		Use:   "dev-idp",
		Short: "Run the development OIDC provider (" + devidp.Banner + ")",
		Long: "Serve the development OpenID Connect provider configured by the dev_idp section:\n" +
			"static users and clients, device code, authorization code + PKCE, password, refresh\n" +
			"and client credentials grants. For local use and tests only. Serves until SIGINT or\n" +
			"SIGTERM; logs go to stderr.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			listenSet := cmd.Flags().Changed("listen")
			if listenSet { // a bad flag is a usage error even if the config is broken
				if err := checkDevIDPListen(listen, allowNonLoopback); err != nil {
					return err
				}
			}
			cfg, warnings, err := config.Load(config.LoadOptions{File: file, Environ: app.Environ()})
			if err != nil {
				return configError(err)
			}
			addr := cfg.DevIDP.ListenAddress
			if listenSet {
				addr = listen
			}
			if err := checkDevIDPListen(addr, allowNonLoopback); err != nil {
				return err
			}
			logger := server.NewLogger(app.Stderr, cfg.Service.LogLevel, cfg.Service.LogFormat)
			printDevIDPBanner(app.Stderr)
			for _, w := range warnings {
				logger.Warn("configuration", "warning", w)
			}
			if !isLoopbackListen(addr) {
				logger.Warn("the development IdP listens on a non-loopback address: anyone who reaches it can sign in as the configured users",
					"address", addr)
			}
			// zitadel logs through slog.Default: give it this command's
			// handler (format, level, stderr) while the provider runs.
			defer useDefaultLogger(logger)()
			run, err := devidp.Start(cmd.Context(), cfg, addr, logger)
			if err != nil {
				return LocalError(err)
			}
			return LocalError(run.Wait())
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "server config file (env NMP_CONFIG_FILE_PATH)")
	cmd.Flags().StringVar(&listen, "listen", "", "listen address host:port (default dev_idp.listen_address, 127.0.0.1:9400)")
	cmd.Flags().BoolVar(&allowNonLoopback, "allow-non-loopback", false, "allow listening on a non-loopback address")
	return cmd
}

// checkDevIDPListen requires host:port and, unless allowed, a loopback host.
func checkDevIDPListen(addr string, allowNonLoopback bool) error {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return UsageErrorf("invalid listen address %q: want host:port", addr)
	}
	if !allowNonLoopback && !isLoopbackListen(addr) {
		return UsageErrorf("refusing to serve the development IdP on the non-loopback address %q; use --allow-non-loopback to do it anyway", addr)
	}
	return nil
}

// isLoopbackListen reports whether addr's host is "localhost" or a
// loopback IP; an empty host (all interfaces) is not.
func isLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func printDevIDPBanner(w io.Writer) {
	line := strings.Repeat("*", len(devidp.Banner)+8)
	fmt.Fprintf(w, "%s\n*** %s ***\n%s\n", line, devidp.Banner, line)
}

// useDefaultLogger makes l the slog default and returns a function that
// restores the previous default and the standard logger's output.
func useDefaultLogger(l *slog.Logger) func() {
	prev, out, flags := slog.Default(), log.Writer(), log.Flags()
	slog.SetDefault(l)
	return func() {
		slog.SetDefault(prev)
		log.SetOutput(out)
		log.SetFlags(flags)
	}
}
