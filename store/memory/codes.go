package memory

import (
	"context"
	"fmt"
	"slices"

	bff "github.com/openedx/mobile-auth-bff"
)

// CreateAuthorizationCode stores a new code.
func (s *Store) CreateAuthorizationCode(_ context.Context, c bff.AuthorizationCode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.codes[c.Signature]; ok {
		return fmt.Errorf("authorization code: %w", bff.ErrConflict)
	}
	if _, ok := s.clients[c.ClientID]; !ok {
		return fmt.Errorf("authorization code client %q: %w", c.ClientID, bff.ErrNotFound)
	}
	if _, ok := s.users[c.UserID]; !ok {
		return fmt.Errorf("authorization code user %d: %w", c.UserID, bff.ErrNotFound)
	}
	s.codes[c.Signature] = cloneCode(c)
	return nil
}

// GetAuthorizationCode returns a code by signature, used or not.
func (s *Store) GetAuthorizationCode(_ context.Context, signature string) (bff.AuthorizationCode, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.codes[signature]
	if !ok {
		return bff.AuthorizationCode{}, fmt.Errorf("authorization code: %w", bff.ErrNotFound)
	}
	return cloneCode(c), nil
}

func cloneCode(c bff.AuthorizationCode) bff.AuthorizationCode {
	c.Scopes = slices.Clone(c.Scopes)
	c.Request = slices.Clone(c.Request)
	if c.UsedAt != nil {
		at := *c.UsedAt
		c.UsedAt = &at
	}
	return c
}
