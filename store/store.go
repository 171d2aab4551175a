// Package store declares what mobile-auth-bff remembers and how it asks for
// it. Two implementations exist: store/postgres (PostgreSQL, for production)
// and store/memory (the embedded default). Both pass the conformance suite in
// store/storetest.
//
// Every method is atomic: it either fully happens or not at all. Errors wrap
// the sentinels of package bff: ErrNotFound, ErrConflict, and ErrUnavailable
// when the backing store cannot be reached.
package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
)

// Store is everything the service keeps.
type Store interface {
	Clients
	Users
	Keys
	Tokens
	Sessions
	AdminSessions
	LoginThrottle
	Identities
	Idempotency
	Usage
	AuthorizationCodes
	DPoPProofs
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close()
}

// Clients keeps OAuth clients.
type Clients interface {
	CreateClient(ctx context.Context, c bff.Client) error
	GetClient(ctx context.Context, id string) (bff.Client, error)
	ListClients(ctx context.Context) ([]bff.Client, error)
	// UpdateClient loads the client, lets update change it, and stores the
	// result, all in one transaction.
	UpdateClient(ctx context.Context, id string, update func(*bff.Client) error) (bff.Client, error)
	// DeleteClient removes the client and every token issued to it.
	DeleteClient(ctx context.Context, id string) error
}

// Users keeps accounts. A user is never renamed nor deleted (the in-memory
// store's token records get their user's username back from the user).
type Users interface {
	// CreateUser assigns the id and timestamps and returns the stored user.
	// Usernames and emails share one namespace keyed by bff.LoginKey: a
	// username or email whose key another user's username or email holds
	// is bff.ErrLoginTaken (an ErrConflict), decided atomically.
	CreateUser(ctx context.Context, u bff.User) (bff.User, error)
	GetUser(ctx context.Context, id int64) (bff.User, error)
	// GetUserByLogin finds the one user whose username or email has the
	// key of login; ErrNotFound when none does, or when the key was held by
	// two users before the namespace existed (ADR 0021).
	GetUserByLogin(ctx context.Context, login string) (bff.User, error)
	// SetUserDisabled disables or enables a user. Disabling also revokes
	// every token family and deletes every session of the user, in the same
	// transaction. Both record an audit event.
	SetUserDisabled(ctx context.Context, id int64, disabled bool, actor string, at time.Time) (bff.User, error)
	// SetUserPassword replaces the password hash, revokes every token family
	// and deletes every session of the user, in the same transaction,
	// recording an audit event.
	SetUserPassword(ctx context.Context, id int64, hash string, actor string, at time.Time) error
	// ListAuditEvents returns the audit trail of a user, oldest first.
	ListAuditEvents(ctx context.Context, userID int64) ([]bff.AuditEvent, error)
}

// Keys keeps JWT signing keys.
type Keys interface {
	ListSigningKeys(ctx context.Context) ([]bff.SigningKey, error)
	// InitSigningKeys stores current and next as the first keys, unless a
	// current key exists already (another instance won the race), in which
	// case it returns ErrConflict and stores nothing.
	InitSigningKeys(ctx context.Context, current, next bff.SigningKey) error
	// RotateSigningKeys retires the current key, makes the next key current
	// and stores newNext as the next key, in one transaction.
	RotateSigningKeys(ctx context.Context, newNext bff.SigningKey, at time.Time) error
}

// DigestPrefix starts the digest form of a token signature: DigestPrefix
// and the SHA-256 of the signature in unpadded base64url. A store that
// keeps a signature only hashed (the in-memory store, a JWT's: ADR 32)
// gives it back in that form where the caller did not give it
// (Tokens.GetAccessTokenByJTI, bff.RefreshToken.AccessSignature), and
// takes the form as the signature itself.
const DigestPrefix = "sha256:"

// Tokens keeps issued tokens and their families.
type Tokens interface {
	// ApplyTokenOps applies every op in one transaction, in order. A token
	// is only created while its family is not revoked, its client is the
	// incarnation it was issued to, and its user is enabled and has not
	// changed the password since the family's AuthTime (ErrTokenRevoked,
	// ErrAccountDisabled otherwise); the check holds a share lock on the
	// rows, so it cannot race a revocation or the deletion of the client.
	ApplyTokenOps(ctx context.Context, ops []TokenOp) error
	// GetAccessToken returns an access token by signature; RevokedAt is set
	// when the token or its family is revoked.
	GetAccessToken(ctx context.Context, signature string) (bff.AccessToken, error)
	// GetAccessTokenByJTI returns the record of a JWT access token by its
	// id. Its Signature names the token to the store's other methods and
	// ops, but may be its digest form rather than itself (DigestPrefix):
	// pass it back unchanged, never compare it with a token's.
	GetAccessTokenByJTI(ctx context.Context, jti string) (bff.AccessToken, error)
	// GetRefreshToken returns a refresh token by signature; RevokedAt is set
	// when the token or its family is revoked. Its AccessSignature may be a
	// form of the signature, as GetAccessTokenByJTI's Signature.
	GetRefreshToken(ctx context.Context, signature string) (bff.RefreshToken, error)
	// IsJTIRevoked reports whether a JWT id was revoked (and has not expired).
	IsJTIRevoked(ctx context.Context, jti string) (bool, error)
	// RevokedJTIs returns every revoked JWT id that has not expired at now,
	// with its expiry: the set a cache keeps in memory.
	RevokedJTIs(ctx context.Context, now time.Time) (map[string]time.Time, error)
	// PruneTokens deletes tokens, families, authorization codes, revoked JWT ids and sessions
	// that expired before the given time, and returns how many rows went.
	PruneTokens(ctx context.Context, before time.Time) (int64, error)
}

// DPoPProofs remembers the DPoP proofs (RFC 9449) the service accepted,
// each for as long as it could be accepted, so that a proof is used once
// on every instance (ADR 0028).
type DPoPProofs interface {
	// UseDPoPProof records key (the hash of a proof's key thumbprint and
	// jti) until expiresAt and reports whether it is new: a record that
	// expired at now counts as absent, and of concurrent uses of one key
	// exactly one gets true.
	UseDPoPProof(ctx context.Context, key string, now, expiresAt time.Time) (bool, error)
	// PruneDPoPProofs deletes the records that expired before the given
	// time and returns how many went.
	PruneDPoPProofs(ctx context.Context, before time.Time) (int64, error)
}

// AuthorizationCodes keeps the codes of browser sign-in (SPEC §14). A code
// is redeemed by the RedeemAuthorizationCode op, in the transaction that
// creates its tokens, so that of two concurrent redemptions one fails.
type AuthorizationCodes interface {
	// CreateAuthorizationCode stores a new code; ErrConflict when its
	// signature exists, ErrNotFound when its client or user does not.
	CreateAuthorizationCode(ctx context.Context, c bff.AuthorizationCode) error
	// GetAuthorizationCode returns a code by signature, expired or used
	// ones included (UsedAt set): a replay must be told apart from an
	// unknown code.
	GetAuthorizationCode(ctx context.Context, signature string) (bff.AuthorizationCode, error)
}

// Sessions keeps web sessions. Disabling a user or changing the password
// deletes the user's sessions in the same transaction.
type Sessions interface {
	// EnsureSession stores s unless a session with its id exists and has not
	// expired, and returns the stored session: logging in again with the same
	// token reuses its session instead of adding rows. A live session that
	// was ended (logged out) is not revived: ErrTokenRevoked. Like token
	// creation, it is refused for a disabled user (ErrAccountDisabled), a
	// token older than the user's TokensValidAfter or a revoked family
	// (ErrTokenRevoked).
	EnsureSession(ctx context.Context, s bff.Session) (bff.Session, error)
	// GetSession returns a live (not ended) session by id.
	GetSession(ctx context.Context, id string) (bff.Session, error)
	// DeleteSession ends a session (it stays, ended, until it expires); a
	// missing one is not an error.
	DeleteSession(ctx context.Context, id string) error
}

// AdminSessions keeps the admin dashboard's sign-in sessions (ADR 20),
// shared by every instance on the store: a session opened on one is valid
// on all, and ending it on one ends it on all. They are not cached.
type AdminSessions interface {
	// CreateAdminSession stores a new session; ErrConflict when its id is
	// taken.
	CreateAdminSession(ctx context.Context, s bff.AdminSession) error
	// GetAdminSession returns the session with this id unless it has
	// expired at now; ErrNotFound otherwise.
	GetAdminSession(ctx context.Context, id string, now time.Time) (bff.AdminSession, error)
	// DeleteAdminSession ends a session (signing out); a missing one is not
	// an error.
	DeleteAdminSession(ctx context.Context, id string) error
	// DeleteAdminSessionsExcept ends every session whose TokenFingerprint
	// is not fingerprint (those of a rotated admin token), and returns how
	// many went.
	DeleteAdminSessionsExcept(ctx context.Context, fingerprint string) (int64, error)
	// PruneAdminSessions deletes the sessions that expired before the given
	// time and returns how many went.
	PruneAdminSessions(ctx context.Context, before time.Time) (int64, error)
}

// Identities keeps the social identities (provider, subject) linked to
// users. They are read on every social token exchange and are not cached:
// an unlinked identity stops working at once, on every instance.
type Identities interface {
	// LinkIdentity links a provider account to a user and returns the stored
	// identity and whether this call created it: linking an identity again
	// to the same user changes nothing. ErrConflict when another user holds
	// it; ErrNotFound when the user does not exist.
	LinkIdentity(ctx context.Context, id bff.Identity) (bff.Identity, bool, error)
	// FindIdentity returns the identity of a provider account; ErrNotFound
	// when no user holds it.
	FindIdentity(ctx context.Context, provider, subject string) (bff.Identity, error)
	// ListIdentities returns the identities of a user ordered by provider
	// and subject; none for an unknown user.
	ListIdentities(ctx context.Context, userID int64) ([]bff.Identity, error)
	// UnlinkIdentity removes a provider account from a user; ErrNotFound
	// when that user does not hold it.
	UnlinkIdentity(ctx context.Context, userID int64, provider, subject string) error
}

// Usage keeps the hourly token statistics of the migration views (SPEC
// §12): several instances add their counts to the same aggregates.
type Usage interface {
	// AddUsage adds every count to its hourly aggregate (creating it when
	// missing), in one transaction. Hours are truncated to the hour in UTC;
	// counts of the same key are summed; non-positive counts are ignored.
	AddUsage(ctx context.Context, counts []bff.UsageCount) error
	// ListUsage returns the aggregates of the hours in [from, to), ordered
	// by hour, client, kind, format, grant type, endpoint, result, error
	// code, binding.
	ListUsage(ctx context.Context, from, to time.Time) ([]bff.UsageCount, error)
	// PruneUsage deletes the aggregates of hours before the given time and
	// returns how many went.
	PruneUsage(ctx context.Context, before time.Time) (int64, error)
	// CountActiveTokens counts, per client, format and binding (dpop for a
	// token bound to a DPoP key, none otherwise), the access tokens that are
	// unexpired at now and not revoked (nor their family), ordered by
	// client, format and binding.
	CountActiveTokens(ctx context.Context, now time.Time) ([]bff.ActiveTokens, error)
}

// SumUsage normalizes counts for AddUsage: hours truncated, equal keys
// summed, non-positive counts dropped, ordered by key (a fixed order keeps
// concurrent upserts of several instances from deadlocking).
func SumUsage(counts []bff.UsageCount) []bff.UsageCount {
	sums := make(map[bff.UsageKey]int64, len(counts))
	for _, c := range counts {
		if c.Count <= 0 {
			continue
		}
		k := c.UsageKey
		k.Hour = bff.HourOf(k.Hour)
		sums[k] += c.Count
	}
	out := make([]bff.UsageCount, 0, len(sums))
	for k, n := range sums {
		out = append(out, bff.UsageCount{UsageKey: k, Count: n})
	}
	slices.SortFunc(out, func(a, b bff.UsageCount) int { return CompareUsageKeys(a.UsageKey, b.UsageKey) })
	return out
}

// CompareUsageKeys orders keys by hour, client, kind, format, grant type,
// endpoint, result, error code and binding.
func CompareUsageKeys(a, b bff.UsageKey) int {
	if c := a.Hour.Compare(b.Hour); c != 0 {
		return c
	}
	for _, p := range [][2]string{
		{a.ClientID, b.ClientID}, {a.Kind, b.Kind}, {a.Format, b.Format}, {a.GrantType, b.GrantType},
		{a.Endpoint, b.Endpoint}, {a.Result, b.Result}, {a.ErrorCode, b.ErrorCode}, {a.Binding, b.Binding},
	} {
		if c := strings.Compare(p[0], p[1]); c != 0 {
			return c
		}
	}
	return 0
}

// LoginThrottle counts password attempts per key in fixed windows. Keys are
// opaque strings (the caller hashes what a user typed). The throttle counts
// an attempt before its password is checked (RecordLoginFailure, atomic, so
// that concurrent attempts on any instance each get their own count) and
// takes it back when the attempt did not fail (ForgiveLoginFailure).
type LoginThrottle interface {
	// LoginFailures returns the failures counted in the window that started
	// at windowStart; a zero count when no window is open.
	LoginFailures(ctx context.Context, key string) (count int, windowStart time.Time, err error)
	// RecordLoginFailure adds a failure and returns the count it made,
	// opening a new window at now when none is open, the open one is older
	// than window, or it counts no failure.
	RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration) (count int, windowStart time.Time, err error)
	// ForgiveLoginFailure takes one failure back from the window of key
	// that started at windowStart (as RecordLoginFailure returned it). The
	// count never goes below zero, and a later window of key is left as it
	// is: a failure is forgiven only in the window that counted it.
	ForgiveLoginFailure(ctx context.Context, key string, windowStart time.Time) error
	// ResetLoginFailures forgets the failures of key.
	ResetLoginFailures(ctx context.Context, key string) error
}

// Idempotency keeps the outcome of keyed payment requests (SPEC §10), per
// user and Idempotency-Key, so that a retried request is answered from the
// store instead of being sent to the payment service again.
type Idempotency interface {
	// ClaimIdempotencyKey stores rec, in flight, unless a record of the same
	// user and key exists that has not expired at rec.CreatedAt. It returns
	// the stored record and whether it is rec: of concurrent claims exactly
	// one wins. ErrNotFound when the user does not exist.
	ClaimIdempotencyKey(ctx context.Context, rec bff.IdempotencyRecord) (bff.IdempotencyRecord, bool, error)
	// FinishIdempotencyKey records the outcome of a claim: State (completed
	// or unknown), Status, Header, Body and FinishedAt of rec replace those
	// of the in-flight record of rec's user, key and claim. ErrNotFound when
	// there is no such in-flight record.
	FinishIdempotencyKey(ctx context.Context, rec bff.IdempotencyRecord) error
	// ReleaseIdempotencyKey deletes the in-flight record of a claim whose
	// request never reached the payment service, so that the key may be
	// used again. A missing record is not an error.
	ReleaseIdempotencyKey(ctx context.Context, userID int64, key, claimID string) error
	// PruneIdempotencyKeys deletes the records that expired before the given
	// time and returns how many went.
	PruneIdempotencyKeys(ctx context.Context, before time.Time) (int64, error)
}

// MaxIdempotencyKeyLength bounds an Idempotency-Key, in bytes.
const MaxIdempotencyKeyLength = 255

// CheckIdempotencyKey returns ErrInvalidInput for a key no store keeps:
// empty, or longer than MaxIdempotencyKeyLength.
func CheckIdempotencyKey(key string) error {
	if key == "" || len(key) > MaxIdempotencyKeyLength {
		return fmt.Errorf("idempotency key of %d bytes: %w", len(key), bff.ErrInvalidInput)
	}
	return nil
}

// TokenOp is one change to the token tables; see ApplyTokenOps.
type TokenOp interface{ tokenOp() }

// CreateAccessToken stores a new access token, creating its family when it
// is the first token of it. ClientIncarnation is the incarnation of the
// client the token was issued to: when the client was deleted, and its id
// created again, while the request ran, the write is ErrTokenRevoked (ADR
// 0019).
type CreateAccessToken struct {
	Token             bff.AccessToken
	ClientIncarnation string
}

// CreateRefreshToken stores a new refresh token, creating its family when it
// is the first token of it; ClientIncarnation as for CreateAccessToken.
type CreateRefreshToken struct {
	Token             bff.RefreshToken
	ClientIncarnation string
}

// MarkRefreshRotated records that a refresh token was used; only the first
// use's time is kept, which is what the reuse grace is measured from.
type MarkRefreshRotated struct {
	Signature string
	At        time.Time
}

// RevokeRefreshToken revokes one refresh token.
type RevokeRefreshToken struct {
	Signature string
	At        time.Time
}

// RevokeAccessToken revokes one access token; a JWT's id is added to the
// revoked JWT ids until the JWT expires.
type RevokeAccessToken struct {
	Signature string
	At        time.Time
}

// RevokeJTI denies a JWT id until expiresAt, whether or not the JWT is
// stored (a JWT signed by this service but issued before a restore, say).
type RevokeJTI struct {
	JTI       string
	ExpiresAt time.Time
}

// RevokeFamily revokes a family: every access and refresh token descended
// from the original grant, the ids of its unexpired JWTs, and the web
// sessions made from its tokens.
type RevokeFamily struct {
	FamilyID string
	At       time.Time
}

// RedeemAuthorizationCode marks a code used. It fails with ErrCodeUsed when
// the code was used already (the whole transaction with it), ErrNotFound
// when there is no such code.
type RedeemAuthorizationCode struct {
	Signature string
	At        time.Time
}

// EndSession ends the web session with this id, if there is one: the
// session made from an access token that is being revoked (RFC 7009 §2.1).
type EndSession struct{ ID string }

func (CreateAccessToken) tokenOp()       {}
func (CreateRefreshToken) tokenOp()      {}
func (MarkRefreshRotated) tokenOp()      {}
func (RevokeRefreshToken) tokenOp()      {}
func (RevokeAccessToken) tokenOp()       {}
func (RevokeJTI) tokenOp()               {}
func (RevokeFamily) tokenOp()            {}
func (EndSession) tokenOp()              {}
func (RedeemAuthorizationCode) tokenOp() {}

// Change events: what another instance must forget from its caches. The
// PostgreSQL store sends them with NOTIFY in the transaction that makes the
// change, so they arrive only when the change is visible.
const (
	EventJTIs   = "jtis"    // the revoked JWT ids changed
	EventKeys   = "keys"    // the signing keys changed
	EventTokens = "tokens"  // access tokens were revoked, too many to name
	EventAll    = "all"     // forget everything
	eventUser   = "user:"   // + user id (also: the user's tokens were revoked)
	eventClient = "client:" // + client id (also: its tokens were deleted)
	eventJTI    = "jti:"    // + a JWT id newly revoked
	eventAccess = "access:" // + the signature of a revoked access token
	eventFamily = "family:" // + the id of a revoked token family
)

// UserEvent is the change event of a user.
func UserEvent(id int64) string { return eventUser + strconv.FormatInt(id, 10) }

// JTIEvent is the change event of one newly revoked JWT id.
func JTIEvent(jti string) string { return eventJTI + jti }

// ClientEvent is the change event of a client.
func ClientEvent(id string) string { return eventClient + id }

// AccessTokenEvent is the change event of a revoked access token, named by
// its stored signature (an HMAC, never the token).
func AccessTokenEvent(signature string) string { return eventAccess + signature }

// FamilyEvent is the change event of a revoked token family.
func FamilyEvent(id string) string { return eventFamily + id }

// ParseEvent splits an event into its kind ("user", "client", "jti",
// "access", "family", "jtis", "tokens", "keys", "all") and subject.
func ParseEvent(ev string) (kind, subject string) {
	for _, p := range [...]string{eventUser, eventClient, eventJTI, eventAccess, eventFamily} {
		if strings.HasPrefix(ev, p) {
			return p[:len(p)-1], ev[len(p):]
		}
	}
	return ev, ""
}
