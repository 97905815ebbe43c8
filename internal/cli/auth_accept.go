package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/nmp-project/nmp/internal/client"
)

// requestedAudience is the audience the CLI asks the identity provider
// for: the one the server announces, unless it is the client_id. An IdP
// that issues tokens for the client by default needs no request, and
// some refuse an audience that is not a registered API (Auth0: "Service
// not found", Hydra: "not whitelisted"), which would hide the real
// problem behind an IdP error. "" means no audience parameter.
func requestedAudience(o *client.OIDCDiscovery) string {
	if o.Audience == "" || o.Audience == o.ClientID {
		return ""
	}
	return o.Audience
}

// audienceOptions adds audience=<aud> to the authorization, device
// authorization and token requests of golang.org/x/oauth2.
func audienceOptions(aud string) []oauth2.AuthCodeOption {
	if aud == "" {
		return nil
	}
	return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("audience", aud)}
}

// acceptCheck is the request the CLI sends with a new token to learn
// whether the server accepts it: any answer but 401 means the token was
// validated (whether the request would be allowed does not matter).
var acceptCheck = client.SelfCheckRequest{Method: http.MethodGet, Path: "/apis/entities/v2/workspaces"}

// serverAccepts asks the server at baseURL whether it accepts token, with
// POST /apis/auth/v2/self-check. A 401 is a refusal: the error (exit 3)
// says why in words, from the token's claims where the CLI can tell, and
// that nothing was saved. 2xx and 403 (known principal, not allowed) are
// acceptance. Any other failure cannot tell: a warning, and nil.
func (a *App) serverAccepts(ctx context.Context, baseURL string, trust serverTrust, o *client.OIDCDiscovery, token, what string) error {
	c, err := a.serverClient(baseURL, trust, token)
	if err != nil {
		return err
	}
	_, err = c.SelfCheck(ctx, acceptCheck)
	var ae *client.APIError
	switch {
	case err == nil, errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		return nil
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		return RemoteError(fmt.Errorf("the server at %s refuses the %s, so nothing was saved: %s",
			baseURL, what, refusalReason(token, o, ae.Detail, time.Now())))
	case errors.Is(err, context.Canceled):
		return err
	}
	a.Infof("Warning: could not confirm that the server accepts the %s (%s); saving it anyway.", what, scrub(err.Error(), token))
	return nil
}

// refusalReason explains why the server refused token, from its claims
// decoded without verification (diagnosis only; the server decides):
// opaque token, expiry, issuer, audience. When none of these tells, the
// server's detail. It never contains the token.
func refusalReason(token string, o *client.OIDCDiscovery, detail string, now time.Time) string {
	p, ok := decodeJWT(token)
	if !ok {
		msg := "the identity provider issued an opaque access token (not a JWT), which the server cannot validate locally; "
		if aud := requestedAudience(o); aud != "" {
			msg += fmt.Sprintf("the CLI asked for the audience %q: configure the identity provider to issue JWT access tokens for it "+
				"(for example an API or resource server with that identifier)", aud)
		} else {
			msg += "configure the identity provider to issue JWT access tokens to this client, or register an API at the identity " +
				"provider and set the server's auth.oidc.audience to its identifier so that the CLI asks for it"
		}
		return msg + ", or enable token introspection on the server if it offers it"
	}
	var causes []string
	if exp, ok := p.expiry(); ok && !exp.After(now) {
		causes = append(causes, fmt.Sprintf("the token expired at %s (check the clocks of this machine and of the identity provider)",
			exp.UTC().Format(time.RFC3339)))
	}
	if iss := p.str("iss"); o.Issuer != "" && iss != o.Issuer {
		if iss == "" {
			causes = append(causes, fmt.Sprintf("the token has no issuer (iss); the server accepts tokens from %q", o.Issuer))
		} else if strings.TrimSuffix(iss, "/") == strings.TrimSuffix(o.Issuer, "/") {
			causes = append(causes, fmt.Sprintf("the token's issuer %q and the server's issuer %q differ only by a trailing slash; "+
				"set the server's auth.oidc.issuer to exactly %q", scrub(iss), o.Issuer, scrub(iss)))
		} else {
			causes = append(causes, fmt.Sprintf("the token's issuer %q is not the server's issuer %q "+
				"(auth.oidc.issuer; another issuer must be listed in auth.oidc.additional_issuers)", scrub(iss), o.Issuer))
		}
	}
	if want := o.Audience; want != "" {
		aud := p.strs("aud")
		if !slices.Contains(aud, want) {
			have := "none"
			if len(aud) > 0 {
				b, _ := json.Marshal(aud)
				have = scrub(string(b))
			}
			msg := fmt.Sprintf("the token's audience (aud) is %s but the server expects %q", have, want)
			if requestedAudience(o) != "" {
				msg += ": the identity provider ignored the requested audience"
			}
			msg += fmt.Sprintf("; to fix it, configure the identity provider to issue access tokens for %q "+
				"(an API or resource server with that identifier, or an audience mapper), or set the server's "+
				"auth.oidc.audience to the audience the identity provider issues", want)
			causes = append(causes, msg)
		}
	}
	if len(causes) == 0 {
		return "the server says: " + scrub(detail)
	}
	return strings.Join(causes, "; ")
}

// explainNoEndpoints is the error for a discovery without a token
// endpoint: the server could not use the IdP's discovery document. The
// CLI reads that document itself to name the cause: an issuer that
// differs from the configured one (a trailing slash is named as such),
// or an IdP unreachable from here too.
func explainNoEndpoints(ctx context.Context, o *client.OIDCDiscovery) error {
	const prefix = "the server's OIDC discovery has no token endpoint: "
	docURL := strings.TrimSuffix(o.Issuer, "/") + "/.well-known/openid-configuration"
	hc, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if hc == nil {
		hc = &http.Client{Timeout: idpTimeout}
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	err := getJSON(ctx, hc, docURL, &doc)
	switch {
	case err != nil:
		return RemoteError(fmt.Errorf("%sthe identity provider's discovery document %s cannot be read from here either (%s); the identity provider may be down or unreachable",
			prefix, docURL, scrub(err.Error())))
	case doc.Issuer != o.Issuer && strings.TrimSuffix(doc.Issuer, "/") == strings.TrimSuffix(o.Issuer, "/"):
		return RemoteError(fmt.Errorf("%sthe identity provider names its issuer %q, which differs from the server's auth.oidc.issuer %q only by a trailing slash, "+
			"so the server ignores the identity provider's discovery document and would refuse its tokens; set auth.oidc.issuer to exactly %q",
			prefix, scrub(doc.Issuer), o.Issuer, scrub(doc.Issuer)))
	case doc.Issuer != o.Issuer:
		return RemoteError(fmt.Errorf("%sthe identity provider's discovery document at %s names the issuer %q, not the server's auth.oidc.issuer %q",
			prefix, docURL, scrub(doc.Issuer), o.Issuer))
	}
	return RemoteError(fmt.Errorf("%sthe identity provider's discovery document is readable from here, so the identity provider may be unreachable from the server", prefix))
}

// getJSON GETs url and decodes a 200 JSON answer of at most 1 MiB.
func getJSON(ctx context.Context, hc *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, maxTokenResponse)).Decode(v); err != nil {
		return errors.New("not a JSON document")
	}
	return nil
}
