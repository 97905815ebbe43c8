package authn

import (
	"errors"
	"net/http"
	"time"

	"github.com/nmp-project/nmp/internal/version"
)

// UserAgent is the User-Agent of every request to an IdP: nmp/<version>.
func UserAgent() string { return "nmp/" + version.Version }

// UserAgentTransport sets User-Agent: nmp/<version> on requests that
// carry none, then sends them with Base (http.DefaultTransport when nil).
// Use it for every HTTP client that talks to an IdP (discovery, JWKS,
// introspection).
type UserAgentTransport struct {
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper. The caller's request is not
// modified (a clone carries the header).
func (t UserAgentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if req.Header.Get("User-Agent") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", UserAgent())
	}
	return base.RoundTrip(req)
}

// NewIdPClient returns an HTTP client for IdP requests: User-Agent
// nmp/<version>, the timeout, and redirects only as CheckRedirect allows
// (nil: Go's default policy).
func NewIdPClient(timeout time.Duration, checkRedirect func(*http.Request, []*http.Request) error) *http.Client {
	return &http.Client{Timeout: timeout, Transport: UserAgentTransport{}, CheckRedirect: checkRedirect}
}

// NoDowngrade is the redirect policy of every request to an IdP's keys or
// discovery: at most 5 redirects, and never from https to http, where the
// key set could be substituted in transit.
func NoDowngrade(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("too many redirects")
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return errors.New("redirect from https to http refused")
	}
	return nil
}
