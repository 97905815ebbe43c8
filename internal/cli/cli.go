// Package cli implements the nmp command line: global flags, exit codes,
// output formats, and the config, workspaces and members commands.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/nmp-project/nmp/internal/version"
	"github.com/spf13/cobra"
)

func init() {
	// Run every PersistentPreRun(E) from the root down, so commands added
	// later can have their own hooks without disabling their parents'.
	cobra.EnableTraverseRunHooks = true
}

// Main runs nmp with the process's arguments, streams and environment and
// returns the exit code. SIGINT and SIGTERM cancel the command's context.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, os.Stdin, os.Stdout, os.Stderr, os.Environ())
}

// Run runs nmp with args (without the program name), the given streams and
// environment ("KEY=value" entries) and returns the exit code. Errors are
// printed to stderr as "Error: ...".
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) int {
	if wantsVersion(args) {
		fmt.Fprintf(stdout, "nmp version %s\n", version.Version)
		return ExitOK
	}
	app := NewApp(stdin, stdout, stderr, environ)
	root := NewRootCommand(app)
	root.SetArgs(args)
	started := false
	trackStart(root, &started)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	return report(stderr, cmd, err, started)
}

// wantsVersion reports whether the global --version flag appears anywhere
// before a "--" terminator. It is handled before cobra so that it works
// with every command, whatever its arguments and required flags.
func wantsVersion(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--version", "--version=true":
			return true
		}
	}
	return false
}

// trackStart wraps the run functions of cmd and its descendants so that
// *started becomes true once cobra has accepted the flags and arguments
// and runs the command. Errors raised before are usage errors.
func trackStart(cmd *cobra.Command, started *bool) {
	for _, c := range cmd.Commands() {
		trackStart(c, started)
	}
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, args []string) error {
			*started = true
			return run(c, args)
		}
	}
	if run := cmd.Run; run != nil {
		cmd.Run = func(c *cobra.Command, args []string) {
			*started = true
			run(c, args)
		}
	}
}
