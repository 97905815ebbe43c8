package client

import (
	"context"
	"net/http"
)

// authPrefix is the route prefix of the auth service.
const authPrefix = "/apis/auth/v2"

// SelfCheckRequest asks whether a request or a set of permissions is
// allowed: set Method and Path, or Workspace and Permissions.
type SelfCheckRequest struct {
	Method      string   `json:"method,omitempty"`
	Path        string   `json:"path,omitempty"`
	Workspace   string   `json:"workspace,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
	// As asks on behalf of another principal (PlatformAdmin callers only).
	As *SelfCheckSubject `json:"as,omitempty"`
}

// SelfCheckSubject is the principal a PlatformAdmin asks about.
type SelfCheckSubject struct {
	PrincipalID string   `json:"principal_id"`
	Email       string   `json:"email,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	Scopes      []string `json:"scopes,omitempty"`
}

// SelfCheckResult is the server's answer.
type SelfCheckResult struct {
	Allowed bool   `json:"allowed" yaml:"allowed"`
	Reason  string `json:"reason" yaml:"reason"`
}

// SelfCheck asks POST /apis/auth/v2/self-check whether the current
// credential (or req.As) is allowed.
func (c *Client) SelfCheck(ctx context.Context, req SelfCheckRequest) (*SelfCheckResult, error) {
	var res SelfCheckResult
	if err := c.Do(ctx, http.MethodPost, authPrefix+"/self-check", nil, req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
