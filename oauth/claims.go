package oauth

import (
	"slices"
	"strings"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
)

// ClaimsVersion is the edX JWT format version the claims follow.
const ClaimsVersion = "1.2.0"

// ScopeProfile adds name, given_name, family_name, administrator and
// superuser to a JWT.
const ScopeProfile = "profile"

// AccessClaims is the claim set of a JWT access token (SPEC §5.1). Tokens are
// created from it and decoded into it, so the two cannot drift. It carries
// identity only: no roles, permissions or per-object grants.
type AccessClaims struct {
	Issuer            string   `json:"iss"`
	Audience          Audience `json:"aud"`
	Subject           string   `json:"sub"`
	ClientID          string   `json:"client_id"`
	IssuedAt          int64    `json:"iat"`
	NotBefore         int64    `json:"nbf,omitempty"`
	Expiry            int64    `json:"exp"`
	JTI               string   `json:"jti"`
	Scope             string   `json:"scope"`
	Scopes            []string `json:"scopes"`
	GrantType         string   `json:"grant_type"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	UserID            int64    `json:"user_id,omitempty"`
	Email             string   `json:"email,omitempty"`
	EmailVerified     *bool    `json:"email_verified,omitempty"`
	IsRestricted      bool     `json:"is_restricted"`
	Version           string   `json:"version"`
	Name              string   `json:"name,omitempty"`
	GivenName         string   `json:"given_name,omitempty"`
	FamilyName        string   `json:"family_name,omitempty"`
	Administrator     *bool    `json:"administrator,omitempty"`
	Superuser         *bool    `json:"superuser,omitempty"`
	// ClientIncarnation is the incarnation of the client the token was
	// issued to (ADR 0019): a JWT of a deleted client does not pass for
	// one of a client later created with the same id. Absent for clients
	// created before incarnations existed.
	ClientIncarnation string `json:"client_incarnation,omitempty"`
	// Confirmation binds the token to a DPoP key (RFC 9449 §6.1): only
	// requests with a proof by that key may use it.
	Confirmation *Confirmation `json:"cnf,omitempty"`
}

// Confirmation is the cnf claim of a DPoP-bound token (RFC 7800).
type Confirmation struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the key, base64url.
	JKT string `json:"jkt"`
}

// Audience is the aud claim: issued as one string, accepted as a string or
// an array (RFC 7519 §4.1.3).
type Audience = bff.Audience

// ClaimsInput is everything an access-token claim set is built from.
type ClaimsInput struct {
	Issuer   string
	Audience string
	User     *bff.User // nil for client credentials
	ClientID string
	// ClientIncarnation is the client's Incarnation.
	ClientIncarnation string
	Scopes            []string
	GrantType         string
	Restricted        bool
	IssuedAt          time.Time
	ExpiresAt         time.Time
	JTI               string
	// JKT binds the token to a DPoP key; "" issues a bearer token.
	JKT string
}

// NewAccessClaims builds the claim set of a JWT access token. It is the one
// place that decides what a JWT says.
func NewAccessClaims(in ClaimsInput) AccessClaims {
	scopes := slices.Clone(in.Scopes)
	if scopes == nil {
		scopes = []string{}
	}
	c := AccessClaims{
		Issuer: in.Issuer, Audience: Audience{in.Audience}, ClientID: in.ClientID,
		IssuedAt: in.IssuedAt.Unix(), Expiry: in.ExpiresAt.Unix(), JTI: in.JTI,
		Scope: strings.Join(scopes, " "), Scopes: scopes, GrantType: in.GrantType,
		IsRestricted: in.Restricted, Version: ClaimsVersion, ClientIncarnation: in.ClientIncarnation,
		Subject: bff.ClientSubject(in.ClientID), // RFC 9068 §2.2: the client, when no user is involved
	}
	if in.JKT != "" {
		c.Confirmation = &Confirmation{JKT: in.JKT}
	}
	if u := in.User; u != nil {
		c.Subject = u.Subject()
		c.PreferredUsername = u.Username
		c.UserID = u.ID
		c.Email = u.Email
		c.EmailVerified = ptr(u.EmailVerified)
		if slices.Contains(scopes, ScopeProfile) {
			c.Name = u.Name
			c.GivenName, c.FamilyName = u.GivenAndFamilyName()
			c.Administrator = ptr(u.IsStaff)
			c.Superuser = ptr(u.IsSuperuser)
		}
	}
	return c
}

// ptr copies v, so that claims never alias the user they were built from.
func ptr[T any](v T) *T { return &v }

// UpstreamTokenTTL is the lifetime of the JWTs the service mints for other
// services (the payment broker's upstream, SPEC §10). Retired signing keys
// stay published at least this long, so that such a JWT signed just before
// a rotation still verifies.
const UpstreamTokenTTL = 5 * time.Minute

// UpstreamClaims is the claim set of a JWT the service mints for another
// service on behalf of a user. Like an access token it says who, never what
// they may do; unlike one it names no client and carries typ JWT, so it can
// never pass as an access token of this service.
type UpstreamClaims struct {
	Issuer            string   `json:"iss"`
	Audience          Audience `json:"aud"`
	Subject           string   `json:"sub"`
	IssuedAt          int64    `json:"iat"`
	Expiry            int64    `json:"exp"`
	JTI               string   `json:"jti"`
	Scope             string   `json:"scope"`
	Scopes            []string `json:"scopes"`
	PreferredUsername string   `json:"preferred_username"`
	UserID            int64    `json:"user_id"`
	Email             string   `json:"email"`
	EmailVerified     bool     `json:"email_verified"`
	Version           string   `json:"version"`
	Name              string   `json:"name,omitempty"`
	GivenName         string   `json:"given_name,omitempty"`
	FamilyName        string   `json:"family_name,omitempty"`
}

// UpstreamClaimsInput is everything an upstream claim set is built from.
type UpstreamClaimsInput struct {
	Issuer    string
	Audience  string
	User      bff.User
	Scopes    []string // the caller's scopes
	IssuedAt  time.Time
	ExpiresAt time.Time
	JTI       string
}

// NewUpstreamClaims builds the claim set of a JWT minted for another
// service: the user's identity (the profile scope adds the name, as in an
// access token) and the caller's scopes, sorted.
func NewUpstreamClaims(in UpstreamClaimsInput) UpstreamClaims {
	scopes := slices.Clone(in.Scopes)
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	if scopes == nil {
		scopes = []string{}
	}
	u := in.User
	c := UpstreamClaims{
		Issuer: in.Issuer, Audience: Audience{in.Audience}, Subject: u.Subject(),
		IssuedAt: in.IssuedAt.Unix(), Expiry: in.ExpiresAt.Unix(), JTI: in.JTI,
		Scope: strings.Join(scopes, " "), Scopes: scopes,
		PreferredUsername: u.Username, UserID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified,
		Version: ClaimsVersion,
	}
	if slices.Contains(scopes, ScopeProfile) {
		c.Name = u.Name
		c.GivenName, c.FamilyName = u.GivenAndFamilyName()
	}
	return c
}
