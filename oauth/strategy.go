package oauth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// tokenStrategy issues access tokens in the format the session asks for:
// opaque tokens through fosite's HMAC strategy, JWTs signed with the
// current key. Refresh tokens are always opaque.
type tokenStrategy struct {
	*oauth2.HMACSHAStrategy
	refresh  *RefreshPolicy
	keys     *KeyManager
	users    store.Users
	issuer   string
	audience string
}

var _ oauth2.CoreStrategy = (*tokenStrategy)(nil)

// IsJWT tells the formats apart by shape: a JWT has three dot-separated
// parts, an opaque token two.
func IsJWT(token string) bool { return strings.Count(token, ".") == 2 }

// jwtSignature is the stored key of a JWT: its JWS signature segment.
func jwtSignature(token string) string { return token[strings.LastIndexByte(token, '.')+1:] }

// AccessTokenSignature gets no request, so it dispatches on the token's shape.
func (s *tokenStrategy) AccessTokenSignature(ctx context.Context, token string) string {
	if IsJWT(token) {
		return jwtSignature(token)
	}
	return s.HMACSHAStrategy.AccessTokenSignature(ctx, token)
}

// GenerateAccessToken issues a token in the session's format.
func (s *tokenStrategy) GenerateAccessToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	sess, ok := r.GetSession().(*Session)
	if !ok {
		return "", "", fmt.Errorf("unexpected session type %T", r.GetSession())
	}
	if sess.Format != bff.FormatJWT {
		sess.JTI = ""
		return s.HMACSHAStrategy.GenerateAccessToken(ctx, r)
	}
	token, err := s.signAccessJWT(ctx, r, sess)
	if err != nil {
		return "", "", err
	}
	return token, jwtSignature(token), nil
}

func (s *tokenStrategy) signAccessJWT(ctx context.Context, r fosite.Requester, sess *Session) (string, error) {
	var user *bff.User
	if sess.UserID != 0 {
		if sess.user == nil {
			u, err := s.users.GetUser(ctx, sess.UserID)
			if err != nil {
				return "", err
			}
			sess.user = &u
		}
		user = sess.user
	}
	sess.JTI = bff.RandomID(16)
	now := time.Now().UTC()
	exp := sess.GetExpiresAt(fosite.AccessToken)
	if exp.IsZero() || exp.Sub(now) > bff.MaxAccessTokenTTL {
		exp = now.Add(bff.MaxAccessTokenTTL)
		sess.SetExpiresAt(fosite.AccessToken, exp)
	}
	client := clientOf(r)
	return s.keys.Sign(NewAccessClaims(ClaimsInput{
		Issuer: s.issuer, Audience: s.audience, User: user, ClientID: client.ID, ClientIncarnation: client.Incarnation,
		Scopes: r.GetGrantedScopes(), GrantType: sess.GrantType, Restricted: client.Restricted,
		IssuedAt: now, ExpiresAt: exp, JTI: sess.JTI, JKT: sess.JKT,
	}))
}

// ValidateAccessToken is not how this service validates presented tokens
// (the Validator is); fosite calls it only from handlers not composed here.
func (s *tokenStrategy) ValidateAccessToken(ctx context.Context, r fosite.Requester, token string) error {
	if IsJWT(token) {
		return fosite.ErrRequestUnauthorized.WithHint("JWTs are validated by the service's validator.")
	}
	return s.HMACSHAStrategy.ValidateAccessToken(ctx, r, token)
}

// ValidateRefreshToken is fosite's last check of a presented refresh
// token: the refresh policy's, by the service's clock (RefreshPolicy).
func (s *tokenStrategy) ValidateRefreshToken(ctx context.Context, r fosite.Requester, token string) error {
	return s.refresh.validate(ctx, r.GetSession().GetExpiresAt(fosite.RefreshToken), token)
}
