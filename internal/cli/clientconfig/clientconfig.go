// Package clientconfig reads and writes the nmp client config file, a
// kubeconfig-like YAML file of clusters, users and contexts, and resolves the
// effective connection settings from flags, environment and the file.
//
// Keys this package does not know are kept on rewrite at every level. Writes
// go through Update, which serializes writers with a lock file and replaces
// the file atomically with mode 0600.
package clientconfig

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Environment variables read by the client.
const (
	EnvConfigFile     = "NMP_CONFIG_FILE"
	EnvBaseURL        = "NMP_BASE_URL"
	EnvCurrentContext = "NMP_CURRENT_CONTEXT"
	EnvOutputFormat   = "NMP_OUTPUT_FORMAT"
	EnvAccessToken    = "NMP_ACCESS_TOKEN"
	EnvWorkspace      = "NMP_WORKSPACE"
)

// DefaultBaseURL is the server URL when neither flag, environment nor
// context sets one.
const DefaultBaseURL = "http://localhost:8080"

// User types.
const (
	// UserTypeOAuth is a user with a bearer token (OIDC, unsigned or pasted).
	UserTypeOAuth = "oauth"
	// UserTypeNoAuth is a user that sends no credential.
	UserTypeNoAuth = "no-auth"
	// userTypeLegacyAPIKey is migrated to UserTypeOAuth on load.
	userTypeLegacyAPIKey = "api-key"
)

// Output formats.
const (
	OutputTable = "table"
	OutputJSON  = "json"
	OutputYAML  = "yaml"
)

// Extra holds the keys of a mapping that this package does not know; they
// are written back unchanged.
type Extra map[string]yaml.Node

// File is the whole client config file.
type File struct {
	CurrentContext string    `yaml:"current_context,omitempty"`
	Clusters       []Cluster `yaml:"clusters"`
	Users          []User    `yaml:"users"`
	Contexts       []Context `yaml:"contexts"`
	Extra          Extra     `yaml:",inline"`
}

// Cluster is a server to talk to.
type Cluster struct {
	Name    string `yaml:"name"`
	BaseURL string `yaml:"base_url"`
	// CertificateAuthority is the path of a PEM file of CA certificates
	// trusted for TLS in addition to the system roots.
	CertificateAuthority *string `yaml:"certificate_authority"`
	// CertificateAuthorityData is base64 of PEM CA certificates (as a
	// kubeconfig's certificate-authority-data), trusted in addition to the
	// system roots and CertificateAuthority.
	CertificateAuthorityData string `yaml:"certificate_authority_data,omitempty"`
	Extra                    Extra  `yaml:",inline"`
}

// User is a credential.
type User struct {
	Name string `yaml:"name"`
	// Type is UserTypeOAuth or UserTypeNoAuth.
	Type  string `yaml:"type"`
	Token string `yaml:"token,omitempty"`
	// RefreshToken is saved by login when the IdP returned one.
	RefreshToken string `yaml:"refresh_token,omitempty"`
	// Scope is the space-separated scope requested at login, reused on
	// refresh.
	Scope string `yaml:"scope,omitempty"`
	Extra Extra  `yaml:",inline"`
}

// Context binds a cluster, a user and defaults under one name.
type Context struct {
	Name        string       `yaml:"name"`
	Cluster     string       `yaml:"cluster"`
	User        string       `yaml:"user"`
	Workspace   string       `yaml:"workspace,omitempty"`
	Preferences *Preferences `yaml:"preferences,omitempty"`
	Extra       Extra        `yaml:",inline"`
}

// Preferences are per-context defaults.
type Preferences struct {
	OutputFormat string `yaml:"output_format,omitempty"`
	Extra        Extra  `yaml:",inline"`
}

// ValidOutputFormat reports whether f is table, json or yaml.
func ValidOutputFormat(f string) bool {
	return f == OutputTable || f == OutputJSON || f == OutputYAML
}

// CAData decodes CertificateAuthorityData: nil when it is empty, an error
// when it is not base64 of PEM certificates.
func (c *Cluster) CAData() ([]byte, error) {
	if c.CertificateAuthorityData == "" {
		return nil, nil
	}
	data, err := base64.StdEncoding.DecodeString(c.CertificateAuthorityData)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: certificate_authority_data is not base64: %w", c.Name, err)
	}
	if !bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("cluster %q: certificate_authority_data: %w", c.Name, errNoPEMCertificate)
	}
	return data, nil
}

var errNoPEMCertificate = errors.New("no PEM certificate found (want base64 of the PEM file)")
