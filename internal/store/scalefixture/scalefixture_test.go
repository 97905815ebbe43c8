package scalefixture_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/nmp-project/nmp/internal/store/scalefixture"
	"github.com/nmp-project/nmp/internal/store/sqlstore"
	"github.com/nmp-project/nmp/internal/testenv"
)

func TestBindingsDistinct(t *testing.T) {
	for _, n := range []int{1, 2, 3, 10, 100, 999, 10_000} {
		seen := map[string]bool{}
		users := map[string]bool{}
		for i := range n {
			p, w, r := scalefixture.Binding(n, i)
			k := p + "|" + w + "|" + r
			if seen[k] {
				t.Fatalf("n=%d: binding %d repeats %s", n, i, k)
			}
			seen[k], users[p] = true, true
		}
		if want := (n + 2) / 3; len(users) != want {
			t.Fatalf("n=%d: %d users, want %d", n, len(users), want)
		}
	}
}

func TestCreate(t *testing.T) {
	c := scalefixture.NewCache(t)
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			const n = 1000
			u := c.URL(t, kind, n)
			st, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: u})
			if err != nil {
				t.Fatal(err)
			}
			defer testenv.Close(t, st)
			pb, err := st.ActiveBindings(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(pb.Bindings) != n+1+len(scalefixture.Seed.Bindings) || pb.Revision != 2 {
				t.Fatalf("%d bindings at revision %d", len(pb.Bindings), pb.Revision)
			}
			want := map[string]bool{fmt.Sprint(scalefixture.ProbePrincipal, "|", scalefixture.ProbeWorkspace, "|", scalefixture.ProbeRole): true}
			for i := range n {
				p, w, r := scalefixture.Binding(n, i)
				want[p+"|"+w+"|"+r] = true
			}
			for _, b := range pb.Bindings {
				delete(want, b.Principal+"|"+b.Workspace+"|"+b.Role)
			}
			if len(want) != 0 {
				t.Fatalf("%d bindings missing", len(want))
			}
			if _, err := st.GetWorkspace(context.Background(), fmt.Sprintf("ws-%d", n/10-1)); err != nil {
				t.Fatal(err)
			}
			// The indexes are back: a second active grant is refused by the
			// unique index, not only by the store's own check.
			db, err := sql.Open(map[string]string{"sqlite": "sqlite", "postgres": "pgx"}[kind], strings.TrimPrefix(u, "sqlite://"))
			if err != nil {
				t.Fatal(err)
			}
			defer testenv.Close(t, db)
			if kind == "postgres" {
				_, err = db.Exec(`INSERT INTO role_bindings (id, name, principal, workspace, role, granted_by, granted_at, revision)
					VALUES ('dup', 'dup', $1, $2, $3, 'x', now(), 9)`, scalefixture.ProbePrincipal, scalefixture.ProbeWorkspace, scalefixture.ProbeRole)
			} else {
				_, err = db.Exec(`INSERT INTO role_bindings (id, name, principal, workspace, role, granted_by, granted_at, revision)
					VALUES ('dup', 'dup', ?, ?, ?, 'x', 'now', 9)`, scalefixture.ProbePrincipal, scalefixture.ProbeWorkspace, scalefixture.ProbeRole)
			}
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), "unique") {
				t.Fatalf("duplicate active grant: %v", err)
			}
		})
	}
}
