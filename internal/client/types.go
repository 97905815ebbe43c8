package client

import (
	"net/url"
	"strconv"
)

// Workspace is an entity-store workspace.
type Workspace struct {
	ID          string  `json:"id" yaml:"id"`
	Name        string  `json:"name" yaml:"name"`
	Description *string `json:"description" yaml:"description"`
	CreatedAt   string  `json:"created_at" yaml:"created_at"`
	CreatedBy   *string `json:"created_by" yaml:"created_by"`
	UpdatedAt   string  `json:"updated_at" yaml:"updated_at"`
	UpdatedBy   *string `json:"updated_by" yaml:"updated_by"`
}

// Member is a principal's active roles in a workspace.
type Member struct {
	Principal string   `json:"principal" yaml:"principal"`
	Roles     []string `json:"roles" yaml:"roles"`
	GrantedAt string   `json:"granted_at" yaml:"granted_at"`
	GrantedBy *string  `json:"granted_by" yaml:"granted_by"`
	// LastSeenAt is when the principal last made an authenticated
	// request (for a group, any member's; null: never, and always for "*").
	LastSeenAt *string `json:"last_seen_at" yaml:"last_seen_at"`
}

// DeleteResponse is the body of a successful DELETE.
type DeleteResponse struct {
	Message   string `json:"message" yaml:"message"`
	ID        string `json:"id" yaml:"id"`
	DeletedAt string `json:"deleted_at" yaml:"deleted_at"`
}

// Pagination describes where a Page sits in the full result set.
type Pagination struct {
	Page            int `json:"page" yaml:"page"`
	PageSize        int `json:"page_size" yaml:"page_size"`
	CurrentPageSize int `json:"current_page_size" yaml:"current_page_size"`
	TotalPages      int `json:"total_pages" yaml:"total_pages"`
	TotalResults    int `json:"total_results" yaml:"total_results"`
}

// Page is one page of a paginated list.
type Page[T any] struct {
	Data       []T        `json:"data" yaml:"data"`
	Pagination Pagination `json:"pagination" yaml:"pagination"`
	Sort       string     `json:"sort" yaml:"sort"`
	// Filter is the normalized filter the server applied (nil if none).
	Filter any `json:"filter" yaml:"filter"`
}

// Filter is one list filter: filter[Field]=Value, or
// filter[Field][Operator]=Value when Operator (e.g. "$like") is set.
type Filter struct {
	Field    string
	Operator string
	Value    string
}

// ListOptions are the paging, sorting and filtering parameters of a list.
// Zero values are not sent, so the server defaults apply.
type ListOptions struct {
	Page     int
	PageSize int
	Sort     string
	Filters  []Filter
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	if o.Page > 0 {
		q.Set("page", strconv.Itoa(o.Page))
	}
	if o.PageSize > 0 {
		q.Set("page_size", strconv.Itoa(o.PageSize))
	}
	if o.Sort != "" {
		q.Set("sort", o.Sort)
	}
	for _, f := range o.Filters {
		key := "filter[" + f.Field + "]"
		if f.Operator != "" {
			key += "[" + f.Operator + "]"
		}
		q.Add(key, f.Value)
	}
	return q
}

// WriteOptions modify role-changing writes.
type WriteOptions struct {
	// NoWait sends wait_role_propagation=false: the server answers without
	// waiting for the role change to reach its policy decision point.
	NoWait bool
}

func (o WriteOptions) query() url.Values {
	q := url.Values{}
	if o.NoWait {
		q.Set("wait_role_propagation", "false")
	}
	return q
}
