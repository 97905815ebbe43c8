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
	q, args, err := l.pageSQL(c.d, opts)
	if err != nil {
		return page, err
	}
	rows, err := c.query(ctx, q, args...)
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
	err = c.row(ctx, "SELECT count(*) FROM "+l.from+l.whereSQL(), l.args...).Scan(&page.TotalResults)
	return page, err
}

// pageSQL is the statement that reads one page and, in the same snapshot,
// the number of matching rows. The count is a separate aggregate over the
// same conditions rather than a window (count(*) OVER ()), which makes
// the database materialize and sort every matching row before the
// LIMIT; this way the page is read in index order and stops after it, and
// the count reads the narrowest index.
func (l *listQuery) pageSQL(d *dialect, opts store.ListOptions) (string, []any, error) {
	if err := l.addFilters(d, opts.Filters); err != nil {
		return "", nil, err
	}
	sortCol, ok := l.columns[opts.SortField]
	if !ok {
		return "", nil, fmt.Errorf("sort field %q has no column", opts.SortField)
	}
	dir := " ASC"
	if opts.SortDesc {
		dir = " DESC"
	}
	where := l.whereSQL()
	// The count is an uncorrelated scalar subquery: both databases
	// evaluate it once per statement (PostgreSQL as an InitPlan).
	q := "SELECT " + l.selectCols + ", (SELECT count(*) FROM " + l.from + where + ") FROM " + l.from + where +
		" ORDER BY " + sortCol.expr + dir + ", " + l.idExpr + dir + " LIMIT ? OFFSET ?"
	args := make([]any, 0, 2*len(l.args)+2)
	args = append(append(append(args, l.args...), l.args...), opts.PageSize, opts.Offset())
	return q, args, nil
}

func (l *listQuery) whereSQL() string {
	if len(l.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(l.where, " AND ")
}
