package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/client"
)

func TestParseAge(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want time.Duration
		err  string
	}{
		{"days", "90d", 90 * 24 * time.Hour, ""},
		{"weeks", "2w", 14 * 24 * time.Hour, ""},
		{"hours", "12h", 12 * time.Hour, ""},
		{"go duration", "1h30m", 90 * time.Minute, ""},
		{"zero days", "0d", 0, "positive"},
		{"negative days", "-5d", 0, "positive"},
		{"plus sign", "+5d", 0, "positive"},
		{"zero duration", "0s", 0, "positive"},
		{"negative duration", "-3h", 0, "positive"},
		{"no unit", "90", 0, "positive"},
		{"unknown unit", "90x", 0, "positive"},
		{"fractional days", "1.5d", 0, "positive"},
		{"empty", "", 0, "positive"},
		{"just a unit", "d", 0, "positive"},
		{"too long", "99999999999999999999d", 0, "positive"},
		{"over a century", "40000d", 0, "at most"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAge(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseAge(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseAge(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestLastSeenAge(t *testing.T) {
	now := time.Date(2026, 4, 10, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *string {
		s := now.Add(-d).Format("2006-01-02T15:04:05.000000Z")
		return &s
	}
	bad := "yesterday"
	tests := []struct {
		name string
		at   *string
		want string
	}{
		{"never", nil, "never"},
		{"seconds ago", at(30 * time.Second), "just now"},
		{"in the future (clock skew)", at(-time.Minute), "just now"},
		{"minutes", at(5*time.Minute + 59*time.Second), "5m ago"},
		{"hours", at(3 * time.Hour), "3h ago"},
		{"under two days in hours", at(47 * time.Hour), "47h ago"},
		{"days", at(3*24*time.Hour + time.Hour), "3d ago"},
		{"unreadable", &bad, "yesterday"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := lastSeenAge(tc.at, now); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStaleMembers(t *testing.T) {
	cutoff := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := func(v string) *string { return &v }
	members := []client.Member{
		{Principal: "*"},
		{Principal: "before@example.com", LastSeenAt: s("2025-12-31T23:59:59.999999Z")},
		{Principal: "at-cutoff@example.com", LastSeenAt: s("2026-01-01T00:00:00.000000Z")},
		{Principal: "after@example.com", LastSeenAt: s("2026-02-01T00:00:00.000000Z")},
		{Principal: "never@example.com"},
		{Principal: "garbled@example.com", LastSeenAt: s("not a time")},
		{Principal: "new@example.com", GrantedAt: "2026-01-01T00:00:00.000000Z"},
		{Principal: "old-never@example.com", GrantedAt: "2025-06-01T00:00:00.000000Z"},
	}
	var got []string
	for _, m := range staleMembers(members, cutoff) {
		got = append(got, m.Principal)
	}
	if want := "before@example.com,never@example.com,garbled@example.com,old-never@example.com"; strings.Join(got, ",") != want {
		t.Fatalf("stale: %v, want %s", got, want)
	}
}
