package memory

import (
	"context"
	"fmt"
	"slices"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// idempotencyID is the primary key of an idempotency record.
type idempotencyID struct {
	userID int64
	key    string
}

// ClaimIdempotencyKey stores rec unless a live record of its user and key exists.
func (s *Store) ClaimIdempotencyKey(_ context.Context, rec bff.IdempotencyRecord) (bff.IdempotencyRecord, bool, error) {
	if err := store.CheckIdempotencyKey(rec.Key); err != nil {
		return bff.IdempotencyRecord{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[rec.UserID]; !ok {
		return bff.IdempotencyRecord{}, false, fmt.Errorf("idempotency key user %d: %w", rec.UserID, bff.ErrNotFound)
	}
	id := idempotencyID{rec.UserID, rec.Key}
	if old, ok := s.idempotency[id]; ok && old.ExpiresAt.After(rec.CreatedAt) {
		return cloneIdempotency(old), false, nil
	}
	rec.State = bff.IdempotencyInFlight
	rec.Status, rec.Header, rec.Body, rec.FinishedAt = 0, nil, nil, nil
	s.idempotency[id] = cloneIdempotency(rec)
	return cloneIdempotency(rec), true, nil
}

// FinishIdempotencyKey records the outcome of an in-flight claim.
func (s *Store) FinishIdempotencyKey(_ context.Context, rec bff.IdempotencyRecord) error {
	if rec.State != bff.IdempotencyCompleted && rec.State != bff.IdempotencyUnknown {
		return fmt.Errorf("finish idempotency key: state %q: %w", rec.State, bff.ErrInvalidInput)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := idempotencyID{rec.UserID, rec.Key}
	old, ok := s.idempotency[id]
	if !ok || old.ClaimID != rec.ClaimID || old.State != bff.IdempotencyInFlight {
		return fmt.Errorf("finish idempotency key: no in-flight claim: %w", bff.ErrNotFound)
	}
	old.State, old.Status, old.Header, old.Body, old.FinishedAt = rec.State, rec.Status, rec.Header, rec.Body, rec.FinishedAt
	s.idempotency[id] = cloneIdempotency(old)
	return nil
}

// ReleaseIdempotencyKey deletes an in-flight claim.
func (s *Store) ReleaseIdempotencyKey(_ context.Context, userID int64, key, claimID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := idempotencyID{userID, key}
	if old, ok := s.idempotency[id]; ok && old.ClaimID == claimID && old.State == bff.IdempotencyInFlight {
		delete(s.idempotency, id)
	}
	return nil
}

// PruneIdempotencyKeys deletes the records that expired before the given time.
func (s *Store) PruneIdempotencyKeys(_ context.Context, before time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return pruneExpired(s.idempotency, before, func(rec bff.IdempotencyRecord) time.Time { return rec.ExpiresAt }), nil
}

func cloneIdempotency(r bff.IdempotencyRecord) bff.IdempotencyRecord {
	if r.Header != nil {
		h := make(map[string][]string, len(r.Header))
		for k, v := range r.Header {
			h[k] = slices.Clone(v)
		}
		r.Header = h
	}
	r.Body = slices.Clone(r.Body)
	if r.FinishedAt != nil {
		t := *r.FinishedAt
		r.FinishedAt = &t
	}
	return r
}
