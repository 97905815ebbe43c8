// Package config holds the nmp server (platform) configuration: its types and
// defaults, loading from a YAML file, NMP_* environment variables and
// command-line flags (in that order of precedence, over the defaults), and
// validation.
//
// The keys, defaults and rules are those of the server configuration spec
// (config.md). Load reports every problem at once, one per line, each naming
// the offending key, and never includes secret values (passwords, client
// secrets, the database URL's password) in its errors or warnings.
package config
