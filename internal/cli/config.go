package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/nmp-project/nmp/internal/cli/clientconfig"
	"github.com/spf13/cobra"
)

func newConfigCommand(app *App) *cobra.Command {
	cmd := newGroupCommand("config", "Manage the client config file (contexts, clusters, users)")
	cmd.AddCommand(
		newConfigSetCommand(app),
		newConfigViewCommand(app),
		newConfigUseContextCommand(app),
		newConfigCurrentContextCommand(app),
	)
	return cmd
}

func newConfigSetCommand(app *App) *cobra.Command {
	var (
		workspace, accessToken, certificateAuthority, certificateAuthorityData string
		activate                                                               bool
	)
	cmd := &cobra.Command{
		Use:   "set [--context N] [--base-url U] [--workspace W] [--access-token T|-] [--output-format F] [--certificate-authority FILE] [--certificate-authority-data BASE64] [--activate]",
		Short: "Update the named or current context (create \"default\" if none)",
		Long: `Update the named or current context; "default" is created when there is none.
The first context always becomes current; --activate makes this one current.
--access-token - reads the token from stdin, or prompts without echo on a terminal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := cmd.Flags()
			ch := contextChange{activate: activate}
			if app.Global.BaseURL != "" {
				if err := clientconfig.ValidateBaseURL(app.Global.BaseURL); err != nil {
					return UsageErrorf("%v", err)
				}
				ch.baseURL = &app.Global.BaseURL
			}
			if app.Global.OutputFormat != "" {
				if !clientconfig.ValidOutputFormat(app.Global.OutputFormat) {
					return UsageErrorf("invalid output format %q: want table, json or yaml", app.Global.OutputFormat)
				}
				ch.outputFormat = &app.Global.OutputFormat
			}
			if flags.Changed("workspace") {
				ch.workspace = &workspace
			}
			if flags.Changed("certificate-authority") {
				ch.certificateAuthority = &certificateAuthority
				if certificateAuthority != "" {
					abs, err := checkReadableFile(certificateAuthority)
					if err != nil {
						return err
					}
					ch.certificateAuthority = &abs
				}
			}
			if flags.Changed("certificate-authority-data") {
				probe := clientconfig.Cluster{Name: "--certificate-authority-data", CertificateAuthorityData: certificateAuthorityData}
				if _, err := probe.CAData(); err != nil {
					return UsageErrorf("%v", err)
				}
				ch.certificateAuthorityData = &certificateAuthorityData
			}
			if ch.empty() && !flags.Changed("access-token") {
				return UsageErrorf("nothing to set: give at least one of --base-url, --workspace, --access-token, --output-format, --certificate-authority, --certificate-authority-data, --activate")
			}
			if flags.Changed("access-token") {
				token, err := readAccessToken(cmd.Context(), app, accessToken)
				if err != nil {
					return err
				}
				ch.token = &token
			}

			var name string
			var created bool
			err := app.UpdateConfig(cmd.Context(), func(f *clientconfig.File) error {
				name = cmp.Or(f.CurrentContextName(app.Global.Context, app.Getenv), "default")
				newBaseURL := cmp.Or(app.Global.BaseURL, app.Getenv(clientconfig.EnvBaseURL), clientconfig.DefaultBaseURL)
				created = ch.apply(f, name, newBaseURL)
				return nil
			})
			if err != nil {
				return err
			}
			if created {
				app.Infof("Context %q created.", name)
			} else {
				app.Infof("Context %q updated.", name)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&workspace, "workspace", "w", "", "default workspace of the context")
	f.StringVar(&accessToken, "access-token", "", `bearer token to store ("-" reads stdin or prompts)`)
	f.StringVar(&certificateAuthority, "certificate-authority", "", "PEM file of the CA trusted for the cluster (\"\" clears it)")
	f.StringVar(&certificateAuthorityData, "certificate-authority-data", "", "base64 of the PEM CA certificates trusted for the cluster, as in a kubeconfig (\"\" clears it)")
	f.BoolVar(&activate, "activate", false, "make the context current")
	return cmd
}

// contextChange is what "config set" changes; nil fields stay unchanged.
type contextChange struct {
	baseURL, workspace, outputFormat, token *string
	// certificateAuthority is an absolute path, or "" to clear it.
	certificateAuthority *string
	// certificateAuthorityData is base64 of PEM certificates, or "" to
	// clear it.
	certificateAuthorityData *string
	activate                 bool
}

func (c contextChange) empty() bool {
	return c.baseURL == nil && c.workspace == nil && c.outputFormat == nil && c.token == nil &&
		c.certificateAuthority == nil && c.certificateAuthorityData == nil && !c.activate
}

// apply changes context name in f, creating it with newBaseURL if missing,
// and reports whether it was created. A token replaces the user's
// credential: type oauth without refresh token or scope.
func (c contextChange) apply(f *clientconfig.File, name, newBaseURL string) (created bool) {
	ctx, created := f.EnsureContext(name, newBaseURL)
	cluster, user := f.Cluster(ctx.Cluster), f.User(ctx.User)
	if c.baseURL != nil {
		cluster.BaseURL = *c.baseURL
	}
	if c.certificateAuthority != nil {
		cluster.CertificateAuthority = nil
		if *c.certificateAuthority != "" {
			cluster.CertificateAuthority = c.certificateAuthority
		}
	}
	if c.certificateAuthorityData != nil {
		cluster.CertificateAuthorityData = *c.certificateAuthorityData
	}
	if c.workspace != nil {
		ctx.Workspace = *c.workspace
	}
	if c.outputFormat != nil {
		if ctx.Preferences == nil {
			ctx.Preferences = &clientconfig.Preferences{}
		}
		ctx.Preferences.OutputFormat = *c.outputFormat
	}
	if c.token != nil {
		user.Type, user.Token, user.RefreshToken, user.Scope = clientconfig.UserTypeOAuth, *c.token, "", ""
	}
	if c.activate {
		f.CurrentContext = name
	}
	return created
}

// readAccessToken returns the --access-token value; "-" reads it from a
// no-echo prompt on a terminal, else from stdin.
func readAccessToken(ctx context.Context, app *App, value string) (string, error) {
	if value != "-" {
		app.Infof("Warning: a token on the command line can be seen by other local users; prefer --access-token -")
	} else {
		token, err := app.PromptSecret(ctx, "Access token: ")
		if errors.Is(err, ErrNoTerminal) {
			var b []byte
			b, err = io.ReadAll(io.LimitReader(app.Stdin, 64<<10))
			token = string(b)
		}
		if err != nil {
			return "", LocalError(fmt.Errorf("reading the access token: %w", err))
		}
		value = strings.TrimSpace(token)
	}
	if value == "" {
		return "", UsageErrorf("the access token is empty")
	}
	if strings.IndexFunc(value, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "", UsageErrorf("the access token contains spaces or control characters")
	}
	return value, nil
}

// checkReadableFile returns the absolute path of a readable regular file.
func checkReadableFile(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", LocalError(err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", LocalError(err)
	}
	info, err := f.Stat()
	if err := errors.Join(err, f.Close()); err != nil || !info.Mode().IsRegular() {
		return "", LocalError(fmt.Errorf("%s is not a regular file", abs))
	}
	return abs, nil
}

func newConfigUseContextCommand(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "use-context NAME",
		Short: "Make a context current",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			err := app.UpdateConfig(cmd.Context(), func(f *clientconfig.File) error {
				if f.Context(name) == nil {
					return LocalError(fmt.Errorf("%w: %q", clientconfig.ErrContextNotFound, name))
				}
				f.CurrentContext = name
				return nil
			})
			if err != nil {
				return err
			}
			app.Infof("Switched to context %q.", name)
			return nil
		},
	}
}

func newConfigCurrentContextCommand(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "current-context",
		Short: "Print the current context",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			s, err := app.Settings()
			if err != nil {
				return err
			}
			if s.ContextName == "" {
				return LocalError(fmt.Errorf("no current context: run \"nmp config use-context NAME\""))
			}
			return app.Render(s.ContextName, Table{Rows: [][]string{{s.ContextName}}})
		},
	}
}
