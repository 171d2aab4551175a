package memory

import (
	"context"
	"fmt"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
)

// CreateAdminSession stores a new dashboard session.
func (s *Store) CreateAdminSession(_ context.Context, sess bff.AdminSession) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.dashboard[sess.ID]; ok {
		return fmt.Errorf("admin session: %w", bff.ErrConflict)
	}
	s.dashboard[sess.ID] = sess
	return nil
}

// GetAdminSession returns a dashboard session that has not expired at now.
func (s *Store) GetAdminSession(_ context.Context, id string, now time.Time) (bff.AdminSession, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sess, ok := s.dashboard[id]
	if !ok || !now.Before(sess.ExpiresAt) {
		return bff.AdminSession{}, fmt.Errorf("admin session: %w", bff.ErrNotFound)
	}
	return sess, nil
}

// DeleteAdminSession ends a dashboard session.
func (s *Store) DeleteAdminSession(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.dashboard, id)
	return nil
}

// DeleteAdminSessionsExcept ends the sessions of every other admin token.
func (s *Store) DeleteAdminSessionsExcept(_ context.Context, fingerprint string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for id, sess := range s.dashboard {
		if sess.TokenFingerprint != fingerprint {
			delete(s.dashboard, id)
			n++
		}
	}
	return n, nil
}

// PruneAdminSessions deletes the sessions that expired before the given time.
func (s *Store) PruneAdminSessions(_ context.Context, before time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return pruneExpired(s.dashboard, before, func(sess bff.AdminSession) time.Time { return sess.ExpiresAt }), nil
}
