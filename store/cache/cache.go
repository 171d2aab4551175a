// Package cache keeps what every presented token needs — the account, the
// client, the revoked JWT ids, the record of an opaque access token — in
// memory in front of a store, so that the account check on each JWT and
// the lookup of each opaque token cost a map lookup instead of a query.
//
// It is only as good as its invalidation: every change made through it is
// forgotten at once, and changes made by other instances arrive as events
// (PostgreSQL NOTIFY, see postgres.inner.Listen). While the event feed is
// down the cache is empty and bypassed — never trusted stale — and it starts
// empty again when the feed is back.
package cache

import (
	"context"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// MaxEntries bounds each map; past it the map is emptied (a crude but
// allocation-free bound: the working set refills it).
const MaxEntries = 100_000

// Store is a caching store.Store.
type Store struct {
	// passThrough forwards, untouched, the methods that neither read nor
	// change what the cache holds; every other method of store.Store is
	// written out below (a read served from the cache, or a write that
	// forgets what it changed).
	passThrough
	inner  store.Store
	maxAge time.Duration
	now    func() time.Time

	mu         sync.RWMutex
	live       bool   // the event feed is up: cached entries may be used
	generation uint64 // bumped by every invalidation; stale fills are dropped
	users      map[int64]entry[bff.User]
	clients    map[string]entry[bff.Client]
	jtis       map[string]time.Time // nil: not loaded
	jtisMu     sync.Mutex           // one reload of the revoked set at a time
	tokens     tokenRecords         // access tokens by signature (tokens.go)
}

// The compiler checks that the wrapper is a whole store: a method added to
// store.Store is in neither passThrough nor the methods below, so this
// fails to compile until someone decides whether it changes a user, a
// client or a revoked JWT id (and must forget it) or passes through.
var _ store.Store = (*Store)(nil)

// passThrough lists, one by one, the methods of store.Store that the cache
// forwards untouched: none of them reads or writes a user's account, a
// client, the revoked JWT ids or an access token's record. Not
// store.Store's sub-interfaces, so that a write added to one of them is not
// forwarded silently.
type passThrough interface {
	CreateClient(ctx context.Context, c bff.Client) error
	ListClients(ctx context.Context) ([]bff.Client, error)

	CreateUser(ctx context.Context, u bff.User) (bff.User, error)
	GetUserByLogin(ctx context.Context, login string) (bff.User, error)
	ListAuditEvents(ctx context.Context, userID int64) ([]bff.AuditEvent, error)

	ListSigningKeys(ctx context.Context) ([]bff.SigningKey, error)
	InitSigningKeys(ctx context.Context, current, next bff.SigningKey) error
	RotateSigningKeys(ctx context.Context, newNext bff.SigningKey, at time.Time) error

	GetAccessTokenByJTI(ctx context.Context, jti string) (bff.AccessToken, error)
	GetRefreshToken(ctx context.Context, signature string) (bff.RefreshToken, error)
	RevokedJTIs(ctx context.Context, now time.Time) (map[string]time.Time, error)

	CreateAuthorizationCode(ctx context.Context, c bff.AuthorizationCode) error
	GetAuthorizationCode(ctx context.Context, signature string) (bff.AuthorizationCode, error)

	EnsureSession(ctx context.Context, s bff.Session) (bff.Session, error)
	GetSession(ctx context.Context, id string) (bff.Session, error)
	DeleteSession(ctx context.Context, id string) error

	CreateAdminSession(ctx context.Context, s bff.AdminSession) error
	GetAdminSession(ctx context.Context, id string, now time.Time) (bff.AdminSession, error)
	DeleteAdminSession(ctx context.Context, id string) error
	DeleteAdminSessionsExcept(ctx context.Context, fingerprint string) (int64, error)
	PruneAdminSessions(ctx context.Context, before time.Time) (int64, error)

	LoginFailures(ctx context.Context, key string) (count int, windowStart time.Time, err error)
	RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration) (count int, windowStart time.Time, err error)
	ForgiveLoginFailure(ctx context.Context, key string, windowStart time.Time) error
	ResetLoginFailures(ctx context.Context, key string) error

	LinkIdentity(ctx context.Context, id bff.Identity) (bff.Identity, bool, error)
	FindIdentity(ctx context.Context, provider, subject string) (bff.Identity, error)
	ListIdentities(ctx context.Context, userID int64) ([]bff.Identity, error)
	UnlinkIdentity(ctx context.Context, userID int64, provider, subject string) error

	ClaimIdempotencyKey(ctx context.Context, rec bff.IdempotencyRecord) (bff.IdempotencyRecord, bool, error)
	FinishIdempotencyKey(ctx context.Context, rec bff.IdempotencyRecord) error
	ReleaseIdempotencyKey(ctx context.Context, userID int64, key, claimID string) error
	PruneIdempotencyKeys(ctx context.Context, before time.Time) (int64, error)

	UseDPoPProof(ctx context.Context, key string, now, expiresAt time.Time) (bool, error)
	PruneDPoPProofs(ctx context.Context, before time.Time) (int64, error)

	AddUsage(ctx context.Context, counts []bff.UsageCount) error
	ListUsage(ctx context.Context, from, to time.Time) ([]bff.UsageCount, error)
	PruneUsage(ctx context.Context, before time.Time) (int64, error)
	CountActiveTokens(ctx context.Context, now time.Time) ([]bff.ActiveTokens, error)

	Ping(ctx context.Context) error
	Close()
}

type entry[T any] struct {
	v  T
	at time.Time
}

// New wraps inner. Entries live at most maxAge even without events; the
// cache starts bypassed until SetLive(true).
func New(inner store.Store, maxAge time.Duration) *Store {
	return &Store{passThrough: inner, inner: inner, maxAge: maxAge, now: time.Now,
		users: map[int64]entry[bff.User]{}, clients: map[string]entry[bff.Client]{}, tokens: newTokenRecords()}
}

// SetLive reports the state of the event feed. Either way the cache is
// emptied: going down, entries may miss events; coming up, events were
// missed while it was down.
func (s *Store) SetLive(live bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = live
	s.clearLocked()
}

// Live reports whether cached entries are used.
func (s *Store) Live() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.live
}

func (s *Store) clearLocked() {
	s.generation++
	s.users = map[int64]entry[bff.User]{}
	s.clients = map[string]entry[bff.Client]{}
	s.jtis = nil
	s.tokens = newTokenRecords()
}

// Invalidate forgets what a change event names (see store.UserEvent…).
func (s *Store) Invalidate(ev string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.generation++
	kind, subject := store.ParseEvent(ev)
	switch kind {
	case "user":
		id, err := strconv.ParseInt(subject, 10, 64)
		if err != nil {
			s.clearLocked()
			return
		}
		delete(s.users, id)
		// Disabling and a new password revoke the user's tokens.
		s.tokens.forgetWhere(func(t *bff.AccessToken) bool { return t.UserID == id })
	case "client":
		delete(s.clients, subject)
		// Deleting a client deletes its tokens (an update only costs the
		// cached records of its tokens a read).
		s.tokens.forgetWhere(func(t *bff.AccessToken) bool { return t.ClientID == subject })
	case "access":
		s.tokens.forget(subject)
	case "family":
		s.tokens.forgetFamily(subject)
	case store.EventTokens:
		s.tokens = newTokenRecords()
	case "jti":
		// One more revoked id: add it to the loaded set (a copy — readers
		// hold the old map without the lock) rather than reload it all.
		if s.jtis != nil {
			set := make(map[string]time.Time, len(s.jtis)+1)
			maps.Copy(set, s.jtis)
			set[subject] = time.Time{}
			s.jtis = set
		}
	case store.EventJTIs:
		s.jtis = nil
	case store.EventKeys:
		// Keys are the key manager's; nothing cached here.
	default:
		s.clearLocked()
	}
}

// lookup returns a fresh cached value and the generation to fill under.
func lookup[K comparable, V any](s *Store, m func() map[K]entry[V], k K) (V, bool, uint64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var zero V
	if !s.live {
		return zero, false, 0, false
	}
	e, ok := m()[k]
	if ok && s.now().Sub(e.at) < s.maxAge {
		return e.v, true, s.generation, true
	}
	return zero, false, s.generation, true
}

// fill stores v unless an invalidation happened since gen.
func fill[K comparable, V any](s *Store, m func() map[K]entry[V], k K, v V, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live || s.generation != gen {
		return
	}
	mm := m()
	if len(mm) >= MaxEntries {
		clear(mm)
	}
	mm[k] = entry[V]{v: v, at: s.now()}
}

func (s *Store) usersMap() map[int64]entry[bff.User]      { return s.users }
func (s *Store) clientsMap() map[string]entry[bff.Client] { return s.clients }

// GetUser returns a user from the cache or the store.
func (s *Store) GetUser(ctx context.Context, id int64) (bff.User, error) {
	u, hit, gen, use := lookup(s, s.usersMap, id)
	if hit {
		return u, nil
	}
	u, err := s.inner.GetUser(ctx, id)
	if err == nil && use {
		fill(s, s.usersMap, id, u, gen)
	}
	return u, err
}

// GetClient returns a client from the cache or the store.
func (s *Store) GetClient(ctx context.Context, id string) (bff.Client, error) {
	c, hit, gen, use := lookup(s, s.clientsMap, id)
	if hit {
		return c, nil
	}
	c, err := s.inner.GetClient(ctx, id)
	if err == nil && use {
		fill(s, s.clientsMap, id, c, gen)
	}
	return c, err
}

// IsJTIRevoked answers from the in-memory revoked set, loading it when an
// event (or the first call) made it unknown.
func (s *Store) IsJTIRevoked(ctx context.Context, jti string) (bool, error) {
	s.mu.RLock()
	live, set, gen := s.live, s.jtis, s.generation
	s.mu.RUnlock()
	if !live {
		return s.inner.IsJTIRevoked(ctx, jti)
	}
	if set == nil {
		var err error
		if set, err = s.loadJTIs(ctx, gen); err != nil {
			return false, err
		}
	}
	_, revoked := set[jti]
	return revoked, nil
}

func (s *Store) loadJTIs(ctx context.Context, gen uint64) (map[string]time.Time, error) {
	s.jtisMu.Lock()
	defer s.jtisMu.Unlock()
	s.mu.RLock()
	if s.jtis != nil && s.generation == gen {
		set := s.jtis
		s.mu.RUnlock()
		return set, nil
	}
	gen = s.generation
	s.mu.RUnlock()
	set, err := s.inner.RevokedJTIs(ctx, s.now())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.live && s.generation == gen {
		s.jtis = set
	}
	s.mu.Unlock()
	return set, nil
}

// Writes made through this instance are forgotten at once, without waiting
// for their event to come back.

// UpdateClient changes a client and forgets it.
func (s *Store) UpdateClient(ctx context.Context, id string, update func(*bff.Client) error) (bff.Client, error) {
	c, err := s.inner.UpdateClient(ctx, id, update)
	s.Invalidate(store.ClientEvent(id))
	return c, err
}

// DeleteClient removes a client and forgets it.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	err := s.inner.DeleteClient(ctx, id)
	s.Invalidate(store.ClientEvent(id))
	return err
}

// SetUserDisabled changes a user and forgets it and the revoked set.
func (s *Store) SetUserDisabled(ctx context.Context, id int64, disabled bool, actor string, at time.Time) (bff.User, error) {
	u, err := s.inner.SetUserDisabled(ctx, id, disabled, actor, at)
	s.Invalidate(store.UserEvent(id))
	s.Invalidate(store.EventJTIs)
	return u, err
}

// SetUserPassword changes a user and forgets it and the revoked set.
func (s *Store) SetUserPassword(ctx context.Context, id int64, hash, actor string, at time.Time) error {
	err := s.inner.SetUserPassword(ctx, id, hash, actor, at)
	s.Invalidate(store.UserEvent(id))
	s.Invalidate(store.EventJTIs)
	return err
}

// ApplyTokenOps applies token changes and forgets what they revoked.
func (s *Store) ApplyTokenOps(ctx context.Context, ops []store.TokenOp) error {
	err := s.inner.ApplyTokenOps(ctx, ops)
	for _, op := range ops {
		switch op := op.(type) {
		case store.RevokeJTI:
			s.Invalidate(store.JTIEvent(op.JTI))
		case store.RevokeAccessToken:
			s.Invalidate(store.AccessTokenEvent(op.Signature))
			s.Invalidate(store.EventJTIs)
			if err == nil && strings.HasPrefix(op.Signature, store.DigestPrefix) {
				// A record may be cached under the signature itself: forget
				// its family's (the digest form names no cache entry).
				if t, err := s.inner.GetAccessToken(ctx, op.Signature); err == nil {
					s.Invalidate(store.FamilyEvent(t.FamilyID))
				}
			}
		case store.RevokeFamily:
			s.Invalidate(store.FamilyEvent(op.FamilyID))
			s.Invalidate(store.EventJTIs)
		}
	}
	return err
}
