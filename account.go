package bff

import (
	"fmt"
	"time"
)

// The account and family rules: when a user's tokens, token families and
// web sessions are dead. The stores fetch and lock the records and ask
// these functions; the validator and the sign-in page ask them too, so
// that each rule is written once.

// IssuedAtPrecision is the precision of an issue time carried by a token:
// a JWT's iat is whole seconds (RFC 7519 NumericDate), and a session keeps
// the issue time of the token it was made from.
const IssuedAtPrecision = time.Second

// AcceptsTokenIssuedAt reports whether a token of the user issued at t is
// still alive: a token issued before the user's TokensValidAfter (the last
// disabling or password change) is dead.
//
// Precision: t is an issue time of IssuedAtPrecision (1 s), so it stands
// for any instant of its second. The rule compares TokensValidAfter
// truncated to the second: a token whose iat is the second of the reset is
// accepted (it may have been issued after the reset, within that second).
// A token issued in that second before the reset is refused elsewhere: the
// reset revoked its family and denied its jti. For a time recorded by the
// service itself at full precision, use AcceptsAuthenticatedAt.
func (u User) AcceptsTokenIssuedAt(t time.Time) bool {
	return u.TokensValidAfter == nil || !u.TokensValidAfter.Truncate(IssuedAtPrecision).After(t)
}

// AcceptsAuthenticatedAt reports whether the user still accepts a proof of
// identity (a password check, a provider token check, a sign-in) made at
// t: not before TokensValidAfter. Both are times the service recorded, so
// they are compared exactly (at the store's precision), never rounded: a
// password checked a moment before a reset gets no tokens after it.
func (u User) AcceptsAuthenticatedAt(t time.Time) bool {
	return u.TokensValidAfter == nil || !u.TokensValidAfter.After(t)
}

// Alive reports whether the family was not revoked.
func (f TokenFamily) Alive() bool { return f.RevokedAt == nil }

// MayIssue decides whether new tokens may be written for the family — the
// write guard of every store. user is the family's user (nil for a
// client-credentials family); for a family not stored yet, f carries the
// AuthTime of the tokens being written. The tokens are refused when the
// user is disabled (ErrAccountDisabled), the family revoked, or the family
// authenticated before the user's last disabling or password change
// (ErrTokenRevoked).
func (f TokenFamily) MayIssue(user *User) error {
	if user != nil && user.Disabled {
		return ErrAccountDisabled
	}
	if !f.Alive() {
		return fmt.Errorf("token family: %w", ErrTokenRevoked)
	}
	if user != nil && !user.AcceptsAuthenticatedAt(f.AuthTime) {
		return fmt.Errorf("authenticated before the last password change: %w", ErrTokenRevoked)
	}
	return nil
}

// MayOpen decides whether the web session s may be stored for its user u:
// not for a disabled user (ErrAccountDisabled), nor for a token issued
// before the user's last disabling or password change (see
// AcceptsTokenIssuedAt), nor for a revoked family (ErrTokenRevoked).
// family is nil when the session names none, or it is no longer stored.
func (s Session) MayOpen(u User, family *TokenFamily) error {
	switch {
	case u.Disabled:
		return ErrAccountDisabled
	case !u.AcceptsTokenIssuedAt(s.TokenIssuedAt):
		return fmt.Errorf("token older than the last password change: %w", ErrTokenRevoked)
	case family != nil && !family.Alive():
		return fmt.Errorf("token family: %w", ErrTokenRevoked)
	}
	return nil
}

// AuthenticatedAt is when the user proved who they are for the token's
// family: AuthTime, or the issue time for a record written without it.
func (t AccessToken) AuthenticatedAt() time.Time { return authenticatedAt(t.AuthTime, t.IssuedAt) }

// AuthenticatedAt: see AccessToken.AuthenticatedAt.
func (t RefreshToken) AuthenticatedAt() time.Time { return authenticatedAt(t.AuthTime, t.IssuedAt) }

func authenticatedAt(auth, issued time.Time) time.Time {
	if auth.IsZero() {
		return issued
	}
	return auth
}
