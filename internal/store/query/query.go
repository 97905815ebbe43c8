// Package query parses the untrusted paging, sort and filter parameters of
// list requests (api.md "Lists") into validated store.ListOptions.
package query

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/store"
)

// Limits of list requests.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
	// MaxOffset bounds the rows before a page, (page-1)*page_size, far
	// below the int64 maximum so that no database's offset arithmetic
	// (offset + limit) overflows.
	MaxOffset    = 1 << 53
	maxValueLen  = 1024
	maxInItems   = 100
	maxDataDepth = 8
)

// Kind is the type of a filterable field, which decides its operators.
type Kind int

// Field kinds.
const (
	String Kind = iota + 1
	Timestamp
	Bool
)

// Schema describes what one list endpoint accepts.
type Schema struct {
	// Sort lists the sortable fields; the default sort is -created_at.
	Sort []string
	// Filters maps filterable fields to their kind.
	Filters map[string]Kind
	// DataFilters allows data.<path> string filters (entities).
	DataFilters bool
}

// Result is the parsed request and its normalized echo.
type Result struct {
	Options store.ListOptions
	// Sort is the normalized sort string ("-created_at").
	Sort string
	// Filter is the normalized filter echoed in the page, nil if none.
	Filter map[string]map[string]any
}

var (
	filterKey = regexp.MustCompile(`^filter\[([^\[\]]+)\](?:\[(\$[a-z]+)\])?$`)
	dataSeg   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	opsByKind = map[Kind][]string{
		String:    {store.OpEq, store.OpLike, store.OpIn},
		Timestamp: {store.OpEq, store.OpGt, store.OpGte, store.OpLt, store.OpLte},
		Bool:      {store.OpEq},
	}
)

// Parse validates q against s. Unknown sort fields give 400 invalid_sort,
// unknown filter fields or operators and bad filter values 400
// invalid_filter, bad paging 422. Parameters other than page, page_size,
// sort and filter[...] are left to the caller.
func Parse(q url.Values, s Schema) (Result, error) {
	var r Result
	var err error
	if r.Options.Page, err = intParam(q, "page", 1, 1, 0); err != nil {
		return r, err
	}
	if r.Options.PageSize, err = intParam(q, "page_size", DefaultPageSize, 1, MaxPageSize); err != nil {
		return r, err
	}
	if maxPage := MaxPage(r.Options.PageSize); r.Options.Page > maxPage {
		return r, apierror.Validation(fmt.Sprintf("must be at most %d with page_size %d (the rows before the page would exceed %d)",
			maxPage, r.Options.PageSize, int64(MaxOffset)), "query", "page")
	}
	if r.Sort, err = parseSort(q, s); err != nil {
		return r, err
	}
	r.Options.SortField = strings.TrimPrefix(r.Sort, "-")
	r.Options.SortDesc = strings.HasPrefix(r.Sort, "-")
	if r.Options.Filters, r.Filter, err = parseFilters(q, s); err != nil {
		return r, err
	}
	return r, nil
}

// MaxPage is the largest page whose offset stays within MaxOffset.
func MaxPage(pageSize int) int { return MaxOffset/pageSize + 1 }

func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	vs, ok := q[name]
	if !ok {
		return def, nil
	}
	if len(vs) != 1 {
		return 0, apierror.Validation("must be given once", "query", name)
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil {
		return 0, apierror.Validation("must be an integer", "query", name)
	}
	if n < lo {
		return 0, apierror.Validation("must be at least "+strconv.Itoa(lo), "query", name)
	}
	if hi > 0 && n > hi {
		return 0, apierror.Validation("must be at most "+strconv.Itoa(hi), "query", name)
	}
	return n, nil
}

func parseSort(q url.Values, s Schema) (string, error) {
	vs, ok := q["sort"]
	if !ok || (len(vs) == 1 && vs[0] == "") {
		return "-created_at", nil
	}
	if len(vs) != 1 {
		return "", apierror.BadRequest("invalid_sort", "sort must be given once")
	}
	field := strings.TrimPrefix(vs[0], "-")
	for _, f := range s.Sort {
		if f == field {
			return vs[0], nil
		}
	}
	return "", apierror.BadRequest("invalid_sort", "Invalid sort field %q; valid fields: %s",
		clip(field), strings.Join(s.Sort, ", "))
}

func parseFilters(q url.Values, s Schema) ([]store.Filter, map[string]map[string]any, error) {
	keys := make([]string, 0, len(q))
	for k := range q {
		if strings.HasPrefix(k, "filter") {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, nil, nil
	}
	sort.Strings(keys)
	var filters []store.Filter
	echo := make(map[string]map[string]any)
	for _, k := range keys {
		m := filterKey.FindStringSubmatch(k)
		if m == nil {
			return nil, nil, invalidFilter("malformed filter parameter %q; use filter[field] or filter[field][$op]", clip(k))
		}
		if len(q[k]) != 1 {
			return nil, nil, invalidFilter("filter parameter %q given more than once", clip(k))
		}
		field, op, raw := m[1], m[2], q[k][0]
		if op == "" {
			op = store.OpEq
		}
		kind, err := fieldKind(s, field)
		if err != nil {
			return nil, nil, err
		}
		f, shown, err := parseValue(field, op, kind, raw)
		if err != nil {
			return nil, nil, err
		}
		filters = append(filters, f)
		if echo[field] == nil {
			echo[field] = map[string]any{}
		}
		echo[field][op] = shown
	}
	return filters, echo, nil
}

func fieldKind(s Schema, field string) (Kind, error) {
	if k, ok := s.Filters[field]; ok {
		return k, nil
	}
	if rest, ok := strings.CutPrefix(field, "data."); ok && s.DataFilters {
		segs := strings.Split(rest, ".")
		if len(segs) > maxDataDepth {
			return 0, invalidFilter("filter path %q is deeper than %d levels", clip(field), maxDataDepth)
		}
		for _, seg := range segs {
			if !dataSeg.MatchString(seg) {
				return 0, invalidFilter("invalid filter path %q", clip(field))
			}
		}
		return String, nil
	}
	return 0, invalidFilter("Unknown filter field %q", clip(field))
}

func parseValue(field, op string, kind Kind, raw string) (store.Filter, any, error) {
	if !slices.Contains(opsByKind[kind], op) {
		return store.Filter{}, nil, invalidFilter("operator %s is not supported for field %q", clip(op), field)
	}
	if len(raw) > maxValueLen {
		return store.Filter{}, nil, invalidFilter("filter value for %q is longer than %d characters", field, maxValueLen)
	}
	f := store.Filter{Field: field, Op: op, Values: []string{raw}}
	switch {
	case op == store.OpIn:
		var items []string
		for _, it := range strings.Split(raw, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		if len(items) == 0 || len(items) > maxInItems {
			return f, nil, invalidFilter("$in for %q needs 1 to %d comma-separated values", field, maxInItems)
		}
		f.Values = items
		return f, items, nil
	case kind == Timestamp:
		ts, err := store.ParseTimestamp(raw)
		if err != nil {
			return f, nil, invalidFilter("filter value for %q: %v", field, err)
		}
		f.Values = []string{ts.String()}
		return f, ts.String(), nil
	case kind == Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil || (raw != "true" && raw != "false") {
			return f, nil, invalidFilter("filter value for %q must be true or false", field)
		}
		f.Values = []string{strconv.FormatBool(b)}
		return f, b, nil
	}
	return f, raw, nil
}

func invalidFilter(format string, args ...any) error {
	return apierror.BadRequest("invalid_filter", format, args...)
}

// clip bounds untrusted text echoed in error messages.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
