// Package client is a small typed HTTP client for the NMP REST API.
//
// It never retries, never sends identity headers, and sends the bearer token
// only when one is configured. With a Verbose writer it logs one line per
// request (method, URL without secret query values, status, duration) and
// never headers or bodies.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nmp-project/nmp/internal/version"
)

// DefaultTimeout bounds every request, including reading the response body.
const DefaultTimeout = 30 * time.Second

const (
	maxErrorBody   = 1 << 20
	maxSuccessBody = 64 << 20
)

// Options configure a Client.
type Options struct {
	// BaseURL is the server URL, e.g. "https://nmp.example.com"; a path
	// prefix is kept.
	BaseURL string
	// Token is sent as "Authorization: Bearer <Token>" when not empty.
	Token string
	// CertificateAuthority is a PEM file of CA certificates trusted for
	// TLS in addition to the system roots; empty means the system roots.
	CertificateAuthority string
	// CertificateAuthorityData is PEM CA certificates trusted in addition
	// to the system roots (and to CertificateAuthority).
	CertificateAuthorityData []byte
	// AllowInsecureHTTP permits an http:// base URL whose host is not
	// loopback; without it New fails with ErrInsecureHTTP, because the
	// token would travel in clear text.
	AllowInsecureHTTP bool
	// Timeout overrides DefaultTimeout when positive.
	Timeout time.Duration
	// Verbose, when not nil, receives one line per request.
	Verbose io.Writer
}

// Client calls the NMP REST API. It is safe for concurrent use.
type Client struct {
	base    string
	token   string
	http    *http.Client
	verbose io.Writer
}

// ErrInsecureHTTP is returned (wrapped) by New for an http:// base URL
// whose host is not loopback, unless Options.AllowInsecureHTTP is set.
var ErrInsecureHTTP = errors.New("plain http:// to a host that is not loopback")

// New returns a Client for opts. It fails on an invalid base URL, on an
// http:// base URL to a host that is not loopback (ErrInsecureHTTP) unless
// AllowInsecureHTTP is set, and on an unreadable or empty certificate
// authority.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(opts.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid base URL %q: want http(s)://host[:port][/path]", opts.BaseURL)
	}
	if err := CheckPlainHTTP(u, opts.AllowInsecureHTTP); err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.CertificateAuthority != "" || len(opts.CertificateAuthorityData) > 0 {
		pool, err := RootPool(opts.CertificateAuthority, opts.CertificateAuthorityData)
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig.RootCAs = pool
	}
	return &Client{
		base:    strings.TrimRight(u.String(), "/"),
		token:   opts.Token,
		http:    &http.Client{Timeout: timeout, Transport: transport},
		verbose: opts.Verbose,
	}, nil
}

// CheckPlainHTTP returns an error wrapping ErrInsecureHTTP when u is an
// http:// URL whose host is not loopback ("localhost" or a loopback IP
// address) and allow is false.
func CheckPlainHTTP(u *url.URL, allow bool) error {
	if allow || !strings.EqualFold(u.Scheme, "http") || IsLoopbackHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%w (%s): the access token would travel in clear text", ErrInsecureHTTP, u.Host)
}

// IsLoopbackHost reports whether host is "localhost" (or a name under
// ".localhost") or a loopback IP address.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Unmap().IsLoopback()
}

// RootPool is the system roots plus the CA certificates of the PEM file
// path and of data (a context's certificate_authority and
// certificate_authority_data); each given source must hold a certificate.
func RootPool(path string, data []byte) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system roots on this platform: only the given CA
	}
	if path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("certificate authority: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("certificate authority %s: no PEM certificates found", path)
		}
	}
	if len(data) > 0 && !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("certificate authority data: no PEM certificates found")
	}
	return pool, nil
}

// Do sends one request to path (already escaped, starting with "/") with the
// query, and a JSON body when in is not nil. A 2xx JSON response is decoded
// into out when out is not nil. Errors are *APIError, *NetworkError or
// *ResponseError.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("User-Agent", "nmp/"+version.Version)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.logf("%s %s -> failed (%s)", method, logURL(req.URL), since(start))
		return &NetworkError{Method: method, URL: logURL(req.URL), Err: unwrapURLError(err)}
	}
	defer func() { _ = resp.Body.Close() }() // only read from: a close error loses nothing
	c.logf("%s %s -> %d (%s)", method, logURL(req.URL), resp.StatusCode, since(start))

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeAPIError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxSuccessBody)).Decode(out); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return &NetworkError{Method: method, URL: logURL(req.URL), Err: err}
		}
		return &ResponseError{Status: resp.StatusCode, Err: err}
	}
	return nil
}

func decodeAPIError(resp *http.Response) error {
	apiErr := &APIError{Status: resp.StatusCode}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body struct {
		Detail json.RawMessage `json:"detail"`
		Code   string          `json:"code"`
		// A 403's explanation (DeniedError).
		Reason              string   `json:"reason"`
		Principal           string   `json:"principal"`
		Email               string   `json:"email"`
		RequiredPermissions []string `json:"required_permissions"`
		Workspace           string   `json:"workspace"`
		RequiredScopes      []string `json:"required_scopes"`
	}
	if json.Unmarshal(raw, &body) == nil {
		apiErr.Code = body.Code
		if json.Unmarshal(body.Detail, &apiErr.Detail) != nil && len(body.Detail) > 0 && string(body.Detail) != "null" {
			// Not a string (e.g. a list of validation errors): show it as JSON.
			apiErr.Detail = string(body.Detail)
		}
	}
	if apiErr.Detail == "" {
		apiErr.Detail = http.StatusText(resp.StatusCode)
		if apiErr.Detail == "" {
			apiErr.Detail = "HTTP error"
		}
	}
	if resp.StatusCode == http.StatusForbidden && body.Reason != "" {
		d := &DeniedError{APIError: apiErr, Reason: body.Reason, Principal: body.Principal, Email: body.Email,
			RequiredPermissions: body.RequiredPermissions, Workspace: body.Workspace, RequiredScopes: body.RequiredScopes}
		if resp.Request != nil && resp.Request.URL != nil {
			d.Method, d.Path = resp.Request.Method, resp.Request.URL.EscapedPath()
		}
		return d
	}
	return apiErr
}

func (c *Client) logf(format string, args ...any) {
	if c.verbose != nil {
		fmt.Fprintf(c.verbose, "nmp: "+format+"\n", args...)
	}
}

func since(start time.Time) time.Duration {
	return time.Since(start).Round(time.Millisecond)
}

// loggableQueryKeys are query parameters whose values are never secret.
var loggableQueryKeys = map[string]bool{
	"page": true, "page_size": true, "sort": true, "wait_role_propagation": true,
}

// logURL renders u for logs: no user info, and query values replaced by
// "REDACTED" except for known non-secret parameters.
func logURL(u *url.URL) string {
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		q := c.Query()
		for key, values := range q {
			if loggableQueryKeys[key] || strings.HasPrefix(key, "filter[") {
				continue
			}
			for i := range values {
				values[i] = "REDACTED"
			}
		}
		c.RawQuery = q.Encode()
	}
	return c.String()
}
