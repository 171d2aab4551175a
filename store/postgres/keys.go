package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

type keyRow struct {
	KID         string     `db:"kid"`
	Algorithm   string     `db:"algorithm"`
	State       string     `db:"state"`
	PrivateKey  []byte     `db:"private_key"`
	PublicJWK   []byte     `db:"public_jwk"`
	CreatedAt   time.Time  `db:"created_at"`
	ActivatedAt *time.Time `db:"activated_at"`
	RetiredAt   *time.Time `db:"retired_at"`
}

// ListSigningKeys returns every key, newest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]bff.SigningKey, error) {
	rows, _ := s.pool.Query(ctx, `SELECT kid, algorithm, state, private_key, public_jwk,
		created_at, activated_at, retired_at FROM signing_keys ORDER BY created_at DESC, kid DESC`)
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByName[keyRow])
	if err != nil {
		return nil, dbErr("list signing keys", err)
	}
	out := make([]bff.SigningKey, len(rs))
	for i, r := range rs {
		out[i] = bff.SigningKey{
			KID: r.KID, Algorithm: r.Algorithm, State: bff.KeyState(r.State), PrivateKey: r.PrivateKey,
			PublicJWK: r.PublicJWK, CreatedAt: r.CreatedAt, ActivatedAt: r.ActivatedAt, RetiredAt: r.RetiredAt,
		}
	}
	return out, nil
}

func insertKeyTx(ctx context.Context, tx pgx.Tx, k bff.SigningKey, state bff.KeyState) error {
	_, err := tx.Exec(ctx, `INSERT INTO signing_keys (kid, algorithm, state, private_key, public_jwk,
		created_at, activated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		k.KID, k.Algorithm, string(state), k.PrivateKey, json.RawMessage(k.PublicJWK), k.CreatedAt, k.ActivatedAt)
	return err
}

// InitSigningKeys stores the first keys unless a current key exists; the
// partial unique index makes the check race-free across instances.
func (s *Store) InitSigningKeys(ctx context.Context, current, next bff.SigningKey) error {
	return s.inTx(ctx, "init signing keys", func(tx pgx.Tx) error {
		if err := insertKeyTx(ctx, tx, current, bff.KeyCurrent); err != nil {
			return err
		}
		if err := insertKeyTx(ctx, tx, next, bff.KeyNext); err != nil {
			return err
		}
		return notifyTx(ctx, tx, store.EventKeys)
	})
}

// RotateSigningKeys moves next → current → retired and stores newNext.
func (s *Store) RotateSigningKeys(ctx context.Context, newNext bff.SigningKey, at time.Time) error {
	return s.inTx(ctx, "rotate signing keys", func(tx pgx.Tx) error {
		// Lock both rows so that concurrent rotations run one after the other.
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT kid FROM signing_keys
			WHERE state IN ('current', 'next') FOR UPDATE) k`).Scan(&n); err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("rotate: no current or next key: %w", bff.ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `UPDATE signing_keys SET state = 'retired', retired_at = $1
			WHERE state = 'current'`, at); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE signing_keys SET state = 'current', activated_at = $1
			WHERE state = 'next'`, at); err != nil {
			return err
		}
		if err := insertKeyTx(ctx, tx, newNext, bff.KeyNext); err != nil {
			return err
		}
		return notifyTx(ctx, tx, store.EventKeys)
	})
}
