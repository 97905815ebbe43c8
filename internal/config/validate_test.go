package config

import (
	"math"
	"strings"
	"testing"
)

func TestValidateErrors(t *testing.T) {
	oidc := func(c *Config) {
		c.Auth.Enabled = true
		c.Auth.OIDC.Enabled = true
		c.Auth.OIDC.Issuer = "https://idp.example.com/"
		c.Auth.OIDC.ClientID = "nmp-cli"
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"oidc without issuer", func(c *Config) { oidc(c); c.Auth.OIDC.Issuer = "" },
			[]string{"auth.oidc.issuer: required when auth.oidc.enabled is true"}},
		{"oidc without audience and client id", func(c *Config) { oidc(c); c.Auth.OIDC.ClientID = "" },
			[]string{"auth.oidc.audience: auth.oidc.audience or auth.oidc.client_id is required when auth.oidc.enabled is true"}},
		{"oidc with empty audience and no client id", func(c *Config) { oidc(c); c.Auth.OIDC.ClientID = ""; c.Auth.OIDC.Audience = ptr("") },
			[]string{"auth.oidc.audience: auth.oidc.audience or auth.oidc.client_id is required when auth.oidc.enabled is true"}},
		{"oidc issuer not a URL", func(c *Config) { oidc(c); c.Auth.OIDC.Issuer = "idp.example.com" },
			[]string{`auth.oidc.issuer: must be an absolute http:// or https:// URL, got "idp.example.com"`}},
		{"additional issuer not a URL", func(c *Config) { c.Auth.OIDC.AdditionalIssuers = []string{"https://a/", "ftp://b/"} },
			[]string{`auth.oidc.additional_issuers[1]: must be an absolute http:// or https:// URL, got "ftp://b/"`}},
		{"token endpoint unparsable", func(c *Config) { c.Auth.OIDC.TokenEndpoint = ptr("http://[::1") },
			[]string{`auth.oidc.token_endpoint: must be an absolute http:// or https:// URL, got "http://[::1"`}},
		{"jwks uri override not a URL", func(c *Config) { c.Auth.OIDC.JWKSURI = ptr("/keys") },
			[]string{`auth.oidc.jwks_uri: must be an absolute http:// or https:// URL, got "/keys"`}},
		{"unknown provider", func(c *Config) { c.Auth.PolicyDecisionPointProvider = "cedar" },
			[]string{`auth.policy_decision_point_provider: must be one of embedded, opa, got "cedar"`}},
		{"opa without explicit base url", func(c *Config) { c.Auth.PolicyDecisionPointProvider = "opa" },
			[]string{"auth.policy_decision_point_base_url: must be set explicitly when auth.policy_decision_point_provider is opa"}},
		{"opa with an invalid base url", func(c *Config) {
			c.Auth.PolicyDecisionPointProvider = "opa"
			c.Auth.PolicyDecisionPointBaseURL = "opa:8181"
		}, []string{
			`auth.policy_decision_point_base_url: must be an absolute http:// or https:// URL, got "opa:8181"`,
		}},
		{"pdp timeout below 1", func(c *Config) { c.Auth.PolicyDecisionPointRequestTimeoutSeconds = 0 },
			[]string{
				"auth.policy_decision_point_request_timeout_seconds: must be at least 1, got 0",
			}},
		{"leeway negative", func(c *Config) { c.Auth.TokenLeewaySeconds = -1 },
			[]string{"auth.token_leeway_seconds: must be between 0 and 300, got -1"}},
		{"leeway above 300", func(c *Config) { c.Auth.TokenLeewaySeconds = 301 },
			[]string{"auth.token_leeway_seconds: must be between 0 and 300, got 301"}},
		{"trusted proxy invalid CIDR", func(c *Config) { c.Auth.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.300/8"} },
			[]string{`auth.trusted_proxies[1]: invalid CIDR "10.0.0.300/8"`}},
		{"trusted proxy invalid address", func(c *Config) { c.Auth.TrustedProxies = []string{"gateway.local"} },
			[]string{`auth.trusted_proxies[0]: invalid IP address or CIDR "gateway.local"`}},
		{"trusted proxy with zone", func(c *Config) { c.Auth.TrustedProxies = []string{"fe80::1%eth0"} },
			[]string{`auth.trusted_proxies[0]: invalid IP address or CIDR "fe80::1%eth0"`}},
		{"trusted proxy prefix too long", func(c *Config) { c.Auth.TrustedProxies = []string{"10.0.0.0/33"} },
			[]string{`auth.trusted_proxies[0]: invalid CIDR "10.0.0.0/33"`}},
		{"access keys with postgres and no key file", func(c *Config) {
			c.Auth.Enabled, c.Auth.AccessKeys.Enabled = true, true
			c.Entities.DatabaseConfig.URL = "postgres://db/nmp"
		}, []string{
			"auth.token_signing.private_key_file: required when auth.access_keys.enabled is true with PostgreSQL",
		}},
		{"access keys with postgres and a key file", func(c *Config) {
			c.Auth.Enabled, c.Auth.AccessKeys.Enabled = true, true
			c.Entities.DatabaseConfig.URL = "postgres://db/nmp"
			c.Auth.TokenSigning.PrivateKeyFile = ptr("/keys/signing.pem")
		}, nil},
		{"access keys without auth", func(c *Config) { c.Auth.AccessKeys.Enabled = true }, []string{
			"auth.access_keys.enabled: requires auth.enabled: true (with authentication off no token is checked, so a key would grant nothing and limit nothing)",
		}},
		{"access keys with sqlite and no key file", func(c *Config) { c.Auth.Enabled, c.Auth.AccessKeys.Enabled = true, true },
			nil},
		{"unlimited expiry", func(c *Config) {
			c.Auth.AccessKeys.DefaultExpiresInSeconds, c.Auth.AccessKeys.MaxExpiresInSeconds = nil, nil
		}, nil},
		{"max expiry below default", func(c *Config) { c.Auth.AccessKeys.MaxExpiresInSeconds = ptr(3600) },
			[]string{
				"auth.access_keys.max_expires_in_seconds: must be at least default_expires_in_seconds (2592000), got 3600",
			}},
		{"max expiry without default", func(c *Config) { c.Auth.AccessKeys.DefaultExpiresInSeconds = nil },
			[]string{
				"auth.access_keys.default_expires_in_seconds: must be set when auth.access_keys.max_expires_in_seconds is set",
			}},
		{"default expiry zero", func(c *Config) {
			c.Auth.AccessKeys.DefaultExpiresInSeconds = ptr(0)
			c.Auth.AccessKeys.MaxExpiresInSeconds = nil
		}, []string{
			"auth.access_keys.default_expires_in_seconds: must be at least 1, got 0",
		}},
		{"rotation grace above max", func(c *Config) { c.Auth.AccessKeys.RotationGracePeriodSeconds = 2592001 },
			[]string{
				"auth.access_keys.rotation_grace_period_seconds: must not exceed max_rotation_grace_period_seconds (2592000), got 2592001",
			}},
		{"issue format", func(c *Config) { c.Auth.AccessKeys.IssueFormat = "opaque" },
			[]string{`auth.access_keys.issue_format: must be jwt, got "opaque"`}},
		{"accepted formats", func(c *Config) { c.Auth.AccessKeys.AcceptedFormats = []string{"jwt", "nmp_sak"} },
			[]string{`auth.access_keys.accepted_formats[1]: must be jwt, got "nmp_sak"`}},
		{"access keys with an empty audience", func(c *Config) { c.Auth.AccessKeys.Audience = "" },
			[]string{"auth.access_keys.audience: must not be empty"}},
		{"signing key id empty", func(c *Config) { c.Auth.TokenSigning.KeyID = "" },
			[]string{"auth.token_signing.key_id: must not be empty"}},
		{"signing issuer not a URL", func(c *Config) { c.Auth.TokenSigning.Issuer = ptr("nmp/apis/auth") },
			[]string{`auth.token_signing.issuer: must be an absolute http:// or https:// URL, got "nmp/apis/auth"`}},
		{"previous signing keys", func(c *Config) {
			c.Auth.TokenSigning.PreviousKeys = []PreviousSigningKey{
				{KeyID: "old-1", PublicKeyFile: "/keys/old-1.pem"},
				{KeyID: "old-1", PublicKeyFile: "/keys/old-1b.pem"},
				{KeyID: "nemo-platform-signing", PublicKeyFile: "/keys/current.pem"},
				{PublicKeyFile: "/keys/x.pem"},
				{KeyID: "old-2"},
			}
		}, []string{
			`auth.token_signing.previous_keys[1].key_id: duplicate key_id "old-1"`,
			`auth.token_signing.previous_keys[2].key_id: must differ from auth.token_signing.key_id ("nemo-platform-signing")`,
			"auth.token_signing.previous_keys[3].key_id: required",
			"auth.token_signing.previous_keys[4].public_key_file: required",
		}},
		{"access keys issuer equal to the oidc issuer", func(c *Config) {
			oidc(c)
			c.Auth.Enabled, c.Auth.AccessKeys.Enabled = true, true
			c.Auth.TokenSigning.Issuer = ptr("https://idp.example.com/")
		}, []string{`auth.token_signing.issuer: must differ from the OIDC issuer "https://idp.example.com/": access-key tokens are recognized by their issuer`}},
		{"access keys issuer equal to an additional oidc issuer", func(c *Config) {
			oidc(c)
			c.Auth.Enabled, c.Auth.AccessKeys.Enabled = true, true
			c.Auth.OIDC.AdditionalIssuers = []string{"http://localhost:8080/apis/auth"}
		}, []string{`auth.token_signing.issuer: must differ from the OIDC issuer "http://localhost:8080/apis/auth": access-key tokens are recognized by their issuer`}},
		{"port zero", func(c *Config) { c.Service.Port = 0 }, []string{"service.port: must be between 1 and 65535, got 0"}},
		{"port too large", func(c *Config) { c.Service.Port = 65536 }, []string{"service.port: must be between 1 and 65535, got 65536"}},
		{"log level", func(c *Config) { c.Service.LogLevel = "trace" },
			[]string{`service.log_level: must be one of debug, info, warn, error, got "trace"`}},
		{"access log level", func(c *Config) { c.Service.AccessLog.Level = "trace" },
			[]string{`service.access_log.level: must be one of off, debug, info, warn, error, got "trace"`}},
		{"log format", func(c *Config) { c.Service.LogFormat = "text" },
			[]string{`service.log_format: must be one of plain, json, got "text"`}},
		{"database scheme", func(c *Config) { c.Entities.DatabaseConfig.URL = "mysql://root:hunter2@db/nmp" },
			[]string{`entities.database_config.url: unsupported scheme "mysql" in mysql://root:xxxxx@db/nmp (want sqlite, postgres or postgresql)`}},
		{"database keyword DSN hidden", func(c *Config) { c.Entities.DatabaseConfig.URL = "host=db password=hunter2" },
			[]string{`entities.database_config.url: unsupported scheme "" in <redacted> (want sqlite, postgres or postgresql)`}},
		{"database unparsable", func(c *Config) { c.Entities.DatabaseConfig.URL = "postgres://u:hunter2@[db" },
			[]string{"entities.database_config.url: not a valid URL (value not shown: it may contain a password)"}},
		{"sqlite relative", func(c *Config) { c.Entities.DatabaseConfig.URL = "sqlite://entities.db" },
			[]string{"entities.database_config.url: SQLite URLs must be sqlite:///absolute/path, got sqlite://entities.db"}},
		{"sqlite opaque", func(c *Config) { c.Entities.DatabaseConfig.URL = "sqlite:entities.db" },
			[]string{"entities.database_config.url: SQLite URLs must be sqlite:///absolute/path, got <redacted>"}},
		{"sqlite with query", func(c *Config) { c.Entities.DatabaseConfig.URL = "sqlite:///x.db?mode=ro" },
			[]string{"entities.database_config.url: SQLite URLs must be sqlite:///absolute/path, got sqlite:///x.db?mode=ro"}},
		{"negative shutdown timeout", func(c *Config) { c.Service.ShutdownTimeoutSeconds = -1 },
			[]string{"service.shutdown_timeout_seconds: must be at least 0, got -1"}},
		{"server limits out of range", func(c *Config) {
			c.Service.ReadHeaderTimeoutSeconds = 0
			c.Service.ReadTimeoutSeconds = -1
			c.Service.WriteTimeoutSeconds = -1
			c.Service.IdleTimeoutSeconds = -1
			c.Service.MaxHeaderBytes = 100
			c.Service.MaxConcurrentRequests = -1
			c.Service.GCMinHeapMiB = -1
			c.Entities.DatabaseConfig.PoolWaitTimeoutSeconds = 0
		}, []string{
			"service.read_header_timeout_seconds: must be at least 1, got 0",
			"service.read_timeout_seconds: must be at least 0, got -1",
			"service.write_timeout_seconds: must be at least 0, got -1",
			"service.idle_timeout_seconds: must be at least 0, got -1",
			"service.max_header_bytes: must be at least 4096, got 100",
			"service.max_concurrent_requests: must be at least 0, got -1",
			"service.gc_min_heap_mib: must be between 0 and 1048576, got -1",
			"entities.database_config.pool_wait_timeout_seconds: must be at least 1, got 0",
		}},
		{"zero refresh interval", func(c *Config) { c.Auth.PolicyDataRefreshInterval = 0 },
			[]string{"auth.policy_data_refresh_interval: must be a positive number of seconds, got 0"}},
		{"NaN poll interval", func(c *Config) { c.Auth.PropagationPollIntervalSeconds = math.NaN() },
			[]string{
				"auth.propagation_poll_interval_seconds: must be a positive number of seconds, got NaN",
			}},
		{"infinite poll interval", func(c *Config) { c.Auth.PropagationPollIntervalSeconds = math.Inf(1) },
			[]string{
				"auth.propagation_poll_interval_seconds: must be a positive number of seconds, got +Inf",
			}},
		{"negative last-seen interval", func(c *Config) { c.Auth.LastSeenIntervalSeconds = -1 },
			[]string{"auth.last_seen_interval_seconds: must be between 0 and 86400, got -1"}},
		{"last-seen interval over a day", func(c *Config) { c.Auth.LastSeenIntervalSeconds = 86401 },
			[]string{"auth.last_seen_interval_seconds: must be between 0 and 86400, got 86401"}},
		{"access-log sample rate under 0", func(c *Config) { c.Service.AccessLog.SampleRate = -0.1 },
			[]string{"service.access_log.sample_rate: must be between 0 and 1, got -0.1"}},
		{"access-log sample rate NaN", func(c *Config) { c.Service.AccessLog.SampleRate = math.NaN() },
			[]string{"service.access_log.sample_rate: must be between 0 and 1, got NaN"}},
		{"access-log buffer empty", func(c *Config) { c.Service.AccessLog.BufferSize = 0 },
			[]string{"service.access_log.buffer_size: must be between 1 and 10000000, got 0"}},
		{"decision-log sample rate over 1", func(c *Config) { c.Auth.DecisionLog.AllowSampleRate = 1.5 },
			[]string{"auth.decision_log.allow_sample_rate: must be between 0 and 1, got 1.5"}},
		{"decision-log sample rate NaN", func(c *Config) { c.Auth.DecisionLog.AllowSampleRate = math.NaN() },
			[]string{"auth.decision_log.allow_sample_rate: must be between 0 and 1, got NaN"}},
		{"decision-log output empty", func(c *Config) { c.Auth.DecisionLog.Output = "" },
			[]string{`auth.decision_log.output: must be "stderr" or a file path`}},
		{"decision-log buffer empty", func(c *Config) { c.Auth.DecisionLog.BufferSize = 0 },
			[]string{"auth.decision_log.buffer_size: must be between 1 and 10000000, got 0"}},
		{"negative intervals", func(c *Config) {
			c.Auth.BundleCacheSeconds = -1
			c.Auth.PropagationTimeoutSeconds = -1
			c.Auth.OIDC.DiscoveryCacheTTL = -1
			c.Auth.OIDC.JWKSCacheTTLSeconds = -1
			c.Auth.OIDC.JWKSRefetchMinIntervalSeconds = -1
			c.Auth.OIDC.HTTPTimeoutSeconds = 0
			c.Auth.OIDC.MaxTokenLifetimeSeconds = -1
			c.Auth.AccessKeys.RotationGracePeriodSeconds = -1
			c.Auth.AccessKeys.MaxRotationGracePeriodSeconds = -1
			c.Entities.DatabaseConfig.ConnectionsLimit = 0
			c.Entities.DatabaseConfig.ConnectTimeoutSeconds = 0
			c.Entities.DBHealthCheckIntervalSeconds = 0
			c.DevIDP.AccessTokenTTLSeconds = 0
			c.DevIDP.RefreshTokenTTLSeconds = -5
		}, []string{
			"auth.bundle_cache_seconds: must be at least 0, got -1",
			"auth.propagation_timeout_seconds: must be at least 0, got -1",
			"auth.oidc.discovery_cache_ttl: must be at least 0, got -1",
			"auth.oidc.jwks_cache_ttl_seconds: must be at least 0, got -1",
			"auth.oidc.jwks_refetch_min_interval_seconds: must be at least 0, got -1",
			"auth.oidc.http_timeout_seconds: must be at least 1, got 0",
			"auth.oidc.max_token_lifetime_seconds: must be at least 0, got -1",
			"auth.access_keys.rotation_grace_period_seconds: must be at least 0, got -1",
			"auth.access_keys.max_rotation_grace_period_seconds: must be at least 0, got -1",
			"entities.database_config.connections_limit: must be at least 1, got 0",
			"entities.database_config.connect_timeout_seconds: must be at least 1, got 0",
			"entities.db_health_check_interval_seconds: must be at least 1, got 0",
			"dev_idp.access_token_ttl_seconds: must be at least 1, got 0",
			"dev_idp.refresh_token_ttl_seconds: must be at least 1, got -5",
		}},
		{"dev idp user without username, password, email", func(c *Config) { c.DevIDP.Users = []DevIDPUser{{Subject: "x"}} }, []string{
			"dev_idp.users[0].username: required",
			"dev_idp.users[0].password: required",
			"dev_idp.users[0].email: required",
		}},
		{"dev idp duplicate user", func(c *Config) {
			u := DevIDPUser{Username: "alice", Password: "hunter2", Email: "alice@example.com"}
			c.DevIDP.Users = []DevIDPUser{u, u}
		}, []string{`dev_idp.users[1].username: duplicate username "alice"`}},
		{"dev idp client without client id", func(c *Config) { c.DevIDP.Clients = append(c.DevIDP.Clients, DevIDPClient{Public: true}) },
			[]string{"dev_idp.clients[1].client_id: required"}},
		{"dev idp duplicate client", func(c *Config) { c.DevIDP.Clients = append(c.DevIDP.Clients, defaultDevIDPClient()) },
			[]string{`dev_idp.clients[1].client_id: duplicate client_id "nmp-cli"`}},
		{"dev idp confidential client without secret", func(c *Config) {
			c.DevIDP.Clients = []DevIDPClient{{ClientID: "svc", GrantTypes: []string{"client_credentials"}}}
		}, []string{"dev_idp.clients[0].client_secret: required for a confidential client (public: false)"}},
		{"dev idp unknown grant type", func(c *Config) { c.DevIDP.Clients[0].GrantTypes = []string{"device_code"} },
			[]string{`dev_idp.clients[0].grant_types[0]: must be one of urn:ietf:params:oauth:grant-type:device_code, authorization_code, password, refresh_token, client_credentials, got "device_code"`}},
		{"dev idp listen address", func(c *Config) { c.DevIDP.ListenAddress = "9400" },
			[]string{`dev_idp.listen_address: must be host:port, got "9400"`}},
		{"dev idp issuer", func(c *Config) { c.DevIDP.Issuer = ptr("localhost:9400") },
			[]string{`dev_idp.issuer: must be an absolute http:// or https:// URL, got "localhost:9400"`}},
		{"ext_authz address", func(c *Config) { c.Auth.ExtAuthz.GRPCAddress = "0.0.0.0" },
			[]string{`auth.ext_authz.grpc_address: must be host:port, got "0.0.0.0"`}},
		{"base url", func(c *Config) { c.Platform.BaseURL = "nmp.example.com" },
			[]string{`platform.base_url: must be an absolute http:// or https:// URL, got "nmp.example.com"`}},
		{"base url credentials redacted", func(c *Config) { c.Platform.BaseURL = "ftp://u:hunter2@nmp" },
			[]string{`platform.base_url: must be an absolute http:// or https:// URL, got "ftp://u:xxxxx@nmp"`}},
		{"data dir unknown", func(c *Config) { c.Platform.DataDir = "" },
			[]string{"platform.data_dir: not set and no home directory is known; set NMP_DATA_DIR"}},
		{"admin email", func(c *Config) { c.Auth.AdminEmail = ptr("jane") }, []string{`auth.admin_email: invalid email address "jane"`}},
		{"default workspace", func(c *Config) { c.Auth.DefaultWorkspace = "" }, []string{"auth.default_workspace: must not be empty"}},
		{"tls certificate without key", func(c *Config) { c.Service.TLS.CertFile = "/etc/nmp/tls.crt" },
			[]string{"service.tls.key_file: must be set when service.tls.cert_file is set (both or neither)"}},
		{"tls key without certificate", func(c *Config) { c.Service.TLS.KeyFile = "/etc/nmp/tls.key" },
			[]string{"service.tls.cert_file: must be set when service.tls.key_file is set (both or neither)"}},
		{"tls client CA without a server certificate", func(c *Config) { c.Service.TLS.ClientCAFile = "/etc/nmp/ca.crt" },
			[]string{"service.tls.client_ca_file: mutual TLS needs the server's own certificate: set service.tls.cert_file and service.tls.key_file"}},
		{"all errors reported", func(c *Config) { c.Service.Port = 0; c.Service.LogLevel = "loud" }, []string{
			"service.port: must be between 1 and 65535, got 0",
			`service.log_level: must be one of debug, info, warn, error, got "loud"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testDefaults()
			tt.mutate(c)
			_, err := c.Validate()
			requireLines(t, "errors", errLines(err, ""), tt.want)
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"opa with the base url explicitly at its default", func(c *Config) {
			c.Auth.PolicyDecisionPointProvider = "opa"
			c.markExplicit("auth.policy_decision_point_base_url")
		}},
		{"previous signing keys", func(c *Config) {
			c.Auth.Enabled, c.Auth.AccessKeys.Enabled = true, true
			c.Auth.TokenSigning.PreviousKeys = []PreviousSigningKey{{KeyID: "old-1", PublicKeyFile: "/keys/old-1.pem"},
				{KeyID: "old-2", PublicKeyFile: "/keys/old-2.pem"}}
		}},
		{"access keys and oidc with distinct issuers", func(c *Config) {
			c.Auth.Enabled, c.Auth.AccessKeys.Enabled = true, true
			c.Auth.OIDC.Enabled, c.Auth.OIDC.Issuer, c.Auth.OIDC.ClientID = true, "https://idp/", "cli"
		}},
		{"unsupported keys explicitly at their defaults", func(c *Config) {
			c.Auth.AccessKeys.MaxExpiresInSeconds = ptr(2592000)
			c.Auth.AccessKeys.AcceptedFormats = []string{"jwt"}
			c.Auth.TokenSigning.PrivateKeyFile = ptr("")
		}},
		{"tls with mutual TLS", func(c *Config) {
			c.Platform.BaseURL = "https://nmp.example.com"
			c.Service.TLS = TLSConfig{CertFile: "/etc/nmp/tls.crt", KeyFile: "/etc/nmp/tls.key", ClientCAFile: "/etc/nmp/ca.crt"}
		}},
		{"leeway bounds", func(c *Config) { c.Auth.TokenLeewaySeconds = 300 }},
		{"oidc with audience only", func(c *Config) {
			c.Auth.OIDC.Enabled, c.Auth.OIDC.Issuer, c.Auth.OIDC.Audience = true, "https://idp/", ptr("api://x")
		}},
		{"oidc with client id only", func(c *Config) {
			c.Auth.OIDC.Enabled, c.Auth.OIDC.Issuer, c.Auth.OIDC.ClientID = true, "https://idp/", "cli"
		}},
		{"oidc disabled without issuer", func(c *Config) { c.Auth.Enabled = true }},
		{"sqlite absolute", func(c *Config) { c.Entities.DatabaseConfig.URL = "sqlite:///var/lib/nmp/e.db" }},
		{"postgresql", func(c *Config) { c.Entities.DatabaseConfig.URL = "postgresql://nmp:pw@db:5432/nmp?sslmode=require" }},
		{"trusted proxies ipv4, ipv6, bare", func(c *Config) { c.Auth.TrustedProxies = []string{"10.0.5.0/24", "fd00::/8", "127.0.0.1", "::1"} }},
		{"confidential client with secret", func(c *Config) {
			c.DevIDP.Clients = append(c.DevIDP.Clients, DevIDPClient{ClientID: "svc", ClientSecret: ptr("s"), GrantTypes: []string{GrantTypeClientCredentials}})
		}},
		{"dev idp user", func(c *Config) {
			c.DevIDP.Users = []DevIDPUser{{Username: "alice", Password: "pw", Email: "alice@example.com"}}
		}},
		{"zero intervals allowed", func(c *Config) {
			c.Auth.OIDC.DiscoveryCacheTTL, c.Service.ShutdownTimeoutSeconds = 0, 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testDefaults()
			tt.mutate(c)
			if _, err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestValidateWarnings(t *testing.T) {
	production := func(c *Config) {
		c.Auth.Enabled = true
		c.Auth.OIDC.Enabled = true
		c.Auth.OIDC.Issuer = "https://idp.example.com/"
		c.Auth.OIDC.ClientID = "nmp-cli"
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"trusted proxies everything v4", func(c *Config) { c.Auth.TrustedProxies = []string{"0.0.0.0/0"} },
			[]string{`auth.trusted_proxies[0]: "0.0.0.0/0" trusts identity headers from every address`}},
		{"trusted proxies everything v6", func(c *Config) { c.Auth.TrustedProxies = []string{"10.0.0.0/8", "::/0"} },
			[]string{`auth.trusted_proxies[1]: "::/0" trusts identity headers from every address`}},
		{"trusted proxies /0 with host bits", func(c *Config) { c.Auth.TrustedProxies = []string{"1.2.3.4/0"} },
			[]string{`auth.trusted_proxies[0]: "1.2.3.4/0" trusts identity headers from every address`}},
		{"unsigned jwt in production", func(c *Config) { production(c); c.Auth.AllowUnsignedJWT = true },
			[]string{"auth.allow_unsigned_jwt: unsigned JWTs (alg none) are accepted in production mode"}},
		{"unsigned jwt in development", func(c *Config) { c.Auth.Enabled, c.Auth.AllowUnsignedJWT = true, true }, nil},
		{"http issuer non-loopback", func(c *Config) { production(c); c.Auth.OIDC.Issuer = "http://idp.example.com/" },
			[]string{`auth.oidc.issuer: issuer "http://idp.example.com/" uses http:// on a non-loopback host; keys and tokens travel unencrypted`}},
		{"http additional issuer non-loopback", func(c *Config) {
			production(c)
			c.Auth.OIDC.AdditionalIssuers = []string{"http://127.0.0.1:9400", "http://10.1.1.1/"}
		}, []string{`auth.oidc.additional_issuers[1]: issuer "http://10.1.1.1/" uses http:// on a non-loopback host; keys and tokens travel unencrypted`}},
		{"http issuer on localhost", func(c *Config) { production(c); c.Auth.OIDC.Issuer = "http://localhost:9400" }, nil},
		{"http issuer on ipv6 loopback", func(c *Config) { production(c); c.Auth.OIDC.Issuer = "http://[::1]:9400" }, nil},
		{"http issuer with oidc disabled", func(c *Config) { c.Auth.OIDC.Issuer = "http://idp.example.com/" }, nil},
		{"auth disabled on 0.0.0.0", func(c *Config) { c.Service.Host = "0.0.0.0" },
			[]string{`service.host: auth is disabled and the server listens on the non-loopback address "0.0.0.0": every request is allowed`}},
		{"auth disabled on ::", func(c *Config) { c.Service.Host = "::" },
			[]string{`service.host: auth is disabled and the server listens on the non-loopback address "::": every request is allowed`}},
		{"auth disabled on all interfaces", func(c *Config) { c.Service.Host = "" },
			[]string{`service.host: auth is disabled and the server listens on the non-loopback address "": every request is allowed`}},
		{"auth disabled on hostname", func(c *Config) { c.Service.Host = "nmp.internal" },
			[]string{`service.host: auth is disabled and the server listens on the non-loopback address "nmp.internal": every request is allowed`}},
		{"auth disabled on localhost", func(c *Config) { c.Service.Host = "localhost" }, nil},
		{"auth disabled on ::1", func(c *Config) { c.Service.Host = "::1" }, nil},
		{"auth disabled on 127.0.0.2", func(c *Config) { c.Service.Host = "127.0.0.2" }, nil},
		{"auth enabled on 0.0.0.0", func(c *Config) { production(c); c.Service.Host = "0.0.0.0" }, nil},
		{"tls with an http base url", func(c *Config) {
			c.Service.TLS = TLSConfig{CertFile: "/etc/nmp/tls.crt", KeyFile: "/etc/nmp/tls.key"}
		}, []string{"platform.base_url: is an http:// URL while the server serves TLS (service.tls): clients told to use it will fail"}},
		{"tls with an https base url", func(c *Config) {
			c.Platform.BaseURL = "https://nmp.example.com"
			c.Service.TLS = TLSConfig{CertFile: "/etc/nmp/tls.crt", KeyFile: "/etc/nmp/tls.key"}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testDefaults()
			tt.mutate(c)
			warnings, err := c.Validate()
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			requireLines(t, "warnings", warnings, tt.want)
		})
	}
}

// TestOPABaseURLExplicit checks that an explicit setting is tracked through
// loading even when it equals the default.
func TestOPABaseURLExplicit(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		environ []string
		wantErr []string
	}{
		{"opa from env without base url", "", []string{"NMP_AUTH_POLICY_DECISION_POINT_PROVIDER=opa"},
			[]string{"auth.policy_decision_point_base_url: must be set explicitly when auth.policy_decision_point_provider is opa"}},
		{"opa with base url equal to default in file", "auth: {policy_decision_point_provider: opa, policy_decision_point_base_url: 'http://localhost:8080'}", nil, nil},
		{"opa with base url from env", "auth: {policy_decision_point_provider: opa}", []string{"NMP_AUTH_POLICY_DECISION_POINT_BASE_URL=http://opa:8181"}, nil},
		{"embedded without base url", "auth: {policy_decision_point_provider: embedded}", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, path, err := loadYAML(t, tt.yaml, tt.environ...)
			requireLines(t, "errors", errLines(err, path), tt.wantErr)
			if err == nil && !cfg.IsExplicit("auth.policy_decision_point_provider") {
				t.Error("provider not recorded as explicit")
			}
		})
	}
}

func TestRedaction(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"user info password", "postgres://nmp:hunter2@db/nmp", "postgres://nmp:xxxxx@db/nmp"},
		{"no password", "postgres://nmp@db:5432/nmp", "postgres://nmp@db:5432/nmp"},
		{"query password", "postgres://db/nmp?password=hunter2&sslmode=require", "postgres://db/nmp?password=xxxxx&sslmode=require"},
		{"malformed query password", "postgres://db/nmp?password=hun%zzter2", "postgres://db/nmp"},
		{"sslpassword", "postgresql://db/nmp?sslpassword=hunter2", "postgresql://db/nmp?sslpassword=xxxxx"},
		{"fragment dropped", "postgres://db/nmp#hunter2", "postgres://db/nmp"},
		{"keyword DSN", "host=db password=hunter2", "<redacted>"},
		{"opaque", "postgres:hunter2", "<redacted>"},
		{"unparsable", "postgres://u:hunter2@[db", "<redacted>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redactDatabaseURL(tt.url); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestNoSecretsInMessages loads configurations holding secrets with other
// problems and checks no secret reaches an error or a warning.
func TestNoSecretsInMessages(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		environ []string
		wantErr string
	}{
		{"database url with bad scheme", "entities: {database_config: {url: 'mysql://nmp:hunter2@db/nmp'}}", nil,
			`entities.database_config.url: unsupported scheme "mysql" in mysql://nmp:xxxxx@db/nmp (want sqlite, postgres or postgresql)`},
		{"database url from env", "", []string{"NMP_ENTITIES_DATABASE_CONFIG__URL=redis://:hunter2@db"},
			`entities.database_config.url: unsupported scheme "redis" in redis://:xxxxx@db (want sqlite, postgres or postgresql)`},
		{"client secret with missing client id", "dev_idp: {clients: [{client_secret: hunter2}]}", nil,
			"dev_idp.clients[0].client_id: required"},
		{"user password with missing email", "dev_idp: {users: [{username: a, password: hunter2}]}", nil,
			"dev_idp.users[0].email: required"},
		{"ignored password key", "entities: {database_config: {password: hunter2}}\nservice: {port: 0}", nil,
			"service.port: must be between 1 and 65535, got 0"},
		{"ignored password env", "service: {port: 0}", []string{"NMP_ENTITIES_DATABASE_CONFIG__PASSWORD=hunter2"},
			"service.port: must be between 1 and 65535, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings, path, err := loadYAML(t, tt.yaml, tt.environ...)
			requireLines(t, "errors", errLines(err, path), []string{tt.wantErr})
			all := strings.Join(append(warnings, errLines(err, path)...), "\n")
			if strings.Contains(all, "hunter2") {
				t.Errorf("secret in messages:\n%s", all)
			}
		})
	}
}
