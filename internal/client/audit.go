package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// auditEventsPath is the audit trail of the auth service.
const auditEventsPath = "/apis/auth/v2/audit-events"

// AuditEvent is one recorded access change. Before and After are the
// target's state as JSON (null for a creation's before and a deletion's
// after).
type AuditEvent struct {
	ID         string          `json:"id" yaml:"id"`
	OccurredAt string          `json:"occurred_at" yaml:"occurred_at"`
	Actor      string          `json:"actor" yaml:"actor"`
	OnBehalfOf *string         `json:"on_behalf_of" yaml:"on_behalf_of"`
	RequestID  *string         `json:"request_id" yaml:"request_id"`
	Action     string          `json:"action" yaml:"action"`
	Workspace  *string         `json:"workspace" yaml:"workspace"`
	Target     string          `json:"target" yaml:"target"`
	Before     json.RawMessage `json:"before" yaml:"-"`
	After      json.RawMessage `json:"after" yaml:"-"`
}

// MarshalYAML renders Before and After as YAML values rather than JSON
// text.
func (e AuditEvent) MarshalYAML() (any, error) {
	state := func(raw json.RawMessage) any {
		var v any
		if len(raw) > 0 {
			_ = json.Unmarshal(raw, &v) // the server sends JSON; otherwise null
		}
		return v
	}
	return map[string]any{"id": e.ID, "occurred_at": e.OccurredAt, "actor": e.Actor, "on_behalf_of": e.OnBehalfOf,
		"request_id": e.RequestID, "action": e.Action, "workspace": e.Workspace, "target": e.Target,
		"before": state(e.Before), "after": state(e.After)}, nil
}

// AuditEventPage is one page of the audit trail, newest first.
type AuditEventPage struct {
	Data    []AuditEvent `json:"data" yaml:"data"`
	HasMore bool         `json:"has_more" yaml:"has_more"`
}

// AuditQuery selects audit events; zero values are left out (the
// server's defaults: every workspace the caller may read, page 1, 100 a
// page). Since and Until are RFC 3339.
type AuditQuery struct {
	Workspace, Principal, Since, Until string
	Page, PageSize                     int
}

// ListAuditEvents returns one page of the audit trail.
func (c *Client) ListAuditEvents(ctx context.Context, in AuditQuery) (*AuditEventPage, error) {
	q := url.Values{}
	for name, v := range map[string]string{"workspace": in.Workspace, "principal": in.Principal, "since": in.Since, "until": in.Until} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if in.Page > 0 {
		q.Set("page", strconv.Itoa(in.Page))
	}
	if in.PageSize > 0 {
		q.Set("page_size", strconv.Itoa(in.PageSize))
	}
	var p AuditEventPage
	if err := c.Do(ctx, http.MethodGet, auditEventsPath, q, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}
