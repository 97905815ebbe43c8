package store

// Filter operators.
const (
	OpEq   = "$eq"
	OpLike = "$like"
	OpIn   = "$in"
	OpGt   = "$gt"
	OpGte  = "$gte"
	OpLt   = "$lt"
	OpLte  = "$lte"
)

// Filter is one validated condition of a list request. Field is a public
// field name of the listed resource ("name", "created_at", "data.a.b").
// Values holds one value, except for $in.
type Filter struct {
	Field  string
	Op     string
	Values []string
}

// ListOptions are the validated paging, sort and filter of a list.
type ListOptions struct {
	Page     int
	PageSize int
	// SortField is a public field name; SortDesc reverses the order.
	SortField string
	SortDesc  bool
	Filters   []Filter
}

// Offset is the number of rows before the requested page.
func (o ListOptions) Offset() int { return (o.Page - 1) * o.PageSize }

// Page is one page of results with exact totals.
type Page[T any] struct {
	Items        []T
	Page         int
	PageSize     int
	TotalResults int
}

// TotalPages is 0 for no results.
func (p Page[T]) TotalPages() int {
	if p.TotalResults == 0 || p.PageSize == 0 {
		return 0
	}
	return (p.TotalResults + p.PageSize - 1) / p.PageSize
}
