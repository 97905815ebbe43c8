package config

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestDefault(t *testing.T) {
	t.Setenv("HOME", testHome)
	t.Setenv("XDG_DATA_HOME", "")
	c := Default()
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"platform.base_url", c.Platform.BaseURL, "http://localhost:8080"},
		{"platform.data_dir", c.Platform.DataDir, "/home/test/.local/share/nmp"},
		{"platform.seed_on_startup", c.Platform.SeedOnStartup, true},
		{"service.host", c.Service.Host, "127.0.0.1"},
		{"service.port", c.Service.Port, 8080},
		{"service.log_level", c.Service.LogLevel, "info"},
		{"service.log_format", c.Service.LogFormat, "plain"},
		{"service.shutdown_timeout_seconds", c.Service.ShutdownTimeoutSeconds, 15},
		{"service.read_header_timeout_seconds", c.Service.ReadHeaderTimeoutSeconds, 10},
		{"service.read_timeout_seconds", c.Service.ReadTimeoutSeconds, 60},
		{"service.write_timeout_seconds", c.Service.WriteTimeoutSeconds, 330},
		{"service.idle_timeout_seconds", c.Service.IdleTimeoutSeconds, 120},
		{"service.max_header_bytes", c.Service.MaxHeaderBytes, 65536},
		{"service.max_concurrent_requests", c.Service.MaxConcurrentRequests, 1024},
		{"service.gc_min_heap_mib", c.Service.GCMinHeapMiB, 64},
		{"auth.enabled", c.Auth.Enabled, false},
		{"auth.policy_decision_point_provider", c.Auth.PolicyDecisionPointProvider, "embedded"},
		{"auth.policy_decision_point_base_url", c.Auth.PolicyDecisionPointBaseURL, "http://localhost:8080"},
		{"auth.policy_decision_point_request_timeout_seconds", c.Auth.PolicyDecisionPointRequestTimeoutSeconds, 5},
		{"auth.policy_data_refresh_interval", c.Auth.PolicyDataRefreshInterval, 30.0},
		{"auth.bundle_cache_seconds", c.Auth.BundleCacheSeconds, 5},
		{"auth.propagation_poll_interval_seconds", c.Auth.PropagationPollIntervalSeconds, 1.0},
		{"auth.propagation_timeout_seconds", c.Auth.PropagationTimeoutSeconds, 30},
		{"auth.allow_unsigned_jwt", c.Auth.AllowUnsignedJWT, false},
		{"auth.token_leeway_seconds", c.Auth.TokenLeewaySeconds, 30},
		{"auth.admin_email", c.Auth.AdminEmail, (*string)(nil)},
		{"auth.default_workspace", c.Auth.DefaultWorkspace, "default"},
		{"auth.trusted_proxies", c.Auth.TrustedProxies, []string{}},
		{"auth.authenticate_authorize", c.Auth.AuthenticateAuthorize, false},
		{"auth.extra_authz_data_files", c.Auth.ExtraAuthzDataFiles, []string{}},
		{"auth.last_seen_interval_seconds", c.Auth.LastSeenIntervalSeconds, 300},
		{"service.access_log.level", c.Service.AccessLog.Level, "info"},
		{"service.access_log.sample_rate", c.Service.AccessLog.SampleRate, 1.0},
		{"service.access_log.buffer_size", c.Service.AccessLog.BufferSize, 10000},
		{"auth.decision_log.enabled", c.Auth.DecisionLog.Enabled, false},
		{"auth.decision_log.allow_sample_rate", c.Auth.DecisionLog.AllowSampleRate, 0.0},
		{"auth.decision_log.output", c.Auth.DecisionLog.Output, "stderr"},
		{"auth.decision_log.buffer_size", c.Auth.DecisionLog.BufferSize, 10000},
		{"auth.ext_authz.grpc_address", c.Auth.ExtAuthz.GRPCAddress, ""},
		{"auth.oidc.enabled", c.Auth.OIDC.Enabled, false},
		{"auth.oidc.issuer", c.Auth.OIDC.Issuer, ""},
		{"auth.oidc.additional_issuers", c.Auth.OIDC.AdditionalIssuers, []string{}},
		{"auth.oidc.client_id", c.Auth.OIDC.ClientID, ""},
		{"auth.oidc.audience", c.Auth.OIDC.Audience, (*string)(nil)},
		{"auth.oidc.authorization_endpoint", c.Auth.OIDC.AuthorizationEndpoint, (*string)(nil)},
		{"auth.oidc.token_endpoint", c.Auth.OIDC.TokenEndpoint, (*string)(nil)},
		{"auth.oidc.device_authorization_endpoint", c.Auth.OIDC.DeviceAuthorizationEndpoint, (*string)(nil)},
		{"auth.oidc.jwks_uri", c.Auth.OIDC.JWKSURI, (*string)(nil)},
		{"auth.oidc.subject_claim", c.Auth.OIDC.SubjectClaim, "sub"},
		{"auth.oidc.email_claim", c.Auth.OIDC.EmailClaim, "email"},
		{"auth.oidc.groups_claim", c.Auth.OIDC.GroupsClaim, "groups"},
		{"auth.oidc.default_scopes", c.Auth.OIDC.DefaultScopes, "openid profile email offline_access"},
		{"auth.oidc.scope_prefix", c.Auth.OIDC.ScopePrefix, (*string)(nil)},
		{"auth.oidc.discovery_cache_ttl", c.Auth.OIDC.DiscoveryCacheTTL, 300},
		{"auth.oidc.jwks_cache_ttl_seconds", c.Auth.OIDC.JWKSCacheTTLSeconds, 3600},
		{"auth.oidc.jwks_refetch_min_interval_seconds", c.Auth.OIDC.JWKSRefetchMinIntervalSeconds, 1},
		{"auth.oidc.introspection.cache_ttl_seconds", c.Auth.OIDC.Introspection.CacheTTLSeconds, 60},
		{"auth.oidc.introspection.max_requests_per_second", c.Auth.OIDC.Introspection.MaxRequestsPerSecond, 50},
		{"auth.oidc.introspection.max_concurrent_requests", c.Auth.OIDC.Introspection.MaxConcurrentRequests, 8},
		{"auth.oidc.http_timeout_seconds", c.Auth.OIDC.HTTPTimeoutSeconds, 10},
		{"auth.oidc.max_token_lifetime_seconds", c.Auth.OIDC.MaxTokenLifetimeSeconds, 86400},
		{"auth.token_signing.issuer", c.Auth.TokenSigning.Issuer, (*string)(nil)},
		{"auth.token_signing.key_id", c.Auth.TokenSigning.KeyID, "nemo-platform-signing"},
		{"auth.token_signing.private_key_file", c.Auth.TokenSigning.PrivateKeyFile, (*string)(nil)},
		{"auth.access_keys.enabled", c.Auth.AccessKeys.Enabled, false},
		{"auth.access_keys.audience", c.Auth.AccessKeys.Audience, "nemo-platform-access-key"},
		{"auth.access_keys.issue_format", c.Auth.AccessKeys.IssueFormat, "jwt"},
		{"auth.access_keys.accepted_formats", c.Auth.AccessKeys.AcceptedFormats, []string{"jwt"}},
		{"auth.access_keys.default_expires_in_seconds", c.Auth.AccessKeys.DefaultExpiresInSeconds, ptr(2592000)},
		{"auth.access_keys.max_expires_in_seconds", c.Auth.AccessKeys.MaxExpiresInSeconds, ptr(2592000)},
		{"auth.access_keys.rotation_grace_period_seconds", c.Auth.AccessKeys.RotationGracePeriodSeconds, 172800},
		{"auth.access_keys.max_rotation_grace_period_seconds", c.Auth.AccessKeys.MaxRotationGracePeriodSeconds, 2592000},
		{"auth.audit.retention_days", c.Auth.Audit.RetentionDays, 365},
		{"entities.database_config.url", c.Entities.DatabaseConfig.URL, ""},
		{"entities.database_config.connections_limit", c.Entities.DatabaseConfig.ConnectionsLimit, 10},
		{"entities.database_config.connect_timeout_seconds", c.Entities.DatabaseConfig.ConnectTimeoutSeconds, 30},
		{"entities.database_config.statement_timeout_seconds", c.Entities.DatabaseConfig.StatementTimeoutSeconds, 10},
		{"entities.database_config.pool_wait_timeout_seconds", c.Entities.DatabaseConfig.PoolWaitTimeoutSeconds, 10},
		{"entities.run_migrations", c.Entities.RunMigrations, true},
		{"entities.db_health_check_interval_seconds", c.Entities.DBHealthCheckIntervalSeconds, 10},
		{"dev_idp.listen_address", c.DevIDP.ListenAddress, "127.0.0.1:9400"},
		{"dev_idp.issuer", c.DevIDP.Issuer, (*string)(nil)},
		{"dev_idp.signing_key_file", c.DevIDP.SigningKeyFile, (*string)(nil)},
		{"dev_idp.audience", c.DevIDP.Audience, (*string)(nil)},
		{"dev_idp.access_token_ttl_seconds", c.DevIDP.AccessTokenTTLSeconds, 3600},
		{"dev_idp.refresh_token_ttl_seconds", c.DevIDP.RefreshTokenTTLSeconds, 86400},
		{"dev_idp.clients", c.DevIDP.Clients, []DevIDPClient{{
			ClientID: "nmp-cli",
			Public:   true,
			GrantTypes: []string{
				"urn:ietf:params:oauth:grant-type:device_code", "authorization_code", "password", "refresh_token",
			},
			RedirectURIs: []string{"http://127.0.0.1/callback"},
			Groups:       []string{},
			Scopes:       []string{},
		}}},
		{"dev_idp.users", c.DevIDP.Users, []DevIDPUser{}},
		// Derived values.
		{"token signing issuer", c.TokenSigningIssuer(), "http://localhost:8080/apis/auth"},
		{"token signing key file", c.TokenSigningKeyFile(), "/home/test/.local/share/nmp/token-signing-key.pem"},
		{"dev idp issuer", c.DevIDPIssuer(), "http://127.0.0.1:9400"},
		{"dev idp signing key file", c.DevIDPSigningKeyFile(), "/home/test/.local/share/nmp/dev-idp-signing-key.pem"},
		{"database kind", c.DatabaseKind(), "sqlite"},
		{"sqlite path", c.SQLitePath(), "/home/test/.local/share/nmp/entities.db"},
		{"modes", [2]bool{c.DevelopmentMode(), c.ProductionMode()}, [2]bool{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

func TestDefaultIsValid(t *testing.T) {
	warnings, err := testDefaults().Validate()
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Validate(defaults) = %q, %v; want no warnings, no error", warnings, err)
	}
}

func TestDefaultReturnsFreshValues(t *testing.T) {
	a := Default()
	a.DevIDP.Clients[0].GrantTypes[0] = "changed"
	a.Auth.AccessKeys.AcceptedFormats[0] = "changed"
	*a.Auth.AccessKeys.MaxExpiresInSeconds = 1
	b := Default()
	if b.DevIDP.Clients[0].GrantTypes[0] == "changed" || b.Auth.AccessKeys.AcceptedFormats[0] == "changed" ||
		*b.Auth.AccessKeys.MaxExpiresInSeconds == 1 {
		t.Fatal("Default shares mutable state between calls")
	}
}

func TestDefaultDataDir(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    string
	}{
		{"xdg data home", []string{"HOME=/home/a", "XDG_DATA_HOME=/xdg"}, "/xdg/nmp"},
		{"relative xdg ignored", []string{"HOME=/home/a", "XDG_DATA_HOME=rel"}, "/home/a/.local/share/nmp"},
		{"empty xdg ignored", []string{"HOME=/home/a", "XDG_DATA_HOME="}, "/home/a/.local/share/nmp"},
		{"home only", []string{"HOME=/home/b"}, "/home/b/.local/share/nmp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultDataDir(environLookup(tt.environ)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestModes(t *testing.T) {
	tests := []struct {
		name                      string
		auth, oidc, keys          bool
		wantDevelopment, wantProd bool
	}{
		{"auth disabled", false, false, false, false, false},
		{"auth disabled with oidc", false, true, true, false, false},
		{"development", true, false, false, true, false},
		{"production oidc", true, true, false, false, true},
		{"production access keys", true, false, true, false, true},
		{"production both", true, true, true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testDefaults()
			c.Auth.Enabled, c.Auth.OIDC.Enabled, c.Auth.AccessKeys.Enabled = tt.auth, tt.oidc, tt.keys
			if got := c.DevelopmentMode(); got != tt.wantDevelopment {
				t.Errorf("DevelopmentMode() = %v, want %v", got, tt.wantDevelopment)
			}
			if got := c.ProductionMode(); got != tt.wantProd {
				t.Errorf("ProductionMode() = %v, want %v", got, tt.wantProd)
			}
		})
	}
}

func TestDatabaseKindAndSQLitePath(t *testing.T) {
	tests := []struct {
		name, url, wantKind, wantPath string
	}{
		{"empty is sqlite in data dir", "", "sqlite", "/data/entities.db"},
		{"sqlite absolute", "sqlite:///var/lib/nmp/e.db", "sqlite", "/var/lib/nmp/e.db"},
		{"sqlite upper-case scheme", "SQLite:///x.db", "sqlite", "/x.db"},
		{"postgres", "postgres://nmp:pw@db:5432/nmp", "postgres", ""},
		{"postgresql", "postgresql://db/nmp", "postgres", ""},
		{"mysql unsupported", "mysql://db/nmp", "", ""},
		{"unparsable", "postgres://[::1", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testDefaults()
			c.Platform.DataDir = "/data"
			c.Entities.DatabaseConfig.URL = tt.url
			if got := c.DatabaseKind(); got != tt.wantKind {
				t.Errorf("DatabaseKind() = %q, want %q", got, tt.wantKind)
			}
			if got := c.SQLitePath(); got != tt.wantPath {
				t.Errorf("SQLitePath() = %q, want %q", got, tt.wantPath)
			}
		})
	}
}

func TestTrustedProxyPrefixes(t *testing.T) {
	tests := []struct {
		name    string
		proxies []string
		want    []string
	}{
		{"empty", nil, []string{}},
		{"cidr", []string{"10.0.0.0/8"}, []string{"10.0.0.0/8"}},
		{"bare ipv4 is /32", []string{"127.0.0.1"}, []string{"127.0.0.1/32"}},
		{"bare ipv6 is /128", []string{"::1"}, []string{"::1/128"}},
		{"host bits masked", []string{"10.0.5.7/24"}, []string{"10.0.5.0/24"}},
		{"ipv4-mapped bare address unmapped", []string{"::ffff:10.1.2.3"}, []string{"10.1.2.3/32"}},
		{"invalid skipped", []string{"10.0.0.300/8", "192.168.1.0/24", "fe80::1%eth0"}, []string{"192.168.1.0/24"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := AuthConfig{TrustedProxies: tt.proxies}
			want := make([]netip.Prefix, 0, len(tt.want))
			for _, s := range tt.want {
				want = append(want, netip.MustParsePrefix(s))
			}
			if got := a.TrustedProxyPrefixes(); !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestDerivedValues(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		got    func(*Config) string
		want   string
	}{
		{"token signing issuer from base url without trailing slash",
			func(c *Config) { c.Platform.BaseURL = "https://nmp.example.com/" },
			(*Config).TokenSigningIssuer, "https://nmp.example.com/apis/auth"},
		{"token signing issuer explicit",
			func(c *Config) { c.Auth.TokenSigning.Issuer = ptr("https://iss") },
			(*Config).TokenSigningIssuer, "https://iss"},
		{"token signing key file explicit",
			func(c *Config) { c.Auth.TokenSigning.PrivateKeyFile = ptr("/k.pem") },
			(*Config).TokenSigningKeyFile, "/k.pem"},
		{"dev idp issuer follows listen address",
			func(c *Config) { c.DevIDP.ListenAddress = "127.0.0.1:9999" },
			(*Config).DevIDPIssuer, "http://127.0.0.1:9999"},
		{"dev idp issuer explicit",
			func(c *Config) { c.DevIDP.Issuer = ptr("http://idp.test") },
			(*Config).DevIDPIssuer, "http://idp.test"},
		{"dev idp signing key follows data dir",
			func(c *Config) { c.Platform.DataDir = "/d" },
			(*Config).DevIDPSigningKeyFile, "/d/dev-idp-signing-key.pem"},
		{"expected audience is client id without audience",
			func(c *Config) { c.Auth.OIDC.ClientID = "cli" },
			func(c *Config) string { return c.Auth.OIDC.ExpectedAudience() }, "cli"},
		{"expected audience prefers audience",
			func(c *Config) { c.Auth.OIDC.ClientID, c.Auth.OIDC.Audience = "cli", ptr("api://x") },
			func(c *Config) string { return c.Auth.OIDC.ExpectedAudience() }, "api://x"},
		{"user subject defaults to username",
			func(c *Config) { c.DevIDP.Users = []DevIDPUser{{Username: "alice"}} },
			func(c *Config) string { return c.DevIDP.Users[0].EffectiveSubject() }, "alice"},
		{"user subject explicit",
			func(c *Config) { c.DevIDP.Users = []DevIDPUser{{Username: "alice", Subject: "u-1"}} },
			func(c *Config) string { return c.DevIDP.Users[0].EffectiveSubject() }, "u-1"},
		{"client subject defaults to client id",
			func(*Config) {},
			func(c *Config) string { return c.DevIDP.Clients[0].EffectiveSubject() }, "nmp-cli"},
		{"client subject explicit",
			func(c *Config) { c.DevIDP.Clients[0].Subject = ptr("service-bot") },
			func(c *Config) string { return c.DevIDP.Clients[0].EffectiveSubject() }, "service-bot"},
		{"redacted database url",
			func(c *Config) { c.Entities.DatabaseConfig.URL = "postgres://nmp:secret@db/nmp" },
			func(c *Config) string { return c.Entities.DatabaseConfig.RedactedURL() }, "postgres://nmp:xxxxx@db/nmp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testDefaults()
			tt.mutate(c)
			if got := tt.got(c); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
