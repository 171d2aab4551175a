package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	bff "github.com/openedx/mobile-auth-bff"
)

// CreateAdminSession stores a new dashboard session.
func (s *Store) CreateAdminSession(ctx context.Context, sess bff.AdminSession) error {
	if !storable(sess.ID, sess.TokenFingerprint) {
		return fmt.Errorf("create admin session: %w", bff.ErrInvalidInput)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO admin_sessions (id, token_fingerprint, created_at, expires_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
		sess.ID, sess.TokenFingerprint, sess.CreatedAt, sess.ExpiresAt)
	if err != nil {
		return dbErr("create admin session", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("create admin session: %w", bff.ErrConflict)
	}
	return nil
}

// GetAdminSession returns a dashboard session that has not expired at now.
func (s *Store) GetAdminSession(ctx context.Context, id string, now time.Time) (bff.AdminSession, error) {
	if !storable(id) {
		return bff.AdminSession{}, fmt.Errorf("admin session: %w", bff.ErrNotFound)
	}
	out := bff.AdminSession{ID: id}
	err := s.pool.QueryRow(ctx, `SELECT token_fingerprint, created_at, expires_at FROM admin_sessions
		WHERE id = $1 AND expires_at > $2`, id, now).Scan(&out.TokenFingerprint, &out.CreatedAt, &out.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return bff.AdminSession{}, fmt.Errorf("admin session: %w", bff.ErrNotFound)
	}
	if err != nil {
		return bff.AdminSession{}, dbErr("get admin session", err)
	}
	return out, nil
}

// DeleteAdminSession ends a dashboard session.
func (s *Store) DeleteAdminSession(ctx context.Context, id string) error {
	if !storable(id) {
		return nil
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM admin_sessions WHERE id = $1`, id)
	return dbErr("delete admin session", err)
}

// DeleteAdminSessionsExcept ends the sessions of every other admin token.
func (s *Store) DeleteAdminSessionsExcept(ctx context.Context, fingerprint string) (int64, error) {
	if !storable(fingerprint) {
		return 0, fmt.Errorf("delete admin sessions: %w", bff.ErrInvalidInput)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM admin_sessions WHERE token_fingerprint <> $1`, fingerprint)
	if err != nil {
		return 0, dbErr("delete admin sessions", err)
	}
	return tag.RowsAffected(), nil
}

// PruneAdminSessions deletes the sessions that expired before the given time.
func (s *Store) PruneAdminSessions(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM admin_sessions WHERE expires_at < $1`, before)
	if err != nil {
		return 0, dbErr("prune admin sessions", err)
	}
	return tag.RowsAffected(), nil
}
