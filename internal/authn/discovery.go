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

	"golang.org/x/sync/singleflight"
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
// serves the last good copy when a refresh fails. As the key-set cache
// (internal/authn/jwtverify) does, concurrent callers share one fetch
// (single-flight, without holding a lock across it), and after a failed
// fetch the IdP is not asked again before MinGap has passed: callers
// meanwhile get the last good copy (or, without one, the last error) at
// once.
type DiscoveryCache struct {
	Issuer string
	TTL    time.Duration // 0 = fetch every time
	Client *http.Client
	Now    func() time.Time
	// MinGap is the least time between a failed fetch and the next one
	// (0: one second).
	MinGap time.Duration

	sf          singleflight.Group
	mu          sync.Mutex
	doc         *ProviderMetadata
	fetched     time.Time
	lastAttempt time.Time
	lastErr     error // the last fetch's error; nil when it succeeded
}

// Get returns the document, fetching it when the cached copy is older
// than the TTL. On a failed fetch the last good copy is returned with the
// error; with no copy at all, nil and the error. A caller whose ctx ends
// stops waiting for the shared fetch (which goes on for the others).
func (c *DiscoveryCache) Get(ctx context.Context) (*ProviderMetadata, error) {
	c.mu.Lock()
	doc, fresh := c.doc, c.fresh(c.Now())
	c.mu.Unlock()
	if fresh {
		return doc, nil
	}
	ch := c.sf.DoChan("discovery", func() (any, error) {
		return c.refresh(context.WithoutCancel(ctx))
	})
	select {
	case r := <-ch:
		doc, _ := r.Val.(*ProviderMetadata)
		return doc, r.Err
	case <-ctx.Done():
		return doc, ctx.Err()
	}
}

// fresh: the cached copy is within its TTL (c.mu held).
func (c *DiscoveryCache) fresh(now time.Time) bool {
	return c.doc != nil && c.TTL > 0 && now.Sub(c.fetched) < c.TTL
}

// refresh is the single in-flight fetch: it decides under the lock
// whether a network fetch is due, and fetches without holding it.
func (c *DiscoveryCache) refresh(ctx context.Context) (*ProviderMetadata, error) {
	gap := c.MinGap
	if gap <= 0 {
		gap = time.Second
	}
	c.mu.Lock()
	now := c.Now()
	switch {
	case c.fresh(now): // refreshed by the previous flight meanwhile
		doc := c.doc
		c.mu.Unlock()
		return doc, nil
	case c.lastErr != nil && now.Sub(c.lastAttempt) < gap:
		// A failing IdP is asked at most once per gap.
		doc, err := c.doc, fmt.Errorf("identity provider not asked again within %s of a failed fetch: %w", gap, c.lastErr)
		c.mu.Unlock()
		return c.stale(doc, err)
	}
	c.lastAttempt = now
	c.mu.Unlock()

	// On an error md is never used: FetchProviderMetadata returns the
	// document of another issuer alongside ErrIssuerMismatch, and nothing
	// in it may be served or cached.
	md, err := FetchProviderMetadata(ctx, c.Client, c.Issuer)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr = err
	if err != nil {
		return c.stale(c.doc, err)
	}
	c.doc, c.fetched = md, now
	return md, nil
}

// stale returns the last good copy with err, or nil and err.
func (c *DiscoveryCache) stale(doc *ProviderMetadata, err error) (*ProviderMetadata, error) {
	if doc != nil {
		return doc, errors.Join(errors.New("serving the last good discovery document"), err)
	}
	return nil, err
}
