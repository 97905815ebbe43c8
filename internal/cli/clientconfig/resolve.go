package clientconfig

import (
	"cmp"
	"errors"
	"fmt"
)

// ErrContextNotFound is returned (wrapped) for a context name that is not in
// the file.
var ErrContextNotFound = errors.New("context not found")

// Token sources reported in Settings.TokenSource.
const (
	TokenSourceEnv    = EnvAccessToken
	TokenSourceConfig = "config"
)

// Overrides are the command-line values; empty strings are unset.
type Overrides struct {
	Context      string
	BaseURL      string
	Workspace    string
	OutputFormat string
}

// Settings are the effective client settings of one command.
type Settings struct {
	// ContextName is the selected context, "" when there is none.
	ContextName string
	// Context, Cluster and User are the selected entries, nil without a
	// context.
	Context *Context
	Cluster *Cluster
	User    *User

	BaseURL string
	// CertificateAuthority is the context cluster's CA file, "" if none.
	CertificateAuthority string
	// CertificateAuthorityData is the context cluster's decoded
	// certificate_authority_data (PEM), nil if none.
	CertificateAuthorityData []byte
	// Token is the bearer token, "" to send none.
	Token string
	// TokenSource is TokenSourceEnv, TokenSourceConfig or "" (no token).
	TokenSource string
	// Workspace is the default workspace, "" if none.
	Workspace    string
	OutputFormat string
}

// CurrentContextName returns the selected context name: the override, else
// $NMP_CURRENT_CONTEXT, else current_context ("" if none).
func (f *File) CurrentContextName(override string, getenv func(string) string) string {
	return cmp.Or(override, getenv(EnvCurrentContext), f.CurrentContext)
}

// Resolve computes the effective settings with precedence overrides >
// environment > selected context > defaults. The token is
// $NMP_ACCESS_TOKEN, else the context user's token. A selected context
// missing from the file is an ErrContextNotFound error. Values are not
// validated here: the file is validated on load, so an invalid base URL or
// output format comes from an override or the environment.
func (f *File) Resolve(o Overrides, getenv func(string) string) (*Settings, error) {
	s := &Settings{ContextName: f.CurrentContextName(o.Context, getenv)}
	var clusterURL, ctxWorkspace, ctxFormat string
	if s.ContextName != "" {
		s.Context = f.Context(s.ContextName)
		if s.Context == nil {
			return nil, fmt.Errorf("%w: %q", ErrContextNotFound, s.ContextName)
		}
		s.Cluster, s.User = f.Cluster(s.Context.Cluster), f.User(s.Context.User)
		if s.Cluster != nil {
			clusterURL = s.Cluster.BaseURL
			if s.Cluster.CertificateAuthority != nil {
				s.CertificateAuthority = *s.Cluster.CertificateAuthority
			}
			data, err := s.Cluster.CAData()
			if err != nil {
				return nil, err
			}
			s.CertificateAuthorityData = data
		}
		ctxWorkspace = s.Context.Workspace
		if s.Context.Preferences != nil {
			ctxFormat = s.Context.Preferences.OutputFormat
		}
	}
	s.BaseURL = cmp.Or(o.BaseURL, getenv(EnvBaseURL), clusterURL, DefaultBaseURL)
	s.Workspace = cmp.Or(o.Workspace, getenv(EnvWorkspace), ctxWorkspace)
	s.OutputFormat = cmp.Or(o.OutputFormat, getenv(EnvOutputFormat), ctxFormat, OutputTable)
	switch {
	case getenv(EnvAccessToken) != "":
		s.Token, s.TokenSource = getenv(EnvAccessToken), TokenSourceEnv
	case s.User != nil && s.User.Type != UserTypeNoAuth && s.User.Token != "":
		s.Token, s.TokenSource = s.User.Token, TokenSourceConfig
	}
	return s, nil
}
