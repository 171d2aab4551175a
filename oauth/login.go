package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
)

// SessionCookieName is the web session cookie, named as on edX.
const SessionCookieName = "sessionid"

// cookieValueLength is the length of a session cookie value: 32 bytes, base64url.
const cookieValueLength = 43

// SessionID is the stored key of a session cookie value.
func SessionID(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:])
}

func validCookieValue(v string) bool {
	if len(v) != cookieValueLength {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil
}

// sessionGrants are the grants whose families began with a user signing
// in; only their tokens become web sessions (SPEC §6).
var sessionGrants = map[string]bool{bff.GrantPassword: true, bff.GrantSocialExchange: true, bff.GrantAuthorizationCode: true}

// Login exchanges an access token presented in the Authorization header
// for a web session, and returns the cookie value. The token must be valid
// (the validator decides), belong to a user, come from a family that began
// with the user signing in, and be issued to a client that holds the
// password grant; otherwise ErrNotSupportedToken.
//
// The cookie value is derived from the token, so logging in again with the
// same token (web views do it often) finds the same session.
func (s *Service) Login(ctx context.Context, c Credential) (string, bff.Session, error) {
	if c.Scheme == SchemeCookie {
		return "", bff.Session{}, fmt.Errorf("%w: login needs an access token", bff.ErrInvalidToken)
	}
	p, err := s.validator.Validate(ctx, c)
	if err != nil {
		return "", bff.Session{}, err
	}
	if p.User == nil || !sessionGrants[p.GrantType] || !p.Client.SignsUsersIn() {
		return "", bff.Session{}, withClient(p.Client.ID, bff.ErrNotSupportedToken)
	}
	// The same token always gives the same cookie (a JWT is known by its
	// id, so that a second valid signature of it is the same token).
	cookie := s.sessionCookie(p.JTI, c.Token)
	family := p.FamilyID
	if p.JTI != "" {
		// JWTs carry no family; the stored record of the token knows it.
		// Without a record (it cannot be revoked with its family), no
		// session.
		t, err := s.store.GetAccessTokenByJTI(ctx, p.JTI)
		if errors.Is(err, bff.ErrNotFound) {
			return "", bff.Session{}, fmt.Errorf("%w: no record of the JWT", bff.ErrInvalidToken)
		}
		if err != nil {
			return "", bff.Session{}, err
		}
		family = t.FamilyID
	}
	now := time.Now().UTC()
	sess, err := s.store.EnsureSession(ctx, bff.Session{
		ID: SessionID(cookie), UserID: p.User.ID, ClientID: p.Client.ID, GrantType: p.GrantType,
		Format: p.Format, Scopes: p.Scopes, FamilyID: family, TokenIssuedAt: p.IssuedAt,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL),
	})
	if err != nil {
		return "", bff.Session{}, err
	}
	return cookie, sess, nil
}

// Logout ends the session of a cookie value; an unknown one is not an error.
func (s *Service) Logout(ctx context.Context, cookie string) error {
	if !validCookieValue(cookie) {
		return nil
	}
	return s.store.DeleteSession(ctx, SessionID(cookie))
}

// sessionCookie is the cookie value of the web session made from an access
// token: a JWT is known by its id (a second valid signature of it is the
// same token), an opaque token by its (canonical) text. Login and the
// revocation that ends the session both derive it here.
func (s *Service) sessionCookie(jti, token string) string {
	mac := hmac.New(sha256.New, s.secrets.sessionKey)
	if jti != "" {
		mac.Write([]byte("jwt:" + jti))
	} else {
		mac.Write([]byte("opaque:" + token))
	}
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
