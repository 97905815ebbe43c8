package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"
)

// Config is the complete server configuration.
type Config struct {
	Platform PlatformConfig `yaml:"platform"`
	Service  ServiceConfig  `yaml:"service"`
	Auth     AuthConfig     `yaml:"auth"`
	Entities EntitiesConfig `yaml:"entities"`
	DevIDP   DevIDPConfig   `yaml:"dev_idp"`

	// explicit records the dotted keys set by the file, the environment or
	// a flag (as opposed to left at their defaults).
	explicit map[string]bool
}

// PlatformConfig is the `platform` section.
type PlatformConfig struct {
	BaseURL       string `yaml:"base_url"`
	DataDir       string `yaml:"data_dir"`
	SeedOnStartup bool   `yaml:"seed_on_startup"`
}

// ServiceConfig is the `service` section.
type ServiceConfig struct {
	Host                   string `yaml:"host"`
	Port                   int    `yaml:"port"`
	LogLevel               string `yaml:"log_level"`
	LogFormat              string `yaml:"log_format"`
	ShutdownTimeoutSeconds int    `yaml:"shutdown_timeout_seconds"`

	// Limits of the HTTP listener (internal/server): timeouts in seconds
	// (0: none), the largest request header and the requests served at
	// once (0: unlimited; health probes are never refused).
	ReadHeaderTimeoutSeconds int `yaml:"read_header_timeout_seconds"`
	ReadTimeoutSeconds       int `yaml:"read_timeout_seconds"`
	WriteTimeoutSeconds      int `yaml:"write_timeout_seconds"`
	IdleTimeoutSeconds       int `yaml:"idle_timeout_seconds"`
	MaxHeaderBytes           int `yaml:"max_header_bytes"`
	MaxConcurrentRequests    int `yaml:"max_concurrent_requests"`

	// GCMinHeapMiB is the heap size below which the garbage collector
	// of `nmp services run` and `nmp quickstart` does not start a
	// collection (0: Go's default; internal/server.StartGCTuner), unless
	// the GOGC environment variable is set.
	GCMinHeapMiB int `yaml:"gc_min_heap_mib"`

	TLS TLSConfig `yaml:"tls"`

	AccessLog AccessLogConfig `yaml:"access_log"`
}

// AccessLogConfig is the `service.access_log` section: one line per
// request, written off the request path (internal/accesslog).
type AccessLogConfig struct {
	// Level is the lines' level ("debug", "info", "warn", "error") or
	// "off".
	Level string `yaml:"level"`
	// SampleRate is the share of successful requests (status < 400)
	// logged, 0..1; errors and denials are always logged.
	SampleRate float64 `yaml:"sample_rate"`
	// BufferSize bounds the lines waiting to be written; a full buffer
	// drops (and counts) new lines.
	BufferSize int `yaml:"buffer_size"`
}

// TLSConfig is the `service.tls` section: the server's certificate and key
// (both or neither; neither serves plain HTTP) and, optionally, the CA
// whose certificates clients must present (mutual TLS). The files are
// read by internal/tlsconfig, which re-reads the pair when it changes.
type TLSConfig struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// Enabled reports whether TLS is configured (a certificate and key are set).
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// AuthConfig is the `auth` section.
type AuthConfig struct {
	Enabled                                  bool     `yaml:"enabled"`
	PolicyDecisionPointProvider              string   `yaml:"policy_decision_point_provider"`
	PolicyDecisionPointBaseURL               string   `yaml:"policy_decision_point_base_url"`
	PolicyDecisionPointRequestTimeoutSeconds int      `yaml:"policy_decision_point_request_timeout_seconds"`
	PolicyDataRefreshInterval                float64  `yaml:"policy_data_refresh_interval"`
	BundleCacheSeconds                       int      `yaml:"bundle_cache_seconds"`
	PropagationPollIntervalSeconds           float64  `yaml:"propagation_poll_interval_seconds"`
	PropagationTimeoutSeconds                int      `yaml:"propagation_timeout_seconds"`
	AllowUnsignedJWT                         bool     `yaml:"allow_unsigned_jwt"`
	TokenLeewaySeconds                       int      `yaml:"token_leeway_seconds"`
	AdminEmail                               *string  `yaml:"admin_email"`
	DefaultWorkspace                         string   `yaml:"default_workspace"`
	TrustedProxies                           []string `yaml:"trusted_proxies"`
	AuthenticateAuthorize                    bool     `yaml:"authenticate_authorize"`
	ExtraAuthzDataFiles                      []string `yaml:"extra_authz_data_files"`
	// LastSeenIntervalSeconds is the last-seen window: at most one write
	// per principal per window; 0 disables recording.
	LastSeenIntervalSeconds int `yaml:"last_seen_interval_seconds"`

	ExtAuthz     ExtAuthzConfig     `yaml:"ext_authz"`
	OIDC         OIDCConfig         `yaml:"oidc"`
	TokenSigning TokenSigningConfig `yaml:"token_signing"`
	AccessKeys   AccessKeysConfig   `yaml:"access_keys"`
	DecisionLog  DecisionLogConfig  `yaml:"decision_log"`
	Audit        AuditConfig        `yaml:"audit"`
}

// AuditConfig is the `auth.audit` section: the audit trail of access
// changes.
type AuditConfig struct {
	// RetentionDays is how long audit events are kept; 0 keeps them
	// forever.
	RetentionDays int `yaml:"retention_days"`
}

// DecisionLogConfig is the `auth.decision_log` section: a JSON-lines log
// of authorization decisions (denials always, allows sampled).
type DecisionLogConfig struct {
	Enabled bool `yaml:"enabled"`
	// AllowSampleRate is the share of allow decisions logged, 0..1.
	AllowSampleRate float64 `yaml:"allow_sample_rate"`
	// Output is "stderr" or a file path (appended, created 0600).
	Output string `yaml:"output"`
	// BufferSize bounds the entries waiting to be written; a full buffer
	// drops (and counts) new entries.
	BufferSize int `yaml:"buffer_size"`
}

// ExtAuthzConfig is the `auth.ext_authz` section.
type ExtAuthzConfig struct {
	// GRPCAddress is the Envoy ext_authz gRPC listen address; empty = off.
	GRPCAddress string `yaml:"grpc_address"`
}

// OIDCConfig is the `auth.oidc` section.
type OIDCConfig struct {
	Enabled                       bool     `yaml:"enabled"`
	Issuer                        string   `yaml:"issuer"`
	AdditionalIssuers             []string `yaml:"additional_issuers"`
	ClientID                      string   `yaml:"client_id"`
	Audience                      *string  `yaml:"audience"`
	AuthorizationEndpoint         *string  `yaml:"authorization_endpoint"`
	TokenEndpoint                 *string  `yaml:"token_endpoint"`
	DeviceAuthorizationEndpoint   *string  `yaml:"device_authorization_endpoint"`
	JWKSURI                       *string  `yaml:"jwks_uri"`
	IntrospectionEndpoint         *string  `yaml:"introspection_endpoint"`
	SubjectClaim                  string   `yaml:"subject_claim"`
	EmailClaim                    string   `yaml:"email_claim"`
	GroupsClaim                   string   `yaml:"groups_claim"`
	DefaultScopes                 string   `yaml:"default_scopes"`
	ScopePrefix                   *string  `yaml:"scope_prefix"`
	DiscoveryCacheTTL             int      `yaml:"discovery_cache_ttl"`
	JWKSCacheTTLSeconds           int      `yaml:"jwks_cache_ttl_seconds"`
	JWKSRefetchMinIntervalSeconds int      `yaml:"jwks_refetch_min_interval_seconds"`
	HTTPTimeoutSeconds            int      `yaml:"http_timeout_seconds"`
	// MaxTokenLifetimeSeconds refuses tokens whose exp − iat exceeds it;
	// 0 = no limit.
	MaxTokenLifetimeSeconds int `yaml:"max_token_lifetime_seconds"`

	Introspection IntrospectionConfig `yaml:"introspection"`
}

// IntrospectionConfig is the `auth.oidc.introspection` section: RFC 7662
// token introspection for opaque (non-JWT) access tokens.
type IntrospectionConfig struct {
	Enabled  bool   `yaml:"enabled"`
	ClientID string `yaml:"client_id"`
	// ClientSecret is better set from the environment
	// (NMP_AUTH_OIDC__INTROSPECTION__CLIENT_SECRET) or a file; never log it.
	ClientSecretValue     *string `yaml:"client_secret"`
	ClientSecretFile      *string `yaml:"client_secret_file"`
	CacheTTLSeconds       int     `yaml:"cache_ttl_seconds"`
	MaxRequestsPerSecond  int     `yaml:"max_requests_per_second"`
	MaxConcurrentRequests int     `yaml:"max_concurrent_requests"`
}

// TokenSigningConfig is the `auth.token_signing` section.
type TokenSigningConfig struct {
	Issuer         *string `yaml:"issuer"`
	KeyID          string  `yaml:"key_id"`
	PrivateKeyFile *string `yaml:"private_key_file"`
	// PreviousKeys are retired signing keys whose tokens are still
	// accepted (and whose public keys are still published) during a
	// planned rotation of the signing key.
	PreviousKeys []PreviousSigningKey `yaml:"previous_keys"`
}

// PreviousSigningKey is one `auth.token_signing.previous_keys` item: a
// retired signing key's id and the PEM file holding its public key.
type PreviousSigningKey struct {
	KeyID         string `yaml:"key_id"`
	PublicKeyFile string `yaml:"public_key_file"`
}

// AccessKeysConfig is the `auth.access_keys` section.
type AccessKeysConfig struct {
	Enabled                       bool     `yaml:"enabled"`
	Audience                      string   `yaml:"audience"`
	IssueFormat                   string   `yaml:"issue_format"`
	AcceptedFormats               []string `yaml:"accepted_formats"`
	DefaultExpiresInSeconds       *int     `yaml:"default_expires_in_seconds"`
	MaxExpiresInSeconds           *int     `yaml:"max_expires_in_seconds"` // nil = unlimited
	RotationGracePeriodSeconds    int      `yaml:"rotation_grace_period_seconds"`
	MaxRotationGracePeriodSeconds int      `yaml:"max_rotation_grace_period_seconds"`
}

// EntitiesConfig is the `entities` section.
type EntitiesConfig struct {
	DatabaseConfig               DatabaseConfig `yaml:"database_config"`
	RunMigrations                bool           `yaml:"run_migrations"`
	DBHealthCheckIntervalSeconds int            `yaml:"db_health_check_interval_seconds"`
}

// DatabaseConfig is the `entities.database_config` section.
type DatabaseConfig struct {
	// URL is empty (SQLite in the data dir), sqlite:///abs/path.db,
	// postgres://… or postgresql://…. It may hold a password: never log it
	// unredacted (see RedactedURL).
	URL                   string `yaml:"url"`
	ConnectionsLimit      int    `yaml:"connections_limit"`
	ConnectTimeoutSeconds int    `yaml:"connect_timeout_seconds"`
	// StatementTimeoutSeconds bounds every store operation a request
	// makes; past it the request gets 503 store_unavailable.
	StatementTimeoutSeconds int `yaml:"statement_timeout_seconds"`
	// PoolWaitTimeoutSeconds bounds how long a request waits for a free
	// pooled connection before it fails as unavailable.
	PoolWaitTimeoutSeconds int `yaml:"pool_wait_timeout_seconds"`
}

// DevIDPConfig is the `dev_idp` section (the development OIDC provider).
type DevIDPConfig struct {
	ListenAddress          string         `yaml:"listen_address"`
	Issuer                 *string        `yaml:"issuer"`           // nil = http://<listen_address>
	SigningKeyFile         *string        `yaml:"signing_key_file"` // nil = <data_dir>/dev-idp-signing-key.pem
	Audience               *string        `yaml:"audience"`         // nil = the requesting client_id
	AccessTokenTTLSeconds  int            `yaml:"access_token_ttl_seconds"`
	RefreshTokenTTLSeconds int            `yaml:"refresh_token_ttl_seconds"`
	Clients                []DevIDPClient `yaml:"clients"`
	Users                  []DevIDPUser   `yaml:"users"`
}

// DevIDPClient is one `dev_idp.clients` entry.
type DevIDPClient struct {
	ClientID     string   `yaml:"client_id"`
	ClientSecret *string  `yaml:"client_secret"`
	Public       bool     `yaml:"public"`
	GrantTypes   []string `yaml:"grant_types"`
	// RedirectURIs: loopback URIs match any port.
	RedirectURIs []string `yaml:"redirect_uris"`
	Subject      *string  `yaml:"subject"` // client credentials `sub`; nil = client_id
	Email        *string  `yaml:"email"`
	Groups       []string `yaml:"groups"`
	Scopes       []string `yaml:"scopes"`
}

// DevIDPUser is one `dev_idp.users` entry.
type DevIDPUser struct {
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
	Email    string   `yaml:"email"`
	Subject  string   `yaml:"subject"` // empty = username
	Groups   []string `yaml:"groups"`
}

// Grant types understood by the development IdP.
const (
	GrantTypeDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
	GrantTypeAuthorizationCode = "authorization_code"
	GrantTypePassword          = "password"
	GrantTypeRefreshToken      = "refresh_token"
	GrantTypeClientCredentials = "client_credentials"
)

const (
	defaultBaseURL    = "http://localhost:8080"
	defaultPDPBaseURL = "http://localhost:8080"
)

// Default returns a configuration holding every default of config.md. The
// data dir is $XDG_DATA_HOME/nmp, else ~/.local/share/nmp, read from the
// process environment (Load reads its own Environ instead and also honours
// NMP_DATA_DIR).
func Default() *Config {
	return defaults(os.LookupEnv)
}

func defaults(lookup func(string) (string, bool)) *Config {
	return &Config{
		Platform: PlatformConfig{
			BaseURL:       defaultBaseURL,
			DataDir:       defaultDataDir(lookup),
			SeedOnStartup: true,
		},
		Service: ServiceConfig{
			Host:                     "127.0.0.1",
			Port:                     8080,
			LogLevel:                 "info",
			LogFormat:                "plain",
			ShutdownTimeoutSeconds:   15,
			ReadHeaderTimeoutSeconds: 10,
			ReadTimeoutSeconds:       60,
			WriteTimeoutSeconds:      330,
			IdleTimeoutSeconds:       120,
			MaxHeaderBytes:           64 << 10,
			MaxConcurrentRequests:    1024,
			GCMinHeapMiB:             64,
			AccessLog:                AccessLogConfig{Level: "info", SampleRate: 1, BufferSize: 10000},
		},
		Auth: AuthConfig{
			PolicyDecisionPointProvider:              "embedded",
			PolicyDecisionPointBaseURL:               defaultPDPBaseURL,
			PolicyDecisionPointRequestTimeoutSeconds: 5,
			PolicyDataRefreshInterval:                30,
			BundleCacheSeconds:                       5,
			PropagationPollIntervalSeconds:           1.0,
			PropagationTimeoutSeconds:                30,
			TokenLeewaySeconds:                       30,
			DefaultWorkspace:                         "default",
			TrustedProxies:                           []string{},
			ExtraAuthzDataFiles:                      []string{},
			LastSeenIntervalSeconds:                  300,
			OIDC: OIDCConfig{
				AdditionalIssuers:             []string{},
				SubjectClaim:                  "sub",
				EmailClaim:                    "email",
				GroupsClaim:                   "groups",
				DefaultScopes:                 "openid profile email offline_access",
				DiscoveryCacheTTL:             300,
				JWKSCacheTTLSeconds:           3600,
				JWKSRefetchMinIntervalSeconds: 1,
				HTTPTimeoutSeconds:            10,
				MaxTokenLifetimeSeconds:       86400,
				Introspection: IntrospectionConfig{
					CacheTTLSeconds:       60,
					MaxRequestsPerSecond:  50,
					MaxConcurrentRequests: 8,
				},
			},
			TokenSigning: TokenSigningConfig{KeyID: "nemo-platform-signing", PreviousKeys: []PreviousSigningKey{}},
			AccessKeys: AccessKeysConfig{
				Audience:                      "nemo-platform-access-key",
				IssueFormat:                   "jwt",
				AcceptedFormats:               []string{"jwt"},
				DefaultExpiresInSeconds:       ptr(2592000),
				MaxExpiresInSeconds:           ptr(2592000),
				RotationGracePeriodSeconds:    172800,
				MaxRotationGracePeriodSeconds: 2592000,
			},
			DecisionLog: DecisionLogConfig{Output: "stderr", BufferSize: 10000},
			Audit:       AuditConfig{RetentionDays: 365},
		},
		Entities: EntitiesConfig{
			DatabaseConfig:               DatabaseConfig{ConnectionsLimit: 10, ConnectTimeoutSeconds: 30, StatementTimeoutSeconds: 10, PoolWaitTimeoutSeconds: 10},
			RunMigrations:                true,
			DBHealthCheckIntervalSeconds: 10,
		},
		DevIDP: DevIDPConfig{
			ListenAddress:          "127.0.0.1:9400",
			AccessTokenTTLSeconds:  3600,
			RefreshTokenTTLSeconds: 86400,
			Clients:                []DevIDPClient{defaultDevIDPClient()},
			Users:                  []DevIDPUser{},
		},
	}
}

func defaultDevIDPClient() DevIDPClient {
	return DevIDPClient{
		ClientID: "nmp-cli",
		Public:   true,
		GrantTypes: []string{
			GrantTypeDeviceCode, GrantTypeAuthorizationCode, GrantTypePassword, GrantTypeRefreshToken,
		},
		RedirectURIs: []string{"http://127.0.0.1/callback"},
		Groups:       []string{},
		Scopes:       []string{},
	}
}

// defaultDataDir is $XDG_DATA_HOME/nmp (if absolute, as the XDG spec
// requires), else ~/.local/share/nmp, else "" when no home is known.
func defaultDataDir(lookup func(string) (string, bool)) string {
	if xdg, _ := lookup("XDG_DATA_HOME"); filepath.IsAbs(xdg) {
		return filepath.Join(xdg, "nmp")
	}
	home, _ := lookup("HOME")
	if home == "" {
		if u, err := user.Current(); err == nil {
			home = u.HomeDir
		}
	}
	if home == "" {
		return ""
	}
	return filepath.Join(home, ".local", "share", "nmp")
}

func ptr[T any](v T) *T { return &v }

// DevelopmentMode reports auth enabled with neither OIDC nor access keys
// (authn.md "Modes"): client-set identity headers are accepted.
func (c *Config) DevelopmentMode() bool {
	return c.Auth.Enabled && !c.Auth.OIDC.Enabled && !c.Auth.AccessKeys.Enabled
}

// ProductionMode reports auth enabled with OIDC or access keys.
func (c *Config) ProductionMode() bool {
	return c.Auth.Enabled && (c.Auth.OIDC.Enabled || c.Auth.AccessKeys.Enabled)
}

// Database kinds returned by DatabaseKind.
const (
	DatabaseSQLite   = "sqlite"
	DatabasePostgres = "postgres"
)

// DatabaseKind is "sqlite" or "postgres" from entities.database_config.url,
// or "" for an unsupported URL (which Validate rejects).
func (c *Config) DatabaseKind() string {
	raw := c.Entities.DatabaseConfig.URL
	if raw == "" {
		return DatabaseSQLite
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	switch u.Scheme {
	case "sqlite":
		return DatabaseSQLite
	case "postgres", "postgresql":
		return DatabasePostgres
	}
	return ""
}

// SQLitePath is the SQLite database file: the path of a sqlite:///abs/path.db
// URL, or <data_dir>/entities.db when the URL is empty; "" for PostgreSQL.
func (c *Config) SQLitePath() string {
	raw := c.Entities.DatabaseConfig.URL
	if raw == "" {
		return filepath.Join(c.Platform.DataDir, "entities.db")
	}
	if c.DatabaseKind() != DatabaseSQLite {
		return ""
	}
	u, _ := url.Parse(raw) // parsed successfully by DatabaseKind
	return u.Path
}

// RedactedURL is the database URL with its password (user info or query
// parameter) replaced by "xxxxx", safe to log.
func (d *DatabaseConfig) RedactedURL() string {
	return redactDatabaseURL(d.URL)
}

// TrustedProxyPrefixes is auth.trusted_proxies parsed; a bare IP address is a
// single-host prefix (/32 or /128). Invalid entries (rejected by Validate)
// are skipped.
func (a *AuthConfig) TrustedProxyPrefixes() []netip.Prefix {
	prefixes := make([]netip.Prefix, 0, len(a.TrustedProxies))
	for _, s := range a.TrustedProxies {
		if p, err := parseTrustedProxy(s); err == nil {
			prefixes = append(prefixes, p)
		}
	}
	return prefixes
}

// ExpectedAudience is the `aud` tokens must contain: audience if set, else
// client_id.
func (o *OIDCConfig) ExpectedAudience() string {
	if o.Audience != nil && *o.Audience != "" {
		return *o.Audience
	}
	return o.ClientID
}

// IntrospectionEndpointOverride is auth.oidc.introspection_endpoint, ""
// when unset (the endpoint then comes from the discovery document).
func (o *OIDCConfig) IntrospectionEndpointOverride() string {
	if o.IntrospectionEndpoint != nil {
		return *o.IntrospectionEndpoint
	}
	return ""
}

// ErrNoClientSecret: introspection is enabled without a client secret.
var ErrNoClientSecret = errors.New("auth.oidc.introspection: client_secret or client_secret_file is required")

// ClientSecret is the introspection client's secret: client_secret (for
// example from NMP_AUTH_OIDC__INTROSPECTION__CLIENT_SECRET), else the
// content of client_secret_file with surrounding white space trimmed.
// insecure is set when the file is accessible by group or others. Errors
// name the file, never its content.
func (c *IntrospectionConfig) ClientSecret() (secret string, insecure bool, err error) {
	if c.ClientSecretValue != nil && *c.ClientSecretValue != "" {
		return *c.ClientSecretValue, false, nil
	}
	if c.ClientSecretFile == nil || *c.ClientSecretFile == "" {
		return "", false, ErrNoClientSecret
	}
	path := *c.ClientSecretFile
	fi, err := os.Stat(path)
	if err != nil {
		return "", false, fmt.Errorf("auth.oidc.introspection.client_secret_file: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", false, fmt.Errorf("auth.oidc.introspection.client_secret_file: %w", err)
	}
	secret = strings.TrimSpace(string(data))
	if secret == "" {
		return "", false, fmt.Errorf("auth.oidc.introspection.client_secret_file: %s is empty", path)
	}
	return secret, fi.Mode().Perm()&0o077 != 0, nil
}

// TokenSigningIssuer is auth.token_signing.issuer, else <base_url>/apis/auth.
func (c *Config) TokenSigningIssuer() string {
	if iss := c.Auth.TokenSigning.Issuer; iss != nil && *iss != "" {
		return *iss
	}
	return strings.TrimRight(c.Platform.BaseURL, "/") + "/apis/auth"
}

// TokenSigningKeyFile is auth.token_signing.private_key_file, else the
// generated <data_dir>/token-signing-key.pem (SQLite only; Validate requires
// the file with PostgreSQL when access keys are enabled).
func (c *Config) TokenSigningKeyFile() string {
	return orDataDirFile(c.Auth.TokenSigning.PrivateKeyFile, c.Platform.DataDir, "token-signing-key.pem")
}

// DevIDPIssuer is dev_idp.issuer, else http://<listen_address>.
func (c *Config) DevIDPIssuer() string {
	if iss := c.DevIDP.Issuer; iss != nil && *iss != "" {
		return *iss
	}
	return "http://" + c.DevIDP.ListenAddress
}

// DevIDPSigningKeyFile is dev_idp.signing_key_file, else
// <data_dir>/dev-idp-signing-key.pem.
func (c *Config) DevIDPSigningKeyFile() string {
	return orDataDirFile(c.DevIDP.SigningKeyFile, c.Platform.DataDir, "dev-idp-signing-key.pem")
}

func orDataDirFile(set *string, dataDir, name string) string {
	if set != nil && *set != "" {
		return *set
	}
	return filepath.Join(dataDir, name)
}

// EffectiveSubject is the user's subject, defaulting to the username.
func (u *DevIDPUser) EffectiveSubject() string {
	if u.Subject != "" {
		return u.Subject
	}
	return u.Username
}

// EffectiveSubject is the client-credentials subject, defaulting to the
// client id.
func (c *DevIDPClient) EffectiveSubject() string {
	if c.Subject != nil && *c.Subject != "" {
		return *c.Subject
	}
	return c.ClientID
}

// IsExplicit reports whether the dotted key (for example
// "auth.policy_decision_point_base_url") was set by the file, the
// environment or a flag rather than left at its default.
func (c *Config) IsExplicit(key string) bool {
	return c.explicit[key]
}

func (c *Config) markExplicit(key string) {
	if c.explicit == nil {
		c.explicit = make(map[string]bool)
	}
	c.explicit[key] = true
}
