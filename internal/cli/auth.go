package cli

import "github.com/spf13/cobra"

// newAuthCommand returns the auth group. Its subcommands (can-i; login,
// status, token, refresh and logout as they land) are added here.
func newAuthCommand(app *App) *cobra.Command {
	cmd := newGroupCommand("auth", "Log in and inspect what the current credential may do")
	cmd.AddCommand(
		newAuthCanICommand(app),
	)
	return cmd
}
