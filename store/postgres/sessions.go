package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	bff "github.com/openedx/mobile-auth-bff"
)

type sessionRow struct {
	ID        string    `db:"id"`
	UserID    int64     `db:"user_id"`
	ClientID  string    `db:"client_id"`
	GrantType string    `db:"grant_type"`
	Format    string    `db:"format"`
	Scopes    []string  `db:"scopes"`
	FamilyID  *string   `db:"family_id"`
	CreatedAt time.Time `db:"created_at"`
	ExpiresAt time.Time `db:"expires_at"`
	// TokenIssuedAt is NULL for sessions made before migration 0013.
	TokenIssuedAt *time.Time `db:"token_issued_at"`
}

func (r sessionRow) session() bff.Session {
	return bff.Session{ID: r.ID, UserID: r.UserID, ClientID: r.ClientID, GrantType: r.GrantType,
		Format: bff.TokenFormat(r.Format), Scopes: r.Scopes, FamilyID: deref(r.FamilyID), CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt,
		TokenIssuedAt: derefTime(r.TokenIssuedAt)}
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

const sessionColumns = `id, user_id, client_id, grant_type, format, scopes, family_id, created_at, expires_at,
	token_issued_at`

// EnsureSession stores s unless a live session with its id exists, if
// bff.Session.MayOpen allows it. The user's and the family's rows are
// share-locked while it checks them, so a concurrent disabling or
// revocation either waits for it (and then deletes the new session) or is
// seen by it.
func (s *Store) EnsureSession(ctx context.Context, sess bff.Session) (bff.Session, error) {
	var out bff.Session
	err := s.inTx(ctx, "ensure session", func(tx pgx.Tx) error {
		u := bff.User{ID: sess.UserID}
		if err := tx.QueryRow(ctx, `SELECT disabled, tokens_valid_after FROM users WHERE id = $1 FOR SHARE`,
			sess.UserID).Scan(&u.Disabled, &u.TokensValidAfter); err != nil {
			return dbErr(fmt.Sprintf("session user %d", sess.UserID), err)
		}
		var family *bff.TokenFamily
		if sess.FamilyID != "" {
			f := bff.TokenFamily{ID: sess.FamilyID}
			err := tx.QueryRow(ctx, `SELECT revoked_at FROM token_families WHERE id = $1 FOR SHARE`,
				sess.FamilyID).Scan(&f.RevokedAt)
			switch {
			case err == nil:
				family = &f
			case !errors.Is(err, pgx.ErrNoRows): // pruned: nothing to check
				return dbErr("session token family", err)
			}
		}
		if err := sess.MayOpen(u, family); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `INSERT INTO sessions AS s (`+sessionColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (id) DO UPDATE SET
				user_id = EXCLUDED.user_id, client_id = EXCLUDED.client_id, grant_type = EXCLUDED.grant_type,
				format = EXCLUDED.format, scopes = EXCLUDED.scopes, family_id = EXCLUDED.family_id,
				created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
				token_issued_at = EXCLUDED.token_issued_at, ended_at = NULL
				WHERE s.expires_at <= EXCLUDED.created_at
			RETURNING `+sessionColumns,
			sess.ID, sess.UserID, sess.ClientID, sess.GrantType, string(sess.Format), nonNil(sess.Scopes),
			nullString(sess.FamilyID), sess.CreatedAt, sess.ExpiresAt, nullTime(sess.TokenIssuedAt))
		r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[sessionRow])
		if err == nil {
			out = r.session()
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// A live session has the id: the conflict updated nothing. It is
		// reused, unless it was logged out.
		var ended *time.Time
		rows, _ = tx.Query(ctx, `SELECT `+sessionColumns+`, ended_at FROM sessions WHERE id = $1`, sess.ID)
		r2, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (sessionRow, error) {
			var r sessionRow
			err := row.Scan(&r.ID, &r.UserID, &r.ClientID, &r.GrantType, &r.Format, &r.Scopes, &r.FamilyID,
				&r.CreatedAt, &r.ExpiresAt, &r.TokenIssuedAt, &ended)
			return r, err
		})
		if err != nil {
			return err
		}
		if ended != nil {
			return fmt.Errorf("session was logged out: %w", bff.ErrTokenRevoked)
		}
		out = r2.session()
		return nil
	})
	return out, err
}

// GetSession returns a live session by id.
func (s *Store) GetSession(ctx context.Context, id string) (bff.Session, error) {
	if !storable(id) {
		return bff.Session{}, fmt.Errorf("get session: %w", bff.ErrNotFound)
	}
	rows, _ := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1 AND ended_at IS NULL`, id)
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[sessionRow])
	if err != nil {
		return bff.Session{}, dbErr("get session", err)
	}
	return r.session(), nil
}

// DeleteSession ends a session; the row stays, ended, until it expires, so
// that logging in again with the same token cannot bring it back.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if !storable(id) {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE sessions SET ended_at = now() WHERE id = $1 AND ended_at IS NULL`, id)
	return dbErr("end session", err)
}
