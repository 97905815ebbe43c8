package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadFile(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		get  func(*Config) any
		want any
	}{
		{"empty file keeps defaults", "", func(c *Config) any { return c.Service.Port }, 8080},
		{"comment-only file keeps defaults", "# nothing\n", func(c *Config) any { return c.Auth.TokenLeewaySeconds }, 30},
		{"null document keeps defaults", "~\n", func(c *Config) any { return c.Service.Host }, "127.0.0.1"},
		{"empty section keeps defaults", "auth:\n", func(c *Config) any { return c.Auth.PolicyDecisionPointProvider }, "embedded"},
		{"string", "platform: {base_url: https://nmp.example.com}", func(c *Config) any { return c.Platform.BaseURL }, "https://nmp.example.com"},
		{"bool", "auth: {enabled: true}", func(c *Config) any { return c.Auth.Enabled }, true},
		{"int", "service: {port: 9090}", func(c *Config) any { return c.Service.Port }, 9090},
		{"float from int", "auth: {policy_data_refresh_interval: 2}", func(c *Config) any { return c.Auth.PolicyDataRefreshInterval }, 2.0},
		{"float", "auth: {policy_data_refresh_interval: 0.25}", func(c *Config) any { return c.Auth.PolicyDataRefreshInterval }, 0.25},
		{"list", "auth: {trusted_proxies: [10.0.5.0/24, 127.0.0.1]}", func(c *Config) any { return c.Auth.TrustedProxies }, []string{"10.0.5.0/24", "127.0.0.1"}},
		{"nullable set", "auth: {admin_email: jane@example.com}", func(c *Config) any { return c.Auth.AdminEmail }, ptr("jane@example.com")},
		{"nullable null", "auth: {admin_email: null}", func(c *Config) any { return []any{c.Auth.AdminEmail, c.IsExplicit("auth.admin_email")} }, []any{(*string)(nil), true}},
		{"nullable empty value is null", "auth:\n  admin_email:\n", func(c *Config) any { return []any{c.Auth.AdminEmail, c.IsExplicit("auth.admin_email")} }, []any{(*string)(nil), true}},
		{"nested", "auth: {oidc: {issuer: https://idp.example.com/}}", func(c *Config) any { return c.Auth.OIDC.Issuer }, "https://idp.example.com/"},
		{"deeply nested", "entities: {database_config: {url: 'sqlite:///var/lib/nmp.db'}}", func(c *Config) any { return c.SQLitePath() }, "/var/lib/nmp.db"},
		{"nested keeps sibling defaults", "auth: {oidc: {issuer: https://idp.example.com/}}", func(c *Config) any { return c.Auth.OIDC.HTTPTimeoutSeconds }, 10},
		{"number into string key", "auth: {oidc: {client_id: 12345}}", func(c *Config) any { return c.Auth.OIDC.ClientID }, "12345"},
		{"null list is empty", "auth: {trusted_proxies: null}", func(c *Config) any { return c.Auth.TrustedProxies }, []string(nil)},
		{"anchors and aliases", "x: &groups [a, b]\ndev_idp: {users: [{username: u, password: p, email: u@x, groups: *groups}]}",
			func(c *Config) any { return c.DevIDP.Users[0].Groups }, []string{"a", "b"}},
		{"list of objects replaces default", `
dev_idp:
  clients:
    - client_id: svc
      client_secret: s3cret
      grant_types: [client_credentials]
      subject: service-bot
      scopes: [platform:read]
  users:
    - {username: alice, password: pw, email: alice@example.com, groups: [ml]}
`, func(c *Config) any { return [2]any{c.DevIDP.Clients, c.DevIDP.Users} }, [2]any{
			[]DevIDPClient{{ClientID: "svc", ClientSecret: ptr("s3cret"), GrantTypes: []string{"client_credentials"}, Subject: ptr("service-bot"), Scopes: []string{"platform:read"}}},
			[]DevIDPUser{{Username: "alice", Password: "pw", Email: "alice@example.com", Groups: []string{"ml"}}},
		}},
		{"null client list is empty", "dev_idp: {clients: null}", func(c *Config) any { return c.DevIDP.Clients }, []DevIDPClient{}},
		{"empty client list", "dev_idp: {clients: []}", func(c *Config) any { return c.DevIDP.Clients }, []DevIDPClient{}},
		{"log level normalized", "service: {log_level: WARNING, log_format: JSON}", func(c *Config) any { return c.Service.LogLevel + "/" + c.Service.LogFormat }, "warn/json"},
		{"data dir from file", "platform: {data_dir: /srv/nmp}", func(c *Config) any { return c.SQLitePath() }, "/srv/nmp/entities.db"},
		{"empty data dir means default", "platform: {data_dir: ''}", func(c *Config) any { return c.Platform.DataDir }, testDataDir},
		{"spec production example", `
platform: {base_url: https://nmp.example.com}
service: {host: 0.0.0.0, log_format: json}
auth:
  enabled: true
  admin_email: jane.doe@example.com
  trusted_proxies: [10.0.5.0/24]
  oidc:
    enabled: true
    issuer: https://login.microsoftonline.com/tenant/v2.0
    additional_issuers: ["https://sts.windows.net/tenant/"]
    client_id: cid
    audience: api://cid
    subject_claim: oid
    email_claim: upn
    scope_prefix: api://cid/
entities: {database_config: {url: "postgres://nmp:secret@db:5432/nmp?sslmode=require"}}
`, func(c *Config) any {
			return []any{c.ProductionMode(), c.DatabaseKind(), c.Auth.OIDC.ExpectedAudience(), *c.Auth.OIDC.ScopePrefix, c.Service.Host}
		}, []any{true, "postgres", "api://cid", "api://cid/", "0.0.0.0"}},
		{"known section next to an unknown top-level section", "files: {bucket: x}\nservice: {port: 9000}\n",
			func(c *Config) any { return c.Service.Port }, 9000},
		{"spec development example", "auth: {enabled: true, allow_unsigned_jwt: true, admin_email: dev@example.com}",
			func(c *Config) any { return []any{c.DevelopmentMode(), c.Auth.AllowUnsignedJWT} }, []any{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, warnings, _, err := loadYAML(t, tt.yaml)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := tt.get(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v (warnings %q)", got, tt.want, warnings)
			}
		})
	}
}

// TestLoadFileUnvalidated: the file loader sets a nullable integer with a
// non-null default (only unsupported keys have one) to null; validation then
// refuses it (unsupported.go).
func TestLoadFileUnvalidated(t *testing.T) {
	for _, yaml := range []string{
		"auth: {access_keys: {max_expires_in_seconds: null}}",
		"auth:\n  access_keys:\n    max_expires_in_seconds:\n",
	} {
		cfg := testDefaults()
		res := loadFile(cfg, writeConfig(t, yaml))
		if len(res.errs) != 0 || len(res.warnings) != 0 {
			t.Fatalf("%q: errors %v, warnings %q", yaml, res.errs, res.warnings)
		}
		if cfg.Auth.AccessKeys.MaxExpiresInSeconds != nil || !cfg.IsExplicit("auth.access_keys.max_expires_in_seconds") {
			t.Errorf("%q: max_expires_in_seconds %v, want an explicit null", yaml, cfg.Auth.AccessKeys.MaxExpiresInSeconds)
		}
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every error line, FILE standing for the path
	}{
		{"unknown nested key", "auth:\n  oidc:\n    isuer: https://x\n",
			[]string{"FILE:3: auth.oidc.isuer: unknown key"}},
		{"unknown key in section", "service:\n  prot: 1\n", []string{"FILE:2: service.prot: unknown key"}},
		{"unknown key in list item", "dev_idp:\n  users:\n    - {username: a, password: p, email: a@x, role: admin}\n",
			[]string{"FILE:3: dev_idp.users[0].role: unknown key"}},
		{"all unknown keys reported", "service: {prot: 1}\nauth: {enabeld: true, oidc: {isuer: x}}\n", []string{
			"FILE:1: service.prot: unknown key",
			"FILE:2: auth.enabeld: unknown key",
			"FILE:2: auth.oidc.isuer: unknown key",
		}},
		{"wrong type int", "service:\n  port: eighty\n", []string{"FILE:2: service.port: expected an integer, got a string"}},
		{"int out of range", "service:\n  port: 99999999999999999999\n", []string{"FILE:2: service.port: expected an integer, got a number"}},
		{"float into nullable int", "auth: {access_keys: {max_expires_in_seconds: 1e9}}", []string{"FILE:1: auth.access_keys.max_expires_in_seconds: expected an integer or null, got a number"}},
		{"quoted int", "service: {port: '8080'}", []string{"FILE:1: service.port: expected an integer, got a string"}},
		{"float into int", "service: {port: 80.5}", []string{"FILE:1: service.port: expected an integer, got a number"}},
		{"wrong type bool", "auth: {enabled: maybe}", []string{"FILE:1: auth.enabled: expected a boolean, got a string"}},
		{"wrong type float", "auth: {propagation_poll_interval_seconds: [1]}", []string{"FILE:1: auth.propagation_poll_interval_seconds: expected a number, got a list"}},
		{"wrong type list", "auth: {trusted_proxies: 10.0.0.0/8}", []string{"FILE:1: auth.trusted_proxies: expected a list of strings, got a string"}},
		{"wrong type nullable", "auth: {access_keys: {max_expires_in_seconds: never}}", []string{"FILE:1: auth.access_keys.max_expires_in_seconds: expected an integer or null, got a string"}},
		{"wrong type string", "auth: {oidc: {issuer: {a: b}}}", []string{"FILE:1: auth.oidc.issuer: expected a string, got a mapping"}},
		{"section not a mapping", "auth: true", []string{"FILE:1: auth: expected a mapping, got a boolean"}},
		{"object list not a list", "dev_idp: {clients: nmp-cli}", []string{"FILE:1: dev_idp.clients: expected a list of mappings, got a string"}},
		{"object list item not a mapping", "dev_idp: {clients: [nmp-cli]}", []string{"FILE:1: dev_idp.clients[0]: expected a mapping, got a string"}},
		{"wrong type does not echo secret", "dev_idp: {users: [{username: a, password: [hunter2], email: a@x}]}",
			[]string{"FILE:1: dev_idp.users[0].password: expected a string, got a list"}},
		{"non-string key", "auth: {[a]: 1}", []string{"FILE:1: auth.?: keys must be strings"}},
		{"duplicate key", "service:\n  port: 1\n  port: 2\n", []string{"FILE:3: service.port: duplicate key"}},
		{"duplicate section", "auth: {}\nauth: {}\n", []string{"FILE:2: auth: duplicate key"}},
		{"top level not a mapping", "- a\n- b\n", []string{"FILE:1: the top level must be a mapping of sections"}},
		{"two documents", "auth: {}\n---\nauth: {enabled: true}\n", []string{"FILE: more than one YAML document"}},
		{"syntax error", "auth: [\n", []string{"FILE: yaml: line 1: did not find expected node content"}},
		{"workload token exchange enabled", "auth: {oidc: {workload_token_exchange_enabled: true}}",
			[]string{"FILE:1: auth.oidc.workload_token_exchange_enabled: workload token exchange is not supported"}},
		{"workload token exchange not a bool", "auth: {oidc: {workload_token_exchange_enabled: sometimes}}",
			[]string{"FILE:1: auth.oidc.workload_token_exchange_enabled: expected a boolean, got a string"}},
		{"load and validation errors together", "service: {port: 0, prot: 1}", []string{
			"FILE:1: service.prot: unknown key",
			"service.port: must be between 1 and 65535, got 0",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, path, err := loadYAML(t, tt.yaml)
			if cfg != nil {
				t.Error("Load returned a config along with an error")
			}
			requireLines(t, "errors", errLines(err, path), tt.want)
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Error("error leaks a password")
			}
		})
	}
}

func TestLoadFileWarnings(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown top-level section", "files:\n  bucket: x\nservice: {port: 9000}\n",
			[]string{`FILE:1: unknown top-level section "files" ignored`}},
		{"ignored compatibility keys", `
auth:
  port: 8000
  embedded_pdp_auto_build_wasm: true
  embedded_pdp_cpu_limit: 2
  embedded_pdp_memory_limit_mb: 512
  on_invalid_plugin: warn
  allowed_service_principals: [a, b]
  oidc:
    workload_client_id: w
    workload_token_exchange_enabled: false
entities:
  principal_bindings_cache_ttl: 5
  workspace_cleanup_interval: 60
  database_config: {dialect: pg, host: db, path: /x, name: nmp, port: 5432, user: u, password: hunter2, echo: true}
`, []string{
			"FILE:3: auth.port is accepted for NMP compatibility and ignored",
			"FILE:4: auth.embedded_pdp_auto_build_wasm is accepted for NMP compatibility and ignored",
			"FILE:5: auth.embedded_pdp_cpu_limit is accepted for NMP compatibility and ignored",
			"FILE:6: auth.embedded_pdp_memory_limit_mb is accepted for NMP compatibility and ignored",
			"FILE:7: auth.on_invalid_plugin is accepted for NMP compatibility and ignored",
			"FILE:8: auth.allowed_service_principals is accepted for NMP compatibility and ignored",
			"FILE:10: auth.oidc.workload_client_id is accepted for NMP compatibility and ignored",
			"FILE:11: auth.oidc.workload_token_exchange_enabled is accepted for NMP compatibility and ignored",
			"FILE:13: entities.principal_bindings_cache_ttl is accepted for NMP compatibility and ignored",
			"FILE:14: entities.workspace_cleanup_interval is accepted for NMP compatibility and ignored",
			"FILE:15: entities.database_config.dialect is accepted for NMP compatibility and ignored",
			"FILE:15: entities.database_config.host is accepted for NMP compatibility and ignored",
			"FILE:15: entities.database_config.path is accepted for NMP compatibility and ignored",
			"FILE:15: entities.database_config.name is accepted for NMP compatibility and ignored",
			"FILE:15: entities.database_config.port is accepted for NMP compatibility and ignored",
			"FILE:15: entities.database_config.user is accepted for NMP compatibility and ignored",
			"FILE:15: entities.database_config.password is accepted for NMP compatibility and ignored",
			"FILE:15: entities.database_config.echo is accepted for NMP compatibility and ignored",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, warnings, path, err := loadYAML(t, tt.yaml)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			requireLines(t, "warnings", replaceAll(warnings, path, "FILE"), tt.want)
			if !reflect.DeepEqual(cfg.Entities, testDefaults().Entities) {
				t.Errorf("ignored keys changed entities: %+v", cfg.Entities)
			}
		})
	}
}

func TestLoadFileLocation(t *testing.T) {
	fromFlag := writeConfig(t, "service: {port: 1111}")
	fromEnv := writeConfig(t, "service: {port: 2222}")
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	tests := []struct {
		name     string
		file     string
		environ  []string
		wantPort int
		wantErr  error
	}{
		{"no file", "", nil, 8080, nil},
		{"flag", fromFlag, nil, 1111, nil},
		{"NMP_CONFIG_FILE_PATH", "", []string{"NMP_CONFIG_FILE_PATH=" + fromEnv}, 2222, nil},
		{"flag wins over NMP_CONFIG_FILE_PATH", fromFlag, []string{"NMP_CONFIG_FILE_PATH=" + fromEnv}, 1111, nil},
		{"CLI NMP_CONFIG_FILE is not the server's", "", []string{"NMP_CONFIG_FILE=" + fromEnv}, 8080, nil},
		{"missing named file", missing, nil, 0, fs.ErrNotExist},
		{"missing file from environment", "", []string{"NMP_CONFIG_FILE_PATH=" + missing}, 0, fs.ErrNotExist},
		{"directory", t.TempDir(), nil, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := Load(LoadOptions{File: tt.file, Environ: testEnviron(tt.environ...)})
			switch {
			case tt.wantPort == 0 && err == nil:
				t.Fatal("Load succeeded, want an error")
			case tt.wantPort == 0:
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("error %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "config file: ") {
					t.Errorf("error %q does not name the config file", err)
				}
			case err != nil:
				t.Fatalf("Load: %v", err)
			case cfg.Service.Port != tt.wantPort:
				t.Errorf("port %d, want %d", cfg.Service.Port, tt.wantPort)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	file := "service: {host: 10.0.0.1, port: 1111, log_level: debug}\nauth: {token_leeway_seconds: 10, policy_data_refresh_interval: 7}\n"
	host, port := "127.0.0.2", 3333
	tests := []struct {
		name    string
		file    string
		environ []string
		host    *string
		port    *int
		get     func(*Config) any
		want    any
	}{
		{"default", "", nil, nil, nil, func(c *Config) any { return c.Auth.TokenLeewaySeconds }, 30},
		{"file over default", file, nil, nil, nil, func(c *Config) any { return c.Auth.TokenLeewaySeconds }, 10},
		{"env over file", file, []string{"NMP_AUTH_TOKEN_LEEWAY_SECONDS=20"}, nil, nil, func(c *Config) any { return c.Auth.TokenLeewaySeconds }, 20},
		{"env over default", "", []string{"NMP_AUTH_TOKEN_LEEWAY_SECONDS=20"}, nil, nil, func(c *Config) any { return c.Auth.TokenLeewaySeconds }, 20},
		{"file kept where env is silent", file, []string{"NMP_AUTH_TOKEN_LEEWAY_SECONDS=20"}, nil, nil, func(c *Config) any { return c.Auth.PolicyDataRefreshInterval }, 7.0},
		{"env port over file", file, []string{"NMP_SERVICE_PORT=2222"}, nil, nil, func(c *Config) any { return c.Service.Port }, 2222},
		{"flag port over env and file", file, []string{"NMP_SERVICE_PORT=2222"}, nil, &port, func(c *Config) any { return c.Service.Port }, 3333},
		{"flag host over env and file", file, []string{"NMP_SERVICE_HOST=10.0.0.2"}, &host, nil, func(c *Config) any { return c.Service.Host }, "127.0.0.2"},
		{"env host over file", file, []string{"NMP_SERVICE_HOST=10.0.0.2"}, nil, nil, func(c *Config) any { return c.Service.Host }, "10.0.0.2"},
		{"file host without flag", file, nil, nil, nil, func(c *Config) any { return c.Service.Host }, "10.0.0.1"},
		{"alias over file", "platform: {data_dir: /file}", []string{"NMP_DATA_DIR=/alias"}, nil, nil, func(c *Config) any { return c.Platform.DataDir }, "/alias"},
		{"xdg data home when nothing set", "", []string{"XDG_DATA_HOME=/xdg"}, nil, nil, func(c *Config) any { return c.Platform.DataDir }, "/xdg/nmp"},
		{"file data dir over xdg", "platform: {data_dir: /file}", []string{"XDG_DATA_HOME=/xdg"}, nil, nil, func(c *Config) any { return c.Platform.DataDir }, "/file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := LoadOptions{Environ: testEnviron(tt.environ...), Host: tt.host, Port: tt.port}
			if tt.file != "" {
				opts.File = writeConfig(t, tt.file)
			}
			cfg, _, err := Load(opts)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := tt.get(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestFlagPortValidated(t *testing.T) {
	port := 70000
	_, _, err := Load(LoadOptions{Environ: testEnviron(), Port: &port})
	requireLines(t, "errors", errLines(err, ""), []string{"service.port: must be between 1 and 65535, got 70000"})
}
