package memory

import (
	"context"
	"fmt"
	"sort"

	bff "github.com/openedx/mobile-auth-bff"
)

// identityKey is the unique key of a social identity.
type identityKey struct{ provider, subject string }

// LinkIdentity links a provider account to a user, once.
func (s *Store) LinkIdentity(_ context.Context, id bff.Identity) (bff.Identity, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := identityKey{id.Provider, id.Subject}
	if old, ok := s.identities[k]; ok {
		if old.UserID != id.UserID {
			return bff.Identity{}, false, fmt.Errorf("identity %s: linked to another user: %w", id.Provider, bff.ErrConflict)
		}
		return old, false, nil
	}
	if _, ok := s.users[id.UserID]; !ok {
		return bff.Identity{}, false, fmt.Errorf("user %d: %w", id.UserID, bff.ErrNotFound)
	}
	s.identities[k] = id
	return id, true, nil
}

// FindIdentity returns the identity of a provider account.
func (s *Store) FindIdentity(_ context.Context, provider, subject string) (bff.Identity, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.identities[identityKey{provider, subject}]
	if !ok {
		return bff.Identity{}, fmt.Errorf("identity %s: %w", provider, bff.ErrNotFound)
	}
	return id, nil
}

// ListIdentities returns a user's identities by provider and subject.
func (s *Store) ListIdentities(_ context.Context, userID int64) ([]bff.Identity, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []bff.Identity{}
	for _, id := range s.identities {
		if id.UserID == userID {
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Provider != out[j].Provider {
			return out[i].Provider < out[j].Provider
		}
		return out[i].Subject < out[j].Subject
	})
	return out, nil
}

// UnlinkIdentity removes a provider account from a user.
func (s *Store) UnlinkIdentity(_ context.Context, userID int64, provider, subject string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := identityKey{provider, subject}
	if id, ok := s.identities[k]; !ok || id.UserID != userID {
		return fmt.Errorf("identity %s of user %d: %w", provider, userID, bff.ErrNotFound)
	}
	delete(s.identities, k)
	return nil
}
