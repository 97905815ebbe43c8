package doctor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nmp-project/nmp/internal/client"
	"github.com/nmp-project/nmp/internal/hardening"
)

// Probe ids (stable: scripts key on them).
const (
	idDiscovery       = "validation.discovery"
	idUnauthenticated = "validation.unauthenticated"
	idClockSkew       = "validation.clock_skew"
	idStripHeaders    = "gateway.strip_headers"
	idTLS             = "gateway.base_url_https"
	idIssuerHTTPS     = "authn.issuer_https"
	idPasswordGrant   = "authn.password_grant"
	idTokenLifetime   = "authn.token_lifetime"
	idConfigFile      = "secrets.config_file"
	idCIScopes        = "authz.ci_scopes"
	idServerReport    = "server.report"
)

// workspacesPath is the protected endpoint the probes call without a token.
const workspacesPath = "/v2/workspaces"

func probeDiscovery(ctx context.Context, e *env) ([]hardening.Finding, error) {
	d, a, err := e.discover(ctx)
	switch {
	case err != nil && a.Status == 0:
		return nil, err // no answer: cannot tell
	case err != nil:
		return finding(hardening.Error, fmt.Sprintf("GET /apis/auth/discovery: %v.", err),
			"Check the base URL (nmp config set --base-url https://…) and that the ingress routes /apis/auth/discovery to nmp"), nil
	case d.AuthEnabled == nil:
		return finding(hardening.Error, "Discovery answered without an auth_enabled field: this does not look like an nmp server.",
			"Check the base URL (nmp config set --base-url https://…)"), nil
	case !*d.AuthEnabled:
		return finding(hardening.Error, `Discovery says "auth_enabled": false: every request is allowed without a credential.`,
			"Set auth.enabled: true in the platform config"), nil
	}
	return finding(hardening.Pass, `Discovery answered and says "auth_enabled": true.`, ""), nil
}

func probeUnauthenticated(ctx context.Context, e *env) ([]hardening.Finding, error) {
	a, err := e.call(ctx, http.MethodGet, workspacesPath, nil, "")
	if err != nil {
		return nil, err
	}
	seen := fmt.Sprintf("GET %s without a token answered %s", workspacesPath, a)
	switch {
	case a.Status == http.StatusUnauthorized:
		return finding(hardening.Pass, seen+".", ""), nil
	case a.Status >= 200 && a.Status < 300:
		return finding(hardening.Error, seen+": anyone can read without signing in.",
			"Set auth.enabled: true and configure auth.oidc in the platform config"), nil
	}
	return finding(hardening.Warning, seen+", where 401 is expected.",
		"Check that the ingress forwards /v2/ to nmp unchanged and that auth.enabled is true"), nil
}

// Clock skew thresholds: tokens are checked against the server's clock,
// and IdPs and servers usually allow a minute or so of leeway.
const (
	skewWarning = 30 * time.Second
	skewError   = 5 * time.Minute
)

func probeClockSkew(ctx context.Context, e *env) ([]hardening.Finding, error) {
	start := e.Now()
	a, err := e.call(ctx, http.MethodGet, "/apis/auth/discovery", nil, "")
	end := e.Now()
	if err != nil {
		return nil, err
	}
	raw := a.Header.Get("Date")
	if raw == "" {
		return nil, errors.New("the server's answer has no Date header")
	}
	date, err := http.ParseTime(raw)
	if err != nil {
		return nil, fmt.Errorf("the server's Date header %q is not an HTTP date", raw)
	}
	// Date has a resolution of one second: compare with the middle of the
	// exchange, plus half a second.
	local := start.Add(end.Sub(start) / 2)
	skew := local.Sub(date.Add(500 * time.Millisecond)).Round(time.Second)
	abs := max(skew, -skew)
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	seen := fmt.Sprintf("Your clock is %s %s the server's (its Date header).", abs, dir)
	if abs <= time.Second {
		seen = "Your clock agrees with the server's (its Date header) within a second."
	}
	const fix = "Synchronise both clocks with NTP (e.g. timedatectl set-ntp true); token expiry is judged by the server's clock"
	switch {
	case abs > skewError:
		return finding(hardening.Error, seen+" Tokens will look expired or not yet valid.", fix), nil
	case abs > skewWarning:
		return finding(hardening.Warning, seen, fix), nil
	}
	return finding(hardening.Pass, seen, ""), nil
}

// headerProbes are the identity headers the checklist says the ingress
// must strip, each with a value that nmp, if it read the header as
// identity, would reject naming the header (400 invalid_header) — so the
// answer tells which header got through. Headers other than the principal
// id are sent with X-NMP-Principal-Id: nmp ignores them without it.
var headerProbes = []struct{ name, value string }{
	{"X-NMP-Principal-Id", probePrincipal},
	{"X-NMP-Principal-Email", "nmp-doctor-probe (not an email)"},
	{"X-NMP-Principal-Groups", "nmp doctor probe"},
	{"X-NMP-Principal-On-Behalf-Of", "nmp-doctor-probe-user"},
	{"X-NMP-Authorized", "true"},
	{"X-NMP-Scopes", "nmp.doctor.probe"},
}

// probePrincipal is the principal id the header probe claims to be.
const probePrincipal = "nmp-doctor-probe"

// HeaderNames returns the identity headers the header probe sends.
func HeaderNames() []string {
	out := make([]string, len(headerProbes))
	for i, h := range headerProbes {
		out[i] = h.name
	}
	return out
}

func probeStripHeaders(ctx context.Context, e *env) ([]hardening.Finding, error) {
	base, err := e.call(ctx, http.MethodGet, workspacesPath, nil, "")
	if err != nil {
		return nil, err
	}
	if base.Status != http.StatusUnauthorized {
		return finding(hardening.Unknown, fmt.Sprintf("GET %s without a token already answers %s, so whether identity headers are refused cannot be told.", workspacesPath, base),
			"Fix validation.unauthenticated first"), nil
	}
	worst := hardening.Pass
	var details, bad []string
	for _, h := range headerProbes {
		hdr := http.Header{}
		hdr.Set(h.name, h.value)
		if h.name != "X-NMP-Principal-Id" {
			hdr.Set("X-NMP-Principal-Id", probePrincipal)
		}
		a, err := e.call(ctx, http.MethodGet, workspacesPath, hdr, "")
		if err != nil {
			return nil, err
		}
		sev, what := judgeHeader(h.name, a, base)
		details = append(details, fmt.Sprintf("%s: %s — %s", h.name, a, what))
		if sev != hardening.Pass {
			bad = append(bad, h.name)
		}
		if sev.Rank() > worst.Rank() {
			worst = sev
		}
	}
	switch worst {
	case hardening.Error:
		return finding(hardening.Error,
			fmt.Sprintf("Sent without a token through %s, nmp took identity headers as the caller's identity: %s. Anyone can act as anyone.", e.BaseURL, strings.Join(bad, ", ")),
			"Strip every X-NMP-* header from external requests at the ingress (nginx: proxy_set_header X-NMP-Principal-Id \"\"; etc.), list only the ingress in auth.trusted_proxies, and do not run auth.enabled without auth.oidc (development mode)",
			details...), nil
	case hardening.Info:
		// Safe as it stands: nothing between the user and nmp is trusted
		// to assert identity. Stripping at an ingress adds a second layer,
		// and keeps it safe if that ingress is ever trusted.
		return finding(hardening.Info,
			fmt.Sprintf("Identity headers sent through %s reach nmp (%s), which refuses them: the sender is not in auth.trusted_proxies. If an ingress sits in front of nmp, strip them there as well.", e.BaseURL, strings.Join(bad, ", ")),
			"Strip the X-NMP-* headers at the ingress (nginx: proxy_set_header X-NMP-Principal-Id \"\"; etc.) before listing it in auth.trusted_proxies",
			details...), nil
	}
	return finding(hardening.Pass, fmt.Sprintf("Every identity header sent without a token through %s got the same answer as no header (%s): the ingress strips them before nmp.", e.BaseURL, base), "", details...), nil
}

// judgeHeader compares the answer to a request carrying an identity
// header with the baseline answer to the same request without it.
func judgeHeader(name string, a, base answer) (hardening.Severity, string) {
	switch {
	case a.Status == http.StatusUnauthorized && a.Code == "untrusted_identity_headers":
		return hardening.Info, "reached nmp, which refused it from an untrusted peer"
	case a.Status == base.Status && a.Code == base.Code && name == "X-NMP-Principal-Id":
		return hardening.Pass, "same answer as without it: stripped"
	case a.Status == base.Status && a.Code == base.Code:
		return hardening.Pass, "same answer as without it: stripped, or ignored because X-NMP-Principal-Id was"
	case a.Status == http.StatusBadRequest && (strings.Contains(a.Detail, name) || (name == "X-NMP-Scopes" && a.Code == "invalid_scope")):
		return hardening.Error, "reached nmp, which read it as identity"
	case a.Status >= 200 && a.Status < 300:
		return hardening.Error, "accepted: nmp answered as for an identified caller"
	case a.Status == http.StatusForbidden:
		return hardening.Error, "accepted: nmp identified the caller, then denied the request"
	}
	return hardening.Error, fmt.Sprintf("a different answer than without it (%s): the header changed what nmp did", base)
}

// httpsFinding judges a URL that tokens or passwords travel to.
func httpsFinding(what, raw, fix string) []hardening.Finding {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return finding(hardening.Error, fmt.Sprintf("The %s %q is not a URL.", what, raw), fix)
	}
	switch {
	case strings.EqualFold(u.Scheme, "https"):
		return finding(hardening.Pass, fmt.Sprintf("The %s %s uses https.", what, raw), "")
	case client.IsLoopbackHost(u.Hostname()):
		return finding(hardening.Info, fmt.Sprintf("The %s %s uses plain http on loopback: fine on this machine, not for a deployment.", what, raw), "")
	}
	return finding(hardening.Error, fmt.Sprintf("The %s %s uses plain http: tokens and passwords travel in clear text.", what, raw), fix)
}

func probeTLS(_ context.Context, e *env) ([]hardening.Finding, error) {
	return httpsFinding("base URL", e.BaseURL,
		"Terminate TLS at the ingress and use an https:// base URL (nmp config set --base-url https://…)"), nil
}

func probeIssuerHTTPS(ctx context.Context, e *env) ([]hardening.Finding, error) {
	d, _, err := e.discover(ctx)
	if err != nil {
		return nil, err
	}
	if d.OIDC == nil || d.OIDC.Issuer == "" {
		return finding(hardening.Info, "The server announces no OIDC issuer (auth disabled or OIDC not configured).",
			"Configure auth.oidc to connect a production identity provider"), nil
	}
	return httpsFinding("issuer", d.OIDC.Issuer, "Use the identity provider's https:// issuer URL in auth.oidc.issuer"), nil
}

// randomHex returns n random bytes, hex-encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return hex.EncodeToString(b)
}

func probePasswordGrant(ctx context.Context, e *env) ([]hardening.Finding, error) {
	d, _, err := e.discover(ctx)
	if err != nil {
		return nil, err
	}
	if d.OIDC == nil || d.OIDC.Issuer == "" {
		return finding(hardening.Info, "The server announces no OIDC issuer: there is no password grant to probe.", ""), nil
	}
	if d.OIDC.ClientID == "" {
		return nil, errors.New("the server's discovery names no client_id for the CLI")
	}
	endpoint, err := e.tokenEndpoint(ctx, d.OIDC.Issuer)
	if err != nil {
		if d.OIDC.TokenEndpoint == "" {
			return nil, err
		}
		endpoint = d.OIDC.TokenEndpoint // as the server saw it
	}
	form := url.Values{
		"grant_type": {"password"},
		"client_id":  {d.OIDC.ClientID},
		// A user that does not exist, with a random password: nothing
		// real is ever sent, and no account can be locked out.
		"username": {"nmp-doctor-" + randomHex(8)},
		"password": {randomHex(16)},
		"scope":    {"openid"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	a, err := do(e.IdP, req, "")
	if err != nil {
		return nil, err
	}
	var body struct {
		Error       string `json:"error"`
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(a.Body, &body) // a body that is not JSON leaves Error empty
	client := fmt.Sprintf("client %q", d.OIDC.ClientID)
	switch {
	case body.Error == "unsupported_grant_type" || body.Error == "unauthorized_client":
		return finding(hardening.Pass, fmt.Sprintf("The IdP refuses the password grant for %s (%s).", client, body.Error), ""), nil
	case body.Error == "invalid_grant":
		return finding(hardening.Warning,
			fmt.Sprintf("The IdP accepts the password grant for %s: it answered invalid_grant for a made-up user, so real credentials would get a token. The password grant bypasses MFA.", client),
			fmt.Sprintf("Disable the resource owner password grant for %s in the IdP; if CI/CD needs it, allow it only for a dedicated service-account client", client)), nil
	case a.Status >= 200 && a.Status < 300 && body.AccessToken != "":
		return finding(hardening.Error,
			fmt.Sprintf("The IdP issued a token for a made-up user and password to %s.", client),
			fmt.Sprintf("Disable the password grant for %s in the IdP and review how it checks passwords", client)), nil
	}
	seen := fmt.Sprintf("The token endpoint answered HTTP %d", a.Status)
	if body.Error != "" {
		seen += " " + body.Error
	}
	return finding(hardening.Unknown, seen+": whether the password grant is enabled cannot be told.",
		fmt.Sprintf("Check in the IdP that the password grant is disabled for %s", client)), nil
}

// tokenEndpoint reads the token endpoint from the issuer's discovery.
func (e *env) tokenEndpoint(ctx context.Context, issuer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return "", err
	}
	a, err := do(e.IdP, req, "")
	if err != nil {
		return "", err
	}
	if a.Status != http.StatusOK {
		return "", fmt.Errorf("the issuer's discovery answered HTTP %d", a.Status)
	}
	var d struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.Unmarshal(a.Body, &d); err != nil || d.TokenEndpoint == "" {
		return "", errors.New("the issuer's discovery names no token_endpoint")
	}
	return d.TokenEndpoint, nil
}

// maxLifetime is the checklist's access-token lifetime.
const maxLifetime = time.Hour

func probeTokenLifetime(_ context.Context, e *env) ([]hardening.Finding, error) {
	if e.Token == "" {
		return finding(hardening.Info, "No token is held, so its lifetime cannot be read.", "nmp auth login"), nil
	}
	refresh := "No refresh token is held."
	if e.RefreshToken {
		refresh = "A refresh token is held: check the IdP's refresh-token lifetime too."
	}
	claims, ok := decodeClaims(e.Token)
	if !ok {
		return finding(hardening.Unknown, "The token is opaque (not a JWT): its lifetime cannot be read. "+refresh,
			"Check the access-token lifetime in the IdP (1 hour or less)"), nil
	}
	exp, okExp := numericClaim(claims, "exp")
	iat, okIat := numericClaim(claims, "iat")
	if !okExp || !okIat {
		return finding(hardening.Unknown, "The token has no exp or no iat claim: its lifetime cannot be read. "+refresh,
			"Check the access-token lifetime in the IdP (1 hour or less)"), nil
	}
	life := exp.Sub(iat)
	seen := fmt.Sprintf("Your access token lives %s (exp − iat). %s", life, refresh)
	if life > maxLifetime {
		return finding(hardening.Warning, seen,
			"Set the IdP's access-token lifetime to 1 hour or less (development IdP: dev_idp.access_token_ttl_seconds); a stolen token works until it expires"), nil
	}
	return finding(hardening.Pass, seen, ""), nil
}

func probeCIScopes(_ context.Context, e *env) ([]hardening.Finding, error) {
	ci := e.Getenv("CI")
	if ci == "" || strings.EqualFold(ci, "false") || ci == "0" {
		return finding(hardening.Info, "Not a CI environment (CI is not set).", ""), nil
	}
	if e.Token == "" {
		return finding(hardening.Info, "A CI environment (CI is set) with no token.", ""), nil
	}
	var scopes []string
	if claims, ok := decodeClaims(e.Token); ok {
		scopes = claimStrings(claims, "scope")
		if _, has := claims["scope"]; !has {
			scopes = claimStrings(claims, "scp")
		}
	}
	if scopes == nil {
		scopes = strings.Fields(e.SavedScope)
	}
	var writes []string
	restricted := false
	for _, s := range scopes {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			restricted = true
			if s[i+1:] == "write" {
				writes = append(writes, s)
			}
		}
	}
	const fix = "For pipelines that do not modify resources use a read-only token: nmp auth login --scope platform:read, or a platform:read token from your secret manager in NMP_ACCESS_TOKEN"
	switch {
	case len(writes) > 0:
		return finding(hardening.Warning, fmt.Sprintf("A CI environment (CI is set) holds a token with write scopes: %s.", strings.Join(writes, " ")), fix), nil
	case !restricted:
		return finding(hardening.Warning, "A CI environment (CI is set) holds a token without API scopes: it may do anything its roles allow.", fix), nil
	}
	return finding(hardening.Pass, fmt.Sprintf("The CI token's scopes are read-only: %s.", strings.Join(scopes, " ")), ""), nil
}

func probeServerReport(ctx context.Context, e *env) ([]hardening.Finding, error) {
	u, err := url.Parse(e.BaseURL)
	if err != nil {
		return nil, err
	}
	token := e.Token
	if token != "" && client.CheckPlainHTTP(u, e.AllowInsecureHTTP) != nil {
		return finding(hardening.Unknown, "The token was not sent: the base URL is plain http to a host that is not loopback, so it would travel in clear text.",
			"Use an https:// base URL, or pass --insecure-http if the network is trusted"), nil
	}
	a, err := e.call(ctx, http.MethodGet, "/apis/auth/v2/hardening", nil, token)
	if err != nil {
		return nil, err
	}
	switch {
	case a.Status == http.StatusUnauthorized || a.Status == http.StatusForbidden:
		return finding(hardening.Unknown, fmt.Sprintf("The server answered %s: sign in as a PlatformAdmin to see the server's findings.", a),
			"nmp auth login (as the PlatformAdmin)"), nil
	case a.Status == http.StatusNotFound:
		return finding(hardening.Unknown, "This server does not offer a hardening report (HTTP 404).",
			"Upgrade the server to a version with GET /apis/auth/v2/hardening"), nil
	case a.Status != http.StatusOK:
		return finding(hardening.Unknown, fmt.Sprintf("The server's hardening report answered %s.", a), ""), nil
	}
	var r hardening.Report
	if err := json.Unmarshal(a.Body, &r); err != nil {
		return nil, fmt.Errorf("the server's hardening report is not valid JSON: %v", err)
	}
	out := []hardening.Finding{{Severity: hardening.Pass, Seen: fmt.Sprintf("The server reported %d findings.", len(r.Findings))}}
	for _, f := range r.Findings {
		if f.Source == "" {
			f.Source = "server"
		}
		if f.ID == "" || f.Severity.Rank() < 0 {
			return nil, fmt.Errorf("the server's hardening report has a finding without id or with severity %q", f.Severity)
		}
		out = append(out, f)
	}
	return out, nil
}
