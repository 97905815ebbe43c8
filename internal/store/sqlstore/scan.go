package sqlstore

import (
	"context"
	"fmt"
)

// scanActiveQuery selects only what the policy index needs. On SQLite the
// ORDER BY is answered by walking the partial index
// role_bindings_active_triple (principal, workspace, role WHERE revoked_at
// IS NULL), without a sort and no slower than a table scan, so the rows
// come grouped by principal for free. PostgreSQL gets no ORDER BY: there
// it would be a sort of every row, and the engine accepts any order.
var scanActiveQuery = map[string]string{
	"sqlite":   `SELECT principal, workspace, role FROM role_bindings WHERE revoked_at IS NULL ORDER BY principal, workspace, role`,
	"postgres": `SELECT principal, workspace, role FROM role_bindings WHERE revoked_at IS NULL`,
}

// ScanActiveBindings streams every active binding to fn and returns the
// policy revision, both read in one snapshot (see store.Store).
func (s *Store) ScanActiveBindings(ctx context.Context, fn func(principal, workspace, role string) error) (int64, error) {
	var revision int64
	err := s.snapshot(ctx, func(c conn) error {
		if err := c.row(ctx, `SELECT revision FROM policy_state WHERE id = 1`).Scan(&revision); err != nil {
			return err
		}
		rows, err := c.query(ctx, scanActiveQuery[s.d.name])
		if err != nil {
			return fmt.Errorf("scan active bindings: %w", err)
		}
		defer rows.Close() //nolint:errcheck // read-only; rows.Err() reports a failed read
		var principal, workspace, role string
		for rows.Next() {
			// Scanning a driver string into *string does not copy it: fn
			// receives the driver's own strings and may keep them.
			if err := rows.Scan(&principal, &workspace, &role); err != nil {
				return err
			}
			if err := fn(principal, workspace, role); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return 0, err
	}
	return revision, nil
}
