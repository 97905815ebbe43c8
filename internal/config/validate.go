package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/nmp-project/nmp/internal/ident"
)

// problem is a validation error about one key.
type problem struct{ key, msg string }

func (p problem) Error() string { return p.key + ": " + p.msg }

// problems collects validation errors and warnings, each prefixed by its key.
type problems struct {
	warnings []string
	errs     []problem
}

func (p *problems) errorf(key, format string, args ...any) {
	p.errs = append(p.errs, problem{key, fmt.Sprintf(format, args...)})
}

func (p *problems) warnf(key, format string, args ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf("%s: %s", key, fmt.Sprintf(format, args...)))
}

// Validate checks the configuration. Every error names its key; err joins
// all of them (errors.Join), one per line. Warnings are for the caller to
// log. Secret values are never included.
func (c *Config) Validate() (warnings []string, err error) {
	p := c.validate()
	return p.warnings, joinProblems(p.errs, nil)
}

func (c *Config) validate() *problems {
	var p problems
	c.validatePlatform(&p)
	c.validateService(&p)
	c.validateAuth(&p)
	c.validateOIDC(&p)
	c.validateAccessKeys(&p)
	atLeast(&p, "auth.audit.retention_days", c.Auth.Audit.RetentionDays, 0)
	c.validateEntities(&p)
	c.validateDevIDP(&p)
	c.validateUnsupported(&p)
	return &p
}

// joinProblems joins the problems except those about a key in skip or below
// one (a key that failed to load, so its value is not the user's).
func joinProblems(errs []problem, skip []string) error {
	var kept []error
	for _, e := range errs {
		if !slices.ContainsFunc(skip, func(k string) bool { return isKeyOrChild(e.key, k) }) {
			kept = append(kept, e)
		}
	}
	return errors.Join(kept...)
}

func isKeyOrChild(key, parent string) bool {
	rest, ok := strings.CutPrefix(key, parent)
	return ok && (rest == "" || rest[0] == '.' || rest[0] == '[')
}

func (c *Config) validatePlatform(p *problems) {
	checkHTTPURL(p, "platform.base_url", c.Platform.BaseURL)
	if c.Platform.DataDir == "" {
		p.errorf("platform.data_dir", "not set and no home directory is known; set NMP_DATA_DIR")
	}
}

var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"plain", "json"}
	providers  = []string{"embedded", "opa"}
)

func (c *Config) validateService(p *problems) {
	s := &c.Service
	inRange(p, "service.port", s.Port, 1, 65535)
	oneOf(p, "service.log_level", s.LogLevel, logLevels)
	oneOf(p, "service.log_format", s.LogFormat, logFormats)
	oneOf(p, "service.access_log.level", s.AccessLog.Level, append([]string{"off"}, logLevels...))
	if !(s.AccessLog.SampleRate >= 0 && s.AccessLog.SampleRate <= 1) {
		p.errorf("service.access_log.sample_rate", "must be between 0 and 1, got %v", s.AccessLog.SampleRate)
	}
	inRange(p, "service.access_log.buffer_size", s.AccessLog.BufferSize, 1, 10_000_000)
	atLeast(p, "service.shutdown_timeout_seconds", s.ShutdownTimeoutSeconds, 0)
	atLeast(p, "service.read_header_timeout_seconds", s.ReadHeaderTimeoutSeconds, 1)
	atLeast(p, "service.read_timeout_seconds", s.ReadTimeoutSeconds, 0)
	atLeast(p, "service.write_timeout_seconds", s.WriteTimeoutSeconds, 0)
	atLeast(p, "service.idle_timeout_seconds", s.IdleTimeoutSeconds, 0)
	atLeast(p, "service.max_header_bytes", s.MaxHeaderBytes, 4096)
	atLeast(p, "service.max_concurrent_requests", s.MaxConcurrentRequests, 0)
	inRange(p, "service.gc_min_heap_mib", s.GCMinHeapMiB, 0, 1<<20)
	if !c.Auth.Enabled && !isLoopbackHost(s.Host) {
		p.warnf("service.host", "auth is disabled and the server listens on the non-loopback address %q: every request is allowed", s.Host)
	}
	c.validateTLS(p)
}

func (c *Config) validateTLS(p *problems) {
	t := &c.Service.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		p.errorf("service.tls.key_file", "must be set when service.tls.cert_file is set (both or neither)")
	case t.CertFile == "" && t.KeyFile != "":
		p.errorf("service.tls.cert_file", "must be set when service.tls.key_file is set (both or neither)")
	}
	if t.ClientCAFile != "" && !t.Enabled() {
		p.errorf("service.tls.client_ca_file", "mutual TLS needs the server's own certificate: set service.tls.cert_file and service.tls.key_file")
	}
	if t.Enabled() && strings.HasPrefix(strings.ToLower(c.Platform.BaseURL), "http://") {
		p.warnf("platform.base_url", "is an http:// URL while the server serves TLS (service.tls): clients told to use it will fail")
	}
}

func (c *Config) validateAuth(p *problems) {
	a := &c.Auth
	if oneOf(p, "auth.policy_decision_point_provider", a.PolicyDecisionPointProvider, providers) && a.PolicyDecisionPointProvider == "opa" {
		c.validateOPABaseURL(p)
	}
	atLeast(p, "auth.policy_decision_point_request_timeout_seconds", a.PolicyDecisionPointRequestTimeoutSeconds, 1)
	positive(p, "auth.policy_data_refresh_interval", a.PolicyDataRefreshInterval)
	atLeast(p, "auth.bundle_cache_seconds", a.BundleCacheSeconds, 0)
	positive(p, "auth.propagation_poll_interval_seconds", a.PropagationPollIntervalSeconds)
	atLeast(p, "auth.propagation_timeout_seconds", a.PropagationTimeoutSeconds, 0)
	inRange(p, "auth.token_leeway_seconds", a.TokenLeewaySeconds, 0, 300)
	inRange(p, "auth.last_seen_interval_seconds", a.LastSeenIntervalSeconds, 0, 86400)
	validateDecisionLog(p, &a.DecisionLog)
	if a.AdminEmail != nil && !ident.ValidEmail(*a.AdminEmail) {
		p.errorf("auth.admin_email", "invalid email address %q", *a.AdminEmail)
	}
	if a.DefaultWorkspace == "" {
		p.errorf("auth.default_workspace", "must not be empty")
	}
	c.validateTrustedProxies(p)
	if addr := a.ExtAuthz.GRPCAddress; addr != "" {
		checkHostPort(p, "auth.ext_authz.grpc_address", addr)
	}
	if a.AllowUnsignedJWT && c.ProductionMode() {
		p.warnf("auth.allow_unsigned_jwt", "unsigned JWTs (alg none) are accepted in production mode")
	}
}

// validateOPABaseURL requires an explicit base URL for provider opa. A value
// other than the default counts as explicit (set in Go code, not loaded).
func (c *Config) validateOPABaseURL(p *problems) {
	const key = "auth.policy_decision_point_base_url"
	u := c.Auth.PolicyDecisionPointBaseURL
	if !c.IsExplicit(key) && u == defaultPDPBaseURL {
		p.errorf(key, "must be set explicitly when auth.policy_decision_point_provider is opa")
		return
	}
	checkHTTPURL(p, key, u)
}

func (c *Config) validateTrustedProxies(p *problems) {
	for i, s := range c.Auth.TrustedProxies {
		key := fmt.Sprintf("auth.trusted_proxies[%d]", i)
		prefix, err := parseTrustedProxy(s)
		switch {
		case err != nil:
			p.errorf(key, "%v", err)
		case prefix.Bits() == 0:
			p.warnf(key, "%q trusts identity headers from every address", s)
		}
	}
}

// parseTrustedProxy parses a CIDR or a bare IP address (a single-host
// prefix). Host bits of a CIDR are masked; IPv4-mapped IPv6 addresses are
// unmapped; zones are rejected.
func parseTrustedProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
		}
		return prefix.Masked(), nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid IP address or CIDR %q", s)
	}
	addr = addr.Unmap()
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

func (c *Config) validateOIDC(p *problems) {
	o := &c.Auth.OIDC
	for i, s := range o.AdditionalIssuers {
		c.checkIssuer(p, fmt.Sprintf("auth.oidc.additional_issuers[%d]", i), s)
	}
	if o.Enabled {
		if o.Issuer == "" {
			p.errorf("auth.oidc.issuer", "required when auth.oidc.enabled is true")
		} else {
			c.checkIssuer(p, "auth.oidc.issuer", o.Issuer)
		}
		if o.ExpectedAudience() == "" {
			p.errorf("auth.oidc.audience", "auth.oidc.audience or auth.oidc.client_id is required when auth.oidc.enabled is true")
		}
	}
	for _, e := range []struct {
		key string
		url *string
	}{
		{"auth.oidc.authorization_endpoint", o.AuthorizationEndpoint},
		{"auth.oidc.token_endpoint", o.TokenEndpoint},
		{"auth.oidc.device_authorization_endpoint", o.DeviceAuthorizationEndpoint},
		{"auth.oidc.jwks_uri", o.JWKSURI},
		{"auth.oidc.introspection_endpoint", o.IntrospectionEndpoint},
	} {
		if e.url != nil {
			checkHTTPURL(p, e.key, *e.url)
		}
	}
	atLeast(p, "auth.oidc.discovery_cache_ttl", o.DiscoveryCacheTTL, 0)
	atLeast(p, "auth.oidc.jwks_cache_ttl_seconds", o.JWKSCacheTTLSeconds, 0)
	atLeast(p, "auth.oidc.jwks_refetch_min_interval_seconds", o.JWKSRefetchMinIntervalSeconds, 0)
	atLeast(p, "auth.oidc.http_timeout_seconds", o.HTTPTimeoutSeconds, 1)
	atLeast(p, "auth.oidc.max_token_lifetime_seconds", o.MaxTokenLifetimeSeconds, 0)
	c.validateIntrospection(p)
}

// validateIntrospection checks auth.oidc.introspection. Messages never
// include the secret.
func (c *Config) validateIntrospection(p *problems) {
	in := &c.Auth.OIDC.Introspection
	const key = "auth.oidc.introspection"
	atLeast(p, key+".cache_ttl_seconds", in.CacheTTLSeconds, 0)
	atLeast(p, key+".max_requests_per_second", in.MaxRequestsPerSecond, 1)
	atLeast(p, key+".max_concurrent_requests", in.MaxConcurrentRequests, 1)
	if !in.Enabled {
		return
	}
	if !c.Auth.OIDC.Enabled {
		p.errorf(key+".enabled", "requires auth.oidc.enabled")
	}
	if in.ClientID == "" {
		p.errorf(key+".client_id", "required when introspection is enabled (the confidential client the server authenticates as)")
	}
	hasValue := in.ClientSecretValue != nil && *in.ClientSecretValue != ""
	hasFile := in.ClientSecretFile != nil && *in.ClientSecretFile != ""
	switch {
	case hasValue && hasFile:
		p.errorf(key+".client_secret", "set either client_secret or client_secret_file, not both")
	case !hasValue && !hasFile:
		p.errorf(key+".client_secret_file", "client_secret_file or client_secret (NMP_AUTH_OIDC__INTROSPECTION__CLIENT_SECRET) is required when introspection is enabled")
	}
}

// checkIssuer requires an http(s) URL and, when OIDC is enabled, warns about
// plain http to a non-loopback host.
func (c *Config) checkIssuer(p *problems, key, issuer string) {
	u, ok := checkHTTPURL(p, key, issuer)
	if ok && c.Auth.OIDC.Enabled && u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		p.warnf(key, "issuer %q uses http:// on a non-loopback host; keys and tokens travel unencrypted", issuer)
	}
}

func (c *Config) validateAccessKeys(p *problems) {
	k := &c.Auth.AccessKeys
	if k.IssueFormat != "jwt" {
		p.errorf("auth.access_keys.issue_format", "must be jwt, got %q", k.IssueFormat)
	}
	for i, f := range k.AcceptedFormats {
		if f != "jwt" {
			p.errorf(fmt.Sprintf("auth.access_keys.accepted_formats[%d]", i), "must be jwt, got %q", f)
		}
	}
	if k.DefaultExpiresInSeconds != nil {
		atLeast(p, "auth.access_keys.default_expires_in_seconds", *k.DefaultExpiresInSeconds, 1)
	}
	if k.MaxExpiresInSeconds != nil {
		atLeast(p, "auth.access_keys.max_expires_in_seconds", *k.MaxExpiresInSeconds, 1)
		if k.DefaultExpiresInSeconds == nil {
			p.errorf("auth.access_keys.default_expires_in_seconds", "must be set when auth.access_keys.max_expires_in_seconds is set")
		} else if *k.MaxExpiresInSeconds < *k.DefaultExpiresInSeconds {
			p.errorf("auth.access_keys.max_expires_in_seconds", "must be at least default_expires_in_seconds (%d), got %d",
				*k.DefaultExpiresInSeconds, *k.MaxExpiresInSeconds)
		}
	}
	atLeast(p, "auth.access_keys.rotation_grace_period_seconds", k.RotationGracePeriodSeconds, 0)
	atLeast(p, "auth.access_keys.max_rotation_grace_period_seconds", k.MaxRotationGracePeriodSeconds, 0)
	if k.RotationGracePeriodSeconds > k.MaxRotationGracePeriodSeconds {
		p.errorf("auth.access_keys.rotation_grace_period_seconds", "must not exceed max_rotation_grace_period_seconds (%d), got %d",
			k.MaxRotationGracePeriodSeconds, k.RotationGracePeriodSeconds)
	}
	if k.Enabled && !c.Auth.Enabled {
		p.errorf("auth.access_keys.enabled", "requires auth.enabled: true (with authentication off no token is checked, so a key would grant nothing and limit nothing)")
	}
	keyFile := c.Auth.TokenSigning.PrivateKeyFile
	if k.Enabled && c.DatabaseKind() == DatabasePostgres && (keyFile == nil || *keyFile == "") {
		p.errorf("auth.token_signing.private_key_file", "required when auth.access_keys.enabled is true with PostgreSQL")
	}
	if k.Audience == "" {
		p.errorf("auth.access_keys.audience", "must not be empty")
	}
	c.validateTokenSigning(p)
}

// validateTokenSigning checks the signing key's id, the previous keys of
// a planned rotation and, with access keys and OIDC both enabled, that
// the two kinds of token cannot be mistaken for each other by issuer.
func (c *Config) validateTokenSigning(p *problems) {
	ts := &c.Auth.TokenSigning
	if ts.KeyID == "" {
		p.errorf("auth.token_signing.key_id", "must not be empty")
	}
	if ts.Issuer != nil && *ts.Issuer != "" {
		checkHTTPURL(p, "auth.token_signing.issuer", *ts.Issuer)
	}
	seen := make(map[string]bool)
	for i, pk := range ts.PreviousKeys {
		key := fmt.Sprintf("auth.token_signing.previous_keys[%d]", i)
		switch {
		case pk.KeyID == "":
			p.errorf(key+".key_id", "required")
		case pk.KeyID == ts.KeyID:
			p.errorf(key+".key_id", "must differ from auth.token_signing.key_id (%q)", ts.KeyID)
		case seen[pk.KeyID]:
			p.errorf(key+".key_id", "duplicate key_id %q", pk.KeyID)
		}
		seen[pk.KeyID] = true
		if pk.PublicKeyFile == "" {
			p.errorf(key+".public_key_file", "required")
		}
	}
	if !c.Auth.AccessKeys.Enabled || !c.Auth.OIDC.Enabled {
		return
	}
	iss := c.TokenSigningIssuer()
	for _, oidcIss := range append([]string{c.Auth.OIDC.Issuer}, c.Auth.OIDC.AdditionalIssuers...) {
		if oidcIss != "" && oidcIss == iss {
			p.errorf("auth.token_signing.issuer", "must differ from the OIDC issuer %q: access-key tokens are recognized by their issuer", iss)
		}
	}
}

func (c *Config) validateEntities(p *problems) {
	e := &c.Entities
	validateDatabaseURL(p, e.DatabaseConfig.URL)
	atLeast(p, "entities.database_config.connections_limit", e.DatabaseConfig.ConnectionsLimit, 1)
	atLeast(p, "entities.database_config.connect_timeout_seconds", e.DatabaseConfig.ConnectTimeoutSeconds, 1)
	atLeast(p, "entities.database_config.statement_timeout_seconds", e.DatabaseConfig.StatementTimeoutSeconds, 1)
	atLeast(p, "entities.database_config.pool_wait_timeout_seconds", e.DatabaseConfig.PoolWaitTimeoutSeconds, 1)
	atLeast(p, "entities.db_health_check_interval_seconds", e.DBHealthCheckIntervalSeconds, 1)
}

// validateDatabaseURL accepts "", sqlite:///absolute/path and postgres(ql)://
// URLs. Messages show the URL redacted.
func validateDatabaseURL(p *problems, raw string) {
	const key = "entities.database_config.url"
	if raw == "" {
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		p.errorf(key, "not a valid URL (value not shown: it may contain a password)")
		return
	}
	switch u.Scheme {
	case "postgres", "postgresql":
	case "sqlite":
		if u.Host != "" || u.Opaque != "" || u.User != nil || !path.IsAbs(u.Path) || u.RawQuery != "" || u.Fragment != "" {
			p.errorf(key, "SQLite URLs must be sqlite:///absolute/path, got %s", redactDatabaseURL(raw))
		}
	default:
		p.errorf(key, "unsupported scheme %q in %s (want sqlite, postgres or postgresql)", u.Scheme, redactDatabaseURL(raw))
	}
}

// redactDatabaseURL hides the password of a database URL, in the user info
// and in password-like query parameters. Strings that are not hierarchical
// URLs (for example keyword/value DSNs) are hidden entirely.
func redactDatabaseURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "<redacted>"
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode() // re-encoded even if unchanged: Query drops malformed pairs
	}
	u.Fragment, u.RawFragment = "", ""
	return u.Redacted()
}

var grantTypes = []string{
	GrantTypeDeviceCode, GrantTypeAuthorizationCode, GrantTypePassword, GrantTypeRefreshToken, GrantTypeClientCredentials,
}

func (c *Config) validateDevIDP(p *problems) {
	d := &c.DevIDP
	checkHostPort(p, "dev_idp.listen_address", d.ListenAddress)
	if d.Issuer != nil {
		checkHTTPURL(p, "dev_idp.issuer", *d.Issuer)
	}
	atLeast(p, "dev_idp.access_token_ttl_seconds", d.AccessTokenTTLSeconds, 1)
	atLeast(p, "dev_idp.refresh_token_ttl_seconds", d.RefreshTokenTTLSeconds, 1)
	ids := make(map[string]bool)
	for i := range d.Clients {
		validateDevIDPClient(p, fmt.Sprintf("dev_idp.clients[%d]", i), &d.Clients[i], ids)
	}
	names := make(map[string]bool)
	for i := range d.Users {
		validateDevIDPUser(p, fmt.Sprintf("dev_idp.users[%d]", i), &d.Users[i], names)
	}
}

func validateDevIDPClient(p *problems, key string, cl *DevIDPClient, seen map[string]bool) {
	switch {
	case cl.ClientID == "":
		p.errorf(key+".client_id", "required")
	case seen[cl.ClientID]:
		p.errorf(key+".client_id", "duplicate client_id %q", cl.ClientID)
	}
	seen[cl.ClientID] = true
	if !cl.Public && (cl.ClientSecret == nil || *cl.ClientSecret == "") {
		p.errorf(key+".client_secret", "required for a confidential client (public: false)")
	}
	for j, g := range cl.GrantTypes {
		oneOf(p, fmt.Sprintf("%s.grant_types[%d]", key, j), g, grantTypes)
	}
}

func validateDevIDPUser(p *problems, key string, u *DevIDPUser, seen map[string]bool) {
	for _, f := range [][2]string{{"username", u.Username}, {"password", u.Password}, {"email", u.Email}} {
		if f[1] == "" {
			p.errorf(key+"."+f[0], "required")
		}
	}
	if u.Username != "" && seen[u.Username] {
		p.errorf(key+".username", "duplicate username %q", u.Username)
	}
	seen[u.Username] = true
}

func atLeast(p *problems, key string, v, lo int) {
	if v < lo {
		p.errorf(key, "must be at least %d, got %d", lo, v)
	}
}

func inRange(p *problems, key string, v, lo, hi int) {
	if v < lo || v > hi {
		p.errorf(key, "must be between %d and %d, got %d", lo, hi, v)
	}
}

func positive(p *problems, key string, v float64) {
	if !(v > 0) || math.IsInf(v, 0) {
		p.errorf(key, "must be a positive number of seconds, got %v", v)
	}
}

// oneOf reports whether v is allowed and records an error otherwise.
func oneOf(p *problems, key, v string, allowed []string) bool {
	if slices.Contains(allowed, v) {
		return true
	}
	p.errorf(key, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	return false
}

// checkHTTPURL requires an absolute http:// or https:// URL with a host.
func checkHTTPURL(p *problems, key, s string) (*url.URL, bool) {
	u, err := url.Parse(s)
	if err != nil {
		p.errorf(key, "must be an absolute http:// or https:// URL, got %q", s)
		return nil, false
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.errorf(key, "must be an absolute http:// or https:// URL, got %q", u.Redacted())
		return nil, false
	}
	return u, true
}

func checkHostPort(p *problems, key, addr string) {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		p.errorf(key, "must be host:port, got %q", addr)
	}
}

// isLoopbackHost reports "localhost" or a loopback IP address (brackets
// allowed); "" (all interfaces) is not loopback.
func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Unmap().IsLoopback()
}

// validateDecisionLog checks auth.decision_log (checked even when it is
// off, so that turning it on later cannot surprise).
func validateDecisionLog(p *problems, d *DecisionLogConfig) {
	if !(d.AllowSampleRate >= 0 && d.AllowSampleRate <= 1) {
		p.errorf("auth.decision_log.allow_sample_rate", "must be between 0 and 1, got %v", d.AllowSampleRate)
	}
	if d.Output == "" {
		p.errorf("auth.decision_log.output", `must be "stderr" or a file path`)
	}
	inRange(p, "auth.decision_log.buffer_size", d.BufferSize, 1, 10_000_000)
}
