package registry

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/peerllm/peerllm/internal/fabric"
)

// RotateSecret issues a new secret for host id and returns it (shown only
// here). The old secret stops working for new connections at once; a
// connection already open stays until it drops. (Added by the admin API's
// owner for `peerllm admin hosts credentials`.)
func (r *Registry) RotateSecret(ctx context.Context, id string) (string, error) {
	secret := fabric.NewSecret()
	res, err := r.db.ExecContext(ctx, r.db.Rebind(`UPDATE hosts SET secret_hash = ? WHERE id = ?`), fabric.HashSecret(secret), id)
	if err != nil {
		return "", fmt.Errorf("rotate secret %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", fmt.Errorf("rotate secret %s: %w", id, ErrNotFound)
	}
	r.mu.Lock()
	if e, ok := r.auth[id]; ok {
		e.hash = sha256.Sum256([]byte(secret))
		r.auth[id] = e
	}
	r.mu.Unlock()
	return secret, nil
}
