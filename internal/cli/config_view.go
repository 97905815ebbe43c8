package cli

import (
	"fmt"

	"github.com/nmp-project/nmp/internal/cli/clientconfig"
	"github.com/spf13/cobra"
)

// configView is what "config view" prints: contexts with their cluster and
// user, tokens redacted. Unknown keys are left out since they might hold
// secrets.
type configView struct {
	ConfigFile     string        `json:"config_file" yaml:"config_file"`
	CurrentContext string        `json:"current_context" yaml:"current_context"`
	Contexts       []contextView `json:"contexts" yaml:"contexts"`
}

type contextView struct {
	Name         string       `json:"name" yaml:"name"`
	Workspace    string       `json:"workspace,omitempty" yaml:"workspace,omitempty"`
	OutputFormat string       `json:"output_format,omitempty" yaml:"output_format,omitempty"`
	Cluster      *clusterView `json:"cluster" yaml:"cluster"`
	User         *userView    `json:"user" yaml:"user"`
}

type clusterView struct {
	Name                 string  `json:"name" yaml:"name"`
	BaseURL              string  `json:"base_url" yaml:"base_url"`
	CertificateAuthority *string `json:"certificate_authority,omitempty" yaml:"certificate_authority,omitempty"`
	// CertificateAuthorityData holds public certificates only: shown.
	CertificateAuthorityData string `json:"certificate_authority_data,omitempty" yaml:"certificate_authority_data,omitempty"`
}

type userView struct {
	Name         string `json:"name" yaml:"name"`
	Type         string `json:"type" yaml:"type"`
	Token        string `json:"token,omitempty" yaml:"token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty" yaml:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty" yaml:"scope,omitempty"`
}

func newConfigViewCommand(app *App) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "view [--all-contexts]",
		Short: "Show the current (or every) context with its cluster and user, tokens redacted",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			path, err := app.ConfigPath()
			if err != nil {
				return err
			}
			f, err := app.Config()
			if err != nil {
				return err
			}
			s, err := app.Settings()
			if err != nil {
				return err
			}
			view := configView{ConfigFile: path, CurrentContext: s.ContextName, Contexts: []contextView{}}
			for _, c := range f.Contexts {
				if all || c.Name == s.ContextName {
					view.Contexts = append(view.Contexts, newContextView(f, c))
				}
			}
			format := s.OutputFormat
			if format == clientconfig.OutputTable {
				format = clientconfig.OutputYAML // the view is nested; YAML is its table form
			}
			return LocalError(render(app.Stdout, format, view, Table{}))
		},
	}
	cmd.Flags().BoolVar(&all, "all-contexts", false, "show every context")
	return cmd
}

func newContextView(f *clientconfig.File, c clientconfig.Context) contextView {
	v := contextView{Name: c.Name, Workspace: c.Workspace}
	if c.Preferences != nil {
		v.OutputFormat = c.Preferences.OutputFormat
	}
	// Validation on load guarantees that the cluster and user exist.
	cl, u := f.Cluster(c.Cluster), f.User(c.User)
	v.Cluster = &clusterView{Name: cl.Name, BaseURL: cl.BaseURL, CertificateAuthority: cl.CertificateAuthority,
		CertificateAuthorityData: cl.CertificateAuthorityData}
	v.User = &userView{Name: u.Name, Type: u.Type, Token: redact(u.Token), RefreshToken: redact(u.RefreshToken), Scope: u.Scope}
	return v
}

// redactedPrefixMin is the shortest token whose first 8 characters are
// shown; shorter tokens are fully hidden so that little of them leaks.
const redactedPrefixMin = 16

// redact shows the first 8 characters of a token followed by
// "…(redacted)".
func redact(token string) string {
	switch r := []rune(token); {
	case len(r) == 0:
		return ""
	case len(r) < redactedPrefixMin:
		return "…(redacted)"
	default:
		return fmt.Sprintf("%s…(redacted)", string(r[:8]))
	}
}
