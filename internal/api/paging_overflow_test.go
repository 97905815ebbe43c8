package api_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/store/query"
)

// TestPageNearInt64Max: a page whose offset would overflow is refused
// with 422 naming the largest page, on both backends (it used to wrap
// around: SQLite served page 1's rows, PostgreSQL failed with 500); the
// largest page allowed is an empty page past the end.
func TestPageNearInt64Max(t *testing.T) {
	backends := []struct {
		name   string
		mutate func(t *testing.T) func(*config.Config)
	}{
		{"sqlite", func(*testing.T) func(*config.Config) { return nil }},
		{"postgres", func(t *testing.T) func(*config.Config) {
			url := servertest.PostgresURL(t)
			return func(c *config.Config) { c.Entities.DatabaseConfig.URL = url }
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			srv := servertest.Start(t, b.mutate(t))
			expect(t, srv, "POST", ws, `{"name": "team-a"}`, 201, "")
			tests := []struct {
				name  string
				query string
			}{
				{"int64 max, default page size", "page=9223372036854775807"},
				{"wraps to offset 0 with page_size 2", "page=4611686018427387905&page_size=2"},
				{"just past the largest page", "page=" + strconv.Itoa(query.MaxPage(100)+1)},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					m := expect(t, srv, "GET", ws+"?"+tc.query, "", 422, "")
					if d, _ := m["detail"].(string); !strings.Contains(d, "page") {
						t.Fatalf("detail does not name page: %v", m)
					}
				})
			}
			m := expect(t, srv, "GET", ws+"?page="+strconv.Itoa(query.MaxPage(100)), "", 200, "")
			if len(m["data"].([]any)) != 0 {
				t.Fatalf("largest page: %v, want no rows", m)
			}
		})
	}
}
