package query

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/store"
)

var schema = Schema{
	Sort:        []string{"name", "created_at"},
	Filters:     map[string]Kind{"name": String, "created_at": Timestamp, "is_active": Bool},
	DataFilters: true,
}

func TestParse(t *testing.T) {
	tests := []struct {
		name       string
		query      string
		want       store.ListOptions
		wantSort   string
		wantFilter map[string]map[string]any
	}{
		{"defaults", "", store.ListOptions{Page: 1, PageSize: 100, SortField: "created_at", SortDesc: true}, "-created_at", nil},
		{"paging and sort", "page=3&page_size=1000&sort=name",
			store.ListOptions{Page: 3, PageSize: 1000, SortField: "name"}, "name", nil},
		{"eq shorthand", "filter[name]=x",
			store.ListOptions{Page: 1, PageSize: 100, SortField: "created_at", SortDesc: true,
				Filters: []store.Filter{{Field: "name", Op: "$eq", Values: []string{"x"}}}},
			"-created_at", map[string]map[string]any{"name": {"$eq": "x"}}},
		{"in list trimmed", "filter[name][$in]=a, b,,c",
			store.ListOptions{Page: 1, PageSize: 100, SortField: "created_at", SortDesc: true,
				Filters: []store.Filter{{Field: "name", Op: "$in", Values: []string{"a", "b", "c"}}}},
			"-created_at", map[string]map[string]any{"name": {"$in": []string{"a", "b", "c"}}}},
		{"timestamp normalized", "filter[created_at][$gte]=2026-01-02T03:04:05Z",
			store.ListOptions{Page: 1, PageSize: 100, SortField: "created_at", SortDesc: true,
				Filters: []store.Filter{{Field: "created_at", Op: "$gte", Values: []string{"2026-01-02T03:04:05.000000Z"}}}},
			"-created_at", map[string]map[string]any{"created_at": {"$gte": "2026-01-02T03:04:05.000000Z"}}},
		{"bool", "filter[is_active]=false",
			store.ListOptions{Page: 1, PageSize: 100, SortField: "created_at", SortDesc: true,
				Filters: []store.Filter{{Field: "is_active", Op: "$eq", Values: []string{"false"}}}},
			"-created_at", map[string]map[string]any{"is_active": {"$eq": false}}},
		{"data path", "filter[data.a.b-c][$like]=GPU",
			store.ListOptions{Page: 1, PageSize: 100, SortField: "created_at", SortDesc: true,
				Filters: []store.Filter{{Field: "data.a.b-c", Op: "$like", Values: []string{"GPU"}}}},
			"-created_at", map[string]map[string]any{"data.a.b-c": {"$like": "GPU"}}},
		{"other params ignored", "wait_role_propagation=true&parent=x",
			store.ListOptions{Page: 1, PageSize: 100, SortField: "created_at", SortDesc: true}, "-created_at", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(q, schema)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.Options, tc.want) || r.Sort != tc.wantSort || !reflect.DeepEqual(r.Filter, tc.wantFilter) {
				t.Fatalf("got %+v %q %v\nwant %+v %q %v", r.Options, r.Sort, r.Filter, tc.want, tc.wantSort, tc.wantFilter)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, query string
		status      int
		code        string
	}{
		{"page size over max", "page_size=1001", 422, "validation_error"},
		{"page size zero", "page_size=0", 422, "validation_error"},
		{"negative page", "page=-1", 422, "validation_error"},
		{"page twice", "page=1&page=2", 422, "validation_error"},
		{"unknown sort", "sort=owner", 400, "invalid_sort"},
		{"sort twice", "sort=name&sort=-name", 400, "invalid_sort"},
		{"unknown field", "filter[owner]=x", 400, "invalid_filter"},
		{"unknown op", "filter[name][$ne]=x", 400, "invalid_filter"},
		{"like on timestamp", "filter[created_at][$like]=x", 400, "invalid_filter"},
		{"gt on bool", "filter[is_active][$gt]=true", 400, "invalid_filter"},
		{"bool value", "filter[is_active]=1", 400, "invalid_filter"},
		{"bad timestamp", "filter[created_at][$lt]=2026-13-01", 400, "invalid_filter"},
		{"nested brackets", "filter[name][$eq][x]=1", 400, "invalid_filter"},
		{"no field", "filter[]=1", 400, "invalid_filter"},
		{"bare filter", "filter=x", 400, "invalid_filter"},
		{"too many in", "filter[name][$in]=" + strings.Repeat("a,", 101), 400, "invalid_filter"},
		{"value too long", "filter[name]=" + strings.Repeat("v", 1025), 400, "invalid_filter"},
		{"data too deep", "filter[data.a.b.c.d.e.f.g.h.i]=x", 400, "invalid_filter"},
		{"data bad segment", "filter[data.a b]=x", 400, "invalid_filter"},
		{"data quote", `filter[data.a"]=x`, 400, "invalid_filter"},
		{"data empty segment", "filter[data.]=x", 400, "invalid_filter"},
		{"data gt", "filter[data.a][$gt]=x", 400, "invalid_filter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(q, schema)
			var ae *apierror.Error
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code || ae.Detail == "" {
				t.Fatalf("got %#v, want %d %s", err, tc.status, tc.code)
			}
		})
	}
}

func TestDataFiltersOffByDefault(t *testing.T) {
	q, _ := url.ParseQuery("filter[data.a]=x")
	if _, err := Parse(q, Schema{Sort: []string{"created_at"}}); err == nil {
		t.Fatal("data filters accepted by a schema without DataFilters")
	}
}

// FuzzParse: untrusted query strings never panic, and whatever is
// accepted stays within the documented limits and the schema.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "page=2&page_size=10", "filter[name][$in]=a,b", "filter[data.x.y][$like]=z",
		"sort=-name", "filter[created_at][$gte]=2026-01-01T00:00:00Z", "filter[is_active]=true", "filter[name"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		r, err := Parse(q, schema)
		if err != nil {
			var ae *apierror.Error
			if !errors.As(err, &ae) || ae.Status < 400 || ae.Status > 499 {
				t.Fatalf("non-4xx error %v", err)
			}
			return
		}
		o := r.Options
		if o.Page < 1 || o.PageSize < 1 || o.PageSize > MaxPageSize {
			t.Fatalf("paging out of range: %+v", o)
		}
		if o.SortField != "name" && o.SortField != "created_at" {
			t.Fatalf("sort %q outside the schema", o.SortField)
		}
		for _, flt := range o.Filters {
			if _, ok := schema.Filters[flt.Field]; !ok && !strings.HasPrefix(flt.Field, "data.") {
				t.Fatalf("filter %q outside the schema", flt.Field)
			}
			if strings.HasPrefix(flt.Field, "data.") {
				for _, seg := range strings.Split(flt.Field[5:], ".") {
					if !dataSeg.MatchString(seg) {
						t.Fatalf("unsafe data path %q", flt.Field)
					}
				}
			}
			if len(flt.Values) == 0 {
				t.Fatalf("filter without values: %+v", flt)
			}
		}
	})
}
