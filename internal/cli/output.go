package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nmp-project/nmp/internal/cli/clientconfig"
	"gopkg.in/yaml.v3"
)

// Table is the table-format rendering of a value.
type Table struct {
	// Header holds the column names; nil prints the rows only.
	Header []string
	// Rows holds the cells. With a header and no rows the table prints
	// "No results.". Empty cells print as "-".
	Rows [][]string
}

// render writes v as JSON (2-space indent) or YAML, or t as aligned columns.
func render(w io.Writer, format string, v any, t Table) error {
	switch format {
	case clientconfig.OutputJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	case clientconfig.OutputYAML:
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return err
		}
		return enc.Close()
	default:
		return t.write(w)
	}
}

func (t Table) write(w io.Writer) error {
	if len(t.Rows) == 0 && t.Header != nil {
		_, err := fmt.Fprintln(w, "No results.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	if t.Header != nil {
		fmt.Fprintln(tw, strings.Join(t.Header, "\t"))
	}
	for _, row := range t.Rows {
		cells := make([]string, len(row))
		for i, c := range row {
			cells[i] = sanitizeLine(strings.TrimSpace(c))
			if cells[i] == "" {
				cells[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// formatTime renders an API timestamp as RFC 3339 UTC with second
// precision; unparsable values are returned unchanged.
func formatTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format(time.RFC3339)
}

// deref returns *p, or "" for nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
