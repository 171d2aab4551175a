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

type userRow struct {
	ID            int64      `db:"id"`
	Username      string     `db:"username"`
	Email         string     `db:"email"`
	Name          string     `db:"name"`
	PasswordHash  string     `db:"password_hash"`
	EmailVerified bool       `db:"email_verified"`
	IsStaff       bool       `db:"is_staff"`
	IsSuperuser   bool       `db:"is_superuser"`
	Disabled      bool       `db:"disabled"`
	DisabledAt    *time.Time `db:"disabled_at"`
	ValidAfter    *time.Time `db:"tokens_valid_after"`
	CreatedAt     time.Time  `db:"created_at"`
	UpdatedAt     time.Time  `db:"updated_at"`
}

const userColumns = `id, username, email, name, password_hash, email_verified, is_staff,
	is_superuser, disabled, disabled_at, tokens_valid_after, created_at, updated_at`

func (r userRow) user() bff.User {
	return bff.User{
		ID: r.ID, Username: r.Username, Email: r.Email, Name: r.Name, PasswordHash: r.PasswordHash,
		EmailVerified: r.EmailVerified, IsStaff: r.IsStaff, IsSuperuser: r.IsSuperuser,
		Disabled: r.Disabled, DisabledAt: r.DisabledAt, TokensValidAfter: r.ValidAfter,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

func collectUser(rows pgx.Rows, op string) (bff.User, error) {
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[userRow])
	if err != nil {
		return bff.User{}, dbErr(op, err)
	}
	return r.user(), nil
}

// CreateUser stores a new user and returns it with its id.
func (s *Store) CreateUser(ctx context.Context, u bff.User) (bff.User, error) {
	now := time.Now().UTC()
	var disabledAt *time.Time
	if u.Disabled {
		disabledAt = &now
	}
	rows, _ := s.pool.Query(ctx, `INSERT INTO users (username, email, name, password_hash, email_verified,
		is_staff, is_superuser, disabled, disabled_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING `+userColumns,
		u.Username, u.Email, u.Name, u.PasswordHash, u.EmailVerified, u.IsStaff, u.IsSuperuser,
		u.Disabled, disabledAt, now)
	created, err := collectUser(rows, "create user")
	if errors.Is(err, bff.ErrConflict) {
		// The trigger of migration 0010 keys the username and the email in
		// user_logins; either key held already is the conflict.
		return bff.User{}, fmt.Errorf("create user: %w", bff.ErrLoginTaken)
	}
	return created, err
}

// GetUser returns a user by id.
func (s *Store) GetUser(ctx context.Context, id int64) (bff.User, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
	return collectUser(rows, fmt.Sprintf("get user %d", id))
}

// GetUserByLogin finds the one user whose username or email has the
// login's key (user_logins, kept by the trigger of migration 0010). A key
// left ambiguous by the migration names nobody.
func (s *Store) GetUserByLogin(ctx context.Context, login string) (bff.User, error) {
	if !storable(login) {
		return bff.User{}, fmt.Errorf("get user by login: %w", bff.ErrNotFound)
	}
	rows, _ := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users
		WHERE id = (SELECT user_id FROM user_logins WHERE login = lower($1 COLLATE "C"))`, login)
	return collectUser(rows, "get user by login")
}

// SetUserDisabled disables (revoking every token family) or enables a user.
func (s *Store) SetUserDisabled(ctx context.Context, id int64, disabled bool, actor string, at time.Time) (bff.User, error) {
	var out bff.User
	err := s.inTx(ctx, "set user disabled", func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `UPDATE users SET disabled = $2,
			disabled_at = CASE WHEN $2 THEN COALESCE(disabled_at, $3) END,
			tokens_valid_after = CASE WHEN $2 THEN $3 ELSE tokens_valid_after END, updated_at = $3
			WHERE id = $1 RETURNING `+userColumns, id, disabled, at)
		u, err := collectUser(rows, fmt.Sprintf("user %d", id))
		if err != nil {
			return err
		}
		out = u
		action := "enable"
		if disabled {
			action = "disable"
			if err := revokeUserTx(ctx, tx, id, at); err != nil {
				return err
			}
		}
		if err := auditTx(ctx, tx, id, action, actor, at); err != nil {
			return err
		}
		return notifyTx(ctx, tx, store.UserEvent(id), store.EventJTIs)
	})
	return out, err
}

// SetUserPassword replaces the password hash and revokes every token family.
func (s *Store) SetUserPassword(ctx context.Context, id int64, hash, actor string, at time.Time) error {
	return s.inTx(ctx, "set user password", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, tokens_valid_after = $3, updated_at = $3 WHERE id = $1`, id, hash, at)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("user %d: %w", id, bff.ErrNotFound)
		}
		if err := revokeUserTx(ctx, tx, id, at); err != nil {
			return err
		}
		if err := auditTx(ctx, tx, id, "password", actor, at); err != nil {
			return err
		}
		return notifyTx(ctx, tx, store.UserEvent(id), store.EventJTIs)
	})
}

// ListAuditEvents returns a user's audit trail, oldest first.
func (s *Store) ListAuditEvents(ctx context.Context, userID int64) ([]bff.AuditEvent, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, user_id, action, actor, at FROM user_audit
		WHERE user_id = $1 ORDER BY id`, userID)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[bff.AuditEvent])
	if err != nil {
		return nil, dbErr("list audit events", err)
	}
	return out, nil
}

func auditTx(ctx context.Context, tx pgx.Tx, userID int64, action, actor string, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO user_audit (user_id, action, actor, at) VALUES ($1, $2, $3, $4)`,
		userID, action, actor, at)
	return err
}

// revokeUserTx revokes every family of the user, denies the ids of the
// user's unexpired JWTs and deletes the user's sessions. The caller holds
// the user's row lock, so token writes of the user wait for the commit,
// then see the new state (see opBatch.allowTokens).
func revokeUserTx(ctx context.Context, tx pgx.Tx, userID int64, at time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE token_families SET revoked_at = $2
		WHERE user_id = $1 AND revoked_at IS NULL`, userID, at); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO revoked_jtis (jti, expires_at)
		SELECT a.jti, a.expires_at FROM access_tokens a JOIN token_families f ON f.id = a.family_id
		WHERE f.user_id = $1 AND a.jti IS NOT NULL AND a.expires_at > $2
		ON CONFLICT (jti) DO NOTHING`, userID, at); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
	return err
}
