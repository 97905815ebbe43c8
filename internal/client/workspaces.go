package client

import (
	"context"
	"net/http"
)

// CreateWorkspaceRequest is the body of a workspace creation.
type CreateWorkspaceRequest struct {
	Name string `json:"name"`
	// Description is omitted from the request when nil.
	Description *string `json:"description,omitempty"`
}

// ListWorkspaces returns one page of the workspaces visible to the caller.
func (c *Client) ListWorkspaces(ctx context.Context, opts ListOptions) (*Page[Workspace], error) {
	var page Page[Workspace]
	if err := c.Do(ctx, http.MethodGet, workspacesPath(), opts.query(), nil, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// CreateWorkspace creates a workspace; the caller becomes its Admin.
func (c *Client) CreateWorkspace(ctx context.Context, req CreateWorkspaceRequest, opts WriteOptions) (*Workspace, error) {
	var ws Workspace
	if err := c.Do(ctx, http.MethodPost, workspacesPath(), opts.query(), req, &ws); err != nil {
		return nil, err
	}
	return &ws, nil
}

// GetWorkspace returns the named workspace.
func (c *Client) GetWorkspace(ctx context.Context, name string) (*Workspace, error) {
	var ws Workspace
	if err := c.Do(ctx, http.MethodGet, workspacesPath(name), nil, nil, &ws); err != nil {
		return nil, err
	}
	return &ws, nil
}

// UpdateWorkspace replaces the description of the named workspace.
func (c *Client) UpdateWorkspace(ctx context.Context, name, description string) (*Workspace, error) {
	body := struct {
		Description string `json:"description"`
	}{description}
	var ws Workspace
	if err := c.Do(ctx, http.MethodPut, workspacesPath(name), nil, body, &ws); err != nil {
		return nil, err
	}
	return &ws, nil
}

// DeleteWorkspace deletes the named workspace and revokes its role bindings.
func (c *Client) DeleteWorkspace(ctx context.Context, name string) (*DeleteResponse, error) {
	var resp DeleteResponse
	if err := c.Do(ctx, http.MethodDelete, workspacesPath(name), nil, nil, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
