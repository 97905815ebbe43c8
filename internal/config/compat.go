package config

import (
	"errors"
	"strings"
)

// ignoredKeys are NMP keys accepted for compatibility and ignored with a
// warning. A trailing "*" matches any suffix.
var ignoredKeys = []string{
	"auth.port",
	"auth.embedded_pdp_auto_build_wasm",
	"auth.embedded_pdp_cpu_limit",
	"auth.embedded_pdp_memory_limit_mb",
	"auth.on_invalid_plugin",
	"auth.allowed_service_principals",
	"auth.oidc.workload_*",
	"entities.principal_bindings_cache_*",
	"entities.workspace_cleanup_interval",
	"entities.database_config.dialect",
	"entities.database_config.host",
	"entities.database_config.path",
	"entities.database_config.name",
	"entities.database_config.port",
	"entities.database_config.user",
	"entities.database_config.password",
	"entities.database_config.echo",
}

// workloadExchangeKey is the one ignored key whose true value is an error.
const workloadExchangeKey = "auth.oidc.workload_token_exchange_enabled"

var errWorkloadExchange = errors.New("workload token exchange is not supported")

func isIgnoredKey(key string) bool {
	for _, k := range ignoredKeys {
		if prefix, wild := strings.CutSuffix(k, "*"); (wild && strings.HasPrefix(key, prefix)) || k == key {
			return true
		}
	}
	return false
}

// checkIgnored validates the value of an ignored key: only
// workload_token_exchange_enabled matters, and it must be false. parseBool
// is called only for that key.
func checkIgnored(key string, parseBool func() (bool, error)) error {
	if key != workloadExchangeKey {
		return nil
	}
	enabled, err := parseBool()
	if err != nil {
		return err
	}
	if enabled {
		return errWorkloadExchange
	}
	return nil
}

// ignoredWarning never includes the value: some ignored keys (for example
// entities.database_config.password) hold secrets.
func ignoredWarning(key string) string {
	return key + " is accepted for NMP compatibility and ignored"
}
