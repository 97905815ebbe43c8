package cli_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/server"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/store"
)

// TestMembersStale: against a real server whose store holds last-seen
// times, `members list` shows LAST SEEN and `--stale` lists exactly the
// members not seen for that long (never-seen ones included, "*" left
// out) among those granted before that; a bad --stale is a usage error.
func TestMembersStale(t *testing.T) {
	now := time.Now()
	var clock atomic.Pointer[time.Time]
	granted := now.Add(-400 * 24 * time.Hour)
	clock.Store(&granted)
	srv := servertest.Start(t, nil, server.WithClock(func() time.Time { return *clock.Load() }))
	n := newNMP(t, srv)
	n.ok("workspaces", "create", "ml-team")
	for _, p := range []string{"old@example.com", "recent@example.com", "never@example.com", "*"} {
		n.ok("members", "create", "-w", "ml-team", "--principal", p, "--roles", "Viewer")
	}
	// Granted three days ago and never seen: too new to be stale at 1w.
	threeDays := now.Add(-3 * 24 * time.Hour)
	clock.Store(&threeDays)
	n.ok("members", "create", "-w", "ml-team", "--principal", "new@example.com", "--roles", "Viewer")
	clock.Store(&now)
	if err := srv.Store().RecordLastSeen(context.Background(), []store.Sighting{
		{Principal: "old@example.com", At: store.NewTimestamp(now.Add(-100 * 24 * time.Hour))},
		{Principal: "recent@example.com", At: store.NewTimestamp(now.Add(-10 * 24 * time.Hour))},
		{Principal: "*", At: store.NewTimestamp(now)}, // never shown for "*"
	}); err != nil {
		t.Fatal(err)
	}

	table := n.ok("members", "list", "-w", "ml-team")
	for _, want := range []string{"LAST SEEN", "100d ago", "10d ago", "never"} {
		if !strings.Contains(table, want) {
			t.Fatalf("table lacks %q:\n%s", want, table)
		}
	}

	principals := func(args ...string) []string {
		t.Helper()
		var members []struct {
			Principal  string  `json:"principal"`
			LastSeenAt *string `json:"last_seen_at"`
		}
		out := n.ok(append(args, "-o", "json")...)
		if err := json.Unmarshal([]byte(out), &members); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		var ps []string
		for _, m := range members {
			ps = append(ps, m.Principal)
			if m.Principal == "*" && m.LastSeenAt != nil {
				t.Fatalf("\"*\" has a last_seen_at: %s", *m.LastSeenAt)
			}
		}
		slices.Sort(ps)
		return ps
	}
	tests := []struct {
		name  string
		stale string
		want  []string
	}{
		{"90 days", "90d", []string{"never@example.com", "old@example.com"}},
		{"two weeks", "2w", []string{"never@example.com", "old@example.com"}},
		{"a week", "1w", []string{"never@example.com", "old@example.com", "recent@example.com"}},
		{"a year", "365d", []string{"never@example.com"}},
		{"hours", "12h", []string{"never@example.com", "new@example.com", "old@example.com", "recent@example.com"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := principals("members", "list", "--workspace", "ml-team", "--stale", tc.stale)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("--stale %s: %v, want %v", tc.stale, got, tc.want)
			}
		})
	}
	all := []string{"*", "never@example.com", "new@example.com", "old@example.com", "recent@example.com"}
	if got := principals("members", "list", "--workspace", "ml-team"); !slices.Equal(got, all) {
		t.Fatalf("without --stale: %v, want %v", got, all)
	}

	for _, bad := range []string{"90x", "0d", "-5d", "90", ""} {
		t.Run("bad "+bad, func(t *testing.T) {
			code, out, errOut := n.run("members", "list", "-w", "ml-team", "--stale", bad)
			if code != 2 || out != "" || !strings.Contains(errOut, "--stale") {
				t.Fatalf("--stale %q: exit %d, stdout %q, stderr %q; want exit 2 naming --stale", bad, code, out, errOut)
			}
		})
	}
}
