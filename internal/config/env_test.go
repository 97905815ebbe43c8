package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		get     func(*Config) any
		want    any
	}{
		{"string", []string{"NMP_PLATFORM_BASE_URL=https://nmp.example.com"}, func(c *Config) any { return c.Platform.BaseURL }, "https://nmp.example.com"},
		{"string kept verbatim", []string{"NMP_AUTH_OIDC__DEFAULT_SCOPES= openid  email "}, func(c *Config) any { return c.Auth.OIDC.DefaultScopes }, " openid  email "},
		{"bool true", []string{"NMP_AUTH_ENABLED=true"}, func(c *Config) any { return c.Auth.Enabled }, true},
		{"bool 1", []string{"NMP_AUTH_ENABLED=1"}, func(c *Config) any { return c.Auth.Enabled }, true},
		{"bool YES", []string{"NMP_AUTH_ENABLED=YES"}, func(c *Config) any { return c.Auth.Enabled }, true},
		{"bool False", []string{"NMP_ENTITIES_RUN_MIGRATIONS=False"}, func(c *Config) any { return c.Entities.RunMigrations }, false},
		{"bool 0", []string{"NMP_ENTITIES_RUN_MIGRATIONS=0"}, func(c *Config) any { return c.Entities.RunMigrations }, false},
		{"bool no", []string{"NMP_ENTITIES_RUN_MIGRATIONS=no"}, func(c *Config) any { return c.Entities.RunMigrations }, false},
		{"int", []string{"NMP_SERVICE_PORT=9090"}, func(c *Config) any { return c.Service.Port }, 9090},
		{"int with spaces", []string{"NMP_SERVICE_PORT= 9090 "}, func(c *Config) any { return c.Service.Port }, 9090},
		{"float", []string{"NMP_AUTH_POLICY_DATA_REFRESH_INTERVAL=0.5"}, func(c *Config) any { return c.Auth.PolicyDataRefreshInterval }, 0.5},
		{"float from int", []string{"NMP_AUTH_POLICY_DATA_REFRESH_INTERVAL=60"}, func(c *Config) any { return c.Auth.PolicyDataRefreshInterval }, 60.0},
		{"list", []string{"NMP_AUTH_TRUSTED_PROXIES=10.0.0.0/8,127.0.0.1/32"}, func(c *Config) any { return c.Auth.TrustedProxies }, []string{"10.0.0.0/8", "127.0.0.1/32"}},
		{"list trimmed, empties dropped", []string{"NMP_AUTH_OIDC__ADDITIONAL_ISSUERS= https://a/ ,, https://b/ ,"}, func(c *Config) any { return c.Auth.OIDC.AdditionalIssuers }, []string{"https://a/", "https://b/"}},
		{"list empty", []string{"NMP_AUTH_TRUSTED_PROXIES="}, func(c *Config) any { return c.Auth.TrustedProxies }, []string{}},
		{"nullable string", []string{"NMP_AUTH_ADMIN_EMAIL=jane@example.com"}, func(c *Config) any { return c.Auth.AdminEmail }, ptr("jane@example.com")},
		{"nullable empty is nil", []string{"NMP_AUTH_OIDC__AUDIENCE="}, func(c *Config) any { return []any{c.Auth.OIDC.Audience, c.IsExplicit("auth.oidc.audience")} }, []any{(*string)(nil), true}},
		{"empty string", []string{"NMP_AUTH_OIDC__GROUPS_CLAIM="}, func(c *Config) any { return c.Auth.OIDC.GroupsClaim }, ""},
		{"empty bool is false", []string{"NMP_PLATFORM_SEED_ON_STARTUP="}, func(c *Config) any { return c.Platform.SeedOnStartup }, false},
		{"max token lifetime", []string{"NMP_AUTH_OIDC__MAX_TOKEN_LIFETIME_SECONDS=3600"}, func(c *Config) any { return c.Auth.OIDC.MaxTokenLifetimeSeconds }, 3600},
		{"max token lifetime off", []string{"NMP_AUTH_OIDC__MAX_TOKEN_LIFETIME_SECONDS=0"}, func(c *Config) any { return c.Auth.OIDC.MaxTokenLifetimeSeconds }, 0},
		{"empty int is zero", []string{"NMP_AUTH_TOKEN_LEEWAY_SECONDS="}, func(c *Config) any { return c.Auth.TokenLeewaySeconds }, 0},
		{"nested", []string{"NMP_AUTH_OIDC__ISSUER=https://idp/", "NMP_AUTH_OIDC__ENABLED=true", "NMP_AUTH_OIDC__CLIENT_ID=cli"},
			func(c *Config) any { return c.Auth.OIDC.Issuer }, "https://idp/"},
		{"nested database url", []string{"NMP_ENTITIES_DATABASE_CONFIG__URL=postgresql://db/nmp"}, func(c *Config) any { return c.DatabaseKind() }, "postgres"},
		{"nested service tls", []string{"NMP_PLATFORM_BASE_URL=https://nmp", "NMP_SERVICE_TLS__CERT_FILE=/tls/c.pem", "NMP_SERVICE_TLS__KEY_FILE=/tls/k.pem", "NMP_SERVICE_TLS__CLIENT_CA_FILE=/tls/ca.pem"},
			func(c *Config) any { return c.Service.TLS }, TLSConfig{CertFile: "/tls/c.pem", KeyFile: "/tls/k.pem", ClientCAFile: "/tls/ca.pem"}},
		{"section with underscore", []string{"NMP_DEV_IDP_LISTEN_ADDRESS=127.0.0.1:9500"}, func(c *Config) any { return c.DevIDP.ListenAddress }, "127.0.0.1:9500"},
		{"section with underscore, nullable", []string{"NMP_DEV_IDP_AUDIENCE=nmp"}, func(c *Config) any { return c.DevIDP.Audience }, ptr("nmp")},
		{"alias data dir", []string{"NMP_DATA_DIR=/srv/nmp"}, func(c *Config) any { return c.Platform.DataDir }, "/srv/nmp"},
		{"alias seed on startup", []string{"NMP_SEED_ON_STARTUP=false"}, func(c *Config) any { return c.Platform.SeedOnStartup }, false},
		{"alias wins over section variable", []string{"NMP_PLATFORM_DATA_DIR=/a", "NMP_DATA_DIR=/b"}, func(c *Config) any { return c.Platform.DataDir }, "/b"},
		{"empty data dir alias means default", []string{"NMP_DATA_DIR="}, func(c *Config) any { return c.Platform.DataDir }, testDataDir},
		{"later duplicate wins", []string{"NMP_SERVICE_PORT=1", "NMP_SERVICE_PORT=2"}, func(c *Config) any { return c.Service.Port }, 2},
		{"entries without = ignored", []string{"NMP_SERVICE_PORT", "=x"}, func(c *Config) any { return c.Service.Port }, 8080},
		{"CLI variables ignored", []string{
			"NMP_BASE_URL=http://x", "NMP_ACCESS_TOKEN=tok", "NMP_CONFIG_FILE=/nope", "NMP_WORKSPACE=w",
			"NMP_OUTPUT_FORMAT=json", "NMP_CURRENT_CONTEXT=c", "NMP_OIDC_USERNAME=u", "NMP_OIDC_PASSWORD=p",
			"NMP_TEST_ANYTHING=1", "NMP_DEV_X=1", "NMP_AUTH=1", "NMP_AUTHX=1", "OTHER_AUTH_ENABLED=1",
		}, func(c *Config) any { return c.Platform.BaseURL }, "http://localhost:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, warnings, err := Load(LoadOptions{Environ: testEnviron(tt.environ...)})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(warnings) != 0 {
				t.Errorf("unexpected warnings %q", warnings)
			}
			if got := tt.get(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestEnvLoaderUnvalidated covers shapes only unsupported keys have (a
// nullable integer, a list with a non-empty default): the environment
// loader parses them; validation then refuses values other than the
// defaults (unsupported.go).
func TestEnvLoaderUnvalidated(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		get     func(*Config) any
		want    any
	}{
		{"nullable int", []string{"NMP_AUTH_ACCESS_KEYS__MAX_EXPIRES_IN_SECONDS=3000000"}, func(c *Config) any { return c.Auth.AccessKeys.MaxExpiresInSeconds }, ptr(3000000)},
		{"nullable empty is nil", []string{"NMP_AUTH_ACCESS_KEYS__MAX_EXPIRES_IN_SECONDS="}, func(c *Config) any { return c.Auth.AccessKeys.MaxExpiresInSeconds }, (*int)(nil)},
		{"list empty", []string{"NMP_AUTH_ACCESS_KEYS__ACCEPTED_FORMATS="}, func(c *Config) any { return c.Auth.AccessKeys.AcceptedFormats }, []string{}},
		{"nested ext_authz", []string{"NMP_AUTH_EXT_AUTHZ__GRPC_ADDRESS=0.0.0.0:9191"}, func(c *Config) any { return c.Auth.ExtAuthz.GRPCAddress }, "0.0.0.0:9191"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testDefaults()
			res := applyEnv(cfg, environMap(tt.environ))
			if len(res.errs) != 0 || len(res.warnings) != 0 {
				t.Fatalf("errors %v, warnings %q", res.errs, res.warnings)
			}
			if got := tt.get(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestEnvErrors(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{"unknown nested key", []string{"NMP_AUTH_OIDC__ISSUR=https://x"},
			[]string{"environment NMP_AUTH_OIDC__ISSUR: unknown key auth.oidc.issur"}},
		{"unknown key", []string{"NMP_SERVICE_PROT=1"}, []string{"environment NMP_SERVICE_PROT: unknown key service.prot"}},
		{"single underscore instead of nesting", []string{"NMP_AUTH_OIDC_ISSUER=x"}, []string{"environment NMP_AUTH_OIDC_ISSUER: unknown key auth.oidc_issuer"}},
		{"below a leaf", []string{"NMP_AUTH_ENABLED__X=1"}, []string{"environment NMP_AUTH_ENABLED__X: unknown key auth.enabled.x"}},
		{"unknown in underscore section", []string{"NMP_DEV_IDP_LISTEN=x"}, []string{"environment NMP_DEV_IDP_LISTEN: unknown key dev_idp.listen"}},
		{"section prefix only", []string{"NMP_AUTH_=1"}, []string{"environment NMP_AUTH_: unknown key auth."}},
		{"whole section", []string{"NMP_AUTH_OIDC=x"}, []string{"environment NMP_AUTH_OIDC: auth.oidc is a section; set its keys individually"}},
		{"list of objects", []string{"NMP_DEV_IDP_CLIENTS=nmp-cli"},
			[]string{"environment NMP_DEV_IDP_CLIENTS: dev_idp.clients is a list of mappings and cannot be set from the environment"}},
		{"inside a list of objects", []string{"NMP_DEV_IDP_USERS__0__USERNAME=alice"},
			[]string{"environment NMP_DEV_IDP_USERS__0__USERNAME: dev_idp.users is a list of mappings and cannot be set from the environment"}},
		{"bad int", []string{"NMP_SERVICE_PORT=eighty"}, []string{`environment NMP_SERVICE_PORT: service.port: expected an integer, got "eighty"`}},
		{"bad nullable int", []string{"NMP_AUTH_ACCESS_KEYS__DEFAULT_EXPIRES_IN_SECONDS=1.5"},
			[]string{`environment NMP_AUTH_ACCESS_KEYS__DEFAULT_EXPIRES_IN_SECONDS: auth.access_keys.default_expires_in_seconds: expected an integer, got "1.5"`}},
		{"bad bool", []string{"NMP_AUTH_ENABLED=on"}, []string{`environment NMP_AUTH_ENABLED: auth.enabled: expected a boolean (true/false/1/0/yes/no), got "on"`}},
		{"bad float", []string{"NMP_AUTH_POLICY_DATA_REFRESH_INTERVAL=soon"}, []string{`environment NMP_AUTH_POLICY_DATA_REFRESH_INTERVAL: auth.policy_data_refresh_interval: expected a finite number, got "soon"`}},
		{"NaN float", []string{"NMP_AUTH_PROPAGATION_POLL_INTERVAL_SECONDS=NaN"}, []string{`environment NMP_AUTH_PROPAGATION_POLL_INTERVAL_SECONDS: auth.propagation_poll_interval_seconds: expected a finite number, got "NaN"`}},
		{"empty float is zero, then invalid", []string{"NMP_AUTH_POLICY_DATA_REFRESH_INTERVAL="},
			[]string{"auth.policy_data_refresh_interval: must be a positive number of seconds, got 0"}},
		{"bad alias", []string{"NMP_SEED_ON_STARTUP=maybe"}, []string{`environment NMP_SEED_ON_STARTUP: platform.seed_on_startup: expected a boolean (true/false/1/0/yes/no), got "maybe"`}},
		{"workload token exchange enabled", []string{"NMP_AUTH_OIDC__WORKLOAD_TOKEN_EXCHANGE_ENABLED=true"},
			[]string{"environment NMP_AUTH_OIDC__WORKLOAD_TOKEN_EXCHANGE_ENABLED: auth.oidc.workload_token_exchange_enabled: workload token exchange is not supported"}},
		{"all problems reported, sorted by name", []string{"NMP_SERVICE_PROT=1", "NMP_AUTH_X=1", "NMP_SERVICE_PORT=x"}, []string{
			"environment NMP_AUTH_X: unknown key auth.x",
			`environment NMP_SERVICE_PORT: service.port: expected an integer, got "x"`,
			"environment NMP_SERVICE_PROT: unknown key service.prot",
		}},
		{"unknown secret-looking key does not echo the value", []string{"NMP_ENTITIES_DATABASE_CONFIG__PASWORD=hunter2"},
			[]string{"environment NMP_ENTITIES_DATABASE_CONFIG__PASWORD: unknown key entities.database_config.pasword"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := Load(LoadOptions{Environ: testEnviron(tt.environ...)})
			if cfg != nil {
				t.Error("Load returned a config along with an error")
			}
			got := errLines(err, "")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got: %q\nwant: %q", got, tt.want)
			}
		})
	}
}

func TestEnvIgnoredCompatibilityKeys(t *testing.T) {
	tests := []struct {
		name     string
		variable string
		key      string
	}{
		{"auth.port", "NMP_AUTH_PORT=8000", "auth.port"},
		{"embedded pdp wasm", "NMP_AUTH_EMBEDDED_PDP_AUTO_BUILD_WASM=true", "auth.embedded_pdp_auto_build_wasm"},
		{"embedded pdp cpu", "NMP_AUTH_EMBEDDED_PDP_CPU_LIMIT=2", "auth.embedded_pdp_cpu_limit"},
		{"embedded pdp memory", "NMP_AUTH_EMBEDDED_PDP_MEMORY_LIMIT_MB=512", "auth.embedded_pdp_memory_limit_mb"},
		{"on invalid plugin", "NMP_AUTH_ON_INVALID_PLUGIN=warn", "auth.on_invalid_plugin"},
		{"allowed service principals", "NMP_AUTH_ALLOWED_SERVICE_PRINCIPALS=a,b", "auth.allowed_service_principals"},
		{"workload client id", "NMP_AUTH_OIDC__WORKLOAD_CLIENT_ID=w", "auth.oidc.workload_client_id"},
		{"workload exchange false", "NMP_AUTH_OIDC__WORKLOAD_TOKEN_EXCHANGE_ENABLED=false", "auth.oidc.workload_token_exchange_enabled"},
		{"principal bindings cache", "NMP_ENTITIES_PRINCIPAL_BINDINGS_CACHE_TTL=5", "entities.principal_bindings_cache_ttl"},
		{"workspace cleanup", "NMP_ENTITIES_WORKSPACE_CLEANUP_INTERVAL=60", "entities.workspace_cleanup_interval"},
		{"database dialect", "NMP_ENTITIES_DATABASE_CONFIG__DIALECT=postgres", "entities.database_config.dialect"},
		{"database host", "NMP_ENTITIES_DATABASE_CONFIG__HOST=db", "entities.database_config.host"},
		{"database path", "NMP_ENTITIES_DATABASE_CONFIG__PATH=/x", "entities.database_config.path"},
		{"database name", "NMP_ENTITIES_DATABASE_CONFIG__NAME=nmp", "entities.database_config.name"},
		{"database port", "NMP_ENTITIES_DATABASE_CONFIG__PORT=5432", "entities.database_config.port"},
		{"database user", "NMP_ENTITIES_DATABASE_CONFIG__USER=u", "entities.database_config.user"},
		{"database password", "NMP_ENTITIES_DATABASE_CONFIG__PASSWORD=hunter2", "entities.database_config.password"},
		{"database echo", "NMP_ENTITIES_DATABASE_CONFIG__ECHO=true", "entities.database_config.echo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, warnings, err := Load(LoadOptions{Environ: testEnviron(tt.variable)})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			name, _, _ := strings.Cut(tt.variable, "=")
			want := []string{"environment " + name + ": " + tt.key + " is accepted for NMP compatibility and ignored"}
			if !reflect.DeepEqual(warnings, want) {
				t.Errorf("warnings %q, want %q", warnings, want)
			}
			if want := testDefaults(); !reflect.DeepEqual(cfg.Auth, want.Auth) || !reflect.DeepEqual(cfg.Entities, want.Entities) {
				t.Error("an ignored key changed the configuration")
			}
		})
	}
}

func TestEnvPath(t *testing.T) {
	tests := []struct {
		name   string
		env    string
		want   []string
		wantOK bool
	}{
		{"simple", "NMP_SERVICE_PORT", []string{"service", "port"}, true},
		{"nested", "NMP_AUTH_OIDC__JWKS_URI", []string{"auth", "oidc", "jwks_uri"}, true},
		{"two levels", "NMP_ENTITIES_DATABASE_CONFIG__URL", []string{"entities", "database_config", "url"}, true},
		{"underscore section", "NMP_DEV_IDP_ACCESS_TOKEN_TTL_SECONDS", []string{"dev_idp", "access_token_ttl_seconds"}, true},
		{"lower-case key", "NMP_AUTH_enabled", []string{"auth", "enabled"}, true},
		{"not a section", "NMP_BASE_URL", nil, false},
		{"lower-case prefix", "nmp_auth_enabled", nil, false},
		{"alias is not a section variable", "NMP_DATA_DIR", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := envPath(tt.env)
			if ok != tt.wantOK || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("envPath(%q) = %q, %v; want %q, %v", tt.env, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
