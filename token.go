package bff

import "time"

// TokenFamily ties together every token descended from one original grant
// (a password login, a client-credentials request, a social exchange). Its
// id is fosite's request id, which survives refresh rotation.
type TokenFamily struct {
	ID        string
	ClientID  string
	UserID    int64 // 0 for client-credentials families
	GrantType string
	// AuthTime is when the user proved who they are for this family.
	AuthTime  time.Time
	CreatedAt time.Time
	RevokedAt *time.Time
}

// AccessToken is the stored record of an issued access token of either
// format. Opaque tokens are keyed by the HMAC signature of the token, JWTs
// by their JWS signature segment; the token itself is never stored.
type AccessToken struct {
	Signature string
	FamilyID  string
	JTI       string // JWTs only
	Format    TokenFormat
	ClientID  string
	UserID    int64
	GrantType string
	Scopes    []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// AuthTime is when the user proved who they are for the token's family
	// (the password check, the provider token check). A family whose
	// AuthTime is before the user's TokensValidAfter cannot get tokens.
	AuthTime time.Time
	// RevokedAt is set when the token or its family was revoked.
	RevokedAt *time.Time
	// Request is the serialized OAuth request the token was issued for,
	// opaque to the store.
	Request []byte
}

// RefreshToken is the stored record of an issued (always opaque) refresh token.
type RefreshToken struct {
	Signature       string
	FamilyID        string
	AccessSignature string
	ClientID        string
	UserID          int64
	GrantType       string
	Scopes          []string
	IssuedAt        time.Time
	ExpiresAt       time.Time
	AuthTime        time.Time // see AccessToken.AuthTime
	// RotatedAt is the time of the first refresh that used this token.
	RotatedAt *time.Time
	// RevokedAt is set when the token or its family was revoked.
	RevokedAt *time.Time
	Request   []byte
}
