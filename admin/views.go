package admin

import (
	"time"

	bff "github.com/openedx/mobile-auth-bff"
)

// ClientView is how a client appears to operators (admin API and CLI).
type ClientView struct {
	ID                string          `json:"client_id"`
	Name              string          `json:"name"`
	Public            bool            `json:"public"`
	GrantTypes        []string        `json:"grant_types"`
	Scopes            []string        `json:"scopes"`
	TokenType         bff.TokenFormat `json:"token_type"`
	JWTRolloutPercent int             `json:"jwt_rollout_percent"`
	JWTEnabled        bool            `json:"jwt_enabled"`
	Restricted        bool            `json:"restricted"`
	JWTTokenType      string          `json:"jwt_token_type"` // "" leaves the label to the request
	RedirectURIs      []string        `json:"redirect_uris"`
	PKCERequired      bool            `json:"pkce_required"`
	// DPoPBoundAccessTokens: the client must send a DPoP proof with every
	// token request (RFC 9449 §5.2).
	DPoPBoundAccessTokens bool      `json:"dpop_bound_access_tokens"`
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`
	// PreviousSecretExpiresAt is when the secret the last rotation replaced
	// stops (or stopped) authenticating the client; absent when that
	// rotation kept none.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	// Secret is present once: in the answer to the creation of a
	// confidential client, or to the rotation of its secret. Only its hash
	// is stored.
	Secret string `json:"client_secret,omitempty"`
}

// ViewClient returns the operator's view of c; never the secret hash.
func ViewClient(c bff.Client) ClientView {
	v := ClientView{
		ID: c.ID, Name: c.Name, Public: c.Public, GrantTypes: c.GrantTypes, Scopes: c.Scopes,
		TokenType: c.TokenType, JWTRolloutPercent: c.JWTRolloutPercent, JWTEnabled: c.JWTEnabled,
		Restricted: c.Restricted, JWTTokenType: c.JWTTokenType, RedirectURIs: c.RedirectURIs, PKCERequired: c.PKCERequired,
		DPoPBoundAccessTokens: c.DPoPBoundAccessTokens, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
	if c.PreviousSecretHash != nil {
		exp := c.PreviousSecretExpiresAt
		v.PreviousSecretExpiresAt = &exp
	}
	if v.RedirectURIs == nil {
		v.RedirectURIs = []string{}
	}
	return v
}

// UserView is how a user appears to operators; never the password hash.
type UserView struct {
	ID            int64      `json:"id"`
	Username      string     `json:"username"`
	Email         string     `json:"email"`
	Name          string     `json:"name"`
	EmailVerified bool       `json:"email_verified"`
	IsStaff       bool       `json:"is_staff"`
	IsSuperuser   bool       `json:"is_superuser"`
	HasPassword   bool       `json:"has_password"`
	Disabled      bool       `json:"disabled"`
	DisabledAt    *time.Time `json:"disabled_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
}

// ViewUser returns the operator's view of u.
func ViewUser(u bff.User) UserView {
	return UserView{
		ID: u.ID, Username: u.Username, Email: u.Email, Name: u.Name, EmailVerified: u.EmailVerified,
		IsStaff: u.IsStaff, IsSuperuser: u.IsSuperuser, HasPassword: u.PasswordHash != "",
		Disabled: u.Disabled, DisabledAt: u.DisabledAt, CreatedAt: u.CreatedAt,
	}
}

// ViewClients maps ViewClient over a list.
func ViewClients(cs []bff.Client) []ClientView {
	out := make([]ClientView, len(cs))
	for i, c := range cs {
		out[i] = ViewClient(c)
	}
	return out
}

// IdentityView is how a linked social identity appears to operators.
type IdentityView struct {
	Provider  string    `json:"provider"`
	Subject   string    `json:"subject"`
	UserID    int64     `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
}

// ViewIdentity returns the operator's view of id.
func ViewIdentity(id bff.Identity) IdentityView {
	return IdentityView{Provider: id.Provider, Subject: id.Subject, UserID: id.UserID, CreatedAt: id.CreatedAt}
}

// ViewIdentities maps ViewIdentity over a list.
func ViewIdentities(ids []bff.Identity) []IdentityView {
	out := make([]IdentityView, len(ids))
	for i, id := range ids {
		out[i] = ViewIdentity(id)
	}
	return out
}
