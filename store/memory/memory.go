// Package memory is the embedded in-memory store: the default when no
// database is configured. It keeps everything in maps behind one lock and
// copies records in and out, so callers never share memory with it. State is
// lost when the process ends.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

var _ store.Store = (*Store)(nil)

// Store is an in-memory store.Store.
type Store struct {
	mu          sync.RWMutex
	clients     map[string]bff.Client
	users       map[int64]bff.User
	logins      map[string]int64 // bff.LoginKey of every username and email → user id
	nextUserID  int64
	audit       []bff.AuditEvent
	keys        map[string]bff.SigningKey
	families    map[string]bff.TokenFamily
	access      map[string]bff.AccessToken
	refresh     map[string]bff.RefreshToken
	revokedJTIs map[string]time.Time
	maxTokens   int       // 0: no cap (Options.MaxTokens)
	lastPrune   time.Time // the last pruning at the cap, at most one a second
	sessions    map[string]memSession
	jtis        map[string]string // jti → signature of the JWT's record
	failures    map[string]failureWindow
	identities  map[identityKey]bff.Identity
	idempotency map[idempotencyID]bff.IdempotencyRecord
	dashboard   map[string]bff.AdminSession // the admin dashboard's sign-ins, by id
	codes       map[string]bff.AuthorizationCode

	usageMu sync.Mutex // usage has a lock of its own: flushes never wait for token writes
	usage   map[bff.UsageKey]int64

	dpop dpopProofs // the accepted DPoP proofs, under their own lock
}

// memSession is a session and whether it was ended (logged out): ended
// sessions stay until they expire, so that they cannot be revived.
type memSession struct {
	bff.Session
	ended bool
}

type failureWindow struct {
	count int
	start time.Time
}

// New returns an empty store.
// DefaultMaxTokens is the cap on the tokens of a store made by New.
const DefaultMaxTokens = 100_000

// Options tune NewWith.
type Options struct {
	// MaxTokens caps the access and refresh tokens the store holds: a
	// write that would pass it, once the expired ones are pruned, fails
	// with bff.ErrUnavailable (503 temporarily_unavailable) instead of the
	// process growing until it runs out of memory. Zero or less: no cap.
	MaxTokens int
}

// New is an empty store holding at most DefaultMaxTokens tokens.
func New() *Store { return NewWith(Options{MaxTokens: DefaultMaxTokens}) }

// NewWith is an empty store tuned by opts.
func NewWith(opts Options) *Store {
	return &Store{maxTokens: opts.MaxTokens,
		clients:     map[string]bff.Client{},
		users:       map[int64]bff.User{},
		logins:      map[string]int64{},
		keys:        map[string]bff.SigningKey{},
		families:    map[string]bff.TokenFamily{},
		access:      map[string]bff.AccessToken{},
		refresh:     map[string]bff.RefreshToken{},
		revokedJTIs: map[string]time.Time{},
		sessions:    map[string]memSession{},
		jtis:        map[string]string{},
		failures:    map[string]failureWindow{},
		identities:  map[identityKey]bff.Identity{},
		idempotency: map[idempotencyID]bff.IdempotencyRecord{},
		dashboard:   map[string]bff.AdminSession{},
		codes:       map[string]bff.AuthorizationCode{},
		usage:       map[bff.UsageKey]int64{},
	}
}

// Ping always succeeds.
func (s *Store) Ping(context.Context) error { return nil }

// Close does nothing.
func (s *Store) Close() {}

// --- clients ---

// CreateClient stores a new client.
func (s *Store) CreateClient(_ context.Context, c bff.Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[c.ID]; ok {
		return fmt.Errorf("client %q: %w", c.ID, bff.ErrConflict)
	}
	s.clients[c.ID] = cloneClient(c)
	return nil
}

// GetClient returns a client by id.
func (s *Store) GetClient(_ context.Context, id string) (bff.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clients[id]
	if !ok {
		return bff.Client{}, fmt.Errorf("client %q: %w", id, bff.ErrNotFound)
	}
	return cloneClient(c), nil
}

// ListClients returns every client ordered by id.
func (s *Store) ListClients(context.Context) ([]bff.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]bff.Client, 0, len(s.clients))
	for _, c := range s.clients {
		out = append(out, cloneClient(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// UpdateClient changes a client with update, atomically.
func (s *Store) UpdateClient(_ context.Context, id string, update func(*bff.Client) error) (bff.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return bff.Client{}, fmt.Errorf("client %q: %w", id, bff.ErrNotFound)
	}
	c = cloneClient(c)
	if err := update(&c); err != nil {
		return bff.Client{}, err
	}
	old := s.clients[id]
	c.ID, c.Incarnation, c.CreatedAt = id, old.Incarnation, old.CreatedAt // never changed
	s.clients[id] = cloneClient(c)
	return c, nil
}

// DeleteClient removes a client and its tokens.
func (s *Store) DeleteClient(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[id]; !ok {
		return fmt.Errorf("client %q: %w", id, bff.ErrNotFound)
	}
	delete(s.clients, id)
	for sig, t := range s.access {
		if t.ClientID == id {
			delete(s.access, sig)
			delete(s.jtis, t.JTI)
		}
	}
	for sig, t := range s.refresh {
		if t.ClientID == id {
			delete(s.refresh, sig)
		}
	}
	for fid, f := range s.families {
		if f.ClientID == id {
			delete(s.families, fid)
		}
	}
	for sig, c := range s.codes {
		if c.ClientID == id {
			delete(s.codes, sig)
		}
	}
	for sid, sess := range s.sessions {
		if sess.ClientID == id {
			delete(s.sessions, sid)
		}
	}
	return nil
}

func cloneClient(c bff.Client) bff.Client {
	c.SecretHash = slices.Clone(c.SecretHash)
	c.PreviousSecretHash = slices.Clone(c.PreviousSecretHash)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.Scopes = slices.Clone(c.Scopes)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	return c
}

// --- users ---

// CreateUser stores a new user with the next id. Usernames and emails share
// one namespace: a key of the user held by another is ErrConflict.
func (s *Store) CreateUser(_ context.Context, u bff.User) (bff.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := u.LoginKeys()
	for _, k := range keys {
		if _, taken := s.logins[k]; taken {
			return bff.User{}, fmt.Errorf("create user: %w", bff.ErrLoginTaken)
		}
	}
	s.nextUserID++
	u.ID = s.nextUserID
	now := time.Now().UTC()
	u.CreatedAt, u.UpdatedAt = now, now
	if u.Disabled && u.DisabledAt == nil {
		u.DisabledAt = &now
	}
	s.users[u.ID] = u
	for _, k := range keys {
		s.logins[k] = u.ID
	}
	return u, nil
}

// GetUser returns a user by id.
func (s *Store) GetUser(_ context.Context, id int64) (bff.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[id]
	if !ok {
		return bff.User{}, fmt.Errorf("user %d: %w", id, bff.ErrNotFound)
	}
	return u, nil
}

// GetUserByLogin finds the one user whose username or email has the
// login's key.
func (s *Store) GetUserByLogin(_ context.Context, login string) (bff.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if id, ok := s.logins[bff.LoginKey(login)]; ok {
		return s.users[id], nil
	}
	return bff.User{}, fmt.Errorf("user: %w", bff.ErrNotFound)
}

// SetUserDisabled disables (revoking every token family) or enables a user.
func (s *Store) SetUserDisabled(_ context.Context, id int64, disabled bool, actor string, at time.Time) (bff.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return bff.User{}, fmt.Errorf("user %d: %w", id, bff.ErrNotFound)
	}
	u.Disabled = disabled
	u.UpdatedAt = at
	action := "enable"
	if disabled {
		action = "disable"
		if u.DisabledAt == nil {
			u.DisabledAt = &at
		}
		u.TokensValidAfter = &at
		s.revokeUserLocked(id, at)
	} else {
		u.DisabledAt = nil
	}
	s.users[id] = u
	s.auditLocked(id, action, actor, at)
	return u, nil
}

// SetUserPassword replaces the password hash and revokes every token family.
func (s *Store) SetUserPassword(_ context.Context, id int64, hash, actor string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return fmt.Errorf("user %d: %w", id, bff.ErrNotFound)
	}
	u.PasswordHash = hash
	u.UpdatedAt = at
	u.TokensValidAfter = &at
	s.users[id] = u
	s.revokeUserLocked(id, at)
	s.auditLocked(id, "password", actor, at)
	return nil
}

// ListAuditEvents returns a user's audit trail, oldest first.
func (s *Store) ListAuditEvents(_ context.Context, userID int64) ([]bff.AuditEvent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []bff.AuditEvent
	for _, e := range s.audit {
		if e.UserID == userID {
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *Store) auditLocked(userID int64, action, actor string, at time.Time) {
	s.audit = append(s.audit, bff.AuditEvent{ID: int64(len(s.audit) + 1), UserID: userID, Action: action, Actor: actor, At: at})
}

func (s *Store) revokeUserLocked(userID int64, at time.Time) {
	for id, f := range s.families {
		if f.UserID == userID {
			s.revokeFamilyLocked(id, at)
		}
	}
	for id, sess := range s.sessions {
		if sess.UserID == userID {
			delete(s.sessions, id)
		}
	}
}

// --- keys ---

// ListSigningKeys returns every key, newest first.
func (s *Store) ListSigningKeys(context.Context) ([]bff.SigningKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]bff.SigningKey, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, cloneKey(k))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].KID > out[j].KID
	})
	return out, nil
}

// InitSigningKeys stores the first keys unless a current key exists.
func (s *Store) InitSigningKeys(_ context.Context, current, next bff.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys {
		if k.State == bff.KeyCurrent {
			return fmt.Errorf("current signing key exists: %w", bff.ErrConflict)
		}
	}
	if _, ok := s.keys[current.KID]; ok {
		return fmt.Errorf("kid %q: %w", current.KID, bff.ErrConflict)
	}
	if _, ok := s.keys[next.KID]; ok || next.KID == current.KID {
		return fmt.Errorf("kid %q: %w", next.KID, bff.ErrConflict)
	}
	current.State, next.State = bff.KeyCurrent, bff.KeyNext
	s.keys[current.KID] = cloneKey(current)
	s.keys[next.KID] = cloneKey(next)
	return nil
}

// RotateSigningKeys moves next → current → retired and stores newNext.
func (s *Store) RotateSigningKeys(_ context.Context, newNext bff.SigningKey, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[newNext.KID]; ok {
		return fmt.Errorf("kid %q: %w", newNext.KID, bff.ErrConflict)
	}
	var cur, next *bff.SigningKey
	for kid := range s.keys {
		k := s.keys[kid]
		switch k.State {
		case bff.KeyCurrent:
			cur = &k
		case bff.KeyNext:
			next = &k
		}
	}
	if cur == nil || next == nil {
		return fmt.Errorf("rotate: no current or next key: %w", bff.ErrNotFound)
	}
	cur.State, cur.RetiredAt = bff.KeyRetired, &at
	next.State, next.ActivatedAt = bff.KeyCurrent, &at
	newNext.State = bff.KeyNext
	s.keys[cur.KID] = *cur
	s.keys[next.KID] = *next
	s.keys[newNext.KID] = cloneKey(newNext)
	return nil
}

func cloneKey(k bff.SigningKey) bff.SigningKey {
	k.PrivateKey = slices.Clone(k.PrivateKey)
	k.PublicJWK = slices.Clone(k.PublicJWK)
	return k
}

// --- tokens ---

// ApplyTokenOps checks every op first, then applies them all.
func (s *Store) ApplyTokenOps(_ context.Context, ops []store.TokenOp) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpsLocked(ops); err != nil {
		return err
	}
	if err := s.roomLocked(ops); err != nil {
		return err
	}
	for _, op := range ops {
		switch op := op.(type) {
		case store.CreateAccessToken:
			t := cloneAccess(op.Token)
			s.ensureFamilyLocked(t.FamilyID, t.ClientID, t.UserID, t.GrantType, t.AuthenticatedAt(), t.IssuedAt)
			s.access[t.Signature] = t
			if t.JTI != "" {
				s.jtis[t.JTI] = t.Signature
			}
		case store.CreateRefreshToken:
			t := cloneRefresh(op.Token)
			s.ensureFamilyLocked(t.FamilyID, t.ClientID, t.UserID, t.GrantType, t.AuthenticatedAt(), t.IssuedAt)
			s.refresh[t.Signature] = t
		case store.MarkRefreshRotated:
			t := s.refresh[op.Signature]
			stamp(&t.RotatedAt, op.At)
			s.refresh[op.Signature] = t
		case store.RevokeRefreshToken:
			t := s.refresh[op.Signature]
			stamp(&t.RevokedAt, op.At)
			s.refresh[op.Signature] = t
		case store.RevokeAccessToken:
			t := s.access[op.Signature]
			stamp(&t.RevokedAt, op.At)
			s.access[op.Signature] = t
			if t.JTI != "" {
				s.revokedJTIs[t.JTI] = t.ExpiresAt
			}
		case store.RevokeJTI:
			s.revokedJTIs[op.JTI] = op.ExpiresAt
		case store.RevokeFamily:
			s.revokeFamilyLocked(op.FamilyID, op.At)
		case store.EndSession:
			delete(s.sessions, op.ID)
		case store.RedeemAuthorizationCode:
			c := s.codes[op.Signature]
			at := op.At
			c.UsedAt = &at
			s.codes[op.Signature] = c
		}
	}
	return nil
}

// checkFamilyLocked fetches a token's family (or, for a new one, the auth
// time of the token) and its user, and asks bff.TokenFamily.MayIssue.
func (s *Store) checkFamilyLocked(familyID string, userID int64, auth time.Time) error {
	f, ok := s.families[familyID]
	if !ok {
		f = bff.TokenFamily{ID: familyID, UserID: userID, AuthTime: auth}
	}
	if userID == 0 {
		return f.MayIssue(nil)
	}
	u, ok := s.users[userID]
	if !ok {
		return fmt.Errorf("token user %d: %w", userID, bff.ErrNotFound)
	}
	return f.MayIssue(&u)
}

// checkIncarnationLocked: a token is only created for the incarnation of
// its client it was issued to.
func (s *Store) checkIncarnationLocked(clientID, incarnation string) error {
	c, ok := s.clients[clientID]
	if !ok {
		return fmt.Errorf("client %q: %w", clientID, bff.ErrNotFound)
	}
	if c.Incarnation != incarnation {
		return fmt.Errorf("client %q was deleted while the request ran: %w", clientID, bff.ErrTokenRevoked)
	}
	return nil
}

func (s *Store) checkOpsLocked(ops []store.TokenOp) error {
	createdAccess := map[string]bool{}
	createdRefresh := map[string]bool{}
	redeemed := map[string]bool{}
	for _, op := range ops {
		switch op := op.(type) {
		case store.CreateAccessToken:
			sig := op.Token.Signature
			if _, ok := s.access[sig]; ok || createdAccess[sig] {
				return fmt.Errorf("access token: %w", bff.ErrConflict)
			}
			if err := s.checkIncarnationLocked(op.Token.ClientID, op.ClientIncarnation); err != nil {
				return fmt.Errorf("access token: %w", err)
			}
			if err := s.checkFamilyLocked(op.Token.FamilyID, op.Token.UserID, op.Token.AuthenticatedAt()); err != nil {
				return err
			}
			createdAccess[sig] = true
		case store.CreateRefreshToken:
			sig := op.Token.Signature
			if _, ok := s.refresh[sig]; ok || createdRefresh[sig] {
				return fmt.Errorf("refresh token: %w", bff.ErrConflict)
			}
			if err := s.checkIncarnationLocked(op.Token.ClientID, op.ClientIncarnation); err != nil {
				return fmt.Errorf("refresh token: %w", err)
			}
			if err := s.checkFamilyLocked(op.Token.FamilyID, op.Token.UserID, op.Token.AuthenticatedAt()); err != nil {
				return err
			}
			createdRefresh[sig] = true
		case store.MarkRefreshRotated:
			if _, ok := s.refresh[op.Signature]; !ok && !createdRefresh[op.Signature] {
				return fmt.Errorf("refresh token: %w", bff.ErrNotFound)
			}
		case store.RevokeRefreshToken:
			if _, ok := s.refresh[op.Signature]; !ok && !createdRefresh[op.Signature] {
				return fmt.Errorf("refresh token: %w", bff.ErrNotFound)
			}
		case store.RevokeAccessToken:
			if _, ok := s.access[op.Signature]; !ok && !createdAccess[op.Signature] {
				return fmt.Errorf("access token: %w", bff.ErrNotFound)
			}
		case store.RedeemAuthorizationCode:
			c, ok := s.codes[op.Signature]
			switch {
			case !ok:
				return fmt.Errorf("authorization code: %w", bff.ErrNotFound)
			case c.UsedAt != nil || redeemed[op.Signature]:
				return fmt.Errorf("authorization code: %w", bff.ErrCodeUsed)
			}
			redeemed[op.Signature] = true
		case store.RevokeJTI, store.RevokeFamily, store.EndSession:
		default:
			return fmt.Errorf("unknown token op %T: %w", op, bff.ErrInvalidInput)
		}
	}
	return nil
}

func (s *Store) ensureFamilyLocked(id, clientID string, userID int64, grant string, auth, at time.Time) {
	if _, ok := s.families[id]; ok {
		return
	}
	s.families[id] = bff.TokenFamily{ID: id, ClientID: clientID, UserID: userID, GrantType: grant, AuthTime: auth, CreatedAt: at}
}

func (s *Store) revokeFamilyLocked(id string, at time.Time) {
	for sid, sess := range s.sessions {
		if sess.FamilyID == id {
			delete(s.sessions, sid)
		}
	}
	f, ok := s.families[id]
	if !ok {
		return
	}
	if f.RevokedAt == nil {
		f.RevokedAt = &at
		s.families[id] = f
	}
	for _, t := range s.access {
		if t.FamilyID == id && t.JTI != "" && t.ExpiresAt.After(at) {
			s.revokedJTIs[t.JTI] = t.ExpiresAt
		}
	}
}

// GetAccessToken returns an access token by signature.
func (s *Store) GetAccessToken(_ context.Context, signature string) (bff.AccessToken, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.access[signature]
	if !ok {
		return bff.AccessToken{}, fmt.Errorf("access token: %w", bff.ErrNotFound)
	}
	t = cloneAccess(t)
	if t.RevokedAt == nil {
		t.RevokedAt = s.families[t.FamilyID].RevokedAt
	}
	return t, nil
}

// GetRefreshToken returns a refresh token by signature.
func (s *Store) GetRefreshToken(_ context.Context, signature string) (bff.RefreshToken, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.refresh[signature]
	if !ok {
		return bff.RefreshToken{}, fmt.Errorf("refresh token: %w", bff.ErrNotFound)
	}
	t = cloneRefresh(t)
	if t.RevokedAt == nil {
		t.RevokedAt = s.families[t.FamilyID].RevokedAt
	}
	return t, nil
}

// IsJTIRevoked reports whether jti is on the revoked list.
func (s *Store) IsJTIRevoked(_ context.Context, jti string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.revokedJTIs[jti]
	return ok, nil
}

// RevokedJTIs returns the unexpired revoked JWT ids.
func (s *Store) RevokedJTIs(_ context.Context, now time.Time) (map[string]time.Time, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]time.Time, len(s.revokedJTIs))
	for jti, exp := range s.revokedJTIs {
		if exp.After(now) {
			out[jti] = exp
		}
	}
	return out, nil
}

// PruneTokens drops what expired before the given time.
func (s *Store) PruneTokens(_ context.Context, before time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pruneLocked(before), nil
}

// roomLocked refuses ops that would take the store past its cap of
// tokens. At the cap it prunes the expired tokens first (at most once a
// second, so that a full store of live tokens does not scan itself on
// every request).
func (s *Store) roomLocked(ops []store.TokenOp) error {
	if s.maxTokens <= 0 {
		return nil
	}
	n := 0
	for _, op := range ops {
		switch op.(type) {
		case store.CreateAccessToken, store.CreateRefreshToken:
			n++
		}
	}
	if n == 0 || len(s.access)+len(s.refresh)+n <= s.maxTokens {
		return nil
	}
	if now := time.Now(); now.Sub(s.lastPrune) >= time.Second {
		s.lastPrune = now
		s.pruneLocked(now)
	}
	if len(s.access)+len(s.refresh)+n > s.maxTokens {
		return fmt.Errorf("the in-memory store holds its maximum of %d tokens (BFF_MEMORY_MAX_TOKENS): %w",
			s.maxTokens, bff.ErrUnavailable)
	}
	return nil
}

// pruneLocked deletes what expired before before and returns how many
// records it deleted.
func (s *Store) pruneLocked(before time.Time) int64 {
	var n int64
	for sig, t := range s.access {
		if t.ExpiresAt.Before(before) {
			delete(s.access, sig)
			delete(s.jtis, t.JTI)
			n++
		}
	}
	live := map[string]bool{}
	for sig, t := range s.refresh {
		if t.ExpiresAt.Before(before) {
			delete(s.refresh, sig)
			n++
			continue
		}
		live[t.FamilyID] = true
	}
	for _, t := range s.access {
		live[t.FamilyID] = true
	}
	for id := range s.families {
		if !live[id] {
			delete(s.families, id)
			n++
		}
	}
	n += pruneExpired(s.codes, before, func(c bff.AuthorizationCode) time.Time { return c.ExpiresAt })
	n += pruneExpired(s.revokedJTIs, before, func(exp time.Time) time.Time { return exp })
	n += pruneExpired(s.sessions, before, func(sess memSession) time.Time { return sess.ExpiresAt })
	for key, w := range s.failures {
		if w.start.Before(before.Add(-24 * time.Hour)) {
			delete(s.failures, key)
		}
	}
	return n
}

func cloneAccess(t bff.AccessToken) bff.AccessToken {
	t.Scopes = slices.Clone(t.Scopes)
	t.Request = slices.Clone(t.Request)
	return t
}

func cloneRefresh(t bff.RefreshToken) bff.RefreshToken {
	t.Scopes = slices.Clone(t.Scopes)
	t.Request = slices.Clone(t.Request)
	return t
}

// --- sessions ---

// EnsureSession stores sess unless a live session with its id exists.
func (s *Store) EnsureSession(_ context.Context, sess bff.Session) (bff.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.sessions[sess.ID]; ok && old.ExpiresAt.After(sess.CreatedAt) {
		if old.ended {
			return bff.Session{}, fmt.Errorf("session was logged out: %w", bff.ErrTokenRevoked)
		}
		out := old.Session
		out.Scopes = slices.Clone(out.Scopes)
		return out, nil
	}
	u, ok := s.users[sess.UserID]
	if !ok {
		return bff.Session{}, fmt.Errorf("session user %d: %w", sess.UserID, bff.ErrNotFound)
	}
	var family *bff.TokenFamily
	if f, ok := s.families[sess.FamilyID]; ok {
		family = &f
	}
	if err := sess.MayOpen(u, family); err != nil {
		return bff.Session{}, err
	}
	if _, ok := s.clients[sess.ClientID]; !ok {
		return bff.Session{}, fmt.Errorf("session client %q: %w", sess.ClientID, bff.ErrNotFound)
	}
	sess.Scopes = slices.Clone(sess.Scopes)
	s.sessions[sess.ID] = memSession{Session: sess}
	return sess, nil
}

// GetSession returns a live session by id.
func (s *Store) GetSession(_ context.Context, id string) (bff.Session, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sess, ok := s.sessions[id]
	if !ok || sess.ended {
		return bff.Session{}, fmt.Errorf("session: %w", bff.ErrNotFound)
	}
	out := sess.Session
	out.Scopes = slices.Clone(out.Scopes)
	return out, nil
}

// DeleteSession ends a session; it stays, ended, until it expires.
func (s *Store) DeleteSession(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.sessions[id]; ok {
		sess.ended = true
		s.sessions[id] = sess
	}
	return nil
}

// GetAccessTokenByJTI returns a JWT's record by its id.
func (s *Store) GetAccessTokenByJTI(ctx context.Context, jti string) (bff.AccessToken, error) {
	s.mu.RLock()
	sig, ok := s.jtis[jti]
	s.mu.RUnlock()
	if !ok {
		return bff.AccessToken{}, fmt.Errorf("access token: %w", bff.ErrNotFound)
	}
	return s.GetAccessToken(ctx, sig)
}

// --- login throttle ---

// LoginFailures returns the open failure window of key.
func (s *Store) LoginFailures(_ context.Context, key string) (int, time.Time, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	w := s.failures[key]
	return w.count, w.start, nil
}

// RecordLoginFailure counts a failure for key.
func (s *Store) RecordLoginFailure(_ context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.failures[key]
	if w.count == 0 || !now.Before(w.start.Add(window)) {
		w = failureWindow{start: now}
	}
	w.count++
	s.failures[key] = w
	return w.count, w.start, nil
}

// ForgiveLoginFailure takes one failure of key's window that started at
// windowStart back; a window left without failures is closed.
func (s *Store) ForgiveLoginFailure(_ context.Context, key string, windowStart time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.failures[key]
	if !ok || w.count == 0 || !w.start.Equal(windowStart) {
		return nil
	}
	if w.count--; w.count == 0 {
		delete(s.failures, key)
	} else {
		s.failures[key] = w
	}
	return nil
}

// ResetLoginFailures forgets key's failures.
func (s *Store) ResetLoginFailures(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failures, key)
	return nil
}

// stamp sets *p to at unless it is set: a rotation or a revocation keeps
// its first time.
func stamp(p **time.Time, at time.Time) {
	if *p == nil {
		*p = &at
	}
}

// pruneExpired deletes the records of m whose expiry (by expires) is
// before before, and returns how many it deleted. The caller holds the
// lock.
func pruneExpired[K comparable, V any](m map[K]V, before time.Time, expires func(V) time.Time) int64 {
	var n int64
	for k, v := range m {
		if expires(v).Before(before) {
			delete(m, k)
			n++
		}
	}
	return n
}
