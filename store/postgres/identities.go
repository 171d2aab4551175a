package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	bff "github.com/openedx/mobile-auth-bff"
)

type identityRow struct {
	Provider  string    `db:"provider"`
	Subject   string    `db:"subject"`
	UserID    int64     `db:"user_id"`
	CreatedAt time.Time `db:"created_at"`
}

func (r identityRow) identity() bff.Identity {
	return bff.Identity{Provider: r.Provider, Subject: r.Subject, UserID: r.UserID, CreatedAt: r.CreatedAt}
}

const identityColumns = `provider, subject, user_id, created_at`

// LinkIdentity links a provider account to a user, once. The insert and
// the look-up of an existing link are one statement each inside one
// transaction, so two concurrent links of one identity end with one owner.
func (s *Store) LinkIdentity(ctx context.Context, id bff.Identity) (bff.Identity, bool, error) {
	var out bff.Identity
	var created bool
	err := s.inTx(ctx, "link identity", func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `INSERT INTO social_identities (`+identityColumns+`)
			VALUES ($1, $2, $3, $4) ON CONFLICT (provider, subject) DO NOTHING
			RETURNING `+identityColumns, id.Provider, id.Subject, id.UserID, id.CreatedAt)
		r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[identityRow])
		if err == nil {
			out, created = r.identity(), true
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		rows, _ = tx.Query(ctx, `SELECT `+identityColumns+` FROM social_identities
			WHERE provider = $1 AND subject = $2`, id.Provider, id.Subject)
		if r, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[identityRow]); err != nil {
			return err
		}
		if r.UserID != id.UserID {
			return fmt.Errorf("identity %s: linked to another user: %w", id.Provider, bff.ErrConflict)
		}
		out = r.identity()
		return nil
	})
	if err != nil {
		return bff.Identity{}, false, err
	}
	return out, created, nil
}

// FindIdentity returns the identity of a provider account.
func (s *Store) FindIdentity(ctx context.Context, provider, subject string) (bff.Identity, error) {
	if !storable(provider, subject) {
		return bff.Identity{}, fmt.Errorf("find identity: %w", bff.ErrNotFound)
	}
	rows, _ := s.pool.Query(ctx, `SELECT `+identityColumns+` FROM social_identities
		WHERE provider = $1 AND subject = $2`, provider, subject)
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[identityRow])
	if err != nil {
		return bff.Identity{}, dbErr("find identity", err)
	}
	return r.identity(), nil
}

// ListIdentities returns a user's identities by provider and subject.
func (s *Store) ListIdentities(ctx context.Context, userID int64) ([]bff.Identity, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+identityColumns+` FROM social_identities
		WHERE user_id = $1 ORDER BY provider COLLATE "C", subject COLLATE "C"`, userID)
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByName[identityRow])
	if err != nil {
		return nil, dbErr("list identities", err)
	}
	out := make([]bff.Identity, len(rs))
	for i, r := range rs {
		out[i] = r.identity()
	}
	return out, nil
}

// UnlinkIdentity removes a provider account from a user.
func (s *Store) UnlinkIdentity(ctx context.Context, userID int64, provider, subject string) error {
	if !storable(provider, subject) {
		return fmt.Errorf("unlink identity: %w", bff.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM social_identities
		WHERE user_id = $1 AND provider = $2 AND subject = $3`, userID, provider, subject)
	if err != nil {
		return dbErr("unlink identity", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("identity %s of user %d: %w", provider, userID, bff.ErrNotFound)
	}
	return nil
}
