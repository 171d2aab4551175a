package bff

import (
	"errors"
	"testing"
	"time"
)

func TestUserAcceptsTokenIssuedAt(t *testing.T) {
	t.Parallel()
	reset := time.Date(2026, 1, 2, 3, 4, 5, 500_000_000, time.UTC) // 03:04:05.5
	second := reset.Truncate(time.Second)
	u := User{TokensValidAfter: &reset}
	for _, c := range []struct {
		name string
		iat  time.Time
		want bool
	}{
		{"the second before the reset's", second.Add(-time.Second), false},
		{"the reset's second (iat is whole seconds)", second, true},
		{"after the reset", second.Add(time.Second), true},
		{"long before", second.Add(-time.Hour), false},
	} {
		if got := u.AcceptsTokenIssuedAt(c.iat); got != c.want {
			t.Errorf("%s: AcceptsTokenIssuedAt(%s) = %v, want %v", c.name, c.iat.Format(time.RFC3339Nano), got, c.want)
		}
	}
	if !(User{}).AcceptsTokenIssuedAt(time.Time{}) {
		t.Error("a user never reset accepts every token")
	}
}

func TestUserAcceptsAuthenticatedAt(t *testing.T) {
	t.Parallel()
	reset := time.Date(2026, 1, 2, 3, 4, 5, 500_000_000, time.UTC)
	u := User{TokensValidAfter: &reset}
	for at, want := range map[time.Time]bool{
		reset.Add(-time.Microsecond): false, // exact: a moment before the reset, in its second
		reset:                        true,
		reset.Add(time.Microsecond):  true,
	} {
		if got := u.AcceptsAuthenticatedAt(at); got != want {
			t.Errorf("AcceptsAuthenticatedAt(%s) = %v, want %v", at.Format(time.RFC3339Nano), got, want)
		}
	}
	if !(User{}).AcceptsAuthenticatedAt(time.Time{}) {
		t.Error("a user never reset accepts every sign-in")
	}
}

func TestTokenFamilyMayIssue(t *testing.T) {
	t.Parallel()
	auth := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	later, revoked := auth.Add(time.Minute), auth.Add(time.Hour)
	for _, c := range []struct {
		name   string
		family TokenFamily
		user   *User
		want   error
	}{
		{"client family", TokenFamily{AuthTime: auth}, nil, nil},
		{"revoked client family", TokenFamily{AuthTime: auth, RevokedAt: &revoked}, nil, ErrTokenRevoked},
		{"user family", TokenFamily{AuthTime: auth}, &User{}, nil},
		{"disabled user", TokenFamily{AuthTime: auth}, &User{Disabled: true}, ErrAccountDisabled},
		{"disabled user, revoked family", TokenFamily{AuthTime: auth, RevokedAt: &revoked}, &User{Disabled: true}, ErrAccountDisabled},
		{"revoked family", TokenFamily{AuthTime: auth, RevokedAt: &revoked}, &User{}, ErrTokenRevoked},
		{"authenticated before the reset", TokenFamily{AuthTime: auth}, &User{TokensValidAfter: &later}, ErrTokenRevoked},
		{"authenticated at the reset", TokenFamily{AuthTime: later}, &User{TokensValidAfter: &later}, nil},
	} {
		err := c.family.MayIssue(c.user)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: MayIssue = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestSessionMayOpen(t *testing.T) {
	t.Parallel()
	reset := time.Date(2026, 1, 2, 3, 4, 5, 500_000_000, time.UTC)
	issued := reset.Truncate(time.Second) // a JWT's iat in the reset's second
	revoked := reset
	for _, c := range []struct {
		name   string
		sess   Session
		user   User
		family *TokenFamily
		want   error
	}{
		{"live", Session{TokenIssuedAt: issued}, User{TokensValidAfter: &reset}, &TokenFamily{}, nil},
		{"no family", Session{TokenIssuedAt: issued}, User{}, nil, nil},
		{"disabled", Session{TokenIssuedAt: issued}, User{Disabled: true}, nil, ErrAccountDisabled},
		{"token before the reset", Session{TokenIssuedAt: issued.Add(-time.Second)}, User{TokensValidAfter: &reset}, nil, ErrTokenRevoked},
		{"revoked family", Session{TokenIssuedAt: issued}, User{}, &TokenFamily{RevokedAt: &revoked}, ErrTokenRevoked},
	} {
		err := c.sess.MayOpen(c.user, c.family)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: MayOpen = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestAuthenticatedAt(t *testing.T) {
	t.Parallel()
	issued, auth := time.Unix(200, 0), time.Unix(100, 0)
	if got := (AccessToken{IssuedAt: issued}).AuthenticatedAt(); !got.Equal(issued) {
		t.Errorf("without AuthTime: %v, want the issue time", got)
	}
	if got := (RefreshToken{IssuedAt: issued, AuthTime: auth}).AuthenticatedAt(); !got.Equal(auth) {
		t.Errorf("with AuthTime: %v, want it", got)
	}
}
