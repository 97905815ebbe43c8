package cli

import (
	"slices"
	"strings"

	"github.com/nmp-project/nmp/internal/client"
	"github.com/spf13/cobra"
)

// listFlags are the paging, sorting and filtering flags of list commands.
type listFlags struct {
	filters  []string
	sort     string
	page     int
	pageSize int
	allPages bool
}

func (l *listFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&l.filters, "filter", nil, "filter F=V (filter[F]=V) or F[$op]=V (filter[F][$op]=V); repeatable")
	f.StringVar(&l.sort, "sort", "", "sort field, \"-\" prefix for descending")
	f.IntVar(&l.page, "page", 0, "page number (from 1)")
	f.IntVar(&l.pageSize, "page-size", 0, "results per page")
	f.BoolVar(&l.allPages, "all-pages", false, "fetch every page")
}

// options validates the flags and returns the list options of the first
// page to fetch.
func (l *listFlags) options(cmd *cobra.Command) (client.ListOptions, error) {
	opts := client.ListOptions{Page: l.page, PageSize: l.pageSize, Sort: l.sort}
	if cmd.Flags().Changed("page") && l.page < 1 {
		return opts, UsageErrorf("--page must be at least 1")
	}
	if cmd.Flags().Changed("page-size") && l.pageSize < 1 {
		return opts, UsageErrorf("--page-size must be at least 1")
	}
	if l.allPages && cmd.Flags().Changed("page") {
		return opts, UsageErrorf("--page and --all-pages cannot be combined")
	}
	for _, s := range l.filters {
		f, err := parseFilter(s)
		if err != nil {
			return opts, err
		}
		opts.Filters = append(opts.Filters, f)
	}
	return opts, nil
}

// parseFilter parses F=V or F[$op]=V; the value may contain "=" and ",".
func parseFilter(s string) (client.Filter, error) {
	bad := UsageErrorf("invalid --filter %q: want FIELD=VALUE or FIELD[$op]=VALUE", s)
	key, value, ok := strings.Cut(s, "=")
	if !ok {
		return client.Filter{}, bad
	}
	field, op := key, ""
	if i := strings.IndexByte(key, '['); i >= 0 {
		if !strings.HasSuffix(key, "]") {
			return client.Filter{}, bad
		}
		field, op = key[:i], key[i+1:len(key)-1]
		if len(op) < 2 || op[0] != '$' || strings.ContainsAny(op, "[]") {
			return client.Filter{}, bad
		}
	}
	if field == "" || strings.ContainsAny(field, "[]") {
		return client.Filter{}, bad
	}
	return client.Filter{Field: field, Operator: op, Value: value}, nil
}

// fetchPages calls fetch with opts; with all set it fetches every page from
// page 1 on. It returns the items and the pagination of the last page.
func fetchPages[T any](opts client.ListOptions, all bool, fetch func(client.ListOptions) (*client.Page[T], error)) ([]T, client.Pagination, error) {
	if all {
		opts.Page = 1
	}
	items := []T{}
	for {
		page, err := fetch(opts)
		if err != nil {
			return nil, client.Pagination{}, err
		}
		items = append(items, page.Data...)
		// Counting pages here (not trusting the echoed page number) makes
		// the loop end even if a server ignores the page parameter.
		if !all || len(page.Data) == 0 || opts.Page >= page.Pagination.TotalPages {
			return items, page.Pagination, nil
		}
		opts.Page++
	}
}

// morePagesNote tells on stderr that results continue past page p.
func (a *App) morePagesNote(p client.Pagination) {
	if p.Page < p.TotalPages {
		a.Infof("Note: page %d of %d (%d results); use --page %d or --all-pages for more.",
			p.Page, p.TotalPages, p.TotalResults, p.Page+1)
	}
}

// normalizeRoles trims the roles, drops empty and repeated ones, keeping
// the order of first appearance.
func normalizeRoles(roles []string) []string {
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if r = strings.TrimSpace(r); r != "" && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// positionalOrFlag returns the single positional argument or the value of
// --flagName; one of them is required and they must agree.
func positionalOrFlag(args []string, flagValue, flagName string) (string, error) {
	switch {
	case len(args) == 1 && flagValue != "" && args[0] != flagValue:
		return "", UsageErrorf("the argument %q and --%s %q disagree", args[0], flagName, flagValue)
	case len(args) == 1:
		return args[0], nil
	case flagValue != "":
		return flagValue, nil
	}
	return "", UsageErrorf("missing %s: pass it as an argument or with --%s", flagName, flagName)
}
