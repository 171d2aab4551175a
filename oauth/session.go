package oauth

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"time"

	"github.com/ory/fosite"

	bff "github.com/openedx/mobile-auth-bff"
)

// Session is the fosite session of every token request. It is stored with
// each token (see storedRequest) and cloned by fosite on refresh, so the
// original grant type and user survive rotation.
type Session struct {
	// UserID is the user the tokens act for; 0 for client credentials.
	UserID int64 `json:"user_id,omitempty"`
	// Username is kept for introspection; the user record is authoritative.
	Username string `json:"username,omitempty"`
	// GrantType is the grant that started the token family (password,
	// client_credentials, social_exchange); kept through refreshes.
	GrantType string `json:"grant_type"`
	// Format is the format of the access token issued with this request.
	Format bff.TokenFormat `json:"format"`
	// JTI is the id of the JWT access token issued with this request.
	JTI string `json:"jti,omitempty"`
	// AuthTime is when the user proved who they are for this family: a
	// family authenticated before the user's last password change or
	// disabling gets no tokens (the store checks it).
	AuthTime time.Time `json:"auth_time,omitzero"`
	// JKT is the thumbprint of the DPoP key the access token of this
	// request is bound to; "" for a bearer token (RFC 9449).
	JKT string `json:"jkt,omitempty"`
	// RefreshJKT is the key the refresh token of this request is bound to:
	// a public client's proof key; "" when unbound. Loaded from the stored
	// record of a presented refresh token (the store's column is the
	// authority), and set for the new one.
	RefreshJKT string `json:"refresh_jkt,omitempty"`
	// ExpiresAt holds the expiry of each token type.
	ExpiresAt map[fosite.TokenType]time.Time `json:"expires_at"`

	// user is the account loaded while handling the request; never stored.
	user *bff.User
}

var _ fosite.Session = (*Session)(nil)

// NewSession returns an empty session.
func NewSession() *Session { return &Session{ExpiresAt: map[fosite.TokenType]time.Time{}} }

// SetExpiresAt sets the expiry of a token type.
func (s *Session) SetExpiresAt(key fosite.TokenType, exp time.Time) {
	if s.ExpiresAt == nil {
		s.ExpiresAt = map[fosite.TokenType]time.Time{}
	}
	s.ExpiresAt[key] = exp
}

// GetExpiresAt returns the expiry of a token type, zero when unset.
func (s *Session) GetExpiresAt(key fosite.TokenType) time.Time { return s.ExpiresAt[key] }

// GetUsername returns the username.
func (s *Session) GetUsername() string { return s.Username }

// GetSubject returns the user id as a string, or "" for client credentials.
func (s *Session) GetSubject() string {
	if s.UserID == 0 {
		return ""
	}
	return bff.User{ID: s.UserID}.Subject()
}

// SetSubject is called by fosite's password grant with what Authenticate
// returned: the user id.
func (s *Session) SetSubject(sub string) {
	if id, ok := bff.ParseSubject(sub); ok {
		s.UserID = id
	}
}

// Clone returns a deep copy (the one fosite promotes from embedded sessions
// would drop our fields).
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := *s
	c.ExpiresAt = maps.Clone(s.ExpiresAt)
	return &c
}

// setUser records the loaded account on the session.
func (s *Session) setUser(u bff.User) {
	s.user = &u
	s.UserID = u.ID
	s.Username = u.Username
}

// storedRequest is what the store keeps of a fosite request, as JSON.
type storedRequest struct {
	ID                string    `json:"id"`
	RequestedAt       time.Time `json:"requested_at"`
	ClientID          string    `json:"client_id"`
	RequestedScopes   []string  `json:"requested_scopes,omitempty"`
	GrantedScopes     []string  `json:"granted_scopes,omitempty"`
	RequestedAudience []string  `json:"requested_audience,omitempty"`
	GrantedAudience   []string  `json:"granted_audience,omitempty"`
	Session           *Session  `json:"session"`
}

// marshalRequest encodes r for the store, with granted as its granted
// scopes (a narrowed refresh stores the family's with its refresh token).
func marshalRequest(r fosite.Requester, granted []string) ([]byte, *Session, error) {
	sess, ok := r.GetSession().(*Session)
	if !ok {
		return nil, nil, fmt.Errorf("unexpected session type %T", r.GetSession())
	}
	b, err := json.Marshal(storedRequest{
		ID: r.GetID(), RequestedAt: r.GetRequestedAt(), ClientID: r.GetClient().GetID(),
		RequestedScopes: r.GetRequestedScopes(), GrantedScopes: granted,
		RequestedAudience: r.GetRequestedAudience(), GrantedAudience: r.GetGrantedAudience(),
		Session: sess,
	})
	return b, sess, err
}

func unmarshalRequest(b []byte, client fosite.Client) (*fosite.Request, *Session, error) {
	var sr storedRequest
	if err := json.Unmarshal(b, &sr); err != nil {
		return nil, nil, fmt.Errorf("decode stored request: %w", err)
	}
	if sr.Session == nil {
		sr.Session = NewSession()
	}
	return &fosite.Request{
		ID: sr.ID, RequestedAt: sr.RequestedAt, Client: client,
		RequestedScope: sr.RequestedScopes, GrantedScope: sr.GrantedScopes,
		RequestedAudience: sr.RequestedAudience, GrantedAudience: sr.GrantedAudience,
		Form: url.Values{}, Session: sr.Session,
	}, sr.Session, nil
}
