package registry

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Strike records a rule violation for hostID and applies the lifecycle of the
// registry's StrikePolicy: the first strike is a warning; a second within
// SuspendWindow suspends the host for SuspendFor (it gets no tasks); reaching
// BanAt strikes within BanWindow bans it (its credentials stop working).
// Reason is a short category such as "safety:violence"; never pass content.
// Slowness is not a rule violation: the router lowers a slow host's score.
func (r *Registry) Strike(ctx context.Context, hostID, reason string) (StrikeState, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 200 {
		return StrikeState{}, fmt.Errorf("strike %s: %w: reason must be 1-200 characters", hostID, ErrInvalid)
	}
	now := r.now()
	st := StrikeState{HostID: hostID, Action: ActionWarning}
	var status string
	err := r.db.InTx(ctx, func(tx *sql.Tx) error {
		var until int64
		err := tx.QueryRowContext(ctx, r.db.Rebind(`SELECT status, suspended_until FROM hosts WHERE id = ?`), hostID).Scan(&status, &until)
		if err == sql.ErrNoRows {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, r.db.Rebind(`INSERT INTO host_strikes (host_id, reason, created_at) VALUES (?, ?, ?)`),
			hostID, reason, now.UnixMilli()); err != nil {
			return err
		}
		var inBan, inSuspend int
		if err := tx.QueryRowContext(ctx, r.db.Rebind(`SELECT COUNT(*) FROM host_strikes WHERE host_id = ? AND created_at > ?`),
			hostID, now.Add(-r.policy.BanWindow).UnixMilli()).Scan(&inBan); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, r.db.Rebind(`SELECT COUNT(*) FROM host_strikes WHERE host_id = ? AND created_at > ?`),
			hostID, now.Add(-r.policy.SuspendWindow).UnixMilli()).Scan(&inSuspend); err != nil {
			return err
		}
		st.Count = inBan
		switch {
		case status == StatusBanned || inBan >= r.policy.BanAt:
			st.Action, status = ActionBan, StatusBanned
			_, err = tx.ExecContext(ctx, r.db.Rebind(`UPDATE hosts SET status = ? WHERE id = ?`), StatusBanned, hostID)
		case inSuspend >= 2:
			st.Action = ActionSuspend
			st.SuspendedUntil = now.Add(r.policy.SuspendFor)
			if u := fromMillis(until); u.After(st.SuspendedUntil) {
				st.SuspendedUntil = u
			}
			_, err = tx.ExecContext(ctx, r.db.Rebind(`UPDATE hosts SET suspended_until = ? WHERE id = ?`), st.SuspendedUntil.UnixMilli(), hostID)
		}
		return err
	})
	if err != nil {
		return StrikeState{}, fmt.Errorf("strike %s: %w", hostID, err)
	}
	r.mu.Lock()
	if e, ok := r.auth[hostID]; ok {
		e.status = status
		if !st.SuspendedUntil.IsZero() {
			e.suspendedUntil = st.SuspendedUntil
		}
		r.auth[hostID] = e
	}
	r.mu.Unlock()
	r.log.Warn("host struck", "host", hostID, "reason", reason, "count", st.Count, "action", st.Action)
	return st, nil
}

// Strikes lists hostID's strikes, oldest first.
func (r *Registry) Strikes(ctx context.Context, hostID string) ([]Strike, error) {
	if _, err := r.Host(ctx, hostID); err != nil {
		return nil, err
	}
	rows, err := r.db.QueryContext(ctx, r.db.Rebind(`SELECT id, host_id, reason, created_at FROM host_strikes WHERE host_id = ? ORDER BY created_at, id`), hostID)
	if err != nil {
		return nil, fmt.Errorf("strikes %s: %w", hostID, err)
	}
	defer rows.Close()
	var out []Strike
	for rows.Next() {
		var s Strike
		var at int64
		if err := rows.Scan(&s.ID, &s.HostID, &s.Reason, &at); err != nil {
			return nil, fmt.Errorf("strikes %s: %w", hostID, err)
		}
		s.At = fromMillis(at)
		out = append(out, s)
	}
	return out, rows.Err()
}

// ClearStrikes deletes hostID's strikes (and its divergences against
// consensus) and lifts its suspension or ban: an
// operator's decision after review.
func (r *Registry) ClearStrikes(ctx context.Context, hostID string) error {
	err := r.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, r.db.Rebind(`UPDATE hosts SET status = ?, suspended_until = 0 WHERE id = ?`), StatusActive, hostID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err = tx.ExecContext(ctx, r.db.Rebind(`DELETE FROM host_verdicts WHERE host_id = ?`), hostID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, r.db.Rebind(`DELETE FROM host_strikes WHERE host_id = ?`), hostID)
		return err
	})
	if err != nil {
		return fmt.Errorf("clear strikes %s: %w", hostID, err)
	}
	r.mu.Lock()
	if e, ok := r.auth[hostID]; ok {
		e.status, e.suspendedUntil = StatusActive, time.Time{}
		r.auth[hostID] = e
	}
	r.mu.Unlock()
	return nil
}
