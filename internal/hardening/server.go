package hardening

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nmp-project/nmp/internal/authn"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/ident"
	"github.com/nmp-project/nmp/internal/store"
)

// SourceServer marks the findings only the server can make.
const SourceServer = "server"

// Defaults of ServerChecks.
const (
	// DefaultProbeTimeout bounds each request to an issuer.
	DefaultProbeTimeout = 5 * time.Second
	// DefaultStaleAfter is how long a member may go unseen before the
	// stale-members finding lists it.
	DefaultStaleAfter = 90 * 24 * time.Hour
	// SecretMaxAge is the age past which a client secret file is reported.
	SecretMaxAge = 90 * 24 * time.Hour
)

// BindingScanner reads the active role bindings (store.Store has it).
type BindingScanner interface {
	ScanActiveBindings(ctx context.Context, fn func(principal, workspace, role string) error) (int64, error)
}

// PDPStatus is what the server knows about its policy decision point when
// the report is made.
type PDPStatus struct {
	// Provider is auth.policy_decision_point_provider (embedded or opa).
	Provider string
	// Problems are the readiness reasons of the policy components (the
	// embedded policy, its change feed, the external OPA); none = healthy.
	Problems []string
	// Revision is the policy revision this process applied.
	Revision int64
}

// StaleMembersFunc lists, per workspace, the members not seen since
// notSince.
type StaleMembersFunc func(ctx context.Context, notSince time.Time) (map[string][]string, error)

// ServerChecks holds what the server knows; Report turns it into findings.
type ServerChecks struct {
	Config *config.Config
	// Bindings reads the active role bindings (PlatformAdmin count,
	// wildcard and group bindings).
	Bindings BindingScanner
	// Roles are the policy document's roles, to rank roles against
	// Editor; nil: the built-in roles.
	Roles map[string]authz.Role
	PDP   PDPStatus
	// Client probes the issuers; nil: a client with ProbeTimeout.
	Client *http.Client
	// ProbeTimeout bounds each issuer probe (0: DefaultProbeTimeout).
	ProbeTimeout time.Duration
	Now          func() time.Time
	// StaleMembers is optional: nil reports the stale-members finding as
	// unknown (this server does not record last-seen times).
	StaleMembers StaleMembersFunc
	// StaleAfter is how long a member may go unseen (0: DefaultStaleAfter).
	StaleAfter time.Duration
}

// Report runs every server check; the issuer probes run concurrently.
// It never fails: a check that cannot run is reported as Unknown.
func (c *ServerChecks) Report(ctx context.Context) Report {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.Client == nil {
		// The redirect policy of token validation, so that "answers"
		// means what the verifier will see.
		c.Client = authn.NewIdPClient(c.ProbeTimeout, authn.NoDowngrade)
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = DefaultStaleAfter
	}
	cfg := c.Config
	var (
		wg                  sync.WaitGroup
		oidcFinding, issuer Finding
	)
	wg.Go(func() { oidcFinding = c.checkOIDC(ctx) })
	wg.Go(func() { issuer = c.checkAdditionalIssuers(ctx) })
	bindings, bindErr := c.scanBindings(ctx)
	findings := []Finding{
		checkAuthEnabled(cfg),
		checkDevelopmentMode(cfg),
		checkUnsignedJWT(cfg),
		checkTrustedProxies(cfg),
		checkAdminEmail(cfg),
		checkPlatformAdmins(bindings, bindErr),
		c.checkWildcardBindings(bindings, bindErr),
		c.checkStaleMembers(ctx),
		c.checkPDP(),
		checkTLS(cfg),
		c.checkClientSecret(),
		checkMaxTokenLifetime(cfg),
	}
	wg.Wait()
	findings = append(findings, oidcFinding, issuer)
	for i := range findings {
		findings[i].Source = SourceServer
	}
	r := Report{Findings: findings}
	r.Sort()
	return r
}

type binding struct{ principal, workspace, role string }

func (c *ServerChecks) scanBindings(ctx context.Context) ([]binding, error) {
	if c.Bindings == nil {
		return nil, fmt.Errorf("the role bindings are not available to this check")
	}
	var out []binding
	_, err := c.Bindings.ScanActiveBindings(ctx, func(p, w, r string) error {
		out = append(out, binding{p, w, r})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the role bindings failed: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.workspace != b.workspace {
			return a.workspace < b.workspace
		}
		if a.principal != b.principal {
			return a.principal < b.principal
		}
		return a.role < b.role
	})
	return out, nil
}

func unknown(f Finding, why string) Finding {
	f.Severity, f.Seen = Unknown, why
	return f
}

func checkAuthEnabled(cfg *config.Config) Finding {
	f := Finding{ID: "authn.enabled", Section: SectionAuthentication, Title: "Enable auth"}
	if cfg.Auth.Enabled {
		f.Severity, f.Seen = Pass, "auth.enabled is true: every request is authenticated and authorized"
		return f
	}
	f.Severity = Error
	f.Seen = "auth.enabled is false: every request is allowed, without credentials"
	f.Fix = "set auth.enabled: true (and auth.oidc.* for a production identity provider)"
	return f
}

func (c *ServerChecks) checkOIDC(ctx context.Context) Finding {
	cfg := c.Config
	f := Finding{ID: "authn.oidc", Section: SectionAuthentication, Title: "Configure OIDC"}
	o := &cfg.Auth.OIDC
	if !cfg.Auth.Enabled || !o.Enabled {
		f.Severity = Warning
		f.Seen = "no identity provider is connected (auth.oidc.enabled is false)"
		if cfg.Auth.Enabled && cfg.Auth.AccessKeys.Enabled {
			f.Seen += "; only access keys authenticate callers"
		}
		f.Fix = "set auth.oidc.enabled: true, auth.oidc.issuer and auth.oidc.client_id for your identity provider"
		return f
	}
	p := c.probeIssuer(ctx, o.Issuer)
	f.Details = []string{p.line()}
	switch sev := p.severity(); sev {
	case Pass, Info:
		f.Severity = Pass
		f.Seen = fmt.Sprintf("OIDC is enabled with issuer %s, whose discovery document and keys answer", o.Issuer)
	default:
		f.Severity = Warning
		f.Seen = fmt.Sprintf("OIDC is enabled with issuer %s, but its discovery %s, its JWKS %s: %s", o.Issuer, p.discovery, p.jwks, strings.Join(p.problems, "; "))
		f.Fix = "fix auth.oidc.issuer (it must equal the issuer of the IdP's discovery document exactly, over https) or the network path to the IdP"
	}
	return f
}

func checkDevelopmentMode(cfg *config.Config) Finding {
	f := Finding{ID: "authn.development_mode", Section: SectionAuthentication, Title: "No development mode in production"}
	switch {
	case !cfg.Auth.Enabled:
		f.Severity, f.Seen = Info, "auth is disabled (see authn.enabled); development mode does not apply"
	case cfg.DevelopmentMode():
		f.Severity = Error
		f.Seen = "development mode: auth is enabled without OIDC or access keys, so identity headers (X-NMP-Principal-Id, …) are accepted from any peer and anyone can claim any identity"
		f.Fix = "set auth.oidc.enabled: true with auth.oidc.issuer and auth.oidc.client_id (or auth.access_keys.enabled: true)"
	default:
		f.Severity = Pass
		f.Seen = "production mode: identity comes from verified tokens; identity headers are honoured only from auth.trusted_proxies"
	}
	return f
}

func checkUnsignedJWT(cfg *config.Config) Finding {
	f := Finding{ID: "authn.unsigned_jwt", Section: SectionAuthentication, Title: "No unsigned tokens"}
	switch {
	case !cfg.Auth.AllowUnsignedJWT:
		f.Severity, f.Seen = Pass, "auth.allow_unsigned_jwt is false: tokens must be signed"
	case cfg.ProductionMode():
		f.Severity = Error
		f.Seen = "auth.allow_unsigned_jwt is true in production mode: anyone can forge a token (alg none) for any identity"
		f.Fix = "set auth.allow_unsigned_jwt: false"
	default:
		f.Severity = Warning
		f.Seen = "auth.allow_unsigned_jwt is true: unsigned tokens (alg none) are accepted; fine for development only"
		f.Fix = "set auth.allow_unsigned_jwt: false before production"
	}
	return f
}

// nonPublic are the address ranges not reachable from the internet:
// loopback, private (RFC 1918, unique local), link-local and shared
// (carrier-grade NAT) space. A trusted proxy range outside them lets
// internet hosts send identity headers.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

// publicRange reports whether p holds any address outside nonPublic.
func publicRange(p netip.Prefix) bool {
	for _, np := range nonPublic {
		if np.Bits() <= p.Bits() && np.Contains(p.Addr()) {
			return false
		}
	}
	return true
}

func checkTrustedProxies(cfg *config.Config) Finding {
	f := Finding{ID: "gateway.trusted_proxies", Section: SectionGateway, Title: "Trust identity headers only from your gateway"}
	prefixes := cfg.Auth.TrustedProxyPrefixes()
	if len(prefixes) == 0 {
		f.Severity, f.Seen = Pass, "auth.trusted_proxies is empty: identity headers are trusted from no peer"
		if cfg.DevelopmentMode() {
			f.Seen += " (but development mode accepts them from every peer: see authn.development_mode)"
		}
		return f
	}
	var everyone, public []string
	for _, p := range prefixes {
		switch {
		case p.Bits() == 0:
			everyone = append(everyone, p.String())
		case publicRange(p):
			public = append(public, p.String())
		}
	}
	for _, p := range everyone {
		f.Details = append(f.Details, p+": every address")
	}
	for _, p := range public {
		f.Details = append(f.Details, p+": a public range")
	}
	switch {
	case len(everyone) > 0:
		f.Severity = Error
		f.Seen = fmt.Sprintf("auth.trusted_proxies trusts identity headers from every address (%s): anyone who reaches the server can claim any identity", strings.Join(everyone, ", "))
		f.Fix = "set auth.trusted_proxies to the addresses of your gateway only (for example 10.0.0.5/32)"
	case len(public) > 0:
		f.Severity = Warning
		f.Seen = fmt.Sprintf("auth.trusted_proxies includes public ranges (%s): hosts there can send identity headers", strings.Join(public, ", "))
		f.Fix = "set auth.trusted_proxies to the private addresses of your gateway only"
	default:
		f.Severity = Pass
		f.Seen = fmt.Sprintf("auth.trusted_proxies lists only private or loopback ranges (%s)", joinPrefixes(prefixes))
	}
	return f
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// roleMailboxes are local parts that usually name a role or a shared
// mailbox rather than one person.
var roleMailboxes = map[string]bool{
	"admin": true, "administrator": true, "root": true, "team": true, "it": true, "support": true,
	"noreply": true, "no-reply": true, "donotreply": true, "do-not-reply": true, "info": true,
	"ops": true, "devops": true, "sre": true, "security": true, "helpdesk": true, "help": true,
	"all": true, "everyone": true, "staff": true, "contact": true, "office": true, "platform": true,
	"postmaster": true, "webmaster": true, "hostmaster": true, "sysadmin": true, "oncall": true,
}

// sharedShapes are fragments of distribution-list local parts.
var sharedShapes = []string{"-team", "_team", ".team", "-list", "_list", ".list", "dl-", "dl_", "dl.", "group", "-all", "-ops", "-admins"}

// SharedMailbox reports whether an email's local part looks like a role
// or shared mailbox (admin@, team@, noreply@, dl-…, …-team@). It is a
// heuristic: a person may be called "it", a list may be called anything,
// so it only flags the common shapes; the report says why it matched.
func SharedMailbox(email string) (shared bool, why string) {
	local, _, ok := strings.Cut(email, "@")
	if !ok {
		return false, ""
	}
	l := strings.ToLower(local)
	if base, _, found := strings.Cut(l, "+"); found {
		l = base // admin+nmp@ is still admin@
	}
	if roleMailboxes[l] {
		return true, fmt.Sprintf("%q is a role or shared mailbox name", l)
	}
	for _, s := range sharedShapes {
		if strings.Contains(l, s) {
			return true, fmt.Sprintf("%q has the shape of a distribution list (%q)", l, s)
		}
	}
	return false, ""
}

func checkAdminEmail(cfg *config.Config) Finding {
	f := Finding{ID: "authn.admin_email", Section: SectionAuthentication, Title: "Set admin_email to a real platform admin"}
	if cfg.Auth.AdminEmail == nil || *cfg.Auth.AdminEmail == "" {
		f.Severity = Warning
		f.Seen = "auth.admin_email is not set: no PlatformAdmin is seeded from the configuration"
		f.Fix = "set auth.admin_email to one person's email address (it must equal the email claim of their tokens exactly)"
		return f
	}
	email := *cfg.Auth.AdminEmail
	if shared, why := SharedMailbox(email); shared {
		f.Severity = Warning
		f.Seen = fmt.Sprintf("auth.admin_email is %s, which looks like a role or shared mailbox: %s", email, why)
		f.Fix = "set auth.admin_email to one person's email address; PlatformAdmin bypasses every check, so it must be traceable to a person"
		return f
	}
	f.Severity, f.Seen = Pass, fmt.Sprintf("auth.admin_email is %s", email)
	return f
}

func checkPlatformAdmins(bindings []binding, bindErr error) Finding {
	f := Finding{ID: "authz.platform_admins", Section: SectionAuthorization, Title: "Restrict PlatformAdmin"}
	if bindErr != nil {
		return unknown(f, bindErr.Error())
	}
	var admins []string
	wide := false
	for _, b := range bindings {
		if b.role != authz.RolePlatformAdmin || b.workspace != store.SystemWorkspace {
			continue
		}
		admins = append(admins, b.principal)
		f.Details = append(f.Details, b.principal)
		if b.principal == ident.Wildcard || !strings.Contains(b.principal, "@") && !ident.IsService(b.principal) {
			wide = true
		}
	}
	revoke := "revoke the others: GET /apis/auth/v2/iam/role-bindings names them, DELETE /apis/auth/v2/iam/role-bindings/{name} revokes one"
	switch {
	case len(admins) == 0:
		f.Severity = Warning
		f.Seen = "no principal holds PlatformAdmin: nobody can manage role bindings or recover a workspace without an Admin"
		f.Fix = "set auth.admin_email to one person's email address (seeded at the next start)"
	case wide:
		f.Severity = Error
		f.Seen = fmt.Sprintf("PlatformAdmin is bound to %s, which is \"*\" or not an email (a group or a bare id): it may reach more than one person", strings.Join(admins, ", "))
		f.Fix = "bind PlatformAdmin to one person's email only; " + revoke
	case len(admins) > 1:
		f.Severity = Warning
		f.Seen = fmt.Sprintf("%d principals hold PlatformAdmin (%s); it bypasses all authorization and should be held by one", len(admins), strings.Join(admins, ", "))
		f.Fix = revoke
	default:
		f.Severity, f.Seen = Pass, fmt.Sprintf("exactly one principal holds PlatformAdmin: %s", admins[0])
	}
	return f
}

// effectivePermissions resolves a role's permissions with its includes.
func effectivePermissions(roles map[string]authz.Role, name string, seen map[string]bool) map[string]bool {
	out := map[string]bool{}
	if seen[name] {
		return out
	}
	seen[name] = true
	r, ok := roles[name]
	if !ok {
		return out
	}
	for _, p := range r.Permissions {
		out[p] = true
	}
	for _, inc := range r.Includes {
		for p := range effectivePermissions(roles, inc, seen) {
			out[p] = true
		}
	}
	return out
}

// editorOrAbove reports whether a role grants everything Editor grants
// (Editor, Admin, any role including them or holding "*"), or is
// PlatformAdmin.
func editorOrAbove(roles map[string]authz.Role, role string) bool {
	if role == authz.RolePlatformAdmin {
		return true
	}
	has := effectivePermissions(roles, role, map[string]bool{})
	if has["*"] {
		return true
	}
	editor := effectivePermissions(roles, "Editor", map[string]bool{})
	if len(editor) == 0 {
		return false
	}
	for p := range editor {
		if !has[p] {
			return false
		}
	}
	return true
}

func (c *ServerChecks) roles() map[string]authz.Role {
	if c.Roles != nil {
		return c.Roles
	}
	if d, err := authz.StaticDocument(); err == nil {
		return d.Roles
	}
	return nil
}

// groupLike reports a binding principal that may name a group: not "*",
// not an email and not a service. Groups and user ids share one syntax,
// so the server cannot tell them apart; the finding says so.
func groupLike(p string) bool {
	return p != ident.Wildcard && !strings.Contains(p, "@") && !ident.IsService(p) && !ident.IsServiceAccount(p)
}

func (c *ServerChecks) checkWildcardBindings(bindings []binding, bindErr error) Finding {
	f := Finding{ID: "authz.wildcard_bindings", Section: SectionAuthorization, Title: "Use wildcard bindings carefully"}
	if bindErr != nil {
		return unknown(f, bindErr.Error())
	}
	roles := c.roles()
	def := c.Config.Auth.DefaultWorkspace
	var wideWorkspaces []string
	groups := 0
	defaultSeen := ""
	for _, b := range bindings {
		if b.principal == ident.Wildcard && b.workspace == def {
			defaultSeen = b.role
		}
		if !editorOrAbove(roles, b.role) {
			if b.principal == ident.Wildcard && b.workspace == def {
				f.Details = append(f.Details, fmt.Sprintf("%s: * holds %s (the default workspace)", b.workspace, b.role))
			}
			continue
		}
		switch {
		case b.principal == ident.Wildcard:
			wideWorkspaces = append(wideWorkspaces, b.workspace)
			f.Details = append(f.Details, fmt.Sprintf("%s: * holds %s (every authenticated user)", b.workspace, b.role))
		case groupLike(b.principal):
			groups++
			f.Details = append(f.Details, fmt.Sprintf("%s: %s holds %s (a group, or a user bound by id: the server cannot tell)", b.workspace, b.principal, b.role))
		}
	}
	switch {
	case len(wideWorkspaces) > 0:
		f.Severity = Warning
		f.Seen = fmt.Sprintf("every authenticated user holds Editor or above in %d workspace(s): %s", len(wideWorkspaces), strings.Join(wideWorkspaces, ", "))
		f.Fix = "nmp members update '*' --workspace <workspace> --roles Viewer (or remove it: nmp members delete '*' --workspace <workspace>)"
	case groups > 0:
		f.Severity = Info
		f.Seen = fmt.Sprintf("no \"*\" binding at Editor or above; %d binding(s) at Editor or above to principals that may be groups: review them", groups)
		f.Fix = "nmp members list --workspace <workspace>"
	default:
		f.Severity = Pass
		f.Seen = "no \"*\" or group-like binding at Editor or above"
		if defaultSeen != "" {
			f.Seen += fmt.Sprintf("; \"*\" holds %s in the default workspace %s", defaultSeen, def)
		}
	}
	return f
}

// The stale-members details stay readable: at most this many workspaces,
// and principals per workspace (the counts in Seen are complete; the CLI
// lists everything per workspace).
const (
	maxStaleWorkspaces   = 50
	maxStalePerWorkspace = 20
)

func (c *ServerChecks) checkStaleMembers(ctx context.Context) Finding {
	f := Finding{ID: "authz.stale_members", Section: SectionAuthorization, Title: "Audit workspace access"}
	days := int(c.StaleAfter / (24 * time.Hour))
	if c.StaleMembers == nil {
		f = unknown(f, "last-seen times are not recorded by this server")
		f.Fix = "auth.last_seen_interval_seconds: 300 (recording is off at 0)"
		return f
	}
	stale, err := c.StaleMembers(ctx, c.Now().Add(-c.StaleAfter))
	if err != nil {
		return unknown(f, fmt.Sprintf("reading last-seen times failed: %v", err))
	}
	workspaces := make([]string, 0, len(stale))
	for ws := range stale {
		workspaces = append(workspaces, ws)
	}
	sort.Strings(workspaces)
	total := 0
	var listed []string
	for _, ws := range workspaces {
		var members []string
		for _, p := range stale[ws] {
			if p != ident.Wildcard { // "*" is never seen itself
				members = append(members, p)
			}
		}
		if len(members) == 0 {
			continue
		}
		sort.Strings(members)
		total += len(members)
		listed = append(listed, ws)
		if len(f.Details) < maxStaleWorkspaces {
			shown := members
			more := ""
			if len(shown) > maxStalePerWorkspace {
				shown, more = shown[:maxStalePerWorkspace], fmt.Sprintf(" (and %d more)", len(members)-maxStalePerWorkspace)
			}
			f.Details = append(f.Details, fmt.Sprintf("%s: %s%s", ws, strings.Join(shown, ", "), more))
		}
	}
	if total == 0 {
		f.Severity, f.Seen = Pass, fmt.Sprintf("every member granted more than %d days ago was seen since", days)
		return f
	}
	if len(listed) > maxStaleWorkspaces {
		f.Details = append(f.Details, fmt.Sprintf("… and %d more workspaces", len(listed)-maxStaleWorkspaces))
	}
	f.Severity = Warning
	f.Seen = fmt.Sprintf("%d member(s) not seen for %d days or more, in %d workspace(s)", total, days, len(listed))
	f.Fix = fmt.Sprintf("nmp members list --workspace <workspace> --stale %dd, then nmp members delete <principal> --workspace <workspace>", days)
	return f
}

func seconds(v float64) string {
	d := time.Duration(v * float64(time.Second))
	return d.String()
}

// Thresholds of the policy engine finding.
const (
	maxRefreshInterval = 300 // s: a missed change may leave a replica stale this long
	maxBundleCache     = 60  // s: an HTTP cache may serve a bundle this old
)

func (c *ServerChecks) checkPDP() Finding {
	cfg := c.Config
	f := Finding{ID: "policy.pdp", Section: SectionPolicyEngine, Title: "Policy decision point: provider, health and refresh"}
	a := &cfg.Auth
	refresh := seconds(a.PolicyDataRefreshInterval)
	f.Details = []string{
		"provider: " + c.PDP.Provider,
		fmt.Sprintf("policy revision applied here: %d", c.PDP.Revision),
		fmt.Sprintf("auth.policy_data_refresh_interval: %s (safety net: a missed change notice is caught up within this)", refresh),
	}
	var propagation string
	if c.PDP.Provider == "opa" {
		f.Details = append(f.Details, fmt.Sprintf("auth.policy_decision_point_base_url: %s", a.PolicyDecisionPointBaseURL),
			fmt.Sprintf("auth.bundle_cache_seconds: %d (an HTTP cache between OPA and nmp may serve a bundle this old)", a.BundleCacheSeconds))
		propagation = fmt.Sprintf("role changes reach OPA at its next bundle poll (at once with long polling), up to %ds later through an HTTP cache, and within %s after a missed notice",
			a.BundleCacheSeconds, refresh)
	} else {
		propagation = fmt.Sprintf("role changes apply on this server before the write answers, on other replicas through the change feed, and within %s after a missed notice", refresh)
	}
	for _, p := range c.PDP.Problems {
		f.Details = append(f.Details, "not ready: "+p)
	}
	switch {
	case len(c.PDP.Problems) > 0:
		f.Severity = Error
		f.Seen = fmt.Sprintf("the %s policy decision point is not healthy (%s): requests fail closed (503) or are decided on stale bindings", c.PDP.Provider, strings.Join(c.PDP.Problems, "; "))
		if c.PDP.Provider == "opa" {
			f.Fix = "check the OPA sidecar at auth.policy_decision_point_base_url and its bundle download (GET /status shows policy.opa)"
		} else {
			f.Fix = "check the database and GET /health/ready (policy, policy_feed)"
		}
	case a.PolicyDataRefreshInterval > maxRefreshInterval:
		f.Severity = Warning
		f.Seen = fmt.Sprintf("auth.policy_data_refresh_interval is %s: after a missed change notice, a replica may decide on revoked access that long", refresh)
		f.Fix = "set auth.policy_data_refresh_interval to 30 (the default) or less"
	case c.PDP.Provider == "opa" && a.BundleCacheSeconds > maxBundleCache:
		f.Severity = Warning
		f.Seen = fmt.Sprintf("auth.bundle_cache_seconds is %d: through an HTTP cache, OPA may decide on revoked access that long", a.BundleCacheSeconds)
		f.Fix = "set auth.bundle_cache_seconds to 5 (the default) or less"
	default:
		f.Severity = Pass
		f.Seen = fmt.Sprintf("the %s policy decision point is healthy; %s", c.PDP.Provider, propagation)
	}
	if f.Severity != Pass {
		f.Details = append(f.Details, "propagation: "+propagation)
	}
	return f
}

func checkTLS(cfg *config.Config) Finding {
	f := Finding{ID: "gateway.tls", Section: SectionGateway, Title: "Enable TLS"}
	t := cfg.Service.TLS
	if t.Enabled() {
		f.Severity = Pass
		f.Seen = "nmp serves TLS (service.tls.cert_file, service.tls.key_file)"
		if t.ClientCAFile != "" {
			f.Seen += " and requires client certificates (service.tls.client_ca_file)"
		}
		return f
	}
	base, err := url.Parse(cfg.Platform.BaseURL)
	if err == nil && base.Scheme == "http" && !loopbackHost(base.Hostname()) {
		f.Severity = Warning
		f.Seen = fmt.Sprintf("nmp serves plain HTTP and platform.base_url is %s: clients are told to send tokens unencrypted", cfg.Platform.BaseURL)
		f.Fix = "terminate TLS at your ingress and set platform.base_url to its https:// URL, or set service.tls.cert_file and service.tls.key_file"
		return f
	}
	f.Severity = Info
	f.Seen = "nmp serves plain HTTP; TLS may terminate at the ingress or load balancer in front of it"
	f.Fix = "terminate TLS at the ingress, or set service.tls.cert_file and service.tls.key_file"
	return f
}

func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func (c *ServerChecks) checkClientSecret() Finding {
	f := Finding{ID: "secrets.client_secret_age", Section: SectionSecrets, Title: "Rotate IdP client secrets"}
	in := &c.Config.Auth.OIDC.Introspection
	inline := in.ClientSecretValue != nil && *in.ClientSecretValue != ""
	file := ""
	if in.ClientSecretFile != nil {
		file = *in.ClientSecretFile
	}
	switch {
	case inline:
		// The value itself is never shown.
		f.Severity = Warning
		f.Seen = "auth.oidc.introspection.client_secret is set as a value (in the config file or the environment): its age cannot be checked, and a secret in the config file travels with it"
		f.Fix = "move the secret to a file readable only by nmp and set auth.oidc.introspection.client_secret_file"
		return f
	case file == "":
		f.Severity, f.Seen = Pass, "no confidential client secret is configured"
		return f
	}
	fi, err := os.Stat(file)
	if err != nil {
		return unknown(f, fmt.Sprintf("auth.oidc.introspection.client_secret_file %s cannot be read: %v", file, pathError(err)))
	}
	age := c.Now().Sub(fi.ModTime())
	days := int(age / (24 * time.Hour))
	f.Details = []string{fmt.Sprintf("%s: last written %s (%d days ago), mode %s", file, fi.ModTime().UTC().Format(time.DateOnly), days, fi.Mode().Perm())}
	loose := fi.Mode().Perm()&0o077 != 0
	switch {
	case age > SecretMaxAge:
		f.Severity = Warning
		f.Seen = fmt.Sprintf("the client secret file %s was last written %d days ago (more than %d)", file, days, int(SecretMaxAge/(24*time.Hour)))
		f.Fix = fmt.Sprintf("rotate the client secret at your IdP and write the new one to %s", file)
	case loose:
		f.Severity = Warning
		f.Seen = fmt.Sprintf("the client secret file %s is readable by group or others (mode %s)", file, fi.Mode().Perm())
		f.Fix = "chmod 600 " + file
	default:
		f.Severity = Pass
		f.Seen = fmt.Sprintf("the client secret file %s was last written %d days ago", file, days)
	}
	return f
}

// pathError drops the path from an *os.PathError (the finding names it).
func pathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Thresholds of the token lifetime finding.
const (
	recommendedTokenLifetime = 3600
	longTokenLifetime        = 86400
)

func checkMaxTokenLifetime(cfg *config.Config) Finding {
	f := Finding{ID: "authn.max_token_lifetime", Section: SectionAuthentication, Title: "Verify token lifetime"}
	o := &cfg.Auth.OIDC
	if !cfg.Auth.Enabled || !o.Enabled {
		f.Severity, f.Seen = Info, "OIDC is not enabled: auth.oidc.max_token_lifetime_seconds applies to IdP tokens only"
		return f
	}
	n := o.MaxTokenLifetimeSeconds
	fix := "set auth.oidc.max_token_lifetime_seconds: 3600 (and an access-token lifetime of 1 h or less at the IdP)"
	switch {
	case n == 0:
		f.Severity, f.Fix = Warning, fix
		f.Seen = "auth.oidc.max_token_lifetime_seconds is 0: tokens of any lifetime are accepted"
	case n > longTokenLifetime:
		f.Severity, f.Fix = Warning, fix
		f.Seen = fmt.Sprintf("auth.oidc.max_token_lifetime_seconds is %d: tokens valid for more than a day are accepted", n)
	case n > recommendedTokenLifetime:
		f.Severity, f.Fix = Info, fix
		f.Seen = fmt.Sprintf("auth.oidc.max_token_lifetime_seconds is %d: tokens valid for up to %s are accepted; 1 h or less limits a stolen token", n, time.Duration(n)*time.Second)
	default:
		f.Severity = Pass
		f.Seen = fmt.Sprintf("auth.oidc.max_token_lifetime_seconds is %d: tokens valid for more than %s are refused", n, time.Duration(n)*time.Second)
	}
	return f
}
