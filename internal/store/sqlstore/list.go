package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/nmp-project/nmp/internal/store"
)

// column maps a public field to its SQL expression.
type column struct {
	expr string
	// timestamp columns compare as instants; bool columns are predicates
	// (expr is true when the field is true).
	kind colKind
}

type colKind int

const (
	colText colKind = iota
	colTime
	colBool
)

// listQuery is a SELECT with validated filters, sort and paging.
type listQuery struct {
	selectCols string
	from       string
	idExpr     string // tiebreaker for a stable order
	columns    map[string]column
	dataCol    string // JSON column for data.<path> filters, "" if none
	where      []string
	args       []any
}

func (l *listQuery) and(cond string, args ...any) {
	l.where = append(l.where, cond)
	l.args = append(l.args, args...)
}

func (l *listQuery) addFilters(d *dialect, filters []store.Filter) error {
	for _, f := range filters {
		col, ok := l.columns[f.Field]
		var pathArgs []any
		if !ok {
			path, isData := strings.CutPrefix(f.Field, "data.")
			if !isData || l.dataCol == "" {
				return fmt.Errorf("filter field %q has no column", f.Field)
			}
			col.expr, pathArgs = expandData(d.dataText(l.dataCol), d.dataPath(strings.Split(path, ".")))
		}
		cond, vals := condition(col, f)
		l.and(cond, append(pathArgs, vals...)...)
	}
	return nil
}

// condition renders one filter on a column.
func condition(col column, f store.Filter) (string, []any) {
	if col.kind == colBool {
		if f.Values[0] == "true" {
			return col.expr, nil
		}
		return "NOT (" + col.expr + ")", nil
	}
	switch f.Op {
	case store.OpLike:
		return "lower(" + col.expr + `) LIKE ? ESCAPE '\'`, []any{"%" + escapeLike(strings.ToLower(f.Values[0])) + "%"}
	case store.OpIn:
		args := make([]any, len(f.Values))
		for i, v := range f.Values {
			args[i] = v
		}
		return col.expr + " IN (" + placeholders(len(args)) + ")", args
	}
	op := map[string]string{store.OpEq: "=", store.OpGt: ">", store.OpGte: ">=", store.OpLt: "<", store.OpLte: "<="}[f.Op]
	if col.kind == colTime {
		ts, _ := store.ParseTimestamp(f.Values[0]) // validated by the query parser
		return col.expr + " " + op + " ?", []any{ts}
	}
	return col.expr + " " + op + " ?", []any{f.Values[0]}
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// scanner reads one resource from a row through scan, so that one
// function serves QueryRow and Rows alike.
type scanner[T any] func(scan func(dest ...any) error) (T, error)

// one runs a single-row query.
func one[T any](ctx context.Context, c conn, read scanner[T], q string, args ...any) (T, error) {
	return read(c.row(ctx, q, args...).Scan)
}

// runList executes the list and returns the page with exact totals.
func runList[T any](ctx context.Context, c conn, l *listQuery, opts store.ListOptions, read scanner[T]) (store.Page[T], error) {
	page := store.Page[T]{Page: opts.Page, PageSize: opts.PageSize, Items: []T{}}
	if err := l.addFilters(c.d, opts.Filters); err != nil {
		return page, err
	}
	where := ""
	if len(l.where) > 0 {
		where = " WHERE " + strings.Join(l.where, " AND ")
	}
	sortCol, ok := l.columns[opts.SortField]
	if !ok {
		return page, fmt.Errorf("sort field %q has no column", opts.SortField)
	}
	dir := " ASC"
	if opts.SortDesc {
		dir = " DESC"
	}
	q := "SELECT " + l.selectCols + ", count(*) OVER () FROM " + l.from + where +
		" ORDER BY " + sortCol.expr + dir + ", " + l.idExpr + dir + " LIMIT ? OFFSET ?"
	rows, err := c.query(ctx, q, append(append([]any{}, l.args...), opts.PageSize, opts.Offset())...)
	if err != nil {
		return page, err
	}
	defer rows.Close() //nolint:errcheck // read-only; rows.Err() reports a failed read
	for rows.Next() {
		item, err := read(func(dest ...any) error {
			return rows.Scan(append(dest, &page.TotalResults)...)
		})
		if err != nil {
			return page, err
		}
		page.Items = append(page.Items, item)
	}
	if err := rows.Err(); err != nil {
		return page, err
	}
	if len(page.Items) > 0 || opts.Page == 1 {
		return page, nil
	}
	// Past the last page: count separately for exact totals.
	err = c.row(ctx, "SELECT count(*) FROM "+l.from+where, l.args...).Scan(&page.TotalResults)
	return page, err
}
