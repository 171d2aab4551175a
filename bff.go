// Package bff holds the domain types and sentinel errors of mobile-auth-bff.
//
// Every other package imports it; it imports nothing of ours. Storage,
// OAuth decisions and HTTP live in their own packages (store, oauth,
// handlers), so that dependencies point one way: handlers → oauth → store → bff.
package bff

import "time"

// TokenFormat is the format of an access token.
type TokenFormat string

// The two access-token formats the service issues and accepts.
const (
	FormatBearer TokenFormat = "bearer" // opaque, looked up in the store
	FormatJWT    TokenFormat = "jwt"    // asymmetrically signed, verified by kid
)

// Valid reports whether f is one of the known formats.
func (f TokenFormat) Valid() bool { return f == FormatBearer || f == FormatJWT }

// Grant types, as sent in grant_type and recorded on every token family.
const (
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	// GrantAuthorizationCode is browser sign-in (SPEC §14): the code the
	// authorize endpoint issued after the service's own sign-in page.
	GrantAuthorizationCode = "authorization_code"
	// GrantSocialExchange is recorded for tokens obtained by exchanging a
	// Google, Facebook or Apple token (SPEC §7); it is not a grant_type value.
	GrantSocialExchange = "social_exchange"
)

// MaxAccessTokenTTL caps the lifetime of access tokens of both formats.
const MaxAccessTokenTTL = time.Hour
