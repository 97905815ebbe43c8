package hardening

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/nmp-project/nmp/internal/ident"
	"github.com/nmp-project/nmp/internal/store"
)

// StaleSource is what StaleMembersFrom reads; store.Store has it.
type StaleSource interface {
	BindingScanner
	LastSeen(ctx context.Context, principals []string) (map[string]store.Timestamp, error)
	ListMembers(ctx context.Context, workspace string) ([]store.Member, error)
}

// lastSeenBatch bounds the principals asked for in one LastSeen query.
const lastSeenBatch = 1000

// StaleMembersFrom lists, per workspace, the members whose access is
// stale at notSince: granted before it and not seen since (never seen
// included). "*" is left out: it is never seen itself. A group counts as
// seen when any member of it called (the recorder records callers' groups).
// The bindings are streamed once, the last-seen times read in batches, and
// only the workspaces with a candidate are listed for the grant times.
func StaleMembersFrom(src StaleSource) StaleMembersFunc {
	return func(ctx context.Context, notSince time.Time) (map[string][]string, error) {
		members := map[string]map[string]bool{} // workspace -> principals
		principals := map[string]bool{}
		if _, err := src.ScanActiveBindings(ctx, func(p, ws, _ string) error {
			if p == ident.Wildcard {
				return nil
			}
			if members[ws] == nil {
				members[ws] = map[string]bool{}
			}
			members[ws][p] = true
			principals[p] = true
			return nil
		}); err != nil {
			return nil, fmt.Errorf("reading the role bindings: %w", err)
		}
		all := make([]string, 0, len(principals))
		for p := range principals {
			all = append(all, p)
		}
		sort.Strings(all)
		unseen := map[string]bool{} // not seen since notSince
		for start := 0; start < len(all); start += lastSeenBatch {
			batch := all[start:min(start+lastSeenBatch, len(all))]
			seen, err := src.LastSeen(ctx, batch)
			if err != nil {
				return nil, fmt.Errorf("reading last-seen times: %w", err)
			}
			for _, p := range batch {
				if at, ok := seen[p]; !ok || at.Before(notSince) {
					unseen[p] = true
				}
			}
		}
		out := map[string][]string{}
		for ws, ps := range members {
			candidate := false
			for p := range ps {
				if unseen[p] {
					candidate = true
					break
				}
			}
			if !candidate {
				continue
			}
			list, err := src.ListMembers(ctx, ws)
			if err != nil {
				return nil, fmt.Errorf("listing the members of %q: %w", ws, err)
			}
			for _, m := range list {
				if unseen[m.Principal] && m.GrantedAt.Before(notSince) {
					out[ws] = append(out[ws], m.Principal)
				}
			}
		}
		return out, nil
	}
}
