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
	// AuthTime is before the user's TokensValidAfter cannot get tokens
	// (TokenFamily.MayIssue).
	AuthTime time.Time
	// RevokedAt is set when the token or its family was revoked.
	RevokedAt *time.Time
	// JKT is the RFC 7638 SHA-256 thumbprint of the DPoP key the token is
	// bound to (RFC 9449); "" when the token is a bearer token.
	JKT string
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
	// JKT is the thumbprint of the DPoP key the token is bound to (see
	// AccessToken.JKT); "" when unbound (a confidential client's refresh
	// token is bound to the client's authentication instead, RFC 9449 §5).
	JKT     string
	Request []byte
}

// MaxAuthorizationCodeTTL caps the lifetime of an authorization code (RFC
// 6749 §4.1.2 recommends at most ten minutes; browser sign-in needs seconds).
const MaxAuthorizationCodeTTL = time.Minute

// AuthorizationCode is the stored record of a code the authorize endpoint
// issued after a browser sign-in (SPEC §14). It is keyed by the HMAC
// signature of the code, never the code itself; single use: the first
// redemption sets UsedAt, and a second one finds it set.
type AuthorizationCode struct {
	Signature string
	// RequestID is fosite's request id: the family id of every token
	// issued from the code, so that a replay revokes them all.
	RequestID   string
	ClientID    string
	UserID      int64
	RedirectURI string
	// CodeChallenge and CodeChallengeMethod are the PKCE challenge the
	// code is bound to; empty for a client with pkce_required=false that
	// sent none.
	CodeChallenge       string
	CodeChallengeMethod string
	Scopes              []string
	// AuthTime is when the user signed in (the password check, or the
	// sign-in session's start).
	AuthTime  time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
	Request   []byte
}
