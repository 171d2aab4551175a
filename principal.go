package bff

import (
	"slices"
	"time"
)

// Principal is who presented a valid token, as the validator established it.
type Principal struct {
	// User is the account; nil for client-credentials tokens.
	User      *User
	Client    Client
	Format    TokenFormat
	Scopes    []string
	GrantType string // the grant that started the token family
	FamilyID  string // opaque tokens only
	JTI       string // JWTs only
	SessionID string // web sessions only
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Restricted is the is_restricted claim of a JWT, or the client's flag.
	Restricted bool
	// JKT is the thumbprint of the DPoP key the token is bound to (RFC
	// 9449); "" for a bearer token and a web session.
	JKT string
}

// HasScope reports whether the token carries scope s.
func (p Principal) HasScope(s string) bool { return slices.Contains(p.Scopes, s) }
