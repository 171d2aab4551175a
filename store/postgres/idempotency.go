package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

type idempotencyRow struct {
	UserID      int64               `db:"user_id"`
	Key         string              `db:"key"`
	ClaimID     string              `db:"claim_id"`
	Fingerprint string              `db:"fingerprint"`
	State       string              `db:"state"`
	Status      int                 `db:"status"`
	Header      map[string][]string `db:"header"`
	Body        []byte              `db:"body"`
	CreatedAt   time.Time           `db:"created_at"`
	FinishedAt  *time.Time          `db:"finished_at"`
	ExpiresAt   time.Time           `db:"expires_at"`
}

func (r idempotencyRow) record() bff.IdempotencyRecord {
	return bff.IdempotencyRecord{UserID: r.UserID, Key: r.Key, ClaimID: r.ClaimID, Fingerprint: r.Fingerprint,
		State: bff.IdempotencyState(r.State), Status: r.Status, Header: r.Header, Body: r.Body,
		CreatedAt: r.CreatedAt, FinishedAt: r.FinishedAt, ExpiresAt: r.ExpiresAt}
}

const idempotencyColumns = `user_id, key, claim_id, fingerprint, state, status, header, body, created_at, finished_at, expires_at`

// ClaimIdempotencyKey stores rec unless a live record of its user and key
// exists. The insert decides alone which of concurrent claims wins (the
// losers wait for the winner's commit and then see its row); an expired
// record is replaced in the same statement.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, rec bff.IdempotencyRecord) (bff.IdempotencyRecord, bool, error) {
	if err := store.CheckIdempotencyKey(rec.Key); err != nil {
		return bff.IdempotencyRecord{}, false, err
	}
	if !storable(rec.Key, rec.ClaimID, rec.Fingerprint) {
		return bff.IdempotencyRecord{}, false, fmt.Errorf("claim idempotency key: %w", bff.ErrInvalidInput)
	}
	// A live record that is released between the insert and the select is
	// gone when read: try again, a few times at most.
	for range 3 {
		rows, _ := s.pool.Query(ctx, `INSERT INTO idempotency_keys AS k (user_id, key, claim_id, fingerprint, state, created_at, expires_at)
			VALUES ($1, $2, $3, $4, 'in_flight', $5, $6)
			ON CONFLICT (user_id, key) DO UPDATE SET
				claim_id = EXCLUDED.claim_id, fingerprint = EXCLUDED.fingerprint, state = 'in_flight',
				status = 0, header = NULL, body = NULL, created_at = EXCLUDED.created_at,
				finished_at = NULL, expires_at = EXCLUDED.expires_at
				WHERE k.expires_at <= EXCLUDED.created_at
			RETURNING `+idempotencyColumns,
			rec.UserID, rec.Key, rec.ClaimID, rec.Fingerprint, rec.CreatedAt, rec.ExpiresAt)
		r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[idempotencyRow])
		if err == nil {
			return r.record(), true, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return bff.IdempotencyRecord{}, false, dbErr("claim idempotency key", err)
		}
		rows, _ = s.pool.Query(ctx, `SELECT `+idempotencyColumns+` FROM idempotency_keys WHERE user_id = $1 AND key = $2`,
			rec.UserID, rec.Key)
		r, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[idempotencyRow])
		if err == nil {
			return r.record(), false, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return bff.IdempotencyRecord{}, false, dbErr("claim idempotency key", err)
		}
	}
	return bff.IdempotencyRecord{}, false, fmt.Errorf("claim idempotency key: contended: %w", bff.ErrUnavailable)
}

// FinishIdempotencyKey records the outcome of an in-flight claim.
func (s *Store) FinishIdempotencyKey(ctx context.Context, rec bff.IdempotencyRecord) error {
	if rec.State != bff.IdempotencyCompleted && rec.State != bff.IdempotencyUnknown {
		return fmt.Errorf("finish idempotency key: state %q: %w", rec.State, bff.ErrInvalidInput)
	}
	if !storable(rec.Key, rec.ClaimID) {
		return fmt.Errorf("finish idempotency key: %w", bff.ErrNotFound)
	}
	var header any
	if rec.Header != nil {
		header = rec.Header
	}
	tag, err := s.pool.Exec(ctx, `UPDATE idempotency_keys SET state = $4, status = $5, header = $6, body = $7, finished_at = $8
		WHERE user_id = $1 AND key = $2 AND claim_id = $3 AND state = 'in_flight'`,
		rec.UserID, rec.Key, rec.ClaimID, string(rec.State), rec.Status, header, rec.Body, rec.FinishedAt)
	if err != nil {
		return dbErr("finish idempotency key", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("finish idempotency key: no in-flight claim: %w", bff.ErrNotFound)
	}
	return nil
}

// ReleaseIdempotencyKey deletes an in-flight claim.
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, userID int64, key, claimID string) error {
	if !storable(key, claimID) {
		return nil
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND claim_id = $3 AND state = 'in_flight'`,
		userID, key, claimID)
	return dbErr("release idempotency key", err)
}

// PruneIdempotencyKeys deletes the records that expired before the given time.
func (s *Store) PruneIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE expires_at < $1`, before)
	if err != nil {
		return 0, dbErr("prune idempotency keys", err)
	}
	return tag.RowsAffected(), nil
}
