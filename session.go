package bff

import "time"

// Session is a web session obtained by exchanging an access token at
// /oauth2/login. Its id is the SHA-256 of the cookie value; the cookie
// value itself is never stored.
type Session struct {
	ID        string
	UserID    int64
	ClientID  string
	GrantType string      // grant of the token family the session came from
	Format    TokenFormat // format of the token that was exchanged
	Scopes    []string    // scopes of the token that was exchanged
	// FamilyID is the token family of the exchanged token: revoking the
	// family (an app logging out) ends the session too. Empty if unknown.
	FamilyID string
	// TokenIssuedAt is when the exchanged token was issued; a session is
	// refused for a token older than the user's TokensValidAfter
	// (Session.MayOpen).
	TokenIssuedAt time.Time
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

// AdminSession is a sign-in to the admin dashboard (ADR 20). Its id is the
// SHA-256 of the cookie value; the cookie value itself is never stored.
type AdminSession struct {
	ID string
	// TokenFingerprint names the admin token the session was opened with
	// (an HMAC of it under a key derived from BFF_SECRET, never the token
	// itself): an instance accepts only the sessions of its own token, so
	// that a new BFF_ADMIN_TOKEN ends every session of the old one.
	TokenFingerprint string
	CreatedAt        time.Time
	ExpiresAt        time.Time
}
