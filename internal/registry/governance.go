package registry

import (
	"context"
	"fmt"
)

// Fallback reports from memory whether hostID is an operator-run fallback
// host. (Added by the governance owner for dedicated fallback.)
func (r *Registry) Fallback(hostID string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.auth[hostID].fallback
}

// SetFallback marks or unmarks hostID as an operator-run fallback host. A
// connected host takes the change at its next Hello.
func (r *Registry) SetFallback(ctx context.Context, hostID string, fallback bool) error {
	v := 0
	if fallback {
		v = 1
	}
	res, err := r.db.ExecContext(ctx, r.db.Rebind(`UPDATE hosts SET fallback = ? WHERE id = ?`), v, hostID)
	if err != nil {
		return fmt.Errorf("set fallback %s: %w", hostID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("set fallback %s: %w", hostID, ErrNotFound)
	}
	r.mu.Lock()
	if e, ok := r.auth[hostID]; ok {
		e.fallback = fallback
		r.auth[hostID] = e
	}
	r.mu.Unlock()
	return nil
}

// SetTier moves hostID to tier (TierStandard or TierEnterprise). Governance
// moves hosts below the enterprise bar down with it; it never strikes.
func (r *Registry) SetTier(ctx context.Context, hostID, tier string) error {
	if tier != TierStandard && tier != TierEnterprise {
		return fmt.Errorf("%w: tier must be %q or %q", ErrInvalid, TierStandard, TierEnterprise)
	}
	res, err := r.db.ExecContext(ctx, r.db.Rebind(`UPDATE hosts SET tier = ? WHERE id = ?`), tier, hostID)
	if err != nil {
		return fmt.Errorf("set tier %s: %w", hostID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("set tier %s: %w", hostID, ErrNotFound)
	}
	return nil
}
