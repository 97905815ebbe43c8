package hardening

import (
	"context"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/store"
)

// TestStaleMembersFrom: on a real store, members granted before the cutoff
// and not seen since (never seen included) are stale per workspace; "*"
// never is; a group is stale like a user; access granted after the cutoff
// is too new to be stale.
func TestStaleMembersFrom(t *testing.T) {
	st := bindings(t,
		[3]string{"old@example.com", "ml", "Viewer"},
		[3]string{"fresh@example.com", "ml", "Viewer"},
		[3]string{"never@example.com", "ml", "Editor"},
		[3]string{"*", "ml", "Viewer"},
		[3]string{"eng", "ops", "Editor"},
		[3]string{"fresh@example.com", "ops", "Viewer"},
	)
	now := time.Now()
	ts := func(d time.Duration) store.Timestamp { return store.NewTimestamp(now.Add(d)) }
	day := 24 * time.Hour
	if err := st.RecordLastSeen(context.Background(), []store.Sighting{
		{Principal: "old@example.com", At: ts(0)},
		{Principal: "fresh@example.com", At: ts(300 * day)},
		{Principal: "eng", At: ts(100 * day)},
		{Principal: "*", At: ts(300 * day)},
	}); err != nil {
		t.Fatal(err)
	}
	stale := StaleMembersFrom(st)
	tests := []struct {
		name     string
		notSince time.Time
		want     map[string][]string
	}{
		{"cutoff after every grant", now.Add(275 * day), map[string][]string{
			"ml":  {"never@example.com", "old@example.com"},
			"ops": {"eng"},
			// the seeded default workspace's "*" binding is never listed
		}},
		{"cutoff before the grants: all too new", now.Add(-time.Hour), map[string][]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := stale(context.Background(), tc.notSince)
			if err != nil {
				t.Fatal(err)
			}
			for ws := range got {
				sort.Strings(got[ws])
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("stale %v, want %v", got, tc.want)
			}
		})
	}
}
