package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	bff "github.com/openedx/mobile-auth-bff"
)

type codeRow struct {
	Signature           string     `db:"signature"`
	RequestID           string     `db:"request_id"`
	ClientID            string     `db:"client_id"`
	UserID              int64      `db:"user_id"`
	RedirectURI         string     `db:"redirect_uri"`
	CodeChallenge       string     `db:"code_challenge"`
	CodeChallengeMethod string     `db:"code_challenge_method"`
	Scopes              []string   `db:"scopes"`
	AuthTime            time.Time  `db:"authenticated_at"`
	CreatedAt           time.Time  `db:"created_at"`
	ExpiresAt           time.Time  `db:"expires_at"`
	UsedAt              *time.Time `db:"used_at"`
	Request             []byte     `db:"request"`
}

// CreateAuthorizationCode stores a new code.
func (s *Store) CreateAuthorizationCode(ctx context.Context, c bff.AuthorizationCode) error {
	if !storable(c.Signature, c.RequestID, c.ClientID, c.RedirectURI, c.CodeChallenge, c.CodeChallengeMethod) {
		return fmt.Errorf("create authorization code: %w", bff.ErrInvalidInput)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO authorization_codes (signature, request_id, client_id, user_id,
		redirect_uri, code_challenge, code_challenge_method, scopes, authenticated_at, created_at, expires_at,
		used_at, request) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		c.Signature, c.RequestID, c.ClientID, c.UserID, c.RedirectURI, c.CodeChallenge, c.CodeChallengeMethod,
		nonNil(c.Scopes), c.AuthTime, c.CreatedAt, c.ExpiresAt, c.UsedAt, json.RawMessage(c.Request))
	return dbErr("create authorization code", err)
}

// GetAuthorizationCode returns a code by signature, used or not.
func (s *Store) GetAuthorizationCode(ctx context.Context, signature string) (bff.AuthorizationCode, error) {
	if !storable(signature) {
		return bff.AuthorizationCode{}, fmt.Errorf("get authorization code: %w", bff.ErrNotFound)
	}
	rows, _ := s.pool.Query(ctx, `SELECT signature, request_id, client_id, user_id, redirect_uri, code_challenge,
		code_challenge_method, scopes, authenticated_at, created_at, expires_at, used_at, request
		FROM authorization_codes WHERE signature = $1`, signature)
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[codeRow])
	if err != nil {
		return bff.AuthorizationCode{}, dbErr("get authorization code", err)
	}
	return bff.AuthorizationCode(r), nil
}

// queueRedeemCode queues what marks a code used inside a token
// transaction; the row lock of the UPDATE makes a concurrent redemption
// wait and then find it used. The EXISTS that tells a used code from an
// unknown one is queued behind it and only read when the UPDATE changed
// nothing.
func queueRedeemCode(batch *pgx.Batch, signature string, at time.Time) {
	var redeemed bool
	batch.Queue(`UPDATE authorization_codes SET used_at = $2 WHERE signature = $1 AND used_at IS NULL`,
		signature, at).Fn = func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		redeemed = tag.RowsAffected() == 1
		return dbErr("redeem authorization code", err)
	}
	batch.Queue(`SELECT EXISTS (SELECT 1 FROM authorization_codes WHERE signature = $1)`, signature).
		QueryRow(func(row pgx.Row) error {
			var exists bool
			if err := row.Scan(&exists); err != nil {
				return dbErr("redeem authorization code", err)
			}
			switch {
			case redeemed:
				return nil
			case exists:
				return fmt.Errorf("authorization code: %w", bff.ErrCodeUsed)
			default:
				return fmt.Errorf("authorization code: %w", bff.ErrNotFound)
			}
		})
}
