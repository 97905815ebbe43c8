package doctor

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/nmp-project/nmp/internal/client"
	"github.com/nmp-project/nmp/internal/version"
)

// maxBody bounds what a probe reads of a response.
const maxBody = 1 << 20

// answer is an HTTP response as the probes compare them.
type answer struct {
	Status int
	// Code and Detail are the error body's, "" otherwise.
	Code, Detail string
	Header       http.Header
	Body         []byte
}

// String is the answer as a finding shows it: "HTTP 401 missing_token".
func (a answer) String() string {
	s := fmt.Sprintf("HTTP %d", a.Status)
	if a.Code != "" {
		s += " " + a.Code
	}
	return s
}

// call sends a request without a token (unless token is set) to the nmp
// server and reads the answer.
func (e *env) call(ctx context.Context, method, path string, header http.Header, token string) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(e.BaseURL, "/")+path, nil)
	if err != nil {
		return answer{}, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	return do(e.HTTP, req, token)
}

func do(hc *http.Client, req *http.Request, token string) (answer, error) {
	req.Header.Set("User-Agent", "nmp/"+version.Version)
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return answer{}, describe(req.URL, err)
	}
	defer func() { _ = resp.Body.Close() }() // only read from
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return answer{}, describe(req.URL, err)
	}
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: body}
	var e struct {
		Code   string `json:"code"`
		Detail any    `json:"detail"`
	}
	if resp.StatusCode >= 300 && json.Unmarshal(body, &e) == nil {
		a.Code = e.Code
		if s, ok := e.Detail.(string); ok {
			a.Detail = s
		}
	}
	return a, nil
}

// describe is a transport error without the URL's query or user info.
func describe(u *url.URL, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s://%s did not answer in time", u.Scheme, u.Host)
	}
	return fmt.Errorf("cannot reach %s://%s: %v", u.Scheme, u.Host, err)
}

// HTTPClient returns a client for the nmp server that trusts the system
// roots plus the CA certificates of caFile and caData (as the other
// commands do) and follows no redirects: a probe must see what the server
// answers.
func HTTPClient(caFile string, caData []byte) (*http.Client, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" || len(caData) > 0 {
		pool, err := client.RootPool(caFile, caData)
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: transport, CheckRedirect: noRedirect}, nil
}

// discovery is the part of GET /apis/auth/discovery the probes read.
type discovery struct {
	AuthEnabled *bool `json:"auth_enabled"`
	OIDC        *struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
		ClientID      string `json:"client_id"`
	} `json:"oidc"`
}

// discover fetches the server's discovery document.
func (e *env) discover(ctx context.Context) (*discovery, answer, error) {
	a, err := e.call(ctx, http.MethodGet, "/apis/auth/discovery", nil, "")
	if err != nil {
		return nil, a, err
	}
	if a.Status != http.StatusOK {
		return nil, a, fmt.Errorf("discovery answered %s", a)
	}
	var d discovery
	if err := json.Unmarshal(a.Body, &d); err != nil {
		return nil, a, fmt.Errorf("discovery answered HTTP 200 with a body that is not its JSON: %v", err)
	}
	return &d, a, nil
}
