package cache

import (
	"context"
	"slices"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
)

// MaxTokens bounds the cached access-token records (each about a
// kilobyte, most of it the serialized request): past it they are all
// forgotten, and the working set refills.
const MaxTokens = 10_000

// tokenRecords are the cached access tokens. A record changes only by its
// revocation (its own, its family's, its user's: store.AccessTokenEvent,
// store.FamilyEvent, store.UserEvent) or its deletion (its client's,
// store.ClientEvent; pruning, after it expired), so every event that can
// make a record stale names it, one of those keys, or all of them.
type tokenRecords struct {
	bySig    map[string]entry[bff.AccessToken]
	byFamily map[string][]string // the signatures cached of each family
	indexed  int                 // signatures in byFamily, stale ones included
}

func newTokenRecords() tokenRecords {
	return tokenRecords{bySig: map[string]entry[bff.AccessToken]{}, byFamily: map[string][]string{}}
}

func (r *tokenRecords) forget(sig string) { delete(r.bySig, sig) }

func (r *tokenRecords) forgetFamily(id string) {
	for _, sig := range r.byFamily[id] {
		delete(r.bySig, sig)
	}
	r.indexed -= len(r.byFamily[id])
	delete(r.byFamily, id)
}

// forgetWhere drops the records that match: a scan, for the rare events
// (a user disabled, a password changed, a client deleted).
func (r *tokenRecords) forgetWhere(match func(*bff.AccessToken) bool) {
	for sig, e := range r.bySig {
		if match(&e.v) {
			delete(r.bySig, sig)
		}
	}
}

func (r *tokenRecords) add(t bff.AccessToken, at time.Time) {
	if len(r.bySig) >= MaxTokens || r.indexed >= MaxTokens {
		*r = newTokenRecords()
	}
	if _, ok := r.bySig[t.Signature]; !ok && !slices.Contains(r.byFamily[t.FamilyID], t.Signature) {
		r.byFamily[t.FamilyID] = append(r.byFamily[t.FamilyID], t.Signature)
		r.indexed++
	}
	r.bySig[t.Signature] = entry[bff.AccessToken]{v: t, at: at}
}

// GetAccessToken returns an access token's record from the cache or the
// store. A cached record is used while the change feed is up, for at most
// the cache's maximum age, and only until the token expires: an expired one
// is read again (pruning may have deleted it). Misses are not cached. The
// record's slices are shared between callers, who only read them.
func (s *Store) GetAccessToken(ctx context.Context, signature string) (bff.AccessToken, error) {
	s.mu.RLock()
	live, gen := s.live, s.generation
	e, ok := s.tokens.bySig[signature]
	s.mu.RUnlock()
	now := s.now()
	if live && ok && now.Sub(e.at) < s.maxAge && now.Before(e.v.ExpiresAt) {
		return e.v, nil
	}
	t, err := s.inner.GetAccessToken(ctx, signature)
	if err != nil || !live || !now.Before(t.ExpiresAt) || t.Signature != signature {
		return t, err
	}
	s.mu.Lock()
	if s.live && s.generation == gen {
		s.tokens.add(t, now)
	}
	s.mu.Unlock()
	return t, nil
}

// PruneTokens deletes expired tokens and forgets every cached record: the
// store's idea of "expired before" is the caller's, not the cache's clock.
func (s *Store) PruneTokens(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.inner.PruneTokens(ctx, before)
	s.mu.Lock()
	s.generation++
	s.tokens = newTokenRecords()
	s.mu.Unlock()
	return n, err
}
