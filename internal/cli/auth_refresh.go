package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/nmp-project/nmp/internal/cli/clientconfig"
	"github.com/nmp-project/nmp/internal/client"
)

// refreshLockTimeout bounds the wait for another process refreshing the
// same context's token.
const refreshLockTimeout = 30 * time.Second

// errSessionExpired is the refresh failure that only a new login fixes.
var errSessionExpired = errors.New(`session expired, run "nmp auth login"`)

// autoRefresh refreshes the saved token of the selected context before a
// command calls the server, when it is a JWT that expires within five
// minutes. It does nothing with --no-auto-refresh, for a token from
// NMP_ACCESS_TOKEN, or for an opaque token. App.Client calls it, so that
// every server-calling command gets it.
func (a *App) autoRefresh() error {
	need, err := a.needsRefresh()
	if err != nil || !need {
		return err
	}
	// App.Client has no context: Ctrl-C and SIGTERM still cancel the
	// refresh.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return a.refresh(ctx, false)
}

// refreshIfNeeded is autoRefresh for commands that have a context.
func (a *App) refreshIfNeeded(ctx context.Context) error {
	need, err := a.needsRefresh()
	if err != nil || !need {
		return err
	}
	return a.refresh(ctx, false)
}

// needsRefresh reports whether the automatic refresh applies: not
// disabled, a token from the config file, a JWT expiring soon.
func (a *App) needsRefresh() (bool, error) {
	if a.Global.NoAutoRefresh {
		return false, nil
	}
	s, err := a.Settings()
	if err != nil {
		return false, err
	}
	return s.TokenSource == clientconfig.TokenSourceConfig && expiresSoon(s.Token, time.Now()), nil
}

// refreshLockPath is "<config file>.<context>.oauth-refresh.lock".
func refreshLockPath(configPath, contextName string) string {
	return configPath + "." + url.PathEscape(contextName) + ".oauth-refresh.lock"
}

// lockFile takes an exclusive lock on path, waiting at most
// refreshLockTimeout.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	l := flock.New(path, flock.SetPermissions(0o600))
	lctx, cancel := context.WithTimeout(ctx, refreshLockTimeout)
	defer cancel()
	if _, err := l.TryLockContext(lctx, 20*time.Millisecond); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, LocalError(fmt.Errorf("timed out after %s waiting for another nmp process refreshing the token (lock %s)", refreshLockTimeout, path))
		}
		return nil, LocalError(fmt.Errorf("locking %s: %w", path, err))
	}
	return func() { _ = l.Unlock() }, nil
}

// refresh renews the saved token of the selected context under the
// context's refresh lock. Unless forced, a token that another process
// saved meanwhile and that is good for more than five minutes is reused.
// Unsigned tokens are re-minted; OIDC tokens are refreshed with the saved
// refresh token and scope. Without a refresh token the current token
// stays (forced: a local error). A forced refresh saves the new token only
// when the server accepts it.
func (a *App) refresh(ctx context.Context, forced bool) error {
	s, err := a.Settings()
	if err != nil {
		return err
	}
	notLoggedIn := func() error {
		if forced {
			return LocalError(errors.New(`not logged in: run "nmp auth login"`))
		}
		return nil
	}
	if s.ContextName == "" || s.Context == nil {
		return notLoggedIn()
	}
	path, err := a.ConfigPath()
	if err != nil {
		return err
	}
	unlock, err := lockFile(ctx, refreshLockPath(path, s.ContextName))
	if err != nil {
		return err
	}
	defer unlock()

	// Re-read: another process may have refreshed while we waited.
	f, err := clientconfig.Load(path, nil)
	if err != nil {
		return LocalError(err)
	}
	a.config, a.settings = nil, nil
	c := f.Context(s.ContextName)
	if c == nil {
		return notLoggedIn()
	}
	userName := c.User
	u := f.User(userName)
	if u == nil || u.Type == clientconfig.UserTypeNoAuth || u.Token == "" {
		return notLoggedIn()
	}
	now := time.Now()
	if !forced && !expiresSoon(u.Token, now) {
		return nil // refreshed by another process (or not a JWT)
	}
	if p, ok := decodeJWT(u.Token); ok && p.unsigned() {
		token, err := remintUnsigned(p, now)
		if err != nil {
			return LocalError(err)
		}
		return a.saveRefreshed(ctx, s.ContextName, userName, u.Token, u.RefreshToken, token, "")
	}
	if u.RefreshToken == "" {
		if forced {
			return LocalError(fmt.Errorf(`context %s has no refresh token: run "nmp auth login"`, s.ContextName))
		}
		return nil
	}
	api, err := a.serverClient(s.BaseURL, trustOf(s), "")
	if err != nil {
		return err
	}
	disc, err := api.Discovery(ctx)
	if err != nil {
		return err
	}
	if disc.OIDC == nil || disc.OIDC.TokenEndpoint == "" || disc.OIDC.ClientID == "" {
		return RemoteError(fmt.Errorf("cannot refresh the token: the server at %s has no OIDC login configured", s.BaseURL))
	}
	res, err := postRefresh(a.idpContext(ctx), disc.OIDC, u.RefreshToken, u.Scope)
	if err != nil {
		var te *oauthTokenError
		if errors.As(err, &te) && te.Code == "invalid_grant" {
			return RemoteError(errSessionExpired)
		}
		return idpError("refreshing the token failed", err, u.RefreshToken)
	}
	// nmp auth refresh saves only a token the server accepts; the
	// automatic refresh skips the round trip (the command's own request
	// would report a refusal).
	if forced {
		if err := a.serverAccepts(ctx, s.BaseURL, trustOf(s), disc.OIDC, res.AccessToken, "refreshed token"); err != nil {
			return err
		}
	}
	return a.saveRefreshed(ctx, s.ContextName, userName, u.Token, u.RefreshToken, res.AccessToken, res.RefreshToken)
}

// saveRefreshed stores a renewed token for the user, unless the user's
// credentials changed since they were read (a logout or a new login wins).
// An empty newRefresh keeps the refresh token.
func (a *App) saveRefreshed(ctx context.Context, contextName, userName, oldToken, oldRefresh, newToken, newRefresh string) error {
	return a.UpdateConfig(ctx, func(f *clientconfig.File) error {
		u := f.User(userName)
		if u == nil || u.Token != oldToken || u.RefreshToken != oldRefresh {
			return nil
		}
		u.Token = newToken
		if newRefresh != "" {
			u.RefreshToken = newRefresh
		}
		return nil
	})
}

// tokenResponse is a successful RFC 6749 section 5.1 response.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	IDToken      string `json:"id_token"`
}

// oauth2Token is tr as golang.org/x/oauth2 returns tokens, with the scope
// and ID token as extras.
func (tr *tokenResponse) oauth2Token() *oauth2.Token {
	tok := &oauth2.Token{AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken, TokenType: tr.TokenType}
	extra := map[string]any{}
	if tr.Scope != "" {
		extra["scope"] = tr.Scope
	}
	if tr.IDToken != "" {
		extra["id_token"] = tr.IDToken
	}
	return tok.WithExtra(extra)
}

// maxTokenResponse bounds a token endpoint's response body.
const maxTokenResponse = 1 << 20

// postRefresh sends grant_type=refresh_token as a public client: client_id,
// the refresh token, the scope saved at login (never wider) and the
// audience the login asked for.
func postRefresh(ctx context.Context, o *client.OIDCDiscovery, refreshToken, scope string) (*tokenResponse, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	}
	if scope != "" {
		form.Set("scope", scope)
	}
	return postToken(ctx, o, form)
}

// postToken sends a token request as a public client (client_id in the
// form, no secret), with the audience of requestedAudience, and decodes
// the RFC 6749 answer.
func postToken(ctx context.Context, o *client.OIDCDiscovery, form url.Values) (*tokenResponse, error) {
	form.Set("client_id", o.ClientID)
	if aud := requestedAudience(o); aud != "" {
		form.Set("audience", aud)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("invalid token endpoint: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	hc, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if hc == nil {
		hc = &http.Client{Timeout: idpTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }() // only read from: a close error loses nothing
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		te := &oauthTokenError{Status: resp.StatusCode}
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == "application/json" || json.Valid(body) {
			if json.Unmarshal(body, &e) == nil {
				te.Code, te.Description = e.Error, e.Description
			}
		}
		return nil, te
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, errors.New("the token endpoint's response is not JSON")
	}
	if tr.AccessToken == "" {
		return nil, errors.New("the token endpoint returned no access token")
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return nil, fmt.Errorf("the token endpoint returned an unsupported token type %q", tr.TokenType)
	}
	return &tr, nil
}

func newAuthRefreshCommand(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "refresh",
		Short: "Refresh the saved token of the context now",
		Long: "Renew the saved access token: with the refresh token from the login (OIDC), or by\n" +
			"re-minting an unsigned development token with the same claims and lifetime.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := app.refresh(cmd.Context(), true); err != nil {
				return err
			}
			s, err := app.Settings()
			if err != nil {
				return err
			}
			msg := fmt.Sprintf("Token refreshed (context %s)", s.ContextName)
			if s.User != nil {
				if p, ok := decodeJWT(s.User.Token); ok {
					if exp, ok := p.expiry(); ok {
						msg += "; it expires at " + exp.UTC().Format(time.RFC3339)
					}
				}
			}
			app.Infof("%s.", msg)
			if s.TokenSource == clientconfig.TokenSourceEnv {
				app.Infof("Warning: %s is set and takes precedence over the saved token.", clientconfig.EnvAccessToken)
			}
			return nil
		},
	}
}
