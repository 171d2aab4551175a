package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// LoginFailures returns the open failure window of key.
func (s *Store) LoginFailures(ctx context.Context, key string) (int, time.Time, error) {
	var n int
	var start time.Time
	err := s.pool.QueryRow(ctx, `SELECT failures, window_start FROM login_failures WHERE key = $1`, key).Scan(&n, &start)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, dbErr("login failures", err)
	}
	return n, start, nil
}

// RecordLoginFailure counts a failure for key in one statement (the row is
// locked by the upsert), so that concurrent failures on several instances
// each get their own count. A window whose failures were all forgiven is
// over: the next failure opens a new one, as in memory.
func (s *Store) RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	var n int
	var start time.Time
	err := s.pool.QueryRow(ctx, `INSERT INTO login_failures AS lf (key, failures, window_start) VALUES ($1, 1, $2)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN lf.window_start + $3::interval <= $2 OR lf.failures <= 0 THEN 1 ELSE lf.failures + 1 END,
			window_start = CASE WHEN lf.window_start + $3::interval <= $2 OR lf.failures <= 0 THEN $2 ELSE lf.window_start END
		RETURNING failures, window_start`, key, now, window).Scan(&n, &start)
	if err != nil {
		return 0, time.Time{}, dbErr("record login failure", err)
	}
	return n, start, nil
}

// ForgiveLoginFailure takes one failure of key's window that started at
// windowStart back, in one statement; never below zero.
func (s *Store) ForgiveLoginFailure(ctx context.Context, key string, windowStart time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE login_failures SET failures = failures - 1
		WHERE key = $1 AND window_start = $2 AND failures > 0`, key, windowStart)
	return dbErr("forgive login failure", err)
}

// ResetLoginFailures forgets key's failures.
func (s *Store) ResetLoginFailures(ctx context.Context, key string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM login_failures WHERE key = $1`, key)
	return dbErr("reset login failures", err)
}
