package cli

import (
	"fmt"
	"strings"

	"github.com/nmp-project/nmp/internal/cli/clientconfig"
	"github.com/nmp-project/nmp/internal/client"
	"github.com/spf13/cobra"
)

// newAccessKeysCommand returns "nmp auth access-keys": platform-minted
// bearer tokens for CI/CD and services.
func newAccessKeysCommand(app *App) *cobra.Command {
	cmd := newGroupCommand("access-keys", "Manage scoped access keys for CI/CD and services", "access-key", "keys")
	cmd.Long = "Access keys are bearer tokens minted by the platform for automation. A key acts as the\n" +
		"principal that created it (or as a service account), limited to the scopes it was created\n" +
		"with. Use one in a pipeline as NMP_ACCESS_TOKEN. The token is shown once, by create and rotate."
	cmd.AddCommand(
		newAccessKeysCreateCommand(app),
		newAccessKeysListCommand(app),
		newAccessKeysStatusCommand(app, "suspend", "Suspend a key (it is refused until unsuspended)", false),
		newAccessKeysStatusCommand(app, "unsuspend", "Make a suspended key usable again", true),
		newAccessKeysRotateCommand(app),
		newAccessKeysRevokeCommand(app),
	)
	return cmd
}

// onceWarning is printed to stderr whenever a token is printed.
const onceWarning = "This token is shown only once and cannot be retrieved again: store it in your secret manager now (e.g. as NMP_ACCESS_TOKEN in your CI's secrets), never in source code or a CI configuration file."

// printToken renders a minted key: with -o json or yaml the whole answer
// (token included) on stdout; in table form the token alone on stdout, so
// that TOKEN=$(nmp auth access-keys create ...) captures it, and the
// key's metadata on stderr. The warning always goes to stderr.
func printToken(app *App, v any, k client.MintedAccessKey) error {
	s, err := app.Settings()
	if err != nil {
		return err
	}
	if s.OutputFormat == clientconfig.OutputJSON || s.OutputFormat == clientconfig.OutputYAML {
		if err := app.Render(v, Table{}); err != nil {
			return err
		}
	} else {
		app.Infof("Created access key %s for %s (scopes: %s; expires: %s).", k.JTI, k.Principal, scopesText(k.Scopes), expiryText(k.ExpiresAt))
		if _, err := fmt.Fprintln(app.Stdout, k.Token); err != nil {
			return LocalError(err)
		}
	}
	app.Infof("%s", onceWarning)
	return nil
}

func scopesText(scopes []string) string {
	if len(scopes) == 0 {
		return "all of the principal's rights"
	}
	return strings.Join(scopes, " ")
}

func expiryText(at *string) string {
	if at == nil {
		return "never"
	}
	return formatTime(*at)
}

func newAccessKeysCreateCommand(app *App) *cobra.Command {
	var req client.CreateAccessKeyRequest
	var expires string
	cmd := &cobra.Command{
		Use:   "create [--name N] [--scopes S...] [--expires-in 30d|never] [--service-account ID]",
		Short: "Mint an access key and print its token once",
		Long: "Mint an access key. The token is printed once, to stdout; with -o json it is the \"token\"\n" +
			"member. --scopes limits the key (e.g. platform:read for a pipeline that only reads); the\n" +
			"scopes must be among your own. Without --scopes the key has your token's scopes, or all of\n" +
			"your rights if your token has none. --service-account mints a key for the principal\n" +
			"service-account:ID (PlatformAdmin only); bind it to roles like any member.",
		Example: "  export NMP_ACCESS_TOKEN=\"$(nmp auth access-keys create --name nightly-report --scopes platform:read --expires-in 30d)\"\n" +
			"  nmp auth access-keys create --service-account deployer --scopes platform:read,platform:write -o json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("expires-in") {
				if expires == "never" {
					req.NoExpiry = true
				} else {
					d, err := parseAge(expires)
					if err != nil {
						return UsageErrorf("--expires-in: %v (or \"never\")", err)
					}
					secs := int(d.Seconds())
					req.ExpiresInSeconds = &secs
				}
			}
			if !cmd.Flags().Changed("scopes") {
				req.Scopes = nil
			}
			c, err := app.Client()
			if err != nil {
				return err
			}
			k, err := c.CreateAccessKey(cmd.Context(), req)
			if err != nil {
				return err
			}
			return printToken(app, k, *k)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "a name to recognise the key by (1-128 characters)")
	f.StringVar(&req.Description, "description", "", "what the key is for")
	f.StringSliceVar(&req.Scopes, "scopes", nil, "scopes, repeatable and comma-separated (e.g. platform:read)")
	f.StringVar(&expires, "expires-in", "", "lifetime (e.g. 30d, 12h, 2w) or \"never\" (default: the server's)")
	f.StringVar(&req.ServiceAccountID, "service-account", "", "mint for service-account:ID instead of yourself (PlatformAdmin only)")
	return cmd
}

func newAccessKeysListCommand(app *App) *cobra.Command {
	var page, size int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List your access keys (PlatformAdmin: and every service account's); never their tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.Client()
			if err != nil {
				return err
			}
			p, err := c.ListAccessKeys(cmd.Context(), page, size)
			if err != nil {
				return err
			}
			if p.Data == nil {
				p.Data = []client.AccessKey{}
			}
			t := Table{Header: []string{"JTI", "NAME", "PRINCIPAL", "STATUS", "SCOPES", "CREATED", "EXPIRES", "LAST USED"}}
			for _, k := range p.Data {
				last := "never"
				if k.LastUsedAt != nil {
					last = formatTime(*k.LastUsedAt)
				}
				t.Rows = append(t.Rows, []string{k.JTI, k.Name, k.Principal, k.Status, strings.Join(k.Scopes, " "),
					formatTime(k.CreatedAt), expiryText(k.ExpiresAt), last})
			}
			if err := app.Render(p, t); err != nil {
				return err
			}
			if p.HasMore {
				app.Infof("More keys: --page %d", max(page, 1)+1)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&page, "page", 0, "page number (from 1)")
	cmd.Flags().IntVar(&size, "page-size", 0, "keys per page (at most 100)")
	return cmd
}

func newAccessKeysStatusCommand(app *App, use, short string, resume bool) *cobra.Command {
	return &cobra.Command{
		Use:   use + " JTI",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.Client()
			if err != nil {
				return err
			}
			s, err := c.SuspendAccessKey(cmd.Context(), args[0], resume)
			if err != nil {
				return err
			}
			changed := "unchanged"
			if s.Changed {
				changed = "changed"
			}
			return app.Render(s, Table{Header: []string{"JTI", "STATUS", "CHANGE"}, Rows: [][]string{{s.JTI, s.Status, changed}}})
		},
	}
}

func newAccessKeysRotateCommand(app *App) *cobra.Command {
	var grace string
	cmd := &cobra.Command{
		Use:   "rotate JTI [--grace-period 48h]",
		Short: "Replace a key by a new one; the old key works until the grace period ends",
		Long: "Mint a successor of an active key (same principal, name, scopes and lifetime) and print its\n" +
			"token once, to stdout. The old key keeps working until the grace period ends (default: the\n" +
			"server's), then is refused: update the secret in your CI before then.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var secs *int
			if cmd.Flags().Changed("grace-period") {
				n := 0
				if grace != "0" {
					d, err := parseAge(grace)
					if err != nil {
						return UsageErrorf("--grace-period: %v", err)
					}
					n = int(d.Seconds())
				}
				secs = &n
			}
			c, err := app.Client()
			if err != nil {
				return err
			}
			r, err := c.RotateAccessKey(cmd.Context(), args[0], secs)
			if err != nil {
				return err
			}
			app.Infof("Access key %s is ROTATING: it stops working at %s.", r.PreviousJTI, expiryText(r.GracePeriodExpiresAt))
			return printToken(app, r, r.NewKey)
		},
	}
	cmd.Flags().StringVar(&grace, "grace-period", "", "how long the old key keeps working (e.g. 48h, 2d; 0 ends it now)")
	return cmd
}

func newAccessKeysRevokeCommand(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke JTI",
		Short: "Revoke a key for good (refused from the next request on)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.Client()
			if err != nil {
				return err
			}
			r, err := c.RevokeAccessKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return app.Render(r, Table{Header: []string{"JTI", "REVOKED"}, Rows: [][]string{{r.JTI, "true"}}})
		},
	}
}
