package config

import (
	"errors"
	"strings"
)

// LoadOptions are the inputs of Load besides the defaults.
type LoadOptions struct {
	File    string   // --config flag value ("" = none given)
	Environ []string // os.Environ()-style "K=V" list; the process environment is never read
	Host    *string  // --host flag, nil = not given
	Port    *int     // --port flag, nil = not given
}

// configFileEnv names the config file when --config is not given.
const configFileEnv = "NMP_CONFIG_FILE_PATH"

// Load builds the configuration from, in increasing precedence, the
// defaults, the file (opts.File, else $NMP_CONFIG_FILE_PATH, else none), the
// environment and the flags, then validates it. It returns warnings for the
// caller to log and, if anything is wrong, a nil Config and an error holding
// every problem, one per line (errors.Join), each naming its key.
func Load(opts LoadOptions) (*Config, []string, error) {
	env := environMap(opts.Environ)
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg := defaults(lookup)

	var res loadResult
	if path := configFile(opts, env); path != "" {
		res.add(loadFile(cfg, path))
	}
	res.add(applyEnv(cfg, env))
	cfg.applyFlags(opts)
	cfg.finish(lookup)

	p := cfg.validate()
	res.warnings = append(res.warnings, p.warnings...)
	res.errs = append(res.errs, joinProblems(p.errs, res.failed))
	if err := errors.Join(res.errs...); err != nil {
		return nil, res.warnings, err
	}
	return cfg, res.warnings, nil
}

// loadResult is what a configuration source reports.
type loadResult struct {
	warnings []string
	errs     []error
	failed   []string // keys that failed to load; their validation errors are dropped
}

func (r *loadResult) add(o loadResult) {
	r.warnings = append(r.warnings, o.warnings...)
	r.errs = append(r.errs, o.errs...)
	r.failed = append(r.failed, o.failed...)
}

func configFile(opts LoadOptions, env map[string]string) string {
	if opts.File != "" {
		return opts.File
	}
	return env[configFileEnv]
}

func (c *Config) applyFlags(opts LoadOptions) {
	if opts.Host != nil {
		c.Service.Host = *opts.Host
		c.markExplicit("service.host")
	}
	if opts.Port != nil {
		c.Service.Port = *opts.Port
		c.markExplicit("service.port")
	}
}

// finish resolves an empty data dir to its default location and normalizes
// the log settings (NMP configs often spell levels the Python way: INFO,
// WARNING).
func (c *Config) finish(lookup func(string) (string, bool)) {
	if c.Platform.DataDir == "" {
		c.Platform.DataDir = defaultDataDir(lookup)
	}
	c.Service.LogLevel = strings.ToLower(c.Service.LogLevel)
	if c.Service.LogLevel == "warning" {
		c.Service.LogLevel = "warn"
	}
	c.Service.LogFormat = strings.ToLower(c.Service.LogFormat)
	c.Service.AccessLog.Level = strings.ToLower(c.Service.AccessLog.Level)
	if c.Service.AccessLog.Level == "warning" {
		c.Service.AccessLog.Level = "warn"
	}
}
