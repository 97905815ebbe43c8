package config

import (
	"strings"
	"testing"
)

// checkLoaded asserts the invariants of every Load: a config xor an error,
// and a loaded config passes Validate again with the same warnings subset.
func checkLoaded(t *testing.T, cfg *Config, err error) {
	t.Helper()
	if (cfg == nil) == (err == nil) {
		t.Fatalf("Load returned config %v with error %v", cfg != nil, err)
	}
	if err != nil {
		if strings.TrimSpace(err.Error()) == "" {
			t.Fatal("empty error message")
		}
		return
	}
	if _, verr := cfg.Validate(); verr != nil {
		t.Fatalf("loaded config fails Validate: %v", verr)
	}
}

func FuzzLoadYAML(f *testing.F) {
	for _, seed := range []string{
		"",
		"auth: {enabled: true, oidc: {enabled: true, issuer: https://idp/, client_id: c}}",
		"service: {port: 9090, host: 0.0.0.0}\nfiles: {x: 1}",
		"dev_idp:\n  users:\n    - {username: a, password: b, email: a@b}\n  clients: []\n",
		"x: &a {enabled: true}\nauth: *a\n",
		"auth: &a {oidc: *a}",
		"dev_idp: {clients: &c [*c]}",
		"auth: {trusted_proxies: ['0.0.0.0/0', '::1']}",
		"auth: {propagation_poll_interval_seconds: .nan}",
		"entities: {database_config: {url: 'sqlite:///x.db', password: p}}",
		"auth: {oidc: {workload_token_exchange_enabled: true}}",
		"- [a]\n",
		"a: b\n---\nc: d\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := writeConfig(t, string(data))
		cfg, _, err := Load(LoadOptions{File: path, Environ: testEnviron()})
		checkLoaded(t, cfg, err)
	})
}

func FuzzEnvOverride(f *testing.F) {
	for _, seed := range [][2]string{
		{"NMP_SERVICE_PORT", "9090"},
		{"NMP_AUTH_OIDC__ISSUER", "https://idp/"},
		{"NMP_AUTH_TRUSTED_PROXIES", "10.0.0.0/8, ,::1"},
		{"NMP_DEV_IDP_CLIENTS", "x"},
		{"NMP_AUTH_ACCESS_KEYS__MAX_EXPIRES_IN_SECONDS", ""},
		{"NMP_AUTH_PROPAGATION_POLL_INTERVAL_SECONDS", "Inf"},
		{"NMP_DATA_DIR", "/tmp/x"},
		{"NMP_AUTH_", "1"},
		{"NMP_AUTH_OIDC____", "1"},
		{"NMP_ENTITIES_DATABASE_CONFIG__URL", "postgres://u:p@[x"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		cfg, _, err := Load(LoadOptions{Environ: testEnviron(name + "=" + value)})
		checkLoaded(t, cfg, err)
	})
}
