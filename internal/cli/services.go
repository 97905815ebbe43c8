package cli

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server"
)

func newServicesCommand(app *App) *cobra.Command {
	group := newGroupCommand("services", "Run the platform server")
	group.AddCommand(newServicesRunCommand(app))
	return group
}

func newServicesRunCommand(app *App) *cobra.Command {
	var (
		file string
		host string
		port int
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the platform (auth, entities, policy decision point) on one HTTP port",
		Long: "Load the configuration, migrate and seed the store, then serve until SIGINT or SIGTERM;\n" +
			"in-flight requests finish before the store is closed. Logs go to stderr.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := config.LoadOptions{File: file, Environ: app.Environ()}
			if cmd.Flags().Changed("host") {
				opts.Host = &host
			}
			if cmd.Flags().Changed("port") {
				opts.Port = &port
			}
			cfg, warnings, err := config.Load(opts)
			if err != nil {
				return configError(err)
			}
			log := server.NewLogger(app.Stderr, cfg.Service.LogLevel, cfg.Service.LogFormat)
			for _, w := range warnings {
				log.Warn("configuration", "warning", w)
			}
			defer server.StartGCTuner(cfg, app.Environ(), log).Stop()
			if cfg.DevelopmentMode() {
				log.Warn("development mode: auth is enabled without OIDC or access keys, so identity headers are accepted from any client")
			}
			return server.Run(cmd.Context(), cfg, log, server.WithAccessLogOutput(app.Stderr))
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "server config file (env NMP_CONFIG_FILE_PATH)")
	cmd.Flags().StringVar(&host, "host", "", "listen host (default 127.0.0.1)")
	cmd.Flags().IntVar(&port, "port", 0, "listen port (default 8080)")
	return cmd
}

// configError reports every configuration problem on a line of its own.
func configError(err error) error {
	lines := strings.Split(err.Error(), "\n")
	return LocalError(errors.New(strings.Join(lines, "\nError: ")))
}
