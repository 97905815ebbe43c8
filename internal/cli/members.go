package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nmp-project/nmp/internal/client"
	"github.com/spf13/cobra"
)

// newMembersCommand returns the members group. It is mounted twice, as
// "nmp workspaces members" and as the compatibility group "nmp members".
func newMembersCommand(app *App) *cobra.Command {
	var workspace string
	cmd := newGroupCommand("members", "Manage the members of a workspace", "member")
	cmd.PersistentFlags().StringVarP(&workspace, "workspace", "w", "", "workspace (env NMP_WORKSPACE, else the context's workspace)")
	cmd.AddCommand(
		newMembersListCommand(app, &workspace),
		newMembersCreateCommand(app, &workspace),
		newMembersUpdateCommand(app, &workspace),
		newMembersDeleteCommand(app, &workspace),
	)
	return cmd
}

func newMembersListCommand(app *App, workspace *string) *cobra.Command {
	var stale string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the members of a workspace and when each was last seen",
		Long: "List the members of a workspace. LAST SEEN is when the principal last made an authenticated\n" +
			"request (for a group, any member's; recorded at most once per auth.last_seen_interval_seconds,\n" +
			"so accurate to that window). --stale lists only the members granted longer ago than that and\n" +
			"not seen since, never-seen members included; the wildcard \"*\" is left out.",
		Example: "  nmp members list --workspace ml-team\n  nmp members list --workspace ml-team --stale 90d",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var staleFor time.Duration
			if cmd.Flags().Changed("stale") {
				d, err := parseAge(stale)
				if err != nil {
					return UsageErrorf("--stale: %v", err)
				}
				staleFor = d
			}
			ws, err := app.Workspace(*workspace)
			if err != nil {
				return err
			}
			c, err := app.Client()
			if err != nil {
				return err
			}
			members, err := c.ListMembers(cmd.Context(), ws)
			if err != nil {
				return err
			}
			now := time.Now()
			if staleFor > 0 {
				members = staleMembers(members, now.Add(-staleFor))
			}
			if members == nil {
				members = []client.Member{}
			}
			return app.Render(members, memberTable(now, members...))
		},
	}
	cmd.Flags().StringVar(&stale, "stale", "", "only members not seen for this long (e.g. 90d, 12h, 2w; units s, m, h, d, w); never-seen members count as stale, \"*\" is left out")
	return cmd
}

// parseAge reads a --stale age: a whole number of days ("90d") or weeks
// ("2w"), or a Go duration ("12h", "1h30m"); it must be positive.
func parseAge(s string) (time.Duration, error) {
	const maxDays = 100 * 366
	bad := fmt.Errorf("invalid age %q: want a positive duration such as 90d, 12h or 2w", s)
	if n := len(s); n > 1 && (s[n-1] == 'd' || s[n-1] == 'w') {
		days, err := strconv.Atoi(s[:n-1])
		if err != nil || days <= 0 || s[0] == '+' {
			return 0, bad
		}
		if s[n-1] == 'w' {
			days *= 7
		}
		if days > maxDays {
			return 0, fmt.Errorf("invalid age %q: at most %d days", s, maxDays)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return d, nil
}

// staleMembers keeps the members not seen since cutoff: never seen, or
// last seen before it. The wildcard "*" is never stale (it stands for
// every authenticated caller).
func staleMembers(members []client.Member, cutoff time.Time) []client.Member {
	var out []client.Member
	for _, m := range members {
		if m.Principal == "*" {
			continue
		}
		if at, err := time.Parse(time.RFC3339Nano, m.GrantedAt); err == nil && !at.Before(cutoff) {
			continue // granted within the window: too new to be stale
		}
		if m.LastSeenAt != nil {
			if at, err := time.Parse(time.RFC3339Nano, *m.LastSeenAt); err == nil && !at.Before(cutoff) {
				continue
			}
		}
		out = append(out, m) // never seen, seen before cutoff, or an unreadable time: shown
	}
	return out
}

// lastSeenAge renders a last_seen_at for the table: "never", "just now",
// "5m ago", "3h ago", "12d ago"; an unreadable value is shown as is.
func lastSeenAge(at *string, now time.Time) string {
	if at == nil {
		return "never"
	}
	t, err := time.Parse(time.RFC3339Nano, *at)
	if err != nil {
		return *at
	}
	switch d := now.Sub(t); {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h ago"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d ago"
	}
}

// memberTarget holds the flags of the principal-addressed member commands
// and resolves what they act on.
type memberTarget struct {
	workspace *string // the group's --workspace
	principal string
	roles     []string
	noWait    bool
}

func (t *memberTarget) register(cmd *cobra.Command, withRoles bool) {
	f := cmd.Flags()
	f.StringVar(&t.principal, "principal", "", "principal id, email, group or \"*\" (instead of the PRINCIPAL argument)")
	if withRoles {
		f.StringSliceVar(&t.roles, "roles", nil, "roles, repeatable and comma-separated (e.g. Viewer,Editor)")
		_ = cmd.MarkFlagRequired("roles")
	}
	f.BoolVar(&t.noWait, "no-wait", false, "do not wait for the role change to propagate")
}

// memberRequest is what a member write acts on.
type memberRequest struct {
	client               *client.Client
	workspace, principal string
	roles                []string
	opts                 client.WriteOptions
}

// resolve validates the arguments and flags (roles are required when
// withRoles) and returns the request to send.
func (t *memberTarget) resolve(app *App, args []string, withRoles bool) (*memberRequest, error) {
	principal, err := positionalOrFlag(args, t.principal, "principal")
	if err != nil {
		return nil, err
	}
	roles := normalizeRoles(t.roles)
	if withRoles && len(roles) == 0 {
		return nil, UsageErrorf("--roles needs at least one role")
	}
	ws, err := app.Workspace(*t.workspace)
	if err != nil {
		return nil, err
	}
	c, err := app.Client()
	if err != nil {
		return nil, err
	}
	return &memberRequest{c, ws, principal, roles, client.WriteOptions{NoWait: t.noWait}}, nil
}

func newMembersCreateCommand(app *App, workspace *string) *cobra.Command {
	t := &memberTarget{workspace: workspace}
	cmd := &cobra.Command{
		Use:   "create [PRINCIPAL] --roles R...",
		Short: "Grant roles to a principal (\"*\" = everyone)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := t.resolve(app, args, true)
			if err != nil {
				return err
			}
			m, err := r.client.CreateMember(cmd.Context(), r.workspace, r.principal, r.roles, r.opts)
			if err != nil {
				return err
			}
			return app.Render(m, memberTable(time.Now(), *m))
		},
	}
	t.register(cmd, true)
	return cmd
}

func newMembersUpdateCommand(app *App, workspace *string) *cobra.Command {
	t := &memberTarget{workspace: workspace}
	cmd := &cobra.Command{
		Use:   "update [PRINCIPAL] --roles R...",
		Short: "Replace the roles of a principal",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := t.resolve(app, args, true)
			if err != nil {
				return err
			}
			m, err := r.client.UpdateMember(cmd.Context(), r.workspace, r.principal, r.roles, r.opts)
			if err != nil {
				return err
			}
			return app.Render(m, memberTable(time.Now(), *m))
		},
	}
	t.register(cmd, true)
	return cmd
}

func newMembersDeleteCommand(app *App, workspace *string) *cobra.Command {
	t := &memberTarget{workspace: workspace}
	cmd := &cobra.Command{
		Use:   "delete [PRINCIPAL]",
		Short: "Revoke every role of a principal (no prompt)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := t.resolve(app, args, false)
			if err != nil {
				return err
			}
			resp, err := r.client.DeleteMember(cmd.Context(), r.workspace, r.principal, r.opts)
			if err != nil {
				return err
			}
			return app.Render(resp, deleteTable(resp))
		},
	}
	t.register(cmd, false)
	return cmd
}

func memberTable(now time.Time, items ...client.Member) Table {
	t := Table{Header: []string{"PRINCIPAL", "ROLES", "GRANTED_AT", "GRANTED_BY", "LAST SEEN"}}
	for _, m := range items {
		seen := lastSeenAge(m.LastSeenAt, now)
		if m.Principal == "*" {
			seen = "" // everyone: no time of its own
		}
		t.Rows = append(t.Rows, []string{m.Principal, strings.Join(m.Roles, ","), formatTime(m.GrantedAt), deref(m.GrantedBy), seen})
	}
	return t
}
