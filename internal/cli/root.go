package cli

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// NewRootCommand returns the nmp root command with its global flags and
// subcommands. Add a command group with one root.AddCommand line.
func NewRootCommand(app *App) *cobra.Command {
	root := &cobra.Command{
		Use:           "nmp",
		Short:         "NMP access-control server and CLI",
		SilenceErrors: true, // errors are printed by report
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetIn(app.Stdin)
	root.SetOut(app.Stdout)
	root.SetErr(app.Stderr)
	addGlobalFlags(root, &app.Global)

	root.AddCommand(newConfigCommand(app))
	root.AddCommand(newWorkspacesCommand(app))
	root.AddCommand(newMembersCommand(app))
	root.AddCommand(newServicesCommand(app))
	root.AddCommand(newQuickstartCommand(app))
	root.AddCommand(newAuthCommand(app))
	root.AddCommand(newAuditCommand(app))
	root.AddCommand(newDevIDPCommand(app))
	root.AddCommand(newDoctorCommand(app))
	return root
}

// outputFlagAlias is the long alias of --output-format.
const outputFlagAlias = "output"

func addGlobalFlags(root *cobra.Command, g *GlobalFlags) {
	f := root.PersistentFlags()
	f.StringVar(&g.BaseURL, "base-url", "", "server URL (env NMP_BASE_URL, default http://localhost:8080)")
	f.StringVarP(&g.Context, "context", "c", "", "context to use (env NMP_CURRENT_CONTEXT)")
	f.StringVarP(&g.OutputFormat, "output-format", "f", "", "output format: table, json or yaml; also --output, -o (env NMP_OUTPUT_FORMAT)")
	// -o is not in the NMP CLI, but users type it out of habit.
	f.StringVarP(&g.OutputFormat, "output-format-o", "o", "", "")
	_ = f.MarkHidden("output-format-o")
	f.BoolVar(&g.NoAutoRefresh, "no-auto-refresh", false, "do not refresh an expiring token for this command")
	f.BoolVarP(&g.Verbose, "verbose", "v", false, "log method, URL, status and duration of requests to stderr")
	f.BoolVar(&g.InsecureHTTP, "insecure-http", false, "allow a plain http:// server URL whose host is not loopback (tokens travel in clear text)")
	f.BoolVar(&g.Version, "version", false, "print the version and exit")
	root.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == outputFlagAlias {
			name = "output-format"
		}
		return pflag.NormalizedName(name)
	})
}

// newGroupCommand returns a command that only holds subcommands: alone it
// prints its help; with an unknown subcommand it is a usage error.
func newGroupCommand(use, short string, aliases ...string) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Aliases: aliases,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
}
