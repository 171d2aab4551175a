package postgres

import (
	"context"
	"time"
)

// UseDPoPProof records a proof's key until expiresAt; false when a record
// of it that has not expired at now exists. The primary key makes one of
// concurrent uses win; an expired record is taken over in place.
func (s *Store) UseDPoPProof(ctx context.Context, key string, now, expiresAt time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO dpop_proofs (key, expires_at) VALUES ($1, $3)
		ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE dpop_proofs.expires_at <= $2`,
		key, now, expiresAt)
	if err != nil {
		return false, dbErr("use dpop proof", err)
	}
	return tag.RowsAffected() == 1, nil
}

// PruneDPoPProofs deletes the records that expired before the given time.
func (s *Store) PruneDPoPProofs(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM dpop_proofs WHERE expires_at < $1`, before)
	if err != nil {
		return 0, dbErr("prune dpop proofs", err)
	}
	return tag.RowsAffected(), nil
}
