// Package memory is the embedded in-memory store: the default when no
// database is configured. It keeps everything in maps behind one lock and
// copies records in and out, so callers never share memory with it. State is
// lost when the process ends.
package memory

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

var _ store.Store = (*Store)(nil)

// Store is an in-memory store.Store.
type Store struct {
	mu         sync.RWMutex
	clients    map[string]bff.Client
	users      map[int64]bff.User
	logins     map[string]int64 // bff.LoginKey of every username and email → user id
	nextUserID int64
	audit      []bff.AuditEvent
	keys       map[string]bff.SigningKey
	// The tokens and their families, in compact records (records.go).
	families    map[famKey]famRec
	famIDs      map[famKey]string // the ids of the families whose key is hashed
	access      map[sigKey]accessRec
	refresh     map[sigKey]refreshRec
	shapes      map[shapeKey]*tokenShape
	templates   map[string]*reqTemplate
	scratch     []byte // compactRequest's
	revokedJTIs map[string]time.Time
	maxTokens   int       // 0: no cap (Options.MaxTokens)
	lastPrune   time.Time // the last pruning at the cap, at most one per capPruneEvery
	nextExpiry  stamp     // no token expires before it (0 before the first scan); see roomLocked
	sessions    map[string]memSession
	jtis        map[jtiKey]sigKey // jti → the key of the JWT's record
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

// DefaultMaxTokens is the cap on the tokens of a store made by New: a full
// store keeps about 14 MiB (TestDefaultCapHeap: 50,000 tokens of logins,
// opaque or JWT), so that the process stays under 100 MiB of RSS.
const DefaultMaxTokens = 50_000

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
		families:    map[famKey]famRec{},
		famIDs:      map[famKey]string{},
		access:      map[sigKey]accessRec{},
		refresh:     map[sigKey]refreshRec{},
		shapes:      map[shapeKey]*tokenShape{},
		templates:   map[string]*reqTemplate{},
		scratch:     make([]byte, 0, 1024),
		revokedJTIs: map[string]time.Time{},
		sessions:    map[string]memSession{},
		jtis:        map[jtiKey]sigKey{},
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
	for k, t := range s.access {
		if t.shape.client == id {
			s.dropAccessLocked(k, t)
		}
	}
	for k, t := range s.refresh {
		if t.shape.client == id {
			s.dropRefreshLocked(k, t)
		}
	}
	for k, f := range s.families {
		if f.shape.client == id {
			s.dropFamilyLocked(k, f)
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
	for k, f := range s.families {
		if f.userID == userID {
			s.revokeFamilyLocked(s.familyID(k), at)
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
			s.putAccessLocked(op.Token)
		case store.CreateRefreshToken:
			s.putRefreshLocked(op.Token)
		case store.MarkRefreshRotated:
			if k, r, ok := s.refreshLocked(op.Signature); ok && r.rotated == 0 {
				r.rotated = setStamp(op.At)
				s.refresh[k] = r
			}
		case store.RevokeRefreshToken:
			if k, r, ok := s.refreshLocked(op.Signature); ok && r.revoked == 0 {
				r.revoked = setStamp(op.At)
				s.refresh[k] = r
			}
		case store.RevokeAccessToken:
			k, r, ok := s.accessLocked(op.Signature)
			if !ok {
				continue
			}
			if r.revoked == 0 {
				r.revoked = setStamp(op.At)
				s.access[k] = r
			}
			if jti := r.jtiOf(); jti != "" {
				s.revokedJTIs[jti] = r.expires.time()
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
	f, ok := s.tokenFamilyLocked(familyID)
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
			if _, _, ok := s.accessLocked(sig); ok || createdAccess[sig] {
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
			if _, _, ok := s.refreshLocked(sig); ok || createdRefresh[sig] {
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
			if _, _, ok := s.refreshLocked(op.Signature); !ok && !createdRefresh[op.Signature] {
				return fmt.Errorf("refresh token: %w", bff.ErrNotFound)
			}
		case store.RevokeRefreshToken:
			if _, _, ok := s.refreshLocked(op.Signature); !ok && !createdRefresh[op.Signature] {
				return fmt.Errorf("refresh token: %w", bff.ErrNotFound)
			}
		case store.RevokeAccessToken:
			if _, _, ok := s.accessLocked(op.Signature); !ok && !createdAccess[op.Signature] {
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

// accessLocked finds the access token with signature sig.
func (s *Store) accessLocked(sig string) (sigKey, accessRec, bool) {
	k, hashed := sigKeyOf(sig)
	r, ok := s.access[k]
	return k, r, ok && r.shape.keys.has(hashedSig) == hashed
}

// refreshLocked finds the refresh token with signature sig.
func (s *Store) refreshLocked(sig string) (sigKey, refreshRec, bool) {
	k, hashed := sigKeyOf(sig)
	r, ok := s.refresh[k]
	return k, r, ok && r.shape.keys.has(hashedSig) == hashed
}

// familyLocked finds the family with id.
func (s *Store) familyLocked(id string) (famKey, famRec, bool) {
	k, hashed := famKeyOf(id)
	f, ok := s.families[k]
	if ok && (hashed || len(s.famIDs) > 0) {
		stored, isHashed := s.famIDs[k]
		ok = isHashed == hashed && (!hashed || stored == id)
	}
	return k, f, ok
}

// tokenFamilyLocked is the family with id, as the rules of the root package
// take it.
func (s *Store) tokenFamilyLocked(id string) (bff.TokenFamily, bool) {
	_, f, ok := s.familyLocked(id)
	if !ok {
		return bff.TokenFamily{}, false
	}
	return bff.TokenFamily{ID: id, ClientID: f.shape.client, UserID: f.userID, AuthTime: f.auth.time(),
		RevokedAt: f.revoked.ptr()}, true
}

// putAccessLocked stores t in its compact form.
func (s *Store) putAccessLocked(t bff.AccessToken) {
	k, hashed := sigKeyOf(t.Signature)
	fam, hashedFamily := famKeyOf(t.FamilyID)
	r := accessRec{userID: t.UserID, issued: stampOf(t.IssuedAt), expires: stampOf(t.ExpiresAt), auth: stampOf(t.AuthTime),
		revoked: setStampOf(t.RevokedAt), fam: fam}
	var extra tokenExtra
	var keys keyForms
	if hashed {
		keys |= hashedSig
	}
	if t.JTI != "" {
		jk, packed := jtiKeyOf(t.JTI)
		if packed {
			r.jti, keys = jk, keys|packedJTI
		} else {
			// A substring of the token's claims, maybe: a copy, so that
			// the record does not keep the whole token alive.
			extra.jti = strings.Clone(t.JTI)
		}
		s.jtis[jk] = k
	}
	if hashedFamily {
		extra.familyID, extra.hashedFamily = t.FamilyID, true
	}
	var roles timeRoles
	r.tmpl, roles = s.compactLocked(t.Request, s.valuesLocked(recordValues{family: t.FamilyID, jti: t.JTI, issued: r.issued,
		expires: r.expires, auth: r.auth}, t.UserID), &r.reqTimes, &extra)
	r.shape = s.internShape(shapeKey{client: t.ClientID, grant: t.GrantType, format: t.Format, scopes: packScopes(t.Scopes),
		jkt: t.JKT, roles: roles, keys: keys}, t.Scopes)
	r.extra = extra.orNil()
	if t.UserID != 0 {
		// A user's family has a record from its first token: its user
		// and auth time are checked for every new token and session. A
		// family of user-less access tokens (client credentials, one token
		// each) has none until it is revoked (revokeFamilyLocked) or a
		// refresh token joins it: ~70 bytes a token less.
		s.ensureFamilyLocked(t.FamilyID, fam, hashedFamily, r.shape, t.UserID, t.AuthenticatedAt())
	}
	s.access[k] = r
	s.nextExpiry = min(s.nextExpiry, r.expires)
}

// putRefreshLocked stores t in its compact form.
func (s *Store) putRefreshLocked(t bff.RefreshToken) {
	k, hashed := sigKeyOf(t.Signature)
	access, accessHashed := sigKeyOf(t.AccessSignature)
	fam, hashedFamily := famKeyOf(t.FamilyID)
	r := refreshRec{userID: t.UserID, issued: stampOf(t.IssuedAt), expires: stampOf(t.ExpiresAt),
		revoked: setStampOf(t.RevokedAt), rotated: setStampOf(t.RotatedAt), fam: fam, access: access}
	var extra tokenExtra
	var keys keyForms
	if hashed {
		keys |= hashedSig
	}
	if accessHashed {
		keys |= hashedAccess
	}
	if hashedFamily {
		extra.familyID, extra.hashedFamily = t.FamilyID, true
	}
	auth := stampOf(t.AuthTime)
	var roles timeRoles
	r.tmpl, roles = s.compactLocked(t.Request, s.valuesLocked(recordValues{family: t.FamilyID, issued: r.issued, expires: r.expires,
		auth: auth}, t.UserID), &r.reqTimes, &extra)
	r.shape = s.internShape(shapeKey{client: t.ClientID, grant: t.GrantType, scopes: packScopes(t.Scopes),
		jkt: t.JKT, roles: roles, keys: keys}, t.Scopes)
	s.ensureFamilyLocked(t.FamilyID, fam, hashedFamily, r.shape, t.UserID, t.AuthenticatedAt())
	if auth != s.families[fam].auth {
		extra.auth, extra.ownAuth = auth, true
	}
	r.extra = extra.orNil()
	s.refresh[k] = r
	s.nextExpiry = min(s.nextExpiry, r.expires)
}

// compactLocked is the interned template of req (compactRequest) and the
// roles of its time marks, its own times in times; or nil with req kept
// whole in extra.
func (s *Store) compactLocked(req []byte, v recordValues, times *[2]stamp, extra *tokenExtra) (*reqTemplate, timeRoles) {
	if len(req) == 0 {
		return nil, timeRoles{}
	}
	text, roles, ts, ok := compactRequest(req, v, s.scratch)
	if !ok {
		extra.request = slices.Clone(req)
		return nil, timeRoles{}
	}
	*times = ts
	return s.internTemplate(text), roles
}

// valuesLocked is v with the values of the token's user, userID (0: none).
func (s *Store) valuesLocked(v recordValues, userID int64) recordValues {
	v.username, v.userID = s.usernameLocked(userID), userID
	return v
}

// usernameLocked is the username of user id, "" for none.
func (s *Store) usernameLocked(id int64) string {
	if id == 0 {
		return ""
	}
	return s.users[id].Username
}

// requestOf is the serialized request of a record.
func requestOf(tmpl *reqTemplate, roles timeRoles, extra *tokenExtra, v recordValues, times [2]stamp) []byte {
	switch {
	case extra != nil && extra.request != nil:
		return slices.Clone(extra.request)
	case tmpl == nil:
		return nil
	}
	// Each mark stands for a quoted time (at most 37 bytes), family id, JTI
	// or username, or a user id (at most 20 bytes).
	n := len(tmpl.text) + tmpl.marks*(max(len(time.RFC3339Nano), len(v.family), len(v.jti), len(v.username), 20)+2)
	return expandRequest(make([]byte, 0, n), tmpl.text, roles, v, times)
}

// accessToken is r, of signature sig, as a bff.AccessToken; username is
// its user's.
func accessToken(sig string, r accessRec, username string) bff.AccessToken {
	t := bff.AccessToken{Signature: sig, FamilyID: r.extra.family(r.fam), JTI: r.jtiOf(),
		Format: r.shape.format, ClientID: r.shape.client, UserID: r.userID, GrantType: r.shape.grant,
		Scopes: slices.Clone(r.shape.scopes), IssuedAt: r.issued.time(), ExpiresAt: r.expires.time(),
		AuthTime: r.auth.time(), RevokedAt: r.revoked.ptr(), JKT: r.shape.jkt}
	t.Request = requestOf(r.tmpl, r.shape.roles, r.extra, recordValues{family: t.FamilyID, jti: t.JTI, issued: r.issued,
		expires: r.expires, auth: r.auth, username: username, userID: r.userID}, r.reqTimes)
	return t
}

// refreshToken is r, of signature sig, as a bff.RefreshToken; f is its
// family, username its user's.
func refreshToken(sig string, r refreshRec, f famRec, username string) bff.RefreshToken {
	auth := f.auth
	if r.extra != nil && r.extra.ownAuth {
		auth = r.extra.auth
	}
	if r.revoked == 0 {
		r.revoked = f.revoked
	}
	t := bff.RefreshToken{Signature: sig, FamilyID: r.extra.family(r.fam),
		AccessSignature: r.access.string(r.shape.keys.has(hashedAccess)), ClientID: r.shape.client, UserID: r.userID,
		GrantType: r.shape.grant, Scopes: slices.Clone(r.shape.scopes), IssuedAt: r.issued.time(),
		ExpiresAt: r.expires.time(), AuthTime: auth.time(), RotatedAt: r.rotated.ptr(), RevokedAt: r.revoked.ptr(),
		JKT: r.shape.jkt}
	t.Request = requestOf(r.tmpl, r.shape.roles, r.extra, recordValues{family: t.FamilyID, issued: r.issued, expires: r.expires,
		auth: auth, username: username, userID: r.userID}, r.reqTimes)
	return t
}

// ensureFamilyLocked stores the family of a token being stored unless it
// exists.
func (s *Store) ensureFamilyLocked(id string, k famKey, hashed bool, sh *tokenShape, userID int64, auth time.Time) {
	if _, _, ok := s.familyLocked(id); ok {
		return
	}
	sh.refs++
	s.families[k] = famRec{shape: sh, userID: userID, auth: stampOf(auth)}
	if hashed {
		s.famIDs[k] = id
	}
}

// recordlessFamilyLocked stores a record for the family id, of key k, of
// user-less access tokens that has none, from its first token; ok is false
// when no token is of it.
func (s *Store) recordlessFamilyLocked(k famKey, id string) (famRec, bool) {
	for _, t := range s.access {
		if t.fam == k && t.extra.family(k) == id {
			_, hashed := famKeyOf(id)
			auth := t.auth // as bff.AccessToken.AuthenticatedAt, which a record would have had
			if auth == zeroStamp {
				auth = t.issued
			}
			s.ensureFamilyLocked(id, k, hashed, t.shape, t.userID, auth.time())
			return s.families[k], true
		}
	}
	return famRec{}, false
}

func (s *Store) dropAccessLocked(k sigKey, r accessRec) {
	delete(s.access, k)
	if jk, ok := r.jtiKey(); ok && s.jtis[jk] == k {
		delete(s.jtis, jk)
	}
	s.releaseShape(r.shape)
	s.releaseTemplate(r.tmpl)
}

func (s *Store) dropRefreshLocked(k sigKey, r refreshRec) {
	delete(s.refresh, k)
	s.releaseShape(r.shape)
	s.releaseTemplate(r.tmpl)
}

func (s *Store) dropFamilyLocked(k famKey, f famRec) {
	delete(s.families, k)
	delete(s.famIDs, k)
	s.releaseShape(f.shape)
}

func (s *Store) revokeFamilyLocked(id string, at time.Time) {
	for sid, sess := range s.sessions {
		if sess.FamilyID == id {
			delete(s.sessions, sid)
		}
	}
	k, f, ok := s.familyLocked(id)
	if !ok {
		// A family of user-less access tokens has no record
		// (putAccessLocked): one now, revoked, so that it stays so and
		// gets no new tokens.
		if f, ok = s.recordlessFamilyLocked(k, id); !ok {
			return
		}
	}
	if f.revoked == 0 {
		f.revoked = setStamp(at)
		s.families[k] = f
	}
	now := stampOf(at)
	for _, t := range s.access {
		if t.fam != k || t.expires <= now {
			continue
		}
		if jti := t.jtiOf(); jti != "" {
			s.revokedJTIs[jti] = t.expires.time()
		}
	}
}

// GetAccessToken returns an access token by signature.
func (s *Store) GetAccessToken(_ context.Context, signature string) (bff.AccessToken, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, r, ok := s.accessLocked(signature)
	if !ok {
		return bff.AccessToken{}, fmt.Errorf("access token: %w", bff.ErrNotFound)
	}
	return s.withFamilyLocked(signature, r), nil
}

// withFamilyLocked is r, of signature sig, as a bff.AccessToken, revoked
// when its family is.
func (s *Store) withFamilyLocked(sig string, r accessRec) bff.AccessToken {
	if r.revoked == 0 {
		r.revoked = s.families[r.fam].revoked
	}
	return accessToken(sig, r, s.usernameLocked(r.userID))
}

// GetRefreshToken returns a refresh token by signature.
func (s *Store) GetRefreshToken(_ context.Context, signature string) (bff.RefreshToken, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, r, ok := s.refreshLocked(signature)
	if !ok {
		return bff.RefreshToken{}, fmt.Errorf("refresh token: %w", bff.ErrNotFound)
	}
	return refreshToken(signature, r, s.families[r.fam], s.usernameLocked(r.userID)), nil
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

// capPruneEvery is how often, at most, a store at its cap scans itself
// for expired tokens. A scan of a full store of the default cap takes
// about a millisecond under the lock, and a store at its cap scans only
// once a token has expired since the last scan (nextExpiry): fosite
// rounds expiries to the second, so under steady traffic that is about
// once a second, and at most every capPruneEvery when expiries are spread.
const capPruneEvery = 20 * time.Millisecond

// roomLocked refuses ops that would take the store past its cap of
// tokens. At the cap it prunes the expired tokens first, when one has
// expired since the last scan and at most once per capPruneEvery, so that
// a full store of live tokens does not scan itself on every request and a
// store whose tokens expire makes room for new ones as they expire.
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
	if n == 0 || s.tokens()+n <= s.maxTokens {
		return nil
	}
	if now := time.Now(); stampOf(now) > s.nextExpiry && now.Sub(s.lastPrune) >= capPruneEvery {
		s.lastPrune = now
		s.pruneLocked(now)
	}
	if s.tokens()+n > s.maxTokens {
		return fmt.Errorf("the in-memory store holds its maximum of %d tokens (BFF_MEMORY_MAX_TOKENS): %w",
			s.maxTokens, bff.ErrUnavailable)
	}
	return nil
}

// tokens is how many tokens the store holds.
func (s *Store) tokens() int { return len(s.access) + len(s.refresh) }

// pruneLocked deletes what expired before before and returns how many
// records it deleted.
func (s *Store) pruneLocked(before time.Time) int64 {
	var n int64
	// A token expired before before: its expiry, a stamp, is below
	// before's (stamps order like the times, which they keep to the
	// nanosecond).
	cut := stampOf(before)
	next := stamp(math.MaxInt64)
	for k, t := range s.access {
		if t.expires < cut {
			s.dropAccessLocked(k, t)
			n++
			continue
		}
		next = min(next, t.expires)
	}
	live := map[famKey]bool{}
	for k, t := range s.refresh {
		if t.expires < cut {
			s.dropRefreshLocked(k, t)
			n++
			continue
		}
		next = min(next, t.expires)
		live[t.fam] = true
	}
	s.nextExpiry = next
	for _, t := range s.access {
		live[t.fam] = true
	}
	for k, f := range s.families {
		if !live[k] {
			s.dropFamilyLocked(k, f)
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
	if f, ok := s.tokenFamilyLocked(sess.FamilyID); ok {
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
	defer s.mu.RUnlock()
	jk, _ := jtiKeyOf(jti)
	k, ok := s.jtis[jk]
	r, found := s.access[k]
	if !ok || !found || r.jtiOf() != jti {
		return bff.AccessToken{}, fmt.Errorf("access token: %w", bff.ErrNotFound)
	}
	// The caller has no signature: the record's, in its digest form when
	// hashed (sigKey.string), which the store takes back as the same.
	return s.withFamilyLocked(k.string(r.shape.keys.has(hashedSig)), r), nil
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
