package registry

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// ReasonVerification is the strike reason for a host that keeps disagreeing
// with the consensus of its peers on deterministic work.
const ReasonVerification = "verification:diverged"

// Verdict is the outcome of recording a divergence against consensus.
type Verdict struct {
	// Count is the host's divergences against consensus within
	// VerifyWindow not yet turned into a strike, including this one.
	Count int
	// Struck reports that this divergence reached VerifyStrikeAt and gave
	// a strike; Strike is its outcome.
	Struck bool
	Strike StrikeState
}

// DivergedAgainstConsensus records that hostID disagreed with the majority
// of three hosts running the same deterministic task (reason is a category
// such as "verification:token", never content). Reaching VerifyStrikeAt such
// divergences within VerifyWindow gives a strike ReasonVerification through
// Strike, with its lifecycle; the divergences it counted are then marked
// struck, so the next strike needs VerifyStrikeAt new ones. A divergence
// with only two voices, a failure or slowness must never be recorded here.
func (r *Registry) DivergedAgainstConsensus(ctx context.Context, hostID, reason string) (Verdict, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 200 {
		return Verdict{}, fmt.Errorf("verdict %s: %w: reason must be 1-200 characters", hostID, ErrInvalid)
	}
	now := r.now()
	since := now.Add(-r.policy.VerifyWindow).UnixMilli()
	var v Verdict
	err := r.db.InTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, r.db.Rebind(`SELECT 1 FROM hosts WHERE id = ?`), hostID).Scan(&one)
		if err == sql.ErrNoRows {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, r.db.Rebind(`INSERT INTO host_verdicts (host_id, reason, created_at) VALUES (?, ?, ?)`),
			hostID, reason, now.UnixMilli()); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, r.db.Rebind(`SELECT COUNT(*) FROM host_verdicts WHERE host_id = ? AND struck = 0 AND created_at > ?`),
			hostID, since).Scan(&v.Count); err != nil {
			return err
		}
		if v.Count < r.policy.VerifyStrikeAt {
			return nil
		}
		v.Struck = true
		_, err = tx.ExecContext(ctx, r.db.Rebind(`UPDATE host_verdicts SET struck = 1 WHERE host_id = ? AND struck = 0`), hostID)
		return err
	})
	if err != nil {
		return Verdict{}, fmt.Errorf("verdict %s: %w", hostID, err)
	}
	if !v.Struck {
		return v, nil
	}
	v.Strike, err = r.Strike(ctx, hostID, ReasonVerification)
	return v, err
}
