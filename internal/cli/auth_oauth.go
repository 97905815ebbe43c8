package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/nmp-project/nmp/internal/client"
	"github.com/nmp-project/nmp/internal/version"
)

// loginHooks replace parts of the login flows in tests. They travel in the
// command's context, so that concurrent in-process runs do not share them.
type loginHooks struct {
	// openBrowser replaces the system browser opener.
	openBrowser func(ctx context.Context, url string) error
	// devicePollInterval, when positive, replaces the device flow's
	// polling interval (whole seconds, as RFC 8628 counts).
	devicePollInterval time.Duration
}

type loginHooksKey struct{}

func hooksFrom(ctx context.Context) loginHooks {
	h, _ := ctx.Value(loginHooksKey{}).(loginHooks)
	return h
}

func withLoginHooks(ctx context.Context, h loginHooks) context.Context {
	return context.WithValue(ctx, loginHooksKey{}, h)
}

// openBrowser opens url in the user's browser without a shell.
func openBrowser(ctx context.Context, url string) error {
	if h := hooksFrom(ctx).openBrowser; h != nil {
		return h(ctx, url)
	}
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// idpTimeout bounds each request to the identity provider.
const idpTimeout = 30 * time.Second

// idpContext returns ctx carrying the HTTP client that golang.org/x/oauth2
// uses for the identity provider: 30 s timeout, the nmp User-Agent, no
// redirects (a token endpoint has no reason to redirect a request that
// carries credentials), and with --verbose one line per request.
func (a *App) idpContext(ctx context.Context) context.Context {
	var verbose = a.Stderr
	if !a.Global.Verbose {
		verbose = nil
	}
	hc := &http.Client{
		Timeout:   idpTimeout,
		Transport: client.VerboseTransport(userAgentTransport{http.DefaultTransport}, verbose),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return context.WithValue(ctx, oauth2.HTTPClient, hc)
}

type userAgentTransport struct{ base http.RoundTripper }

func (t userAgentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", "nmp/"+version.Version)
	return t.base.RoundTrip(r)
}

// oauthConfig is the public-client configuration for the discovered
// provider: client_id in the form body, no secret.
func oauthConfig(o *client.OIDCDiscovery, scopes []string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: o.ClientID,
		Endpoint: oauth2.Endpoint{
			AuthURL:       o.AuthorizationEndpoint,
			TokenURL:      o.TokenEndpoint,
			DeviceAuthURL: o.DeviceAuthorizationEndpoint,
			AuthStyle:     oauth2.AuthStyleInParams,
		},
		Scopes: scopes,
	}
}

// scopePrefix returns the discovery's scope_prefix with a trailing "/"
// ("" if none).
func scopePrefix(o *client.OIDCDiscovery) string {
	if o.ScopePrefix == nil || *o.ScopePrefix == "" {
		return ""
	}
	p := *o.ScopePrefix
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// requestedScopes computes the login scopes: the default scopes; with
// --scope the default scopes without ":" plus the given ones. The scope
// prefix is prepended to scopes containing ":" or ending in ".default".
// Repeated scopes are dropped.
func requestedScopes(o *client.OIDCDiscovery, flag string, flagSet bool) []string {
	scopes := strings.Fields(o.DefaultScopes)
	if flagSet {
		var kept []string
		for _, s := range scopes {
			if !strings.Contains(s, ":") {
				kept = append(kept, s)
			}
		}
		scopes = append(kept, strings.Fields(flag)...)
	}
	prefix := scopePrefix(o)
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if prefix != "" && (strings.Contains(s, ":") || strings.HasSuffix(s, ".default")) && !strings.HasPrefix(s, prefix) {
			s = prefix + s
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// missingScopes returns the requested scopes containing ":" that were not
// granted. Granted scopes come from the token response's scope, else the
// access token's scope/scp claims; both sides are compared without the
// prefix. When neither tells, the grant is the request (RFC 6749 5.1).
func missingScopes(requested []string, tok *oauth2.Token, prefix string) []string {
	var granted []string
	known := false
	if s, ok := tok.Extra("scope").(string); ok && strings.TrimSpace(s) != "" {
		granted, known = strings.Fields(s), true
	} else if p, ok := decodeJWT(tok.AccessToken); ok {
		if _, has := p.Claims["scope"]; has {
			granted, known = p.scopes(), true
		} else if _, has := p.Claims["scp"]; has {
			granted, known = p.scopes(), true
		}
	}
	if !known {
		return nil
	}
	strip := func(s string) string {
		if prefix != "" {
			return strings.TrimPrefix(s, prefix)
		}
		return s
	}
	have := map[string]bool{}
	for _, g := range granted {
		have[strip(g)] = true
	}
	var missing []string
	for _, r := range requested {
		if strings.Contains(r, ":") && !have[strip(r)] {
			missing = append(missing, r)
		}
	}
	return missing
}

// maxIdPMessage bounds what is shown of an identity provider's message.
const maxIdPMessage = 300

// idpError turns a failure of a request to the identity provider into a
// remote error (exit 3) whose message holds only the OAuth error code and
// description, sanitized, with any of secrets replaced: providers may echo
// request parameters. Cancellation is returned as is (exit 1).
func idpError(what string, err error, secrets ...string) error {
	if errors.Is(err, context.Canceled) {
		return context.Canceled
	}
	var (
		re *oauth2.RetrieveError
		ue *url.Error
	)
	var msg string
	switch {
	case errors.As(err, &re) && re.ErrorCode != "":
		msg = re.ErrorCode
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
	case errors.As(err, &re):
		status := "no response"
		if re.Response != nil {
			status = re.Response.Status
		}
		msg = "HTTP " + status
	case errors.As(err, &ue):
		host := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Scheme + "://" + u.Host
		}
		msg = fmt.Sprintf("cannot reach %s: %v", host, ue.Err)
	default: // including *oauthTokenError: code and description only
		msg = err.Error()
	}
	return RemoteError(fmt.Errorf("%s: %s", what, scrub(msg, secrets...)))
}

// scrub sanitizes an identity provider's text for the terminal: control
// characters become spaces, secrets are redacted, the length is bounded.
func scrub(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	s = sanitizeLine(s)
	if r := []rune(s); len(r) > maxIdPMessage {
		s = string(r[:maxIdPMessage]) + "…"
	}
	return s
}

// oauthTokenError is an RFC 6749 section 5.2 error from a token request
// the CLI sends itself (password, refresh).
type oauthTokenError struct {
	Code        string
	Description string
	Status      int
}

func (e *oauthTokenError) Error() string {
	if e.Code == "" {
		return strings.TrimSpace(fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status)))
	}
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}
