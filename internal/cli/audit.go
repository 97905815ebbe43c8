package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nmp-project/nmp/internal/client"
	"github.com/spf13/cobra"
)

// newAuditCommand returns "nmp audit": the audit trail of access changes.
func newAuditCommand(app *App) *cobra.Command {
	cmd := newGroupCommand("audit", "Read the audit trail of access changes")
	cmd.AddCommand(newAuditListCommand(app))
	return cmd
}

func newAuditListCommand(app *App) *cobra.Command {
	var q client.AuditQuery
	var since string
	cmd := &cobra.Command{
		Use:   "list [-w W] [--since 7d] [--until RFC3339] [--principal P]",
		Short: "List access changes (members, role bindings, workspaces, access keys), newest first",
		Long: "List the recorded access changes: who (and on whose behalf, with which request id) created,\n" +
			"changed or deleted a member, role binding, workspace or access key, when, and the state\n" +
			"before and after. A workspace Admin lists its workspace's changes with -w; a PlatformAdmin\n" +
			"may leave -w out to list every change. --principal matches the actor or the target.",
		Example: "  nmp audit list -w ml-team --since 7d\n  nmp audit list --principal alice@example.com -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("since") {
				d, err := parseAge(since)
				if err != nil {
					return UsageErrorf("--since: %v", err)
				}
				q.Since = time.Now().Add(-d).UTC().Format(time.RFC3339)
			}
			if q.Until != "" {
				if _, err := time.Parse(time.RFC3339Nano, q.Until); err != nil {
					return UsageErrorf("--until: invalid time %q: want RFC 3339 such as 2026-01-02T15:04:05Z", q.Until)
				}
			}
			c, err := app.Client()
			if err != nil {
				return err
			}
			p, err := c.ListAuditEvents(cmd.Context(), q)
			if err != nil {
				return err
			}
			if p.Data == nil {
				p.Data = []client.AuditEvent{}
			}
			t := Table{Header: []string{"TIME", "ACTOR", "ACTION", "WORKSPACE", "TARGET", "CHANGE"}}
			for _, e := range p.Data {
				actor := e.Actor
				if e.OnBehalfOf != nil {
					actor += " for " + *e.OnBehalfOf
				}
				t.Rows = append(t.Rows, []string{formatTime(e.OccurredAt), actor, e.Action, deref(e.Workspace), e.Target,
					changeSummary(e.Before, e.After)})
			}
			if err := app.Render(p, t); err != nil {
				return err
			}
			if p.HasMore {
				app.Infof("More events: --page %d", max(q.Page, 1)+1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&q.Workspace, "workspace", "w", "", "only this workspace's changes (required unless you are PlatformAdmin)")
	f.StringVar(&since, "since", "", "only changes of this recent period (e.g. 7d, 12h, 2w)")
	f.StringVar(&q.Until, "until", "", "only changes before this RFC 3339 time")
	f.StringVar(&q.Principal, "principal", "", "only changes made by or to this principal")
	f.IntVar(&q.Page, "page", 0, "page number (from 1)")
	f.IntVar(&q.PageSize, "page-size", 0, "events per page (at most 100)")
	return cmd
}

// changeSummary renders before → after in one short line: the fields
// that differ (all of them for a creation or deletion), as key=value.
func changeSummary(before, after json.RawMessage) string {
	b, a := stateMap(before), stateMap(after)
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var from, to []string
	for _, k := range keys {
		bv, inB := b[k]
		av, inA := a[k]
		if inB && inA && bv == av {
			continue
		}
		if b != nil && inB {
			from = append(from, k+"="+bv)
		}
		if a != nil && inA {
			to = append(to, k+"="+av)
		}
	}
	switch {
	case b == nil && a == nil:
		return ""
	case b == nil:
		return "+ " + strings.Join(to, " ")
	case a == nil:
		return "- " + strings.Join(from, " ")
	}
	return strings.Join(from, " ") + " → " + strings.Join(to, " ")
}

// stateMap flattens a state object to compact values (nil for null or
// anything that is not an object).
func stateMap(raw json.RawMessage) map[string]string {
	var m map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil || m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case string:
			out[k] = x
		case nil:
			out[k] = "null"
		case []any:
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = fmt.Sprint(e)
				if o, ok := e.(map[string]any); ok {
					doc, _ := json.Marshal(o)
					parts[i] = string(doc)
				}
			}
			out[k] = "[" + strings.Join(parts, ",") + "]"
		default:
			doc, _ := json.Marshal(x)
			out[k] = string(doc)
		}
	}
	return out
}
