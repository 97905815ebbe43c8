package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// accessKeysPath is the access-key collection of the auth service.
const accessKeysPath = "/apis/auth/v2/access-keys"

// AccessKey is an access key's metadata (never its token).
type AccessKey struct {
	JTI                  string   `json:"jti" yaml:"jti"`
	Name                 string   `json:"name" yaml:"name"`
	Description          string   `json:"description" yaml:"description"`
	Principal            string   `json:"principal" yaml:"principal"`
	EntityType           string   `json:"entity_type" yaml:"entity_type"`
	Status               string   `json:"status" yaml:"status"`
	Scopes               []string `json:"scopes" yaml:"scopes"`
	Issuer               string   `json:"issuer" yaml:"issuer"`
	Audiences            []string `json:"audiences" yaml:"audiences"`
	CreatedAt            string   `json:"created_at" yaml:"created_at"`
	ExpiresAt            *string  `json:"expires_at" yaml:"expires_at"`
	GracePeriodExpiresAt *string  `json:"grace_period_expires_at" yaml:"grace_period_expires_at"`
	LastUsedAt           *string  `json:"last_used_at" yaml:"last_used_at"`
}

// MintedAccessKey is a new key with its token, which the server shows
// only in this answer.
type MintedAccessKey struct {
	AccessKey `yaml:",inline"`
	Token     string `json:"token" yaml:"token"`
	TokenType string `json:"token_type" yaml:"token_type"`
}

// CreateAccessKeyRequest is the body of a create. ExpiresInSeconds nil
// with NoExpiry false asks for the server's default lifetime.
type CreateAccessKeyRequest struct {
	Name             string
	Description      string
	ExpiresInSeconds *int
	NoExpiry         bool
	ServiceAccountID string
	Scopes           []string
}

// CreateAccessKey mints a key.
func (c *Client) CreateAccessKey(ctx context.Context, req CreateAccessKeyRequest) (*MintedAccessKey, error) {
	body := map[string]any{}
	if req.Name != "" {
		body["name"] = req.Name
	}
	if req.Description != "" {
		body["description"] = req.Description
	}
	switch {
	case req.NoExpiry:
		body["expires_in_seconds"] = nil
	case req.ExpiresInSeconds != nil:
		body["expires_in_seconds"] = *req.ExpiresInSeconds
	}
	if req.ServiceAccountID != "" {
		body["service_account_id"] = req.ServiceAccountID
	}
	if req.Scopes != nil {
		body["scopes"] = req.Scopes
	}
	var k MintedAccessKey
	if err := c.Do(ctx, http.MethodPost, accessKeysPath, nil, body, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// AccessKeyPage is one page of keys.
type AccessKeyPage struct {
	Data    []AccessKey `json:"data" yaml:"data"`
	HasMore bool        `json:"has_more" yaml:"has_more"`
}

// ListAccessKeys returns one page of the caller's keys (and, for a
// PlatformAdmin, every service account's); page and size 0 mean the
// server's defaults.
func (c *Client) ListAccessKeys(ctx context.Context, page, size int) (*AccessKeyPage, error) {
	q := url.Values{}
	if page > 0 {
		q.Set("page", strconv.Itoa(page))
	}
	if size > 0 {
		q.Set("page_size", strconv.Itoa(size))
	}
	var p AccessKeyPage
	if err := c.Do(ctx, http.MethodGet, accessKeysPath, q, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// AccessKeyRevoked is the answer of a revoke.
type AccessKeyRevoked struct {
	JTI     string `json:"jti" yaml:"jti"`
	Revoked bool   `json:"revoked" yaml:"revoked"`
}

// RevokeAccessKey revokes a key for good.
func (c *Client) RevokeAccessKey(ctx context.Context, jti string) (*AccessKeyRevoked, error) {
	var r AccessKeyRevoked
	if err := c.Do(ctx, http.MethodDelete, accessKeysPath+escapePath(jti), nil, nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// AccessKeyStatus is the answer of a suspend or unsuspend.
type AccessKeyStatus struct {
	JTI     string `json:"jti" yaml:"jti"`
	Status  string `json:"status" yaml:"status"`
	Changed bool   `json:"changed" yaml:"changed"`
}

// SuspendAccessKey suspends (or, with resume, unsuspends) a key.
func (c *Client) SuspendAccessKey(ctx context.Context, jti string, resume bool) (*AccessKeyStatus, error) {
	action := "suspend"
	if resume {
		action = "unsuspend"
	}
	var s AccessKeyStatus
	if err := c.Do(ctx, http.MethodPost, accessKeysPath+escapePath(jti, action), nil, map[string]any{}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// RotatedAccessKey is the answer of a rotate.
type RotatedAccessKey struct {
	NewKey               MintedAccessKey `json:"new_key" yaml:"new_key"`
	PreviousJTI          string          `json:"previous_jti" yaml:"previous_jti"`
	PreviousStatus       string          `json:"previous_status" yaml:"previous_status"`
	GracePeriodSeconds   int             `json:"grace_period_seconds" yaml:"grace_period_seconds"`
	GracePeriodExpiresAt *string         `json:"grace_period_expires_at" yaml:"grace_period_expires_at"`
}

// RotateAccessKey replaces an active key by a new one; the old key keeps
// working for the grace period (nil: the server's default).
func (c *Client) RotateAccessKey(ctx context.Context, jti string, graceSeconds *int) (*RotatedAccessKey, error) {
	body := map[string]any{}
	if graceSeconds != nil {
		body["grace_period_seconds"] = *graceSeconds
	}
	var r RotatedAccessKey
	if err := c.Do(ctx, http.MethodPost, accessKeysPath+escapePath(jti, "rotate"), nil, body, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
