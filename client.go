package bff

import (
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Client is an OAuth client: a mobile app (public) or a backend (confidential).
type Client struct {
	ID         string
	Name       string
	Public     bool
	SecretHash []byte // SHA-256 of the server-generated secret; nil for public clients
	// PreviousSecretHash is the hash of the secret a rotation replaced,
	// which still authenticates until PreviousSecretExpiresAt (the
	// rotation's grace); nil when there is none.
	PreviousSecretHash      []byte
	PreviousSecretExpiresAt time.Time
	// Incarnation tells apart clients that had the same id one after the
	// other: random, set when the client is created, never changed. Its
	// JWTs carry it, and a JWT of another incarnation — a deleted client's,
	// once the id is created again — is refused (ADR 0019). Clients created
	// before incarnations existed have "", as have their JWTs.
	Incarnation string
	GrantTypes  []string
	Scopes      []string
	// TokenType is the format the client gets when nothing else decides.
	TokenType TokenFormat
	// JWTRolloutPercent is the share of users (0–100, sticky per user) who get JWTs.
	JWTRolloutPercent int
	// JWTEnabled is the kill switch: when false the client gets Bearer tokens
	// whatever it asks for (restricted clients excepted).
	JWTEnabled bool
	// Restricted clients always get JWTs with is_restricted: true.
	Restricted bool
	// JWTTokenType, when set (LabelJWT or LabelBearer), is the token_type
	// of every JWT response the client gets; "" leaves it to the request
	// (SPEC §5, oauth.SelectFormat).
	JWTTokenType string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// The token_type labels of a token response (RFC 6749 §5.1, §7.1), and the
// values of a client's jwt_token_type.
const (
	// LabelBearer is the registered type (RFC 6750): every opaque token,
	// and a JWT nobody asked for edX's way (RFC 9068: a JWT access token is
	// a bearer token).
	LabelBearer = "Bearer"
	// LabelJWT is edX's answer to a request for a JWT; the apps pick their
	// Authorization scheme from it. Standard OAuth libraries refuse it.
	LabelJWT = "JWT"
)

// CanonicalJWTTokenType spells a jwt_token_type the way responses carry it:
// "jwt" in any case is LabelJWT, "bearer" in any case LabelBearer. Operators
// may type either case; what is stored and answered is canonical. Any other
// value comes back unchanged, for Validate to refuse.
func CanonicalJWTTokenType(s string) string {
	switch {
	case strings.EqualFold(s, LabelJWT):
		return LabelJWT
	case strings.EqualFold(s, LabelBearer):
		return LabelBearer
	}
	return s
}

// ClientSubject is the sub of a token that acts for a client alone (client
// credentials): "client:<client_id>". A user's sub is a decimal number and a
// client id cannot contain ':', so the two never collide (RFC 9068 §5, ADR
// 16): a backend that keys on sub cannot take a client named "2" for user 2.
func ClientSubject(clientID string) string { return "client:" + clientID }

// NewIncarnation returns the incarnation of a client about to be created.
func NewIncarnation() string { return RandomID(12) }

// MaxSecretGrace bounds how long a replaced client secret keeps working
// after a rotation.
const MaxSecretGrace = 7 * 24 * time.Hour

// AcceptsSecretHash reports whether sum, the hash of a presented secret,
// authenticates the client at now: the current secret always, the one a
// rotation replaced until its grace ends. It compares in constant time.
func (c Client) AcceptsSecretHash(sum []byte, now time.Time) bool {
	ok := len(c.SecretHash) == len(sum) && subtle.ConstantTimeCompare(c.SecretHash, sum) == 1
	if c.PreviousSecretHash != nil && now.Before(c.PreviousSecretExpiresAt) {
		prev := len(c.PreviousSecretHash) == len(sum) && subtle.ConstantTimeCompare(c.PreviousSecretHash, sum) == 1
		ok = ok || prev
	}
	return ok
}

// RotateSecret makes newHash the client's secret. With a positive grace the
// replaced secret keeps working until now+grace; without, it stops at once.
// A secret replaced earlier, still in its grace, stops either way: at most
// two secrets work at a time.
func (c *Client) RotateSecret(newHash []byte, now time.Time, grace time.Duration) error {
	switch {
	case c.Public:
		return fmt.Errorf("%w: a public client has no secret to rotate", ErrInvalidInput)
	case grace < 0 || grace > MaxSecretGrace:
		return fmt.Errorf("%w: grace must be between 0s and %s", ErrInvalidInput, MaxSecretGrace)
	case len(c.SecretHash) == len(newHash) && subtle.ConstantTimeCompare(c.SecretHash, newHash) == 1:
		return fmt.Errorf("%w: the new secret must differ from the current one", ErrInvalidInput)
	}
	c.PreviousSecretHash, c.PreviousSecretExpiresAt = nil, time.Time{}
	if grace > 0 {
		c.PreviousSecretHash, c.PreviousSecretExpiresAt = c.SecretHash, now.Add(grace)
	}
	c.SecretHash = newHash
	c.UpdatedAt = now
	return nil
}

// KnownGrantTypes are the grant types a client may be allowed.
var KnownGrantTypes = []string{GrantPassword, GrantRefreshToken, GrantClientCredentials, GrantTokenExchange}

// HasGrant reports whether the client may use grant type g.
func (c Client) HasGrant(g string) bool { return slices.Contains(c.GrantTypes, g) }

// HasScope reports whether the client may request scope s.
func (c Client) HasScope(s string) bool { return slices.Contains(c.Scopes, s) }

// Validate checks the fields an operator sets.
func (c Client) Validate() error {
	switch {
	case c.ID == "" || len(c.ID) > 100:
		return fmt.Errorf("%w: client_id must be 1–100 characters", ErrInvalidInput)
	case !validIdentifier(c.ID):
		return fmt.Errorf("%w: client_id may hold only letters, digits, '-', '_' and '.'", ErrInvalidInput)
	case len(c.Name) > 200:
		return fmt.Errorf("%w: name must be at most 200 characters", ErrInvalidInput)
	case !c.TokenType.Valid():
		return fmt.Errorf("%w: token_type must be \"bearer\" or \"jwt\"", ErrInvalidInput)
	case c.JWTTokenType != "" && c.JWTTokenType != LabelJWT && c.JWTTokenType != LabelBearer:
		return fmt.Errorf("%w: jwt_token_type must be \"JWT\", \"Bearer\" or empty", ErrInvalidInput)
	case c.JWTRolloutPercent < 0 || c.JWTRolloutPercent > 100:
		return fmt.Errorf("%w: jwt_rollout_percent must be between 0 and 100", ErrInvalidInput)
	case len(c.GrantTypes) == 0:
		return fmt.Errorf("%w: grant_types must not be empty", ErrInvalidInput)
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(KnownGrantTypes, g) {
			return fmt.Errorf("%w: unknown grant type %q", ErrInvalidInput, g)
		}
	}
	if c.Public && c.HasGrant(GrantClientCredentials) {
		return fmt.Errorf("%w: a public client cannot use client_credentials", ErrInvalidInput)
	}
	for _, s := range c.Scopes {
		if s == "" || len(s) > 100 || !validScope(s) {
			return fmt.Errorf("%w: invalid scope %q", ErrInvalidInput, s)
		}
	}
	return nil
}

func validIdentifier(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// validScope follows RFC 6749 §3.3: printable ASCII except space, '"' and '\'.
func validScope(s string) bool {
	for _, r := range s {
		if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}
