package cli

import "github.com/spf13/cobra"

// newAuthCommand returns the auth group: login, status, token, refresh,
// logout, can-i and access-keys.
func newAuthCommand(app *App) *cobra.Command {
	cmd := newGroupCommand("auth", "Log in and inspect what the current credential may do")
	cmd.AddCommand(
		newAuthLoginCommand(app),
		newAuthStatusCommand(app),
		newAuthTokenCommand(app),
		newAuthRefreshCommand(app),
		newAuthLogoutCommand(app),
		newAuthCanICommand(app),
		newAccessKeysCommand(app),
	)
	return cmd
}
