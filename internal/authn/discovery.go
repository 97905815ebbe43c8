package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ProviderMetadata is the part of an IdP's OpenID discovery document the
// platform uses.
type ProviderMetadata struct {
	Issuer                      string `json:"issuer"`
	AuthorizationEndpoint       string `json:"authorization_endpoint"`
	TokenEndpoint               string `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	UserinfoEndpoint            string `json:"userinfo_endpoint"`
	JWKSURI                     string `json:"jwks_uri"`
	IntrospectionEndpoint       string `json:"introspection_endpoint"`
}

// ErrIssuerMismatch: the discovery document names another issuer than
// the configured one, so nothing in it may be used.
var ErrIssuerMismatch = errors.New("discovery document names another issuer")

// DiscoveryURL is <issuer without trailing slash>/.well-known/openid-configuration.
func DiscoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// MaxIdPResponseBytes bounds every document fetched from an IdP.
const MaxIdPResponseBytes = 1 << 20

// FetchIdP GETs an IdP document (discovery, JWKS): 200 only, body at most
// 1 MiB.
func FetchIdP(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	body, _, err := DoIdP(client, req)
	return body, err
}

// DoIdP sends an IdP request (Accept: application/json): 200 only, body
// at most 1 MiB. It returns the body and the response headers.
func DoIdP(client *http.Client, req *http.Request) ([]byte, http.Header, error) {
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgent())
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }() // only read from: a close error loses nothing
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxIdPResponseBytes))
		return nil, resp.Header, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxIdPResponseBytes+1))
	if err != nil {
		return nil, resp.Header, err
	}
	if len(body) > MaxIdPResponseBytes {
		return nil, resp.Header, errors.New("response body exceeds 1 MiB")
	}
	return body, resp.Header, nil
}

// FetchProviderMetadata GETs and parses an issuer's discovery document;
// its issuer must equal the configured one (else ErrIssuerMismatch, with
// the document for the caller's log).
func FetchProviderMetadata(ctx context.Context, client *http.Client, issuer string) (*ProviderMetadata, error) {
	body, err := FetchIdP(ctx, client, DiscoveryURL(issuer))
	if err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	var md ProviderMetadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, errors.New("discovery document is not valid JSON")
	}
	if md.Issuer != issuer {
		if OnlyTrailingSlashDiffers(md.Issuer, issuer) {
			return &md, fmt.Errorf("%w: %s differs from the configured issuer %s only by a trailing slash; set auth.oidc.issuer to the document's issuer exactly",
				ErrIssuerMismatch, clip(md.Issuer), issuer)
		}
		return &md, fmt.Errorf("%w: %s instead of the configured %s", ErrIssuerMismatch, clip(md.Issuer), issuer)
	}
	return &md, nil
}

// OnlyTrailingSlashDiffers reports whether a and b differ only in a
// trailing slash ("https://idp/" and "https://idp"), the most common
// issuer misconfiguration: issuers are compared exactly.
func OnlyTrailingSlashDiffers(a, b string) bool {
	return a != b && strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}

// DiscoveryCache keeps an issuer's discovery document for a TTL and
// serves the last good copy when a refresh fails.
type DiscoveryCache struct {
	Issuer string
	TTL    time.Duration // 0 = fetch every time
	Client *http.Client
	Now    func() time.Time

	mu      sync.Mutex
	doc     *ProviderMetadata
	fetched time.Time
}

// Get returns the document, fetching it when the cached copy is older
// than the TTL. On a failed fetch the last good copy is returned with the
// error; with no copy at all, nil and the error.
func (c *DiscoveryCache) Get(ctx context.Context) (*ProviderMetadata, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.Now()
	if c.doc != nil && c.TTL > 0 && now.Sub(c.fetched) < c.TTL {
		return c.doc, nil
	}
	// On an error doc is never used: FetchProviderMetadata returns the
	// document of another issuer alongside ErrIssuerMismatch, and nothing
	// in it may be served or cached.
	doc, err := FetchProviderMetadata(ctx, c.Client, c.Issuer)
	if err != nil {
		if c.doc != nil {
			return c.doc, errors.Join(errors.New("serving the last good discovery document"), err)
		}
		return nil, err
	}
	c.doc, c.fetched = doc, now
	return doc, nil
}
