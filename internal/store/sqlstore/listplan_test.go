package sqlstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/store/pgtest"
	"github.com/nmp-project/nmp/internal/testenv"
)

// listPlanCase is one list statement whose plan is checked.
type listPlanCase struct {
	name string
	opts store.ListOptions
	vis  *store.Visibility
}

func workspaceListCases(visible []string) []listPlanCase {
	first := store.ListOptions{Page: 1, PageSize: 100, SortField: "created_at", SortDesc: true}
	byName := first
	byName.SortField, byName.SortDesc = "name", false
	return []listPlanCase{
		{"all newest first", first, nil},
		{"all by name", byName, nil},
		{"visible newest first", first, &store.Visibility{Workspaces: visible}},
	}
}

func (c listPlanCase) sql(d *dialect) (string, []any, error) {
	l := &listQuery{selectCols: workspaceCols, from: "workspaces w", idExpr: "w.id", columns: workspaceColumns}
	restrictVisible(d, l, "w.name", c.vis)
	return l.pageSQL(d, c.opts)
}

// fillPlanWorkspaces gives the planner a table of a realistic size (rows
// inserted in one transaction; the store's CreateWorkspace commits each).
func fillPlanWorkspaces(t *testing.T, s *Store, n int) []string {
	var names []string
	err := s.tx(context.Background(), func(c conn) error {
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("ws-%05d", i)
			now := store.NewTimestamp(time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC))
			w := store.Workspace{ID: uuid.NewString(), Name: name, Audit: store.Audit{CreatedAt: now, UpdatedAt: now}}
			if err := insertWorkspace(context.Background(), c, w); err != nil {
				return err
			}
			if i%100 == 0 {
				names = append(names, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestListPlansSQLite: SQLite reads a page of workspaces in index order,
// without sorting the table (no temporary B-tree for the ORDER BY) and
// without scanning it, and reads a caller's visible workspaces by the
// name index, one lookup per name.
func TestListPlansSQLite(t *testing.T) {
	s, err := Open(context.Background(), Options{URL: "sqlite://" + filepath.Join(t.TempDir(), "plan.db"), Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, s)
	// No ANALYZE: nmp never runs it on SQLite, so the plan must be right
	// without statistics.
	visible := fillPlanWorkspaces(t, s, 2000)
	for _, c := range workspaceListCases(visible) {
		t.Run(c.name, func(t *testing.T) {
			q, args, err := c.sql(s.d)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := s.r.Query("EXPLAIN QUERY PLAN "+s.d.rebind(q), args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close() //nolint:errcheck // read-only
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			text := strings.Join(plan, "\n")
			logPlan(t, text)
			for _, line := range plan {
				if strings.HasPrefix(line, "SCAN w") && !strings.Contains(line, "USING") {
					t.Errorf("the table is scanned without an index: %q", line)
				}
			}
			if c.vis == nil && strings.Contains(text, "TEMP B-TREE FOR ORDER BY") {
				t.Errorf("the whole table is sorted for one page:\n%s", text)
			}
			if c.vis != nil && !strings.Contains(text, "(name=?)") {
				t.Errorf("visible workspaces are not read by name:\n%s", text)
			}
		})
	}
}

// TestListPlansPostgres: PostgreSQL (with statistics) reads the first page
// of all workspaces through the creation-time index and a caller's visible
// workspaces through the name index, never scanning the table for the
// page.
func TestListPlansPostgres(t *testing.T) {
	s, err := Open(context.Background(), Options{URL: pgtest.SchemaURL(t), Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, s)
	visible := fillPlanWorkspaces(t, s, 2000)
	if _, err := s.w.Exec("ANALYZE workspaces"); err != nil {
		t.Fatal(err)
	}
	for _, c := range workspaceListCases(visible) {
		t.Run(c.name, func(t *testing.T) {
			q, args, err := c.sql(s.d)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			rows, err := s.r.Query("EXPLAIN "+s.d.rebind(q), args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close() //nolint:errcheck // read-only
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, line)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			text := strings.Join(plan, "\n")
			logPlan(t, text)
			// "workspaces w" is the page; the count's scan is "w_1".
			if strings.Contains(text, "Seq Scan on workspaces w ") {
				t.Errorf("the table is scanned for the page:\n%s", text)
			}
			if c.vis == nil && strings.Contains(text, "Sort Key: w.created_at") {
				t.Errorf("the whole table is sorted for one page:\n%s", text)
			}
			if c.vis != nil && !strings.Contains(text, "Index Cond: (name = ANY") {
				t.Errorf("visible workspaces are not read by name:\n%s", text)
			}
		})
	}
}

func logPlan(t *testing.T, plan string) {
	if os.Getenv("NMP_SHOW_PLANS") != "" {
		t.Logf("plan:\n%s", plan)
	}
}
