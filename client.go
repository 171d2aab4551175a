package bff

import (
	"crypto/subtle"
	"fmt"
	"net/url"
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
	// RedirectURIs are the redirect URIs of browser sign-in (SPEC §14),
	// matched exactly (a loopback URI with any port, RFC 8252 §7.3).
	RedirectURIs []string
	// PKCERequired makes browser sign-in demand an S256 code_challenge. Only
	// a client that cannot send one (the shipped Android app) turns it off.
	PKCERequired bool
	// DPoPBoundAccessTokens makes the client send a DPoP proof with every
	// token request, so that none of its tokens is a bearer credential
	// (RFC 9449 §5.2, dpop_bound_access_tokens). Off by default: the
	// shipped apps send no proof.
	DPoPBoundAccessTokens bool
	CreatedAt             time.Time
	UpdatedAt             time.Time
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
var KnownGrantTypes = []string{GrantPassword, GrantRefreshToken, GrantClientCredentials, GrantTokenExchange, GrantAuthorizationCode}

// MaxRedirectURIs bounds a client's redirect URIs, and MaxRedirectURILength
// each one, in bytes.
const (
	MaxRedirectURIs      = 20
	MaxRedirectURILength = 2000
)

// HasGrant reports whether the client may use grant type g.
func (c Client) HasGrant(g string) bool { return slices.Contains(c.GrantTypes, g) }

// SignsUsersIn reports whether the client signs users in — with their
// password at the token endpoint or through browser sign-in — and so may
// turn their tokens into web sessions (SPEC §6, §14).
func (c Client) SignsUsersIn() bool {
	return c.HasGrant(GrantPassword) || c.HasGrant(GrantAuthorizationCode)
}

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
	if len(c.RedirectURIs) > MaxRedirectURIs {
		return fmt.Errorf("%w: at most %d redirect_uris", ErrInvalidInput, MaxRedirectURIs)
	}
	for _, u := range c.RedirectURIs {
		if err := ValidateRedirectURI(u); err != nil {
			return err
		}
	}
	if c.HasGrant(GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return fmt.Errorf("%w: the authorization_code grant needs at least one redirect_uri", ErrInvalidInput)
	}
	return nil
}

// ValidateRedirectURI checks a redirect URI an operator registers for
// browser sign-in (RFC 8252 §7): a private-use scheme in reverse domain
// name form (org.openedx.app://oauth2Callback), a claimed https link, or
// loopback http on 127.0.0.1 or [::1] ("localhost" is not accepted: it may
// resolve elsewhere, RFC 8252 §8.3). Absolute, no fragment (RFC 6749
// §3.1.2), no user info, printable ASCII only.
func ValidateRedirectURI(raw string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: redirect_uri %q: %s", ErrInvalidInput, truncate(raw, 100), why)
	}
	if raw == "" || len(raw) > MaxRedirectURILength {
		return bad(fmt.Sprintf("must be 1–%d bytes", MaxRedirectURILength))
	}
	for _, r := range raw {
		if r <= 0x20 || r >= 0x7f {
			return bad("must be printable ASCII without spaces")
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return bad("must be an absolute URI")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return bad("must not have a fragment")
	}
	if u.User != nil {
		return bad("must not carry user information")
	}
	switch scheme := strings.ToLower(u.Scheme); scheme {
	case "https":
		if u.Host == "" {
			return bad("https needs a host")
		}
	case "http":
		if h := u.Hostname(); h != "127.0.0.1" && h != "::1" {
			return bad("http is allowed only on the loopback addresses 127.0.0.1 and [::1]")
		}
	case "javascript", "data", "file", "vbscript", "about", "blob", "ftp", "ws", "wss":
		return bad("scheme not allowed")
	default:
		if !strings.Contains(scheme, ".") {
			return bad("a private-use scheme must be a reverse domain name such as org.example.app (RFC 8252 §7.1)")
		}
		if u.Opaque != "" && u.Host == "" && u.Path == "" {
			return bad("must have a host or a path")
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
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

// MatchRedirectURI reports whether a redirect URI sent to the authorize
// endpoint is one of the client's: the same string, or for a loopback
// redirect URI the same one on any port (RFC 8252 §7.3).
func (c Client) MatchRedirectURI(requested string) bool {
	if slices.Contains(c.RedirectURIs, requested) {
		return true
	}
	req, err := url.Parse(requested)
	if err != nil || req.Scheme != "http" || req.Fragment != "" || req.User != nil {
		return false
	}
	for _, r := range c.RedirectURIs {
		reg, err := url.Parse(r)
		if err != nil || reg.Scheme != "http" {
			continue
		}
		if reg.Hostname() == req.Hostname() && reg.Path == req.Path && reg.RawQuery == req.RawQuery &&
			(req.Hostname() == "127.0.0.1" || req.Hostname() == "::1") {
			return true
		}
	}
	return false
}
