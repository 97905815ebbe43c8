package cli

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/nmp-project/nmp/internal/cli/clientconfig"
	"github.com/nmp-project/nmp/internal/cli/term"
	"github.com/nmp-project/nmp/internal/client"
)

// Environment variables of the password grant.
const (
	envOIDCUsername = "NMP_OIDC_USERNAME"
	envOIDCPassword = "NMP_OIDC_PASSWORD"
)

const (
	// callbackTimeout bounds the wait for the browser's redirect.
	callbackTimeout = 5 * time.Minute
	// maxDeviceWait bounds the device flow when the provider sends no
	// expires_in.
	maxDeviceWait = 30 * time.Minute
)

// loginFlags are the flags of nmp auth login.
type loginFlags struct {
	scope        string
	noBrowser    bool
	browser      bool
	username     string
	password     string
	callbackPort int

	unsigned    bool
	email       string
	principalID string
	groups      []string
	expiresIn   int
	noExp       bool
	audience    string
	issuer      string
}

// devFlags are the development flags that require --unsigned-token.
var devFlags = []string{"email", "principal-id", "group", "expires-in", "no-exp", "audience", "issuer"}

func newAuthLoginCommand(app *App) *cobra.Command {
	var f loginFlags
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in with the server's identity provider and save the token in the context",
		Long: `Sign in with the OpenID Connect provider the server announces at /apis/auth/discovery
and save the access token (and refresh token, if any) in the client config file.

The context is --context, else the current one, else "default" (created and made current).
--base-url sets the context's server URL.

Flows (the CLI is a public client; it holds no client secret):
  default        device code: open the printed URL and enter the code shown
  --browser      authorization code with PKCE and a redirect to 127.0.0.1
  --username U   password grant (also NMP_OIDC_USERNAME); the password comes from
                 NMP_OIDC_PASSWORD or a prompt. It bypasses multi-factor authentication:
                 use it only for service accounts.

Development servers without OIDC accept unsigned tokens:
  nmp auth login --unsigned-token --email alice@example.com [--group G]...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLogin(cmd.Context(), app, cmd, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.scope, "scope", "", `space-separated scopes: the default scopes without ":" plus these`)
	fl.BoolVar(&f.noBrowser, "no-browser", false, "print URLs instead of opening a browser")
	fl.BoolVar(&f.browser, "browser", false, "sign in with the authorization code flow and PKCE in a browser")
	fl.StringVar(&f.username, "username", "", "sign in with the password grant as this user (env NMP_OIDC_USERNAME)")
	fl.StringVar(&f.password, "password", "", "password for --username (unsafe: prefer NMP_OIDC_PASSWORD or the prompt)")
	fl.IntVar(&f.callbackPort, "callback-port", 0, "loopback port of the --browser redirect (default: random)")
	fl.BoolVar(&f.unsigned, "unsigned-token", false, "development: mint an unsigned JWT instead of signing in")
	fl.StringVar(&f.email, "email", "", "development: email of the unsigned token")
	fl.StringVar(&f.principalID, "principal-id", "", "development: sub of the unsigned token (default the email)")
	fl.StringArrayVar(&f.groups, "group", nil, "development: group of the unsigned token; repeatable")
	fl.IntVar(&f.expiresIn, "expires-in", 3600, "development: lifetime of the unsigned token in seconds")
	fl.BoolVar(&f.noExp, "no-exp", false, "development: unsigned token without exp")
	fl.StringVar(&f.audience, "audience", "", "development: aud of the unsigned token")
	fl.StringVar(&f.issuer, "issuer", "", "development: iss of the unsigned token")
	return cmd
}

// validate checks flag combinations before anything is sent.
func (f *loginFlags) validate(app *App, cmd *cobra.Command) error {
	flags := cmd.Flags()
	if !f.unsigned {
		for _, name := range devFlags {
			if flags.Changed(name) {
				return UsageErrorf("--%s requires --unsigned-token", name)
			}
		}
	} else {
		if f.email == "" {
			return UsageErrorf("--unsigned-token requires --email")
		}
		for _, name := range []string{"username", "password", "browser", "callback-port"} {
			if flags.Changed(name) {
				return UsageErrorf("--unsigned-token and --%s cannot be combined", name)
			}
		}
		if f.noExp && flags.Changed("expires-in") {
			return UsageErrorf("--no-exp and --expires-in cannot be combined")
		}
		if f.expiresIn <= 0 {
			return UsageErrorf("--expires-in must be a positive number of seconds")
		}
		return nil
	}
	if f.browser && flags.Changed("username") {
		return UsageErrorf("--browser and --username cannot be combined")
	}
	if flags.Changed("password") && f.username == "" && app.Getenv(envOIDCUsername) == "" {
		return UsageErrorf("--password requires --username (or %s)", envOIDCUsername)
	}
	if flags.Changed("callback-port") {
		if !f.browser {
			return UsageErrorf("--callback-port requires --browser")
		}
		if f.callbackPort < 0 || f.callbackPort > 65535 {
			return UsageErrorf("--callback-port must be between 0 and 65535")
		}
	}
	return nil
}

// loginTarget is the context a login writes and the server it asks.
type loginTarget struct {
	context string
	// newBaseURL is the base URL of the context when login creates it.
	newBaseURL string
	baseURL    string
	trust      serverTrust
}

func resolveLoginTarget(app *App) (*loginTarget, error) {
	f, err := app.Config()
	if err != nil {
		return nil, err
	}
	t := &loginTarget{context: cmp.Or(f.CurrentContextName(app.Global.Context, app.Getenv), "default")}
	var clusterURL string
	if c := f.Context(t.context); c != nil {
		if cl := f.Cluster(c.Cluster); cl != nil {
			clusterURL = cl.BaseURL
			if cl.CertificateAuthority != nil {
				t.trust.file = *cl.CertificateAuthority
			}
			if t.trust.data, err = cl.CAData(); err != nil {
				return nil, LocalError(err)
			}
		}
	}
	t.newBaseURL = cmp.Or(app.Global.BaseURL, app.Getenv(clientconfig.EnvBaseURL), clientconfig.DefaultBaseURL)
	t.baseURL = cmp.Or(app.Global.BaseURL, app.Getenv(clientconfig.EnvBaseURL), clusterURL, clientconfig.DefaultBaseURL)
	if err := clientconfig.ValidateBaseURL(t.baseURL); err != nil {
		return nil, UsageErrorf("%v", err)
	}
	return t, nil
}

// saveUser writes the login's result: the context (created if missing,
// base URL from --base-url) and its user, changed by set.
func (a *App) saveUser(ctx context.Context, t *loginTarget, set func(*clientconfig.User)) error {
	return a.UpdateConfig(ctx, func(f *clientconfig.File) error {
		ctx, _ := f.EnsureContext(t.context, t.newBaseURL)
		if a.Global.BaseURL != "" {
			if cl := f.Cluster(ctx.Cluster); cl != nil {
				cl.BaseURL = a.Global.BaseURL
			}
		}
		u := f.User(ctx.User)
		if u == nil {
			return LocalError(fmt.Errorf("context %q references unknown user %q", t.context, ctx.User))
		}
		set(u)
		return nil
	})
}

func runLogin(ctx context.Context, app *App, cmd *cobra.Command, f *loginFlags) error {
	if err := f.validate(app, cmd); err != nil {
		return err
	}
	target, err := resolveLoginTarget(app)
	if err != nil {
		return err
	}
	c, err := app.serverClient(target.baseURL, target.trust, "") // no token: discovery needs none
	if err != nil {
		return err
	}
	disc, err := c.Discovery(ctx)
	if err != nil {
		return err
	}
	if !disc.AuthEnabled {
		if err := app.saveUser(ctx, target, func(u *clientconfig.User) {
			u.Type, u.Token, u.RefreshToken, u.Scope = clientconfig.UserTypeNoAuth, "", "", ""
		}); err != nil {
			return err
		}
		app.Infof("Authentication is disabled on %s: no login is needed (context %s sends no credentials).", target.baseURL, target.context)
		return nil
	}
	if f.unsigned {
		if disc.OIDC != nil {
			return UsageErrorf("the server uses OIDC login: unsigned tokens are refused; run \"nmp auth login\" without --unsigned-token")
		}
		return loginUnsigned(ctx, app, cmd, f, target)
	}
	o := disc.OIDC
	if o == nil {
		return RemoteError(errors.New("server has no OIDC login configured"))
	}
	ictx := app.idpContext(ctx)
	if o.ClientID == "" {
		return RemoteError(errors.New("the server's OIDC discovery has no client_id"))
	}
	if o.TokenEndpoint == "" {
		return explainNoEndpoints(ictx, o)
	}
	scopes := requestedScopes(o, f.scope, cmd.Flags().Changed("scope"))
	cfg := oauthConfig(o, scopes)

	var tok *oauth2.Token
	username := f.username
	if username == "" && !f.browser {
		username = app.Getenv(envOIDCUsername)
	}
	// verify runs before anything is saved: the scopes were granted and
	// the server accepts the token.
	verify := func(tok *oauth2.Token) error {
		if tok.AccessToken == "" {
			return RemoteError(errors.New("the identity provider returned no access token; nothing was saved"))
		}
		if missing := missingScopes(scopes, tok, scopePrefix(o)); len(missing) > 0 {
			return RemoteError(fmt.Errorf("the identity provider did not grant the scopes %s; nothing was saved", strings.Join(missing, " ")))
		}
		return app.serverAccepts(ctx, target.baseURL, target.trust, o, tok.AccessToken, "new token")
	}
	aud := audienceOptions(requestedAudience(o))
	switch {
	case username != "":
		tok, err = loginPassword(ictx, app, cmd, f, o, scopes, username)
		if err == nil {
			err = verify(tok)
		}
	case f.browser:
		tok, err = loginBrowser(ictx, app, f, cfg, aud, verify)
	default:
		tok, err = loginDevice(ictx, app, f, cfg, aud)
		if err == nil {
			err = verify(tok)
		}
	}
	if err != nil {
		return err
	}
	if err := app.saveUser(ctx, target, func(u *clientconfig.User) {
		u.Type, u.Token, u.RefreshToken, u.Scope = clientconfig.UserTypeOAuth, tok.AccessToken, tok.RefreshToken, strings.Join(scopes, " ")
	}); err != nil {
		return err
	}
	app.Infof("Logged in as %s (context %s)", sanitizeLine(tokenIdentity(tok)), target.context)
	if tok.RefreshToken == "" {
		app.Infof("Note: the identity provider returned no refresh token, so you will have to log in again when the token expires; request the offline_access scope (--scope) to stay signed in.")
	}
	app.afterLoginNotes(target)
	return nil
}

// afterLoginNotes warns when the saved login will not be used.
func (a *App) afterLoginNotes(t *loginTarget) {
	if a.Getenv(clientconfig.EnvAccessToken) != "" {
		a.Infof("Warning: %s is set and takes precedence over the saved login; unset it to use the new token.", clientconfig.EnvAccessToken)
	}
	if f, err := a.Config(); err == nil && f.CurrentContextName(a.Global.Context, a.Getenv) != t.context {
		a.Infof("Context %q is not the current one; run \"nmp config use-context %s\" or pass --context %s.", t.context, t.context, t.context)
	}
}

// tokenIdentity names the signed-in user: email, else sub, of the access
// token, else of the ID token.
func tokenIdentity(tok *oauth2.Token) string {
	candidates := []string{tok.AccessToken}
	if id, ok := tok.Extra("id_token").(string); ok {
		candidates = append(candidates, id)
	}
	for _, t := range candidates {
		if p, ok := decodeJWT(t); ok {
			if s := cmp.Or(p.str("email"), p.str("sub")); s != "" {
				return s
			}
		}
	}
	return "an unknown user (the access token is opaque)"
}

func loginUnsigned(ctx context.Context, app *App, cmd *cobra.Command, f *loginFlags, target *loginTarget) error {
	now := time.Now()
	groups := f.groups
	if groups == nil {
		groups = []string{}
	}
	claims := map[string]any{
		"sub":    cmp.Or(f.principalID, f.email),
		"email":  f.email,
		"groups": groups,
		"iat":    now.Unix(),
	}
	scope := strings.Join(strings.Fields(f.scope), " ")
	if cmd.Flags().Changed("scope") {
		claims["scope"] = scope
	}
	if !f.noExp {
		claims["exp"] = now.Add(time.Duration(f.expiresIn) * time.Second).Unix()
	}
	if f.audience != "" {
		claims["aud"] = f.audience
	}
	if f.issuer != "" {
		claims["iss"] = f.issuer
	}
	token, err := clientconfig.UnsignedJWT(claims)
	if err != nil {
		return LocalError(err)
	}
	if err := app.saveUser(ctx, target, func(u *clientconfig.User) {
		u.Type, u.Token, u.RefreshToken, u.Scope = clientconfig.UserTypeOAuth, token, "", scope
	}); err != nil {
		return err
	}
	app.Infof("Logged in as %s (context %s) with an unsigned development token; the server must allow unsigned JWTs.", sanitizeLine(f.email), target.context)
	app.afterLoginNotes(target)
	return nil
}

// loginPassword runs the resource owner password credentials grant
// (sent by the CLI itself: golang.org/x/oauth2 cannot add the audience).
func loginPassword(ctx context.Context, app *App, cmd *cobra.Command, f *loginFlags, o *client.OIDCDiscovery, scopes []string, username string) (*oauth2.Token, error) {
	app.Infof("Warning: the password grant bypasses multi-factor authentication; use it only for service accounts and prefer the device login.")
	var password string
	switch {
	case cmd.Flags().Changed("password"):
		app.Infof("Warning: --password is unsafe: other local users can see it in the process list and it stays in your shell history; use %s or the prompt.", envOIDCPassword)
		password = f.password
	case app.Getenv(envOIDCPassword) != "":
		password = app.Getenv(envOIDCPassword)
	default:
		p, err := app.PromptSecret(ctx, "Password for "+sanitizeLine(username)+": ")
		if errors.Is(err, ErrNoTerminal) {
			return nil, UsageErrorf("no password: set %s, or run on a terminal to be prompted", envOIDCPassword)
		}
		if err != nil {
			return nil, LocalError(fmt.Errorf("reading the password: %w", err))
		}
		password = p
	}
	if password == "" {
		return nil, UsageErrorf("the password is empty")
	}
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	tr, err := postToken(ctx, o, form)
	if err != nil {
		return nil, idpError("password login failed", err, password)
	}
	return tr.oauth2Token(), nil
}

// openURL opens an http(s) URL in the browser, or says how to open it.
func openURL(ctx context.Context, app *App, noBrowser bool, target string) {
	if noBrowser {
		return
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		app.Infof("Not opening %q in a browser: not an http(s) URL.", sanitizeLine(target))
		return
	}
	go func() {
		if err := openBrowser(ctx, target); err != nil {
			app.Infof("Could not open a browser (%v); open the URL above yourself.", err)
		}
	}()
}

// loginBrowser runs the authorization code flow with PKCE (S256) and a
// loopback redirect. verify runs on the token before the browser is told
// the outcome.
func loginBrowser(ctx context.Context, app *App, f *loginFlags, cfg *oauth2.Config, aud []oauth2.AuthCodeOption, verify func(*oauth2.Token) error) (*oauth2.Token, error) {
	if cfg.Endpoint.AuthURL == "" {
		return nil, RemoteError(errors.New("the identity provider has no authorization endpoint; log in without --browser (device code) or with --username"))
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(f.callbackPort)))
	if err != nil {
		return nil, LocalError(fmt.Errorf("listening for the login callback: %w", err))
	}
	cfg.RedirectURL = fmt.Sprintf("http://127.0.0.1:%d/callback", ln.Addr().(*net.TCPAddr).Port)
	stateBytes := make([]byte, 32)
	if _, err := rand.Read(stateBytes); err != nil {
		return nil, LocalError(errors.Join(err, ln.Close()))
	}
	state := base64.RawURLEncoding.EncodeToString(stateBytes)
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL(state, append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, aud...)...)

	type callback struct {
		code string
		err  error
	}
	callbacks := make(chan callback, 1)
	outcome := make(chan error, 1)
	finished := make(chan struct{}) // closed when loginBrowser returns
	var once sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		first := false
		once.Do(func() { first = true })
		if !first {
			writeCallbackPage(w, http.StatusConflict, errors.New("this login has already been completed"))
			return
		}
		q := r.URL.Query()
		var cb callback
		switch {
		case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1:
			cb.err = RemoteError(errors.New("the login response does not match this login (state mismatch); nothing was saved, try again"))
		case q.Get("error") != "":
			msg := q.Get("error")
			if d := q.Get("error_description"); d != "" {
				msg += ": " + d
			}
			cb.err = RemoteError(fmt.Errorf("the identity provider refused the login: %s", scrub(msg)))
		case q.Get("code") == "":
			cb.err = RemoteError(errors.New("the login response has no authorization code"))
		default:
			cb.code = q.Get("code")
		}
		callbacks <- cb
		var res error
		select {
		case res = <-outcome:
		case <-finished:
			select { // an outcome sent just before returning wins
			case res = <-outcome:
			default:
				res = errors.New("the login was cancelled")
			}
		case <-r.Context().Done():
			return
		}
		status := http.StatusOK
		if res != nil {
			status = http.StatusBadRequest
		}
		writeCallbackPage(w, status, res)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		close(finished)
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	if f.noBrowser {
		app.Infof("Open this URL in a browser on this machine to log in:\n\n    %s\n", authURL)
	} else {
		app.Infof("Opening a browser to log in. If none opens, visit:\n\n    %s\n", authURL)
	}
	openURL(ctx, app, f.noBrowser, authURL)
	app.Infof("Waiting for the browser (up to %s)…", callbackTimeout)

	timer := time.NewTimer(callbackTimeout)
	defer timer.Stop()
	var cb callback
	select {
	case cb = <-callbacks:
	case <-timer.C:
		return nil, RemoteError(fmt.Errorf("timed out after %s waiting for the browser login", callbackTimeout))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if cb.err != nil {
		outcome <- cb.err
		return nil, cb.err
	}
	tok, err := cfg.Exchange(ctx, cb.code, append([]oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}, aud...)...)
	if err != nil {
		err = idpError("exchanging the authorization code failed", err, cb.code, verifier)
	} else {
		err = verify(tok)
	}
	outcome <- err
	if err != nil {
		return nil, err
	}
	return tok, nil
}

const callbackPageCSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// writeCallbackPage answers the browser: success, or the error.
func writeCallbackPage(w http.ResponseWriter, status int, result error) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", callbackPageCSP)
	title, msg := "Logged in", "nmp is signed in: you can close this window."
	if result != nil {
		title, msg = "Login failed", "nmp could not sign in: "+result.Error()+" You can close this window and run \"nmp auth login\" again."
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>%s - nmp</title>
<style>body{font-family:system-ui,sans-serif;margin:3rem auto;max-width:32rem}</style></head>
<body><h1>%s</h1><p id="message">%s</p></body></html>
`, html.EscapeString(title), html.EscapeString(title), html.EscapeString(msg))
}

// loginDevice runs the device authorization grant (RFC 8628).
func loginDevice(ctx context.Context, app *App, f *loginFlags, cfg *oauth2.Config, aud []oauth2.AuthCodeOption) (*oauth2.Token, error) {
	if cfg.Endpoint.DeviceAuthURL == "" {
		return nil, RemoteError(errors.New("the identity provider offers no device login; use --browser or --username"))
	}
	da, err := cfg.DeviceAuth(ctx, aud...)
	if err != nil {
		return nil, idpError("starting the device login failed", err)
	}
	if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
		return nil, RemoteError(errors.New("the identity provider's device authorization response is incomplete"))
	}
	if da.Expiry.IsZero() {
		da.Expiry = time.Now().Add(maxDeviceWait)
	}
	if d := hooksFrom(ctx).devicePollInterval; d > 0 {
		da.Interval = int64(math.Max(1, math.Ceil(d.Seconds())))
	}
	app.Infof("To log in, open this URL in a browser:\n\n    %s\n\nand enter the code: %s\n",
		sanitizeLine(da.VerificationURI), sanitizeLine(da.UserCode))
	openURL(ctx, app, f.noBrowser, cmp.Or(da.VerificationURIComplete, da.VerificationURI))

	stop := app.progress(da.Expiry)
	tok, err := cfg.DeviceAccessToken(ctx, da, aud...)
	stop()
	if err == nil {
		return tok, nil
	}
	var re *oauth2.RetrieveError
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &re) && re.ErrorCode == "expired_token":
		return nil, RemoteError(errors.New("the device code expired before the login completed; run \"nmp auth login\" again"))
	case errors.As(err, &re) && re.ErrorCode == "access_denied":
		return nil, RemoteError(errors.New("the login was denied at the identity provider"))
	}
	return nil, idpError("device login failed", err, da.DeviceCode)
}

// progress shows that the device flow is waiting: a spinner with the time
// left when stderr is a terminal, otherwise one line. stop ends it.
func (a *App) progress(deadline time.Time) (stop func()) {
	f, ok := a.Stderr.(*os.File)
	if !ok || !term.IsTerminal(f) {
		a.Infof("Waiting for the login to complete…")
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		frames := []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			left := time.Until(deadline).Round(time.Second)
			fmt.Fprintf(f, "\r%c Waiting for the login… (code expires in %s) ", frames[i%len(frames)], max(left, 0))
			select {
			case <-done:
				fmt.Fprint(f, "\r\033[K")
				return
			case <-tick.C:
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
