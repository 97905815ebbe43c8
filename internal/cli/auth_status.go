package cli

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nmp-project/nmp/internal/cli/clientconfig"
)

// tokenPrefixLen is how much of a token auth status shows.
const tokenPrefixLen = 10

// authStatus is what nmp auth status reports. It never holds a whole
// token.
type authStatus struct {
	Context    string `json:"context" yaml:"context"`
	BaseURL    string `json:"base_url" yaml:"base_url"`
	ConfigFile string `json:"config_file" yaml:"config_file"`
	// AuthType is the context user's type (oauth, no-auth), "" without a
	// context.
	AuthType string `json:"auth_type" yaml:"auth_type"`
	// CredentialSource is NMP_ACCESS_TOKEN, config or "" (none).
	CredentialSource string `json:"credential_source" yaml:"credential_source"`
	// TokenKind is jwt, unsigned-jwt or opaque.
	TokenKind string   `json:"token_kind,omitempty" yaml:"token_kind,omitempty"`
	Principal string   `json:"principal,omitempty" yaml:"principal,omitempty"`
	Email     string   `json:"email,omitempty" yaml:"email,omitempty"`
	Groups    []string `json:"groups" yaml:"groups"`
	Scopes    []string `json:"scopes" yaml:"scopes"`
	ExpiresAt string   `json:"expires_at,omitempty" yaml:"expires_at,omitempty"`
	// ExpiresInSeconds is negative once expired; absent when unknown.
	ExpiresInSeconds *int64 `json:"expires_in_seconds,omitempty" yaml:"expires_in_seconds,omitempty"`
	RefreshToken     bool   `json:"refresh_token" yaml:"refresh_token"`
	// Token is the first 10 characters of the token and "…".
	Token  string `json:"token,omitempty" yaml:"token,omitempty"`
	Usable bool   `json:"usable" yaml:"usable"`
}

func newAuthStatusCommand(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the credential commands would use (local only)",
		Long: "Show the context, server, config file and the credential that commands send: its\n" +
			"source (NMP_ACCESS_TOKEN before the saved login), identity, scopes and expiry, read\n" +
			"from the token without contacting the server. Exits 1 without a usable credential.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := app.authStatus(time.Now())
			if err != nil {
				return err
			}
			if err := app.Render(st, st.table()); err != nil {
				return err
			}
			if !st.Usable {
				if st.CredentialSource == "" {
					return LocalError(errors.New(`not logged in: run "nmp auth login"`))
				}
				return LocalError(errors.New(`the token has expired and cannot be refreshed: run "nmp auth login"`))
			}
			return nil
		},
	}
}

func (a *App) authStatus(now time.Time) (*authStatus, error) {
	s, err := a.Settings()
	if err != nil {
		return nil, err
	}
	path, err := a.ConfigPath()
	if err != nil {
		return nil, err
	}
	st := &authStatus{
		Context: s.ContextName, BaseURL: s.BaseURL, ConfigFile: path,
		CredentialSource: s.TokenSource, Groups: []string{}, Scopes: []string{},
	}
	var savedScope string
	if s.User != nil {
		st.AuthType = s.User.Type
		if s.TokenSource == clientconfig.TokenSourceConfig {
			st.RefreshToken = s.User.RefreshToken != ""
			savedScope = s.User.Scope
		}
	}
	if s.Token == "" {
		return st, nil
	}
	st.Token = tokenPrefix(s.Token)
	st.TokenKind = "opaque"
	st.Usable = true
	if sc := strings.Fields(savedScope); len(sc) > 0 {
		st.Scopes = sc
	}
	p, ok := decodeJWT(s.Token)
	if !ok {
		return st, nil
	}
	st.TokenKind = "jwt"
	if p.unsigned() {
		st.TokenKind = "unsigned-jwt"
	}
	st.Principal, st.Email = p.str("sub"), p.email()
	if g := p.strs("groups"); g != nil {
		st.Groups = g
	}
	if _, has := p.Claims["scope"]; has {
		st.Scopes = p.scopes()
	} else if _, has := p.Claims["scp"]; has {
		st.Scopes = p.scopes()
	}
	if exp, ok := p.expiry(); ok {
		st.ExpiresAt = exp.UTC().Format(time.RFC3339)
		left := int64(exp.Sub(now).Seconds())
		st.ExpiresInSeconds = &left
		if !exp.After(now) {
			// An expired saved token is still usable if the next command
			// can renew it.
			canRenew := s.TokenSource == clientconfig.TokenSourceConfig && (st.RefreshToken || p.unsigned())
			st.Usable = canRenew
		}
	}
	return st, nil
}

// tokenPrefix is the first 10 characters of a token and "…".
func tokenPrefix(token string) string {
	r := []rune(token)
	if len(r) <= tokenPrefixLen {
		return strings.Repeat("*", len(r))
	}
	return string(r[:tokenPrefixLen]) + "…"
}

func (st *authStatus) table() Table {
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	source := st.CredentialSource
	if source == "" {
		source = "none (not logged in)"
	}
	expiry := "-"
	if st.ExpiresAt != "" && st.ExpiresInSeconds != nil {
		left := time.Duration(*st.ExpiresInSeconds) * time.Second
		if left > 0 {
			expiry = fmt.Sprintf("%s (in %s)", st.ExpiresAt, left)
		} else {
			expiry = fmt.Sprintf("%s (expired %s ago)", st.ExpiresAt, -left)
		}
	} else if st.TokenKind != "" {
		expiry = "unknown"
	}
	rows := [][]string{
		{"Context:", st.Context},
		{"Base URL:", st.BaseURL},
		{"Config file:", st.ConfigFile},
		{"Auth type:", st.AuthType},
		{"Credential source:", source},
		{"Token:", cmp.Or(st.Token, "-")},
		{"Token kind:", st.TokenKind},
		{"Principal:", st.Principal},
		{"Email:", st.Email},
		{"Groups:", strings.Join(st.Groups, ", ")},
		{"Scopes:", strings.Join(st.Scopes, " ")},
		{"Expires:", expiry},
		{"Refresh token:", yesNo(st.RefreshToken)},
		{"Usable:", yesNo(st.Usable)},
	}
	return Table{Rows: rows}
}

func newAuthTokenCommand(app *App) *cobra.Command {
	var decode bool
	cmd := &cobra.Command{
		Use:   "token [--decode]",
		Short: "Print the access token commands would send (refreshing it if needed)",
		Long: "Print the bearer token to stdout, e.g. for curl: NMP_ACCESS_TOKEN if set, else the saved\n" +
			"token, refreshed first when it expires within five minutes. This is the only command that\n" +
			"prints a token. --decode prints its header and claims instead, unverified.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := app.refreshIfNeeded(cmd.Context()); err != nil {
				return err
			}
			s, err := app.Settings()
			if err != nil {
				return err
			}
			if s.Token == "" {
				return LocalError(errors.New(`not logged in: run "nmp auth login"`))
			}
			p, isJWT := decodeJWT(s.Token)
			if isJWT {
				if exp, ok := p.expiry(); ok && !exp.After(time.Now()) {
					app.Infof("Warning: the token expired at %s.", exp.UTC().Format(time.RFC3339))
				}
			}
			if !decode {
				_, err := fmt.Fprintln(app.Stdout, s.Token)
				return LocalError(err)
			}
			if !isJWT {
				return LocalError(errors.New("the token is opaque (not a JWT): there is nothing to decode"))
			}
			format := s.OutputFormat
			if format == clientconfig.OutputTable {
				format = clientconfig.OutputJSON
			}
			return LocalError(render(app.Stdout, format, p, Table{}))
		},
	}
	cmd.Flags().BoolVar(&decode, "decode", false, "print the token's header and claims (unverified) instead of the token")
	return cmd
}

func newAuthLogoutCommand(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Remove the saved token, refresh token and scope of the context",
		Long: "Remove the credentials of the context (--context, else the current one) from the client\n" +
			"config file; its user becomes no-auth. Exits 0 whether or not it was logged in.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := app.Config()
			if err != nil {
				return err
			}
			name := f.CurrentContextName(app.Global.Context, app.Getenv)
			if name == "" || f.Context(name) == nil {
				if name == "" {
					app.Infof("Not logged in: there is no context.")
				} else {
					app.Infof("Not logged in: there is no context %q.", name)
				}
			} else {
				removed := false
				if err := app.UpdateConfig(cmd.Context(), func(f *clientconfig.File) error {
					c := f.Context(name)
					if c == nil {
						return nil
					}
					if u := f.User(c.User); u != nil {
						removed = u.Token != "" || u.RefreshToken != ""
						u.Type, u.Token, u.RefreshToken, u.Scope = clientconfig.UserTypeNoAuth, "", "", ""
					}
					return nil
				}); err != nil {
					return err
				}
				if removed {
					app.Infof("Logged out of context %s: its credentials were removed.", name)
				} else {
					app.Infof("Context %s was not logged in.", name)
				}
			}
			if app.Getenv(clientconfig.EnvAccessToken) != "" {
				app.Infof("Warning: %s is still set and is sent with every request; unset it too.", clientconfig.EnvAccessToken)
			}
			return nil
		},
	}
}
