package client

import (
	"context"
	"net/http"
)

// ListMembers returns the members of a workspace, sorted by principal.
func (c *Client) ListMembers(ctx context.Context, workspace string) ([]Member, error) {
	var resp struct {
		Data []Member `json:"data"`
	}
	if err := c.Do(ctx, http.MethodGet, workspacesPath(workspace, "members"), nil, nil, &resp); err != nil {
		return nil, err
	}
	return resp.Data, nil
}

// CreateMember grants roles to principal in workspace (the server defaults
// to Editor when roles is empty) and returns all its current roles.
func (c *Client) CreateMember(ctx context.Context, workspace, principal string, roles []string, opts WriteOptions) (*Member, error) {
	body := struct {
		Principal string   `json:"principal"`
		Roles     []string `json:"roles,omitempty"`
	}{principal, roles}
	var m Member
	if err := c.Do(ctx, http.MethodPost, workspacesPath(workspace, "members"), opts.query(), body, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// UpdateMember replaces the roles of principal in workspace.
func (c *Client) UpdateMember(ctx context.Context, workspace, principal string, roles []string, opts WriteOptions) (*Member, error) {
	body := struct {
		Roles []string `json:"roles"`
	}{roles}
	var m Member
	if err := c.Do(ctx, http.MethodPut, workspacesPath(workspace, "members", principal), opts.query(), body, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// DeleteMember revokes every role of principal in workspace.
func (c *Client) DeleteMember(ctx context.Context, workspace, principal string, opts WriteOptions) (*DeleteResponse, error) {
	var resp DeleteResponse
	if err := c.Do(ctx, http.MethodDelete, workspacesPath(workspace, "members", principal), opts.query(), nil, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
